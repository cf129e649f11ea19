"""Figures: the source post's lost pictures of batch normalization, drawn from a live ``Trace``.

Every function returns a ``matplotlib.figure.Figure`` built directly (no pyplot, no global backend
switch, nothing to close); ``render(fig, "png" | "svg")`` turns one into bytes, and its SVG is
byte-for-byte deterministic. A PNG has ``PNG_SCALE`` (2) pixels per CSS pixel, sharp on high-DPI
screens: a page must set ``<img width=display_width(png)>`` (the pixel width / 2).

Channels keep one colour everywhere (``PALETTE``, Okabe & Ito's colour-blind safe list): channel c
is ``channel_color(c)`` in every figure, ``channel_text_color(c)`` (the same hue, darkened to 4.5:1
on white) for its text. Values centred at 0 (x − μ, x̂) are shaded on the diverging ``DIVERGING``
map with a colour bar. Chinese glosses need the WenQuanYi Micro Hei font (``fonts-wqy-microhei``);
without it they are left out rather than drawn as empty boxes.

One type scale: no text is smaller than ``MIN_TEXT_PX`` (11) CSS px as the tour shows it, a figure
W inches wide being scaled to at most ``PAGE_WIDTH`` (1000) px; a font of s pt shows at
s·DPI/72·min(1, 1000/(W·DPI)) px. Wide figures wrap onto two rows rather than shrink.

Grid figures are laid out in "cell units" on one full-figure axes (one unit = one tensor cell),
so the figure's size follows the tensor's size and cell values stay at a readable 9 pt.

Language: figures built inside ``with language("zh"):`` carry Chinese labels only (the tour's
``--lang zh``); by default, English labels with Chinese glosses. Every label is written
``tr(en, zh)``, or ``_bi(en, zh)`` where the gloss says it all; code, symbols, numbers, formulas and
run names stay as they are in both.

Modules: the style (palette, fonts, ``render``, ``language``) is the shared rendering layer's,
:mod:`bnlab.render.style`, re-exported here; ``canvas`` and ``grid`` (drawing
in cell units), ``steps`` (the trace's steps), ``normalize`` (x̂ cell by cell, the statistics'
broadcast), ``reductions`` (mean(dim), the norms' sets) and ``modes`` (running statistics, train
vs eval mode).
"""

from __future__ import annotations

# The constants too (MAX_CELLS, INK, …): importable from here, as from the one-module figures.py.
from ...render.style import (  # noqa: F401
    CJK_FONT,
    DECIMALS,
    DIVERGING,
    DPI,
    HIGHLIGHT,
    INK,
    LABEL_SIZE,
    LATIN_FONT,
    MAX_CELLS,
    MAX_VALUE_CELLS,
    MIN_TEXT_PX,
    MUTED,
    NEUTRAL,
    PAGE_WIDTH,
    PALETTE,
    PNG_SCALE,
    TITLE_SIZE,
    VALUE_SIZE,
    channel_color,
    channel_text_color,
    cjk_font_available,
    display_width,
    figure_lang,
    format_value,
    language,
    render,
    tr,
)
from .modes import running_figure, train_eval_figure
from .normalize import broadcast_figure, xhat_figure
from .reductions import axes_figure, mean_dims_figure
from .steps import affine_figure, stats_figure, tensor_figure, walkthrough_figure

__all__ = [
    "DECIMALS",
    "DPI",
    "PALETTE",
    "PNG_SCALE",
    "affine_figure",
    "axes_figure",
    "broadcast_figure",
    "channel_color",
    "channel_text_color",
    "cjk_font_available",
    "display_width",
    "figure_lang",
    "format_value",
    "language",
    "mean_dims_figure",
    "render",
    "running_figure",
    "stats_figure",
    "tensor_figure",
    "tr",
    "train_eval_figure",
    "walkthrough_figure",
    "xhat_figure",
]
