"""Figures: the source post's lost pictures of batch normalization, drawn from a live ``Trace``.

Every function returns a ``matplotlib.figure.Figure`` built directly (no pyplot, no global backend
switch, nothing to close); ``render(fig, "png" | "svg")`` turns one into bytes, and its SVG is
byte-for-byte deterministic. Channels keep one colour everywhere (``PALETTE``): channel c is
``channel_color(c)`` in every figure. Chinese glosses need the WenQuanYi Micro Hei font
(``fonts-wqy-microhei``); without it they are left out rather than drawn as empty boxes.

Grid figures are laid out in "cell units" on one full-figure axes (one unit = one tensor cell),
so the figure's size follows the tensor's size and cell values stay at a readable 9 pt.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

import matplotlib
import numpy as np
import torch
from matplotlib import font_manager
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Polygon, Rectangle
from torch import Tensor

from ..errors import BNValueError
from .trace import Trace

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

# One colour per channel, shared by every figure (tab10's first eight, colour-blind friendly order).
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
)
HIGHLIGHT = "#f2b134"  # the shaded normalization set in axes_figure
NEUTRAL = "#5f6b73"  # outlines that are not channels (rows in mean_dims_figure, whole tensors)
INK = "#1b1b1b"
MUTED = "#5a5a5a"
DECIMALS = 4  # every tensor value is drawn as f"{v:.4f}"
DPI = 120
LATIN_FONT = "DejaVu Sans"
CJK_FONT = "WenQuanYi Micro Hei"
VALUE_SIZE = 9.0  # pt, numbers inside cells
LABEL_SIZE = 9.5
TITLE_SIZE = 12.5
MAX_CELLS = 4096  # larger tensors: slice them first
MAX_VALUE_CELLS = 300  # above this many cells, cells are shaded by value instead of printed

P = ParamSpec("P")
R = TypeVar("R")


# --- style ------------------------------------------------------------------------------------


@functools.cache
def cjk_font_available() -> bool:
    """True when matplotlib can find the CJK font used for the Chinese glosses."""
    try:
        font_manager.findfont(
            font_manager.FontProperties(family=CJK_FONT), fallback_to_default=False
        )
    except ValueError:
        return False
    return True


def _rc() -> dict[str, Any]:
    family = [LATIN_FONT, CJK_FONT] if cjk_font_available() else [LATIN_FONT]
    return {
        "font.family": family,
        "font.size": 10,
        "mathtext.fontset": "dejavusans",
        "axes.unicode_minus": True,
        "svg.hashsalt": "bnlab",
        "svg.fonttype": "path",
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
    }


class _NoCJKBoldNotice(logging.Filter):
    """Drops matplotlib's notice that the CJK font has no bold face (it then uses regular)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (
            msg.startswith("findfont: Failed to find font weight") and CJK_FONT in str(record.args)
        )


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """bnlab's rc settings, and no bold-CJK notices, for the duration of the block."""
    log = logging.getLogger("matplotlib.font_manager")
    quiet = _NoCJKBoldNotice()
    log.addFilter(quiet)
    try:
        with matplotlib.rc_context(_rc()):
            yield
    finally:
        log.removeFilter(quiet)


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Build the figure inside bnlab's style (fonts are fixed when a text is created)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _style():
            return fn(*args, **kwargs)

    return wrapper


def _zh(text: str) -> str:
    """A Chinese gloss, or nothing when no CJK font is installed (never a row of empty boxes)."""
    return text if cjk_font_available() else ""


def _bi(en: str, zh: str, sep: str = " ") -> str:
    """English with its Chinese gloss beside it."""
    z = _zh(zh)
    return f"{en}{sep}{z}" if z else en


def channel_color(c: int) -> str:
    """The colour of channel ``c`` in every bnlab figure."""
    return PALETTE[c % len(PALETTE)]


def _tint(color: str, amount: float) -> tuple[float, float, float]:
    """``color`` mixed into white: 0 → white, 1 → the colour itself."""
    r, g, b = to_rgb(color)
    return (1 - amount + amount * r, 1 - amount + amount * g, 1 - amount + amount * b)


def format_value(v: float, decimals: int = DECIMALS) -> str:
    """How a tensor value is written inside a cell."""
    return f"{v:.{decimals}f}"


def _short(v: float) -> str:
    """A compact number: 4.5, 10, 0.4963 (for scalars like γ, β and mean_dims results)."""
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _shape(dims: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in dims) + "]"


# --- text size estimates (to size figures; render() still uses a tight bounding box) ----------


def _text_width_in(s: str, size: float) -> float:
    """Rough width in inches of ``s`` at ``size`` pt (DejaVu Sans; CJK glyphs are one em)."""
    if "$" in s:  # mathtext: drop the markup
        for token in (
            "\\frac",
            "\\sum",
            "\\sqrt",
            "\\hat",
            "\\mu",
            "\\sigma",
            "\\gamma",
            "\\beta",
            "\\epsilon",
            "\\,",
            "_{i=1}^{m}",
            "{",
            "}",
            "$",
            "^",
            "_",
        ):
            s = s.replace(token, "x" if token.startswith("\\") and len(token) > 2 else "")
    em = 0.0
    for ch in s:
        if ord(ch) > 0x2E80:
            em += 1.0
        elif ch in ".,:;|!il'()[] ":
            em += 0.33
        else:
            em += 0.62
    return em * size / 72


def _value_unit(strings: Sequence[str], size: float = VALUE_SIZE) -> float:
    """Cell size in inches that fits the widest value string with a margin."""
    widest = max((_text_width_in(s, size) for s in strings), default=0.3)
    return max(0.58, widest + 0.2)


# --- canvas: one full-figure axes in cell units ------------------------------------------------


