"""Figures: the source post's lost pictures of batch normalization, drawn from a live ``Trace``.

Every function returns a ``matplotlib.figure.Figure`` built directly (no pyplot, no global backend
switch, nothing to close); ``render(fig, "png" | "svg")`` turns one into bytes, and its SVG is
byte-for-byte deterministic. Channels keep one colour everywhere (``PALETTE``): channel c is
``channel_color(c)`` in every figure. Chinese glosses need the WenQuanYi Micro Hei font
(``fonts-wqy-microhei``); without it they are left out rather than drawn as empty boxes.

Grid figures are laid out in "cell units" on one full-figure axes (one unit = one tensor cell),
so the figure's size follows the tensor's size and cell values stay at a readable 9 pt.

Modules: ``style`` (palette, fonts, ``render``), ``canvas`` and ``grid`` (drawing in cell
units), ``steps`` (the trace's steps), ``reductions`` (mean(dim), the norms' sets) and ``modes``
(running statistics, train vs eval mode).
"""

from __future__ import annotations

from .modes import running_figure, train_eval_figure
from .reductions import axes_figure, mean_dims_figure
from .steps import affine_figure, stats_figure, tensor_figure, walkthrough_figure

# The constants too (MAX_CELLS, INK, …): importable from here, as from the one-module figures.py.
from .style import (  # noqa: F401
    CJK_FONT,
    DECIMALS,
    DPI,
    HIGHLIGHT,
    INK,
    LABEL_SIZE,
    LATIN_FONT,
    MAX_CELLS,
    MAX_VALUE_CELLS,
    MUTED,
    NEUTRAL,
    PALETTE,
    TITLE_SIZE,
    VALUE_SIZE,
    channel_color,
    cjk_font_available,
    format_value,
    render,
)

__all__ = [
    "DECIMALS",
    "DPI",
    "PALETTE",
    "affine_figure",
    "axes_figure",
    "channel_color",
    "cjk_font_available",
    "format_value",
    "mean_dims_figure",
    "render",
    "running_figure",
    "stats_figure",
    "tensor_figure",
    "train_eval_figure",
    "walkthrough_figure",
]
