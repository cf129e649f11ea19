"""The cell-unit canvas: one full-figure axes measured in tensor cells, sized when finished.

Grid figures are laid out in "cell units" on one full-figure axes (one unit = one tensor cell),
so the figure's size follows the tensor's size and cell values stay at a readable 9 pt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser
from matplotlib.patches import FancyBboxPatch, Rectangle

from ...render.style import (
    INK,
    LABEL_SIZE,
    MUTED,
    TITLE_SIZE,
    VALUE_SIZE,
    _short,
    diverging_color,
    ink_on,
)

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
        color: Any = None,
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
                color=ink_on(face) if color is None else color,
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


def _is_cjk(ch: str) -> bool:
    return ord(ch) > 0x2E80


def _word_math(cv: _Canvas, x: float, y: float, label: str, size: float) -> None:
    """``label`` ("word $formula$") right-aligned at x, centred on y.

    Mathtext draws every glyph of its string in its own fonts, which have no Chinese: a Chinese
    word is drawn as a text of its own, left of the formula, on the formula's baseline.
    """
    i = label.find("$")
    word, formula = label[:i].strip(), label[i:]
    if i <= 0 or not any(_is_cjk(ch) for ch in word):
        cv.text(x, y, label, ha="right", size=size)
        return
    parsed = MathTextParser("path").parse(formula, dpi=72, prop=FontProperties(size=size))
    baseline = y - (parsed.height / 2 - parsed.depth) / 72 / cv.unit  # points → cells
    cv.text(x, baseline, formula, ha="right", va="baseline", size=size)
    gap = size * 0.3 / 72 / cv.unit
    cv.text(
        x - parsed.width / 72 / cv.unit - gap, baseline, word, ha="right", va="baseline", size=size
    )


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


def _colorbar(cv: _Canvas, x: float, y: float, w: float, limit: float, label: str) -> float:
    """A horizontal colour bar for ``diverging_color`` from −limit to +limit, ticks and a label.

    ``x, y``: the top-left corner of the bar (cells); returns the y of the bottom of its ticks.
    """
    h = 0.2 / cv.unit  # 0.2 in tall, whatever the cell size
    n = 64
    for i in range(n):
        v = -limit + (i + 0.5) * 2 * limit / n
        cv.ax.add_patch(
            Rectangle(
                (x + i * w / n, y - h),
                w / n * 1.02,
                h,
                facecolor=diverging_color(v, limit),
                edgecolor="none",
                zorder=2,
            )
        )
    cv.ax.add_patch(
        Rectangle((x, y - h), w, h, facecolor="none", edgecolor="#8a8a8a", lw=0.6, zorder=3)
    )
    cv.extend(x, y - h, x + w, y)
    tick = 0.06 / cv.unit
    for k in range(5):
        v = -limit + k * limit / 2
        tx = x + k * w / 4
        cv.ax.plot([tx, tx], [y - h, y - h - tick], color=INK, lw=0.8, zorder=3)
        s = "0" if k == 2 else _short(v).replace("-", "−")
        cv.text(tx, y - h - tick * 1.5, s, ha="center", va="top", size=LABEL_SIZE - 0.5)
    cv.text(x + w + 0.25, y - h / 2, label, ha="left", size=LABEL_SIZE - 0.5, color=MUTED)
    return y - h - tick * 1.5 - LABEL_SIZE * 1.4 / 72 / cv.unit