class _Canvas:
    """A figure whose single axes fills it, measured in cells (y up); sized when finished."""

    def __init__(self, unit: float) -> None:
        self.unit = unit  # inches per cell
        self.fig = Figure(facecolor="white")
        self.ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0))
        self.ax.set_axis_off()
        self.lo = [math.inf, math.inf]
        self.hi = [-math.inf, -math.inf]

    def extend(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.lo = [min(self.lo[0], x0, x1), min(self.lo[1], y0, y1)]
        self.hi = [max(self.hi[0], x0, x1), max(self.hi[1], y0, y1)]

    def text_w(self, s: str, size: float) -> float:
        return _text_width_in(s, size) / self.unit

    def text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        size: float = LABEL_SIZE,
        ha: str = "left",
        va: str = "center",
        color: str = INK,
        **kw: Any,
    ) -> None:
        if not s:
            return
        lines = s.split("\n")
        w = max(self.text_w(line, size) for line in lines)
        h = len(lines) * size * 1.35 / 72 / self.unit * (1.6 if "frac" in s else 1.0)
        x0 = {"left": x, "center": x - w / 2, "right": x - w}[ha]
        y0 = {"bottom": y, "baseline": y, "center": y - h / 2, "top": y - h}[va]
        self.extend(x0, y0, x0 + w, y0 + h)
        self.ax.text(x, y, s, ha=ha, va=va, fontsize=size, color=color, clip_on=False, **kw)

    def cell(
        self,
        x: float,
        y: float,
        text: str = "",
        *,
        w: float = 1.0,
        h: float = 1.0,
        face: Any = "white",
        edge: Any = "#b5b5b5",
        lw: float = 0.6,
        size: float = VALUE_SIZE,
        weight: str = "normal",
        zorder: float = 2,
    ) -> None:
        self.ax.add_patch(
            Rectangle((x, y), w, h, facecolor=face, edgecolor=edge, linewidth=lw, zorder=zorder)
        )
        if text:
            self.ax.text(
                x + w / 2,
                y + h / 2,
                text,
                ha="center",
                va="center",
                fontsize=size,
                color=INK,
                weight=weight,
                zorder=zorder + 1,
            )
        self.extend(x, y, x + w, y + h)

    def box(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        color: str,
        *,
        lw: float = 1.6,
        ls: str = "-",
        pad: float = 0.08,
        face: Any = "none",
        zorder: float = 4,
    ) -> None:
        self.ax.add_patch(
            FancyBboxPatch(
                (x, y),
                w,
                h,
                boxstyle=f"round,pad={pad},rounding_size=0.18",
                facecolor=face,
                edgecolor=color,
                linewidth=lw,
                linestyle=ls,
                zorder=zorder,
            )
        )
        self.extend(x - pad, y - pad, x + w + pad, y + h + pad)

    def arrow(
        self, x0: float, y0: float, x1: float, y1: float, *, color: str = MUTED, lw: float = 1.4
    ) -> None:
        self.ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            annotation_clip=False,
            arrowprops={
                "arrowstyle": "-|>",
                "color": color,
                "lw": lw,
                "shrinkA": 0,
                "shrinkB": 0,
                "mutation_scale": 13,
            },
        )
        self.extend(x0, y0, x1, y1)

    def finish(self, pad: float = 0.25) -> Figure:
        x0, y0 = self.lo[0] - pad, self.lo[1] - pad
        x1, y1 = self.hi[0] + pad, self.hi[1] + pad
        self.ax.set_xlim(x0, x1)
        self.ax.set_ylim(y0, y1)
        self.fig.set_size_inches((x1 - x0) * self.unit, (y1 - y0) * self.unit)
        return self.fig


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
) -> _Grid:
    """Draw an (N, C, H, W) array as N × C blocks of H × W cells (rows: samples, cols: channels)."""
    n_, c_, h_, w_ = a.shape
    col_x = [left + c * (w_ + GAP_C) for c in range(c_)]
    step = LABEL_SIZE * 1.45 / 72 / cv.unit
    for c in range(c_):
        color = channel_color(c)
        lo, hi = float(a[:, c].min()), float(a[:, c].max())
        for n in range(n_):
            y_block = top - n * (h_ + GAP_N)
            for h in range(h_):
                for w in range(w_):
                    v = float(a[n, c, h, w])
                    if show_values:
                        face = _tint(color, 0.2)
                    else:  # shade ∝ value within the channel
                        face = _tint(color, 0.12 + 0.7 * ((v - lo) / (hi - lo) if hi > lo else 0.5))
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
        headers = [[f"c={c}" if short else f"channel c={c}"] for c in range(c_)]
    n_lines = max(len(hs) for hs in headers)
    for c, hs in enumerate(headers):
        for i, s in enumerate(hs):
            y = top + 0.15 + (n_lines - 1 - i + 0.5) * step
            cv.text(
                col_x[c] + w_ / 2,
                y,
                s,
                ha="center",
                color=channel_color(c) if i == 0 else INK,
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
            label = f"sample n={n}" if row_labels == "long" else f"n={n}"
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


def _title(cv: _Canvas, x: float, bottom: float, title: str, subtitle: str = "") -> None:
    """A bold title with an optional subtitle line under it, left-aligned at x, above ``bottom``."""
    y = bottom + 0.1 / cv.unit
    if subtitle:
        math = "$" in subtitle  # a formula: full-size fractions, a little larger
        size = LABEL_SIZE + (2.5 if math else 1)
        tall = "\\frac" in subtitle
        subtitle = subtitle.replace("\\frac", "\\dfrac")
        cv.text(x, y, subtitle, size=size, va="bottom", color=INK if math else MUTED)
        y += size * (3.6 if tall else 1.45) / 72 / cv.unit
    cv.text(x, y, title, size=TITLE_SIZE, va="bottom", weight="bold")


def _row_label_width(cv: _Canvas, n: int) -> float:
    return cv.text_w(f"sample n={n - 1}", LABEL_SIZE) + 0.25


def _block_note(a: np.ndarray) -> str:
    _, _, h, w = a.shape
    if h == 1 and w == 1:
        return _bi("each cell: one value x[n, c]", "每格一个数")
    return _bi(f"each block: one (sample, channel) slice of H×W = {h}×{w} values", f"每块 {h}×{w}")


# --- 1. one step of the trace ------------------------------------------------------------------

_STEP_LABEL = {
    "input": ("input x", "输入"),
    "x_minus_mean": ("centred x − μ", "减去均值"),
    "xhat": ("normalized x̂", "标准化"),
    "output": ("output y = γ·x̂ + β", "输出"),
}


@_styled
def tensor_figure(trace: Trace, step: str = "input") -> Figure:
    """One per-element step of ``trace`` as blocks of cells: rows = samples, columns = channels."""
    a = _step_array(trace, step)
    show = a.size <= MAX_VALUE_CELLS
    strings = [format_value(v) for v in a.flat] if show else []
    cv = _Canvas(_value_unit(strings) if show else 0.32)
    g = _draw_grid(cv, a, 0.0, 0.0, show_values=show)
    en, zh = _STEP_LABEL.get(step, (trace[step].title, ""))
    shape = _shape(trace[step].value.shape)
    dims = trace[step].value.shape
    hw = f", {' × '.join(str(d) for d in dims[2:])} values each" if len(dims) > 2 else ""
    sub = (
        f"${trace[step].latex}$"
        if step != "input"
        else f"{dims[0]} samples × {dims[1]} channels{hw}"
    )
    _title(
        cv,
        g.left - _row_label_width(cv, a.shape[0]),
        g.header_top,
        _bi(f"{en} — shape {shape}", zh),
        sub,
    )
    note = (
        _block_note(a)
        if show
        else _bi(
            f"{a.size} values: too many to print, shading ∝ value within each channel",
            "颜色深浅表示大小",
        )
    )
    cv.text(g.left, g.bottom - 0.45, note, size=LABEL_SIZE - 0.5, va="top", color=MUTED)
    return cv.finish()


# --- 2. step 1: per-channel statistics ---------------------------------------------------------


def _keepdim_shape(ndim: int, c: int) -> str:
    return _shape([1, c] + [1] * (ndim - 2))


@_styled
def stats_figure(trace: Trace) -> Figure:
    """Step 1: every cell of channel c is reduced together into that channel's μ and σ²."""
    a = _step_array(trace, "input")
    _, c_, _, w_ = a.shape
    mean = trace["mean"].value.detach().double().numpy()
    var = trace["var"].value.detach().double().numpy()
    show = a.size <= MAX_VALUE_CELLS
    strings = [format_value(v) for v in (*a.flat, *mean, *var)] if show else []
    cv = _Canvas(_value_unit(strings) if show else 0.32)
    train = trace.training
    g = _draw_grid(cv, a, 0.0, 0.0, show_values=show, outline=train)
    ndim = trace.input.dim()
    m = a.size // c_
    # each channel's cells form one reduction set: a dashed fence around the whole column
    for c in range(c_ if train else 0):
        cv.box(g.col_x[c], g.bottom, w_, g.top - g.bottom, channel_color(c), ls="--", pad=0.14)
    # arrows down into the per-channel results, aligned under their columns
    y_mu = g.bottom - 1.25 - 1.0
    y_var = y_mu - 1.25
    for c in range(c_):
        x = g.col_center(c)
        if train:  # in eval mode the batch is not reduced: nothing flows from it
            cv.arrow(x, g.bottom - 0.3, x, y_mu + 1.08, color=channel_color(c))
        for y, v in ((y_mu, mean[c]), (y_var, var[c])):
            cv.cell(
                g.col_x[c],
                y,
                format_value(v),
                w=w_,
                face=_tint(channel_color(c), 0.35),
                edge=channel_color(c),
                lw=1.6,
                weight="bold",
            )
    if train:
        mu_label, var_label = r"mean $\mu_B$", r"variance $\sigma_B^2$"
    else:
        mu_label, var_label = r"running_mean $\mu$", r"running_var $\sigma^2$"
    cv.text(g.left - 0.35, y_mu + 0.5, mu_label, ha="right")
    cv.text(g.left - 0.35, y_var + 0.5, var_label, ha="right")
    keep = _keepdim_shape(ndim, c_)
    cv.text(
        g.left,
        y_var - 0.35,
        _bi(f"result shape {keep}  (keepdim=True)", "结果形状")
        if train
        else _bi(f"shape [{c_}], broadcast as {keep}", "形状"),
        va="top",
        color=MUTED,
    )

    # right: the formulas and the shape chain, spaced in inches so the size of a cell doesn't matter
    x_r = g.right + 1.3
    y = g.top + 0.2

    def row(s: str, height_in: float, size: float = LABEL_SIZE, **kw: Any) -> None:
        nonlocal y
        y -= height_in / cv.unit / 2
        cv.text(x_r + kw.pop("indent", 0.0), y, s, size=size, **kw)
        y -= height_in / cv.unit / 2

    dims = {2: "N", 3: "N·L"}.get(ndim, "N·H·W")
    sizes = "·".join(str(s) for s in [trace.input.shape[0], *trace.input.shape[2:]])
    if trace.training:
        row(f"per channel c, reduce over {dims}:", 0.26)
        row(
            _bi(f"m = {sizes} = {m} values", f"每个通道 {m} 个数")
            if ndim > 2
            else _bi(f"m = N = {m} values", f"每个特征 {m} 个数"),
            0.26,
        )
        row(r"$\mu_B = \frac{1}{m}\sum_{i=1}^{m} x_i$", 0.72, size=14)
        row(r"$\sigma_B^2 = \frac{1}{m}\sum_{i=1}^{m} (x_i - \mu_B)^2$", 0.72, size=14)
        row(_bi("biased variance: divide by m, not m − 1", "有偏方差"), 0.26, color=MUTED)
    else:
        row(_bi("eval mode", "预测模式"), 0.26, weight="bold")
        row("μ and σ² are the running estimates kept", 0.26)
        row("during training, not this batch's statistics", 0.26)
        row(r"$\mu = \mathrm{running\_mean}$", 0.45, size=13)
        row(r"$\sigma^2 = \mathrm{running\_var}$", 0.45, size=13)
        return _stats_title(cv, g, trace, var_label)
    y -= 0.2 / cv.unit
    axes = tuple(d for d in range(ndim) if d != 1)
    chain = [("x", _shape(trace.input.shape))]
    shape = list(trace.input.shape)
    for d in axes:
        shape[d] = 1
        chain.append((f".mean(dim={d}, keepdim=True)", _shape(shape)))
    width = max(len(s) for s, _ in chain)
    mono = {"family": "DejaVu Sans Mono", "size": LABEL_SIZE - 0.5}
    label = (
        ("shape after each reduction", "每次求平均后的形状") if len(axes) > 1 else ("shape", "形状")
    )
    row(_bi(*label), 0.28, color=MUTED)
    for s, shp in chain:
        row(f"{s:<{width}}  {shp}", 0.22, indent=0.25, **mono)
    if len(axes) > 1:
        row(f"= x.mean(dim={axes}, keepdim=True)", 0.3, **mono)
    return _stats_title(cv, g, trace, var_label)


def _stats_title(cv: _Canvas, g: _Grid, trace: Trace, var_label: str) -> Figure:
    if trace.training:
        title = _bi("Step 1 / 第一步: mean and variance per channel", "按通道求均值和方差", "  ")
        sub = (
            f"input x of shape {_shape(trace.input.shape)}; cells outlined in one colour are "
            "averaged together"
        )
    else:
        title = _bi("Step 1 (eval) / 第一步: running mean and variance", "用滑动平均", "  ")
        sub = f"input x of shape {_shape(trace.input.shape)}; nothing is averaged in eval mode"
    if not cjk_font_available():
        title = title.replace(" / 第一步", "")
    _title(
        cv,
        g.left - cv.text_w(var_label.replace("$", ""), LABEL_SIZE) - 0.4,
        g.header_top,
        title,
        sub,
    )
    return cv.finish()


# --- 3. step 2: scale and shift ----------------------------------------------------------------


@_styled
def affine_figure(trace: Trace) -> Figure:
    """Step 2: each channel's x̂ is scaled by its own γ and shifted by its own β."""
    xh = _step_array(trace, "xhat")
    y = _step_array(trace, "output")
    n_, c_, _, w_ = xh.shape
    gamma = trace.gamma.detach().double().tolist()
    beta = trace.beta.detach().double().tolist()
    show = xh.size <= MAX_VALUE_CELLS
    strings = [format_value(v) for v in (*xh.flat, *y.flat)] if show else []
    cv = _Canvas(_value_unit(strings) if show else 0.32)
    x2 = _grid_width(xh) + 2.6
    short = w_ * cv.unit < 1.0
    gbs = [[f"γ={_short(gamma[c])}", f"β={_short(beta[c])}"] for c in range(c_)]
    narrow = any(cv.text_w(", ".join(gb), LABEL_SIZE) > w_ + 0.3 for gb in gbs)
    heads = [
        [f"c={c}" if short else f"channel c={c}", *(gb if narrow else [", ".join(gb)])]
        for c, gb in enumerate(gbs)
    ]
    # the x̂ grid gets blank header lines so both grids' headers line up
    blank = [[h[0]] + [""] * (len(h) - 1) for h in heads]
    g1 = _draw_grid(cv, xh, 0.0, 0.0, show_values=show, headers=blank)
    g2 = _draw_grid(cv, y, x2, 0.0, show_values=show, headers=heads, row_labels="none")
    mid = (g1.top + g1.bottom) / 2
    cv.arrow(g1.right + 0.35, mid, x2 - 0.35, mid, lw=1.8)
    cv.text(
        (g1.right + x2) / 2,
        mid + 0.3,
        r"$\gamma\,\hat{x} + \beta$",
        ha="center",
        va="bottom",
        size=13,
    )
    cv.text((g1.right + x2) / 2, mid - 0.3, _zh("按通道"), ha="center", va="top", color=MUTED)
    # panel captions under each grid
    cv.text(
        (g1.left + g1.right) / 2,
        g1.bottom - 0.35,
        _bi("x̂: normalized", "标准化后"),
        ha="center",
        va="top",
        weight="bold",
    )
    cv.text(
        (g2.left + g2.right) / 2,
        g2.bottom - 0.35,
        _bi("y: output", "输出"),
        ha="center",
        va="top",
        weight="bold",
    )
    # a worked cell: the first element of channel 0
    line = LABEL_SIZE * 1.7 / 72 / cv.unit
    y0 = g1.bottom - 0.35 - line * 1.3
    if show:
        xv, yv = float(xh[0, 0, 0, 0]), float(y[0, 0, 0, 0])
        approx = gamma[0] * float(format_value(xv)) + beta[0]
        eq = "=" if format_value(approx) == format_value(yv) else "≈"
        xs = format_value(xv) if xv >= 0 else f"({format_value(xv)})"
        bs = f"+ {_short(beta[0])}" if beta[0] >= 0 else f"− {_short(-beta[0])}"
        ex = (
            f"e.g. n=0, c=0, first cell: y = {_short(gamma[0])} × {xs} {bs} {eq} {format_value(yv)}"
        )
        cv.text(g1.left, y0, ex, va="top")
        y0 -= line
    cv.text(
        g1.left,
        y0,
        _bi(
            "each channel has its own γ (scale) and β (shift), learned in training",
            "每个通道有自己的 γ 和 β",
        ),
        va="top",
        color=MUTED,
    )
    title = "Step 2 / 第二步: scale and shift per channel  按通道缩放和平移"
    if not cjk_font_available():
        title = "Step 2: scale and shift per channel"
    per = ";  ".join(f"channel c={c}: γ={_short(gamma[c])}, β={_short(beta[c])}" for c in range(c_))
    if c_ > 4:
        per = f"γ = {[_short(v) for v in gamma]}, β = {[_short(v) for v in beta]}"
    top = max(g1.header_top, g2.header_top)
    _title(
        cv,
        g1.left - _row_label_width(cv, n_),
        top,
        title,
        per,
    )
    return cv.finish()


# --- 4. the whole walkthrough in one row -------------------------------------------------------


@_styled
def walkthrough_figure(trace: Trace) -> Figure:
    """x → (μ, σ²) → x̂ → y in one compact row."""
    x = _step_array(trace, "input")
    xh = _step_array(trace, "xhat")
    y = _step_array(trace, "output")
    n_, c_, _, _ = x.shape
    mean = trace["mean"].value.detach().double().numpy()
    var = trace["var"].value.detach().double().numpy()
    show = x.size <= MAX_VALUE_CELLS
    size = VALUE_SIZE - 1  # compact: 8 pt values
    strings = [format_value(v) for v in (*x.flat, *xh.flat, *y.flat, *mean, *var)] if show else []
    cv = _Canvas(_value_unit(strings, size) if show else 0.3)
    arrow_w = 1.9
    first_w = max(arrow_w, cv.text_w("mean, var", LABEL_SIZE) + 1.3)  # room for μ_B / σ²_B
    kw: dict[str, Any] = {"show_values": show, "super_header": False, "value_size": size}
    g_x = _draw_grid(cv, x, 0.0, 0.0, row_labels="short", **kw)
    mid = (g_x.top + g_x.bottom) / 2
    # the statistics: one cell per channel for μ and for σ², centred vertically
    xs = g_x.right + first_w
    for c in range(c_):
        for k, v in enumerate((mean[c], var[c])):
            cv.cell(
                xs + c * 1.15,
                mid + 0.15 - k * 1.3,
                format_value(v) if show else "",
                face=_tint(channel_color(c), 0.35),
                edge=channel_color(c),
                lw=1.4,
                size=size,
            )
    s_right = xs + c_ * 1.15 - 0.15
    mu, s2 = (r"$\mu_B$", r"$\sigma_B^2$") if trace.training else (r"$\mu$", r"$\sigma^2$")
    cv.text(xs - 0.12, mid + 0.65, mu, ha="right", size=12)
    cv.text(xs - 0.12, mid - 0.65, s2, ha="right", size=12)
    g_h = _draw_grid(cv, xh, s_right + arrow_w, 0.0, row_labels="none", **kw)
    g_y = _draw_grid(cv, y, g_h.right + arrow_w, 0.0, row_labels="none", **kw)
    arrows = [
        (g_x.right, xs - 0.75, "mean, var", _zh("按通道")),
        (s_right, g_h.left, "normalize", _zh("标准化")),
        (g_h.right, g_y.left, r"$\times\gamma + \beta$", _zh("缩放平移")),
    ]
    for x0, x1, above, below in arrows:
        cv.arrow(x0 + 0.25, mid, x1 - 0.25, mid, lw=1.6)
        big = "$" in above
        cv.text(
            (x0 + x1) / 2,
            mid + 0.18,
            above,
            ha="center",
            va="bottom",
            size=LABEL_SIZE + (2 if big else -0.5),
        )
        cv.text(
            (x0 + x1) / 2,
            mid - 0.18,
            below,
            ha="center",
            va="top",
            color=MUTED,
            size=LABEL_SIZE - 0.5,
        )
    captions = [
        ((g_x.left + g_x.right) / 2, _bi("x: input", "输入")),
        ((xs + s_right) / 2, _bi("per-channel stats", "统计量")),
        ((g_h.left + g_h.right) / 2, "x̂ = (x − μ) / √(σ² + ε)"),
        ((g_y.left + g_y.right) / 2, _bi("y = γ·x̂ + β", "输出")),
    ]
    bottom = min(g_x.bottom, mid - 1.15 - 0.2)
    for cx, s in captions:
        cv.text(cx, bottom - 0.3, s, ha="center", va="top", weight="bold")
    mode = "training mode: batch statistics" if trace.training else "eval mode: running statistics"
    title = _bi("Batch normalization, step by step", "批量归一化的每一步", "  ")
    _title(
        cv,
        g_x.left - cv.text_w(f"n={n_ - 1}", LABEL_SIZE) - 0.3,
        g_x.header_top,
        title,
        f"x.shape = {_shape(trace.input.shape)}, {mode}, ε = {trace.eps:g}",
    )
    return cv.finish()


# --- 5. how mean(dim) works --------------------------------------------------------------------


@_styled
def mean_dims_figure(x: Tensor | None = None) -> Figure:
    """``x.mean(dim=0)``, ``x.mean(dim=1)`` and ``x.mean()`` on a 2-D x (default: 4×3 arange)."""
    x = torch.arange(12.0).reshape(4, 3) if x is None else torch.as_tensor(x).double()
    if x.dim() != 2:
        raise BNValueError(f"mean_dims_figure: expected a 2-D tensor (got shape {list(x.shape)})")
    a = x.detach().double().numpy()
    rows, cols = a.shape
    if a.size > 120:
        raise BNValueError(f"mean_dims_figure: {a.size} elements is too many to draw (at most 120)")
    col_mean, row_mean, all_mean = a.mean(axis=0), a.mean(axis=1), float(a.mean())
    strings = [_short(v) for v in (*a.flat, *col_mean, *row_mean, all_mean)]
    cv = _Canvas(max(0.5, _value_unit(strings) - 0.04))
    code_size = LABEL_SIZE - 0.5
    panel_w = max(cols + 2.6, cv.text_w("x.mean(dim=0, keepdim=True)", code_size) + 0.6)
    top = 0.0
    line = LABEL_SIZE * 1.6 / 72 / cv.unit

    def grid(left: float, face: Callable[[int, int], Any], edge: str = "#c4c4c4") -> None:
        for i in range(rows):
            for j in range(cols):
                cv.cell(left + j, top - i - 1, _short(a[i, j]), face=face(i, j), edge=edge)

    def row_face(i: int, j: int) -> Any:
        return _tint(NEUTRAL, 0.22 if i % 2 == 0 else 0.1)

    panels = [
        ("dim=0", "按列求平均值", "x.mean(dim=0, keepdim=True)", _shape([1, cols])),
        ("dim=1", "按行求平均值", "x.mean(dim=1, keepdim=True)", _shape([rows, 1])),
        ("no dim", "所有元素的平均值", "x.mean()", "[] (a scalar)"),
    ]
    for k, (en, zh, code, shp) in enumerate(panels):
        left = k * (panel_w + 1.2)
        title_y = top + 0.5 + 2 * line
        cv.text(left, title_y, _bi(en, zh), size=TITLE_SIZE - 1, weight="bold", va="center")
        cv.text(left, top + 0.45 + line * 0.6, code, family="DejaVu Sans Mono", size=code_size)
        if k == 0:  # each column averaged: column j keeps the colour of feature/channel j
            grid(left, lambda i, j: _tint(channel_color(j), 0.2))
            for j in range(cols):
                color = channel_color(j)
                cv.box(left + j + 0.06, top - rows, 0.88, rows, color, pad=0.04, lw=1.8)
                cv.arrow(
                    left + j + 0.5,
                    top - rows - 0.15,
                    left + j + 0.5,
                    top - rows - 0.85,
                    color=color,
                )
                cv.cell(
                    left + j,
                    top - rows - 1.95,
                    _short(col_mean[j]),
                    face=_tint(color, 0.4),
                    edge=color,
                    lw=1.6,
                    weight="bold",
                )
            res = "[[" + ", ".join(_short(v) for v in col_mean) + "]]"
            res_y = top - rows - 2.3
        elif k == 1:  # each row averaged
            grid(left, row_face)
            for i in range(rows):
                cv.box(left + 0.04, top - i - 0.94, cols - 0.08, 0.88, NEUTRAL, pad=0.04, lw=1.6)
                cv.arrow(
                    left + cols + 0.15,
                    top - i - 0.5,
                    left + cols + 0.85,
                    top - i - 0.5,
                    color=NEUTRAL,
                )
                cv.cell(
                    left + cols + 1.0,
                    top - i - 1,
                    _short(row_mean[i]),
                    face=row_face(i, 0),
                    edge=NEUTRAL,
                    lw=1.6,
                    weight="bold",
                )
            res = "[" + ", ".join(f"[{_short(v)}]" for v in row_mean) + "]"
            res_y = top - rows - 0.35
        else:  # everything at once
            grid(left, lambda i, j: _tint(NEUTRAL, 0.15))
            cv.box(
                left + 0.04, top - rows + 0.04, cols - 0.08, rows - 0.08, NEUTRAL, pad=0.04, lw=1.8
            )
            cy = top - rows / 2
            cv.arrow(left + cols + 0.15, cy, left + cols + 0.85, cy, color=NEUTRAL)
            cv.cell(
                left + cols + 1.0,
                cy - 0.5,
                _short(all_mean),
                face=_tint(NEUTRAL, 0.35),
                edge=NEUTRAL,
                lw=1.6,
                weight="bold",
            )
            res = _short(all_mean)
            res_y = top - rows - 0.35
        cv.text(left, res_y, f"→ {res}", family="DejaVu Sans Mono", size=code_size, va="top")
        cv.text(
            left, res_y - line, _bi(f"shape {shp}", "形状"), va="top", color=MUTED, size=code_size
        )
    arange = np.array_equal(a, np.arange(a.size, dtype=float).reshape(a.shape))
    what = f"x = torch.arange({a.size}.).reshape({rows}, {cols})" if arange else "x"
    cv.text(
        0.0,
        top + 0.5 + 3.4 * line,
        _bi(f"{what}: rows = samples, columns = features", "行是样本，列是特征"),
        color=MUTED,
        va="center",
    )
    return cv.finish()


# --- 6. running statistics converge ------------------------------------------------------------


def _per_channel(values: Sequence[Sequence[float]] | Tensor | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise BNValueError(f"running_figure: {name} must be steps × channels (got {list(a.shape)})")
    return a


@_styled
def running_figure(
    steps: Sequence[float] | int,
    running_mean: Sequence[Sequence[float]] | Tensor | np.ndarray,
    running_var: Sequence[Sequence[float]] | Tensor | np.ndarray,
    population_mean: Sequence[float] | Tensor | np.ndarray,
    population_var: Sequence[float] | Tensor | np.ndarray,
    labels: Sequence[str] | None = None,
) -> Figure:
    """running_mean / running_var per channel against the training step, with the population values.

    ``running_*`` are steps × C; ``steps`` is the x value of each row (or an int: 0, 1, …).
    """
    rm, rv = _per_channel(running_mean, "running_mean"), _per_channel(running_var, "running_var")
    xs = np.arange(len(rm)) if isinstance(steps, int) else np.asarray(steps, dtype=float)
    if isinstance(steps, int) and steps != len(rm):
        raise BNValueError(f"running_figure: steps={steps} but running_mean has {len(rm)} rows")
    if not (len(xs) == len(rm) == len(rv)) or rm.shape[1] != rv.shape[1]:
        raise BNValueError(
            f"running_figure: {len(xs)} steps, running_mean {list(rm.shape)}, "
            f"running_var {list(rv.shape)} do not match"
        )
    c_ = rm.shape[1]
    pm = np.asarray(population_mean, dtype=float).reshape(-1)
    pv = np.asarray(population_var, dtype=float).reshape(-1)
    if pm.size != c_ or pv.size != c_:
        raise BNValueError(f"running_figure: expected {c_} population values per statistic")
    labels = list(labels) if labels is not None else [f"channel c={c}" for c in range(c_)]
    fig = Figure(figsize=(10.5, 4.0), layout="constrained", facecolor="white")
    axs = fig.subplots(1, 2)
    panels = [
        (axs[0], rm, pm, "running_mean", "滑动平均的均值", "population mean 总体均值"),
        (axs[1], rv, pv, "running_var", "滑动平均的方差", "population variance 总体方差"),
    ]
    for ax, run, pop, name, zh, _ in panels:
        for c in range(c_):
            color = channel_color(c)
            # running ← (1 − momentum)·running + momentum·batch statistic, step after step
            ax.plot(xs, run[:, c], color=color, lw=1.8, label=labels[c])
            ax.axhline(pop[c], color=color, lw=1.2, ls="--", alpha=0.9)
        ax.set_title(_bi(name, zh), fontsize=TITLE_SIZE - 1.5)
        ax.set_xlabel(_bi("training step", "训练步数"))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.margins(x=0.01)
    handles = [Line2D([], [], color=channel_color(c), lw=1.8, label=labels[c]) for c in range(c_)]
    handles.append(Line2D([], [], color=MUTED, lw=1.2, ls="--", label=_bi("population", "总体值")))
    axs[1].legend(handles=handles, fontsize=LABEL_SIZE - 0.5, loc="best", framealpha=0.9)
    fig.suptitle(
        _bi(
            "Running statistics converge to the population values",
            "滑动平均逐渐逼近总体统计量",
            "  ",
        ),
        fontsize=TITLE_SIZE,
        weight="bold",
    )
    return fig


# --- 7. train mode vs eval mode ----------------------------------------------------------------


def _channels_flat(v: Tensor | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(v.detach().cpu().double() if isinstance(v, Tensor) else v, dtype=float)
    if a.ndim < 2:
        raise BNValueError(f"train_eval_figure: {name} must be (N, C, ...) (got {list(a.shape)})")
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)  # C × (N·H·W)


def _f3(v: float) -> str:
    s = f"{v:.3f}"
    return "0.000" if s == "-0.000" else s


@_styled
def train_eval_figure(
    x: Tensor | np.ndarray, y_train: Tensor | np.ndarray, y_eval: Tensor | np.ndarray
) -> Figure:
    """The same batch through BN in train mode (batch stats) and eval mode (running stats)."""
    xs, yt, ye = (
        _channels_flat(v, n) for v, n in ((x, "x"), (y_train, "y_train"), (y_eval, "y_eval"))
    )
    if not (xs.shape == yt.shape == ye.shape):
        raise BNValueError("train_eval_figure: x, y_train and y_eval must have the same shape")
    c_ = xs.shape[0]
    if c_ > 8:
        raise BNValueError(f"train_eval_figure: at most 8 channels (got {c_}); slice x[:, :8]")
    ncols = min(c_, 4)
    nrows = math.ceil(c_ / ncols)
    fig = Figure(
        figsize=(3.7 * ncols + 0.3, 3.5 * nrows + 0.9), layout="constrained", facecolor="white"
    )
    axs = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).reshape(-1)
    for c in range(c_):
        ax, color = axs[c], channel_color(c)
        order = np.argsort(xs[c])
        # per channel, each mode is a straight line y = γ·(x − μ)/√(σ² + ε) + β
        ax.plot(xs[c][order], yt[c][order], color=color, lw=2.2, alpha=0.85)
        ax.plot(xs[c][order], ye[c][order], color=MUTED, lw=1.3, ls="--")
        pick = order[:: max(1, math.ceil(len(order) / 30))]  # at most ~30 markers per mode
        ax.scatter(xs[c][pick], yt[c][pick], s=24, color=color, zorder=3)
        ax.scatter(
            xs[c][pick],
            ye[c][pick],
            s=30,
            marker="s",
            facecolors="none",
            edgecolors=MUTED,
            linewidths=1.1,
            zorder=4,
        )
        stats = (
            f"train: mean {_f3(yt[c].mean())}, std {_f3(yt[c].std())}\n"
            f"eval:  mean {_f3(ye[c].mean())}, std {_f3(ye[c].std())}"
        )
        ax.text(
            0.03,
            0.97,
            stats,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=LABEL_SIZE - 1,
            family="DejaVu Sans Mono",
            bbox={
                "boxstyle": "round,pad=0.3",
                "facecolor": "white",
                "alpha": 0.85,
                "edgecolor": "#cccccc",
            },
        )
        ax.set_title(f"channel c={c}", color=color, fontsize=LABEL_SIZE + 1, weight="bold")
        ax.set_xlabel(_bi("input x", "输入"))
        ax.set_ylabel(_bi("output y", "输出"))
        ax.grid(alpha=0.3)
    for ax in axs[c_:]:
        ax.set_axis_off()
    handles = [
        Line2D(
            [],
            [],
            color=INK,
            marker="o",
            lw=2.2,
            label=_bi("train mode: batch mean/var", "训练模式：用本批的均值和方差"),
        ),
        Line2D(
            [],
            [],
            color=MUTED,
            marker="s",
            markerfacecolor="none",
            lw=1.2,
            ls="--",
            label=_bi("eval mode: running mean/var", "预测模式：用滑动平均"),
        ),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=2,
        fontsize=LABEL_SIZE - 0.5,
        frameon=False,
    )
    fig.suptitle(
        _bi("Same batch, train mode vs eval mode", "同一批数据：训练模式与预测模式", "  "),
        fontsize=TITLE_SIZE,
        weight="bold",
    )
    return fig


# --- 8. which elements share one mean and variance ---------------------------------------------


@_styled
def axes_figure(groups: int = 2) -> Figure:
    """Batch / Layer / Instance / Group norm: the cells of ONE normalization set, shaded."""
    if not 1 <= groups <= 8:
        raise BNValueError(f"axes_figure: groups must be between 1 and 8 (got {groups})")
    n_, hw_ = 4, 5
    c_ = 6 if 6 % groups == 0 else groups * max(1, round(6 / groups))
    per = c_ // groups
    dx, dy = 0.42, 0.34  # oblique depth step per channel
    cv = _Canvas(0.3)

    def face_colors(on: bool, face: str) -> tuple[Any, str]:
        shade = {"front": 0.0, "top": -0.25, "side": 0.18}[face]  # light from the top
        if on:
            base = _tint(HIGHLIGHT, 1.0 - max(0.0, -shade))
            if shade > 0:
                base = tuple(v * (1 - shade * 0.6) for v in to_rgb(HIGHLIGHT))
            return base, "#8a6414"
        grey = {"front": "#ffffff", "top": "#f1f1f1", "side": "#dddddd"}[face]
        return grey, "#9a9a9a"

    def poly(pts: list[tuple[float, float]], face: str, on: bool) -> None:
        fc, ec = face_colors(on, face)
        cv.ax.add_patch(Polygon(pts, closed=True, facecolor=fc, edgecolor=ec, linewidth=0.7))
        for px, py in pts:
            cv.extend(px, py, px, py)

    def cube(ox: float, sel: Callable[[int, int, int], bool]) -> None:
        """sel(n, c, j) says whether cell (sample n, channel c, spatial j) is in the set."""
        for n in range(n_):  # front face: channel 0, n across, H·W up
            for j in range(hw_):
                x, y = ox + n, j
                poly([(x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1)], "front", sel(n, 0, j))
        for n in range(n_):  # top face: H·W = top row, n across, channels into the depth
            for c in range(c_):
                x, y = ox + n + c * dx, hw_ + c * dy
                poly(
                    [(x, y), (x + 1, y), (x + 1 + dx, y + dy), (x + dx, y + dy)],
                    "top",
                    sel(n, c, hw_ - 1),
                )
        for c in range(c_):  # right face: last sample, channels into the depth, H·W up
            for j in range(hw_):
                x, y = ox + n_ + c * dx, j + c * dy
                poly(
                    [(x, y), (x + dx, y + dy), (x + dx, y + 1 + dy), (x, y + 1)],
                    "side",
                    sel(n_ - 1, c, j),
                )
        # axis labels: N along the bottom, H·W up the left edge, C along the depth edge
        cv.text(ox + n_ / 2, -0.45, "N", ha="center", va="top", size=11, weight="bold")
        cv.text(ox - 0.3, hw_ / 2, "H·W", ha="right", size=11, weight="bold")
        cv.text(
            ox + n_ + c_ * dx / 2 + 0.35,
            c_ * dy / 2 - 0.25,
            "C",
            ha="left",
            va="top",
            size=11,
            weight="bold",
        )

    last = n_ - 1
    panels: list[tuple[str, str, Callable[[int, int, int], bool]]] = [
        ("Batch Norm", _bi("one channel, over N, H·W", "按通道", "\n"), lambda n, c, j: c == 0),
        ("Layer Norm", _bi("one sample, over C, H·W", "按样本", "\n"), lambda n, c, j: n == last),
        (
            "Instance Norm",
            _bi("one sample, one channel, over H·W", "按样本和通道", "\n"),
            lambda n, c, j: n == last and c == 0,
        ),
        (
            "Group Norm",
            _bi(
                f"one sample, one group of {per} channels\n(G = {groups} groups)",
                "按样本和通道组",
                "  ",
            ),
            lambda n, c, j: n == last and c < per,
        ),
    ]
    pitch = n_ + c_ * dx + 3.4
    top = hw_ + c_ * dy
    for k, (title, sub, sel) in enumerate(panels):
        ox = k * pitch
        cube(ox, sel)
        cx = ox + (n_ + c_ * dx) / 2
        cv.text(cx, top + 2.35, title, ha="center", size=TITLE_SIZE - 0.5, weight="bold")
        cv.text(cx, top + 1.0, sub, ha="center", size=LABEL_SIZE - 0.5, color=MUTED)
    note = _bi(
        "shaded: the cells that share one mean and one variance", "阴影部分共用一个均值和方差"
    )
    cv.text(-1.6, -2.0, note, va="center", color=MUTED)
    return cv.finish()


# --- 9. bytes ----------------------------------------------------------------------------------


def render(fig: Figure, fmt: Literal["png", "svg"] = "png") -> bytes:
    """PNG (at ``DPI``) or SVG bytes of ``fig``; the SVG is the same bytes on every run."""
    if fmt not in ("png", "svg"):
        raise BNValueError(f"render: fmt must be 'png' or 'svg' (got {fmt!r})")
    metadata: dict[str, Any] = (
        {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    )
    buf = io.BytesIO()
    with _style():
        fig.savefig(
            buf,
            format=fmt,
            dpi=DPI,
            metadata=metadata,
            bbox_inches="tight",
            pad_inches=0.12,
            facecolor="white",
        )
    return buf.getvalue()
