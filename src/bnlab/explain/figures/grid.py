"""Tensors as grids of cells: (N, C, H, W) drawn as N × C blocks of H × W cells.

Rows are samples, columns are channels, and each channel keeps its colour from ``PALETTE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from matplotlib.patches import Rectangle
from torch import Tensor

from ...errors import BNValueError
from ...render.style import (
    INK,
    LABEL_SIZE,
    MAX_CELLS,
    MUTED,
    VALUE_SIZE,
    _bi,
    _tint,
    channel_color,
    channel_edge_color,
    channel_text_color,
    diverging_color,
    format_value,
    tr,
)
from ..trace import Trace
from .canvas import _Canvas

# --- tensor grids ------------------------------------------------------------------------------

GAP_C = 0.45  # between channel columns (cells)
GAP_N = 0.3  # between sample rows


def _as_nchw(v: Tensor | np.ndarray) -> np.ndarray:
    """(N, C) → (N, C, 1, 1); (N, C, L) → (N, C, 1, L); (N, C, H, W) as is."""
    a = np.asarray(v.detach().cpu().double() if isinstance(v, Tensor) else v, dtype=np.float64)
    if a.ndim == 2:
        return a[:, :, None, None]
    if a.ndim == 3:
        return a[:, :, None, :]
    if a.ndim == 4:
        return a
    raise BNValueError(
        f"figures: can draw (N, C), (N, C, L) or (N, C, H, W) tensors (got shape {list(a.shape)})"
    )


def _check_size(a: np.ndarray) -> None:
    if a.size > MAX_CELLS:
        raise BNValueError(
            f"figures: {a.size} elements is too many to draw (at most {MAX_CELLS}); "
            "slice the tensor first, e.g. x[:2, :3, :8, :8]"
        )


@dataclass
class _Grid:
    """Where a drawn (N, C, H, W) grid landed, for arrows and aligned rows under it."""

    left: float
    right: float
    top: float
    bottom: float
    col_x: list[float]  # left edge of each channel's block
    block_w: float  # W
    header_top: float  # top of the header lines above the cells

    def col_center(self, c: int) -> float:
        return self.col_x[c] + self.block_w / 2


def _grid_width(a: np.ndarray) -> float:
    c, w = a.shape[1], a.shape[3]
    return c * w + (c - 1) * GAP_C


def _draw_grid(
    cv: _Canvas,
    a: np.ndarray,
    left: float,
    top: float,
    *,
    show_values: bool,
    headers: Sequence[Sequence[str]] | None = None,
    row_labels: Literal["long", "short", "none"] = "long",
    super_header: bool = True,
    outline: bool = False,
    value_size: float = VALUE_SIZE,
    diverging: float | None = None,
) -> _Grid:
    """Draw an (N, C, H, W) array as N × C blocks of H × W cells (rows: samples, cols: channels).

    ``diverging``: shade every cell by its value on the ``DIVERGING`` scale from −diverging to
    +diverging (for values centred at 0: x − μ, x̂) instead of by its channel's colour.
    """
    n_, c_, h_, w_ = a.shape
    col_x = [left + c * (w_ + GAP_C) for c in range(c_)]
    step = LABEL_SIZE * 1.45 / 72 / cv.unit
    for c in range(c_):
        color = channel_edge_color(c)
        lo, hi = float(a[:, c].min()), float(a[:, c].max())
        for n in range(n_):
            y_block = top - n * (h_ + GAP_N)
            for h in range(h_):
                for w in range(w_):
                    v = float(a[n, c, h, w])
                    if diverging is not None:
                        face = diverging_color(v, diverging)
                    elif show_values:
                        face = _tint(channel_color(c), 0.2)
                    else:  # shade ∝ value within the channel
                        frac = (v - lo) / (hi - lo) if hi > lo else 0.5
                        face = _tint(channel_color(c), 0.12 + 0.7 * frac)
                    cv.cell(
                        col_x[c] + w,
                        y_block - h - 1,
                        format_value(v) if show_values else "",
                        face=face,
                        edge=color if outline else "#c4c4c4",
                        lw=1.3 if outline else 0.6,
                        size=value_size,
                    )
            # the block border: one (sample, channel) slice of H × W values
            cv.ax.add_patch(
                Rectangle(
                    (col_x[c], y_block - h_),
                    w_,
                    h_,
                    facecolor="none",
                    edgecolor=color,
                    linewidth=1.3,
                    zorder=3,
                )
            )
    bottom = top - n_ * h_ - (n_ - 1) * GAP_N
    right = col_x[-1] + w_
    # column headers (channel c=…), lines listed top → bottom, the first one bold in colour
    if headers is None:
        short = w_ * cv.unit < 1.0
        headers = [[f"c={c}" if short else _channel(c)] for c in range(c_)]
    n_lines = max(len(hs) for hs in headers)
    for c, hs in enumerate(headers):
        for i, s in enumerate(hs):
            y = top + 0.15 + (n_lines - 1 - i + 0.5) * step
            cv.text(
                col_x[c] + w_ / 2,
                y,
                s,
                ha="center",
                color=channel_text_color(c) if i == 0 else INK,
                weight="bold" if i == 0 else "normal",
            )
    header_top = top + 0.15 + n_lines * step
    if super_header:
        cv.text(
            (left + right) / 2,
            header_top + 0.5 * step,
            _bi("channels", "通道/深度"),
            ha="center",
            color=MUTED,
            size=LABEL_SIZE - 0.5,
        )
        header_top += step
    if row_labels != "none":
        for n in range(n_):
            label = _sample(n) if row_labels == "long" else f"n={n}"
            x = left - (0.35 if outline else 0.18)  # clear of the dashed fences when outlined
            cv.text(x, top - n * (h_ + GAP_N) - h_ / 2, label, ha="right", color=MUTED)
    return _Grid(left, right, top, bottom, col_x, w_, header_top)


def _step_array(trace: Trace, step: str) -> np.ndarray:
    if step not in trace:
        raise BNValueError(f"figures: no step {step!r} in this trace (steps: {trace.names})")
    value = trace[step].value
    if value.dim() != trace.input.dim():
        raise BNValueError(
            f"figures: step {step!r} is per channel (shape {list(value.shape)}); "
            "tensor_figure draws the per-element steps: input, x_minus_mean, xhat, output"
        )
    a = _as_nchw(value)
    _check_size(a)
    return a


def _channel(c: int) -> str:
    """A channel's name in headers and legends."""
    return tr(f"channel c={c}", f"通道 c={c}")


def _sample(n: int) -> str:
    return tr(f"sample n={n}", f"样本 n={n}")


def _row_label_width(cv: _Canvas, n: int) -> float:
    return cv.text_w(_sample(n - 1), LABEL_SIZE) + 0.25


def _block_note(a: np.ndarray) -> str:
    _, _, h, w = a.shape
    if h == 1 and w == 1:
        return tr(_bi("each cell: one value x[n, c]", "每格一个数"), "每格一个值 x[n, c]")
    return tr(
        _bi(f"each block: one (sample, channel) slice of H×W = {h}×{w} values", f"每块 {h}×{w}"),
        f"每块是一个（样本，通道）切片：H×W = {h}×{w} 个值",
    )
