"""Which elements are averaged together: ``x.mean(dim)``, and the sets of Batch/Layer/Instance/
Group norm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from torch import Tensor

from ...errors import BNValueError
from ...render.style import (
    HIGHLIGHT,
    LABEL_SIZE,
    MUTED,
    NEUTRAL,
    TITLE_SIZE,
    _bi,
    _shape,
    _short,
    _styled,
    _tint,
    channel_color,
    channel_edge_color,
    tr,
)
from ..lang import plural
from .canvas import _Canvas, _value_unit

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
        ("no dim", "所有元素的平均值", "x.mean()", tr("[] (a scalar)", "[]（标量）")),
    ]
    for k, (en, zh, code, shp) in enumerate(panels):
        left = k * (panel_w + 1.2)
        title_y = top + 0.5 + 2 * line
        head = tr(_bi(en, zh), f"{'不指定 dim' if en == 'no dim' else en}：{zh}")
        cv.text(left, title_y, head, size=TITLE_SIZE - 1, weight="bold", va="center")
        cv.text(left, top + 0.45 + line * 0.6, code, family="DejaVu Sans Mono", size=code_size)
        if k == 0:  # each column averaged: column j keeps the colour of feature/channel j
            grid(left, lambda i, j: _tint(channel_color(j), 0.2))
            for j in range(cols):
                color = channel_edge_color(j)
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
            left,
            res_y - line,
            tr(_bi(f"shape {shp}", "形状"), f"形状 {shp}"),
            va="top",
            color=MUTED,
            size=code_size,
        )
    arange = np.array_equal(a, np.arange(a.size, dtype=float).reshape(a.shape))
    what = f"x = torch.arange({a.size}.).reshape({rows}, {cols})" if arange else "x"
    cv.text(
        0.0,
        top + 0.5 + 3.4 * line,
        tr(
            _bi(f"{what}: rows = samples, columns = features", "行是样本，列是特征"),
            f"{what}：行是样本，列是特征",
        ),
        color=MUTED,
        va="center",
    )
    return cv.finish()


# --- 8. which elements share one mean and variance ---------------------------------------------


@_styled
def axes_figure(groups: int = 2, channels: int | None = None) -> Figure:
    """Batch / Layer / Instance / Group norm: the cells of ONE normalization set, shaded.

    ``channels`` is C of the tensor being described (it must be a multiple of ``groups``); by
    default a cube of about 6 channels is drawn.
    """
    if not 1 <= groups <= 8:
        raise BNValueError(f"axes_figure: groups must be between 1 and 8 (got {groups})")
    if channels is not None and not (1 <= channels <= 16 and channels % groups == 0):
        raise BNValueError(
            f"axes_figure: channels must be a multiple of groups = {groups} between 1 and 16 "
            f"(got {channels})"
        )
    n_, hw_ = 4, 5
    if channels is None:
        channels = 6 if 6 % groups == 0 else groups * max(1, round(6 / groups))
    c_ = channels
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
        (
            tr("Batch Norm", "批量归一化"),
            tr(_bi("one channel, over N, H·W", "按通道", "\n"), "一个通道\n在 N、H·W 上"),
            lambda n, c, j: c == 0,
        ),
        (
            tr("Layer Norm", "层归一化"),
            tr(_bi("one sample, over C, H·W", "按样本", "\n"), "一个样本\n在 C、H·W 上"),
            lambda n, c, j: n == last,
        ),
        (
            tr("Instance Norm", "实例归一化"),
            tr(
                _bi("one sample, one channel, over H·W", "按样本和通道", "\n"),
                "一个样本、一个通道\n在 H·W 上",
            ),
            lambda n, c, j: n == last and c == 0,
        ),
        (
            tr("Group Norm", "组归一化"),
            tr(
                _bi(
                    f"one sample, one group of {plural(per, 'channel')}\n"
                    f"(C = {c_} in G = {plural(groups, 'group')})",
                    "按样本和通道组",
                    "  ",
                ),
                f"一个样本、一组 {per} 个通道\n（C = {c_} 分成 G = {groups} 组）",
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
    note = tr(
        _bi("shaded: the cells that share one mean and one variance", "阴影部分共用一个均值和方差"),
        "阴影：共用一个均值和一个方差的格子",
    )
    cv.text(-1.6, -2.0, note, va="center", color=MUTED)
    return cv.finish()
