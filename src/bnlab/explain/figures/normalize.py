"""Between step 1 and step 2: x̂ = (x − μ) / √(σ² + ε) cell by cell, and how the [1, C, 1, 1]
statistics broadcast back over the (N, C, H, W) batch.

``xhat_figure`` (x → x̂ per channel, x̂ on a diverging scale) and ``broadcast_figure`` (μ and σ²
repeated over N, H and W).
"""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from ...render.style import (
    INK,
    LABEL_SIZE,
    MAX_VALUE_CELLS,
    MUTED,
    _bi,
    _shape,
    _short,
    _styled,
    _tint,
    _zh,
    channel_edge_color,
    channel_text_color,
    diverging_limit,
    format_value,
    tr,
)
from ..trace import Trace
from .canvas import _Canvas, _colorbar, _title, _value_unit
from .grid import _channel, _draw_grid, _grid_width, _step_array
from .steps import _keepdim_shape


def _symbols(trace: Trace) -> tuple[str, str]:
    return ("μ", "σ²")  # plain text: a mathtext subscript B would be drawn at 0.7 × the size


def _which(trace: Trace) -> str:
    if trace.training:
        return tr("this batch's mean and variance, per channel", "本批按通道的均值和方差")
    return tr("the running mean and variance (eval mode)", "均值和方差的移动平均（预测模式）")


# --- x̂ = (x − μ) / √(σ² + ε) ------------------------------------------------------------------


@_styled
def xhat_figure(trace: Trace) -> Figure:
    """x → x̂ per channel: each cell minus its channel's μ, divided by √(σ² + ε) of that channel."""
    x = _step_array(trace, "input")
    xh = _step_array(trace, "xhat")
    n_, c_, _, _ = x.shape
    mean = trace["mean"].value.detach().double().tolist()
    var = trace["var"].value.detach().double().tolist()
    std = [math.sqrt(v + trace.eps) for v in var]
    show = x.size <= MAX_VALUE_CELLS
    strings = [format_value(v) for v in (*x.flat, *xh.flat)] if show else []
    cv = _Canvas(_value_unit(strings) if show else 0.32)
    mu, s2 = _symbols(trace)
    short = x.shape[3] * cv.unit < 1.0
    name = [f"c={c}" if short else _channel(c) for c in range(c_)]
    heads_x = [
        [name[c], f"{mu}={format_value(mean[c])}", f"{s2}={format_value(var[c])}"]
        for c in range(c_)
    ]
    heads_h = [[name[c], f"√({s2}+ε)={format_value(std[c])}", ""] for c in range(c_)]
    limit = diverging_limit(xh.flat)
    g1 = _draw_grid(cv, x, 0.0, 0.0, show_values=show, headers=heads_x, row_labels="short")
    x2 = _grid_width(x) + 2.2
    g2 = _draw_grid(
        cv, xh, x2, 0.0, show_values=show, headers=heads_h, row_labels="none", diverging=limit
    )
    mid = (g1.top + g1.bottom) / 2
    cv.arrow(g1.right + 0.3, mid, x2 - 0.3, mid, lw=1.8)
    formula = (
        r"$\dfrac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}$"
        if trace.training
        else r"$\dfrac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}$"
    )
    cv.text((g1.right + x2) / 2, mid + 0.25, formula, ha="center", va="bottom", size=13)
    cv.text((g1.right + x2) / 2, mid - 0.3, _zh("按通道"), ha="center", va="top", color=MUTED)
    captions = (
        (g1, tr(_bi("x: input", "输入"), "x：输入")),
        (g2, tr(_bi("x̂: normalized", "标准化后"), "x̂：标准化后")),
    )
    for g, s in captions:
        cv.text((g.left + g.right) / 2, g.bottom - 0.35, s, ha="center", va="top", weight="bold")
    line = LABEL_SIZE * 1.7 / 72 / cv.unit
    y0 = g1.bottom - 0.35 - line * 1.3
    # the colour bar under x̂, then a worked cell per channel (at most four)
    y0 = min(y0, _colorbar(cv, g2.left, y0 + 0.05, g2.right - g2.left, limit, "x̂") - 0.1)
    eg = tr("e.g.", "例如")
    eg_w = cv.text_w(f"{eg} ", LABEL_SIZE)
    for c in range(min(c_, 4) if show else 0):
        xv, hv = float(x[0, c, 0, 0]), float(xh[0, c, 0, 0])
        d = float(format_value(xv)) - float(format_value(mean[c]))
        eq = "=" if format_value(d / float(format_value(std[c]))) == format_value(hv) else "≈"
        if c == 0:
            cv.text(g1.left, y0, eg, va="top")
        first = tr(f"c={c}, n=0, first cell", f"c={c}，n=0，第一格")
        ex = (
            f"{first}: ({format_value(xv)} − {format_value(mean[c])}) / "
            f"√({format_value(var[c])} + {trace.eps:g}) = {format_value(d)} / "
            f"{format_value(std[c])} {eq} {format_value(hv)}"
        ).replace("-", "−")
        cv.text(g1.left + eg_w, y0, ex, va="top", color=channel_text_color(c))
        y0 -= line
    cv.text(
        g1.left,
        y0,
        tr(
            _bi(
                f"each channel becomes mean 0, variance ≈ 1; x̂ coloured −{_short(limit)} (blue) … "
                f"+{_short(limit)} (red)",
                "每个通道均值 0、方差约 1",
            ),
            f"每个通道变为均值 0、方差约 1；x̂ 的颜色从 −{_short(limit)}（蓝）到 "
            f"+{_short(limit)}（红）",
        )
        if trace.training
        else tr(
            _bi("eval mode: the running statistics normalize", "用移动平均"),
            "预测模式：用移动平均的统计量标准化",
        ),
        va="top",
        color=MUTED,
    )
    title = tr(
        _bi("Normalize: x̂ = (x − μ) / √(σ² + ε), per channel", "按通道标准化", "  "),
        "按通道标准化：x̂ = (x − μ) / √(σ² + ε)",
    )
    sub = tr(
        f"{mu}, {s2}: {_which(trace)}; ε = {trace.eps:g}",
        f"{mu}、{s2}：{_which(trace)}；ε = {trace.eps:g}",
    )
    _title(
        cv,
        g1.left - cv.text_w(f"n={n_ - 1}", LABEL_SIZE) - 0.3,
        max(g1.header_top, g2.header_top),
        title,
        sub,
    )
    return cv.finish()


# --- broadcasting the statistics ----------------------------------------------------------------


@_styled
def broadcast_figure(trace: Trace) -> Figure:
    """μ and σ² of shape [1, C, 1, 1] repeated over N, H and W to meet x cell for cell."""
    x = _step_array(trace, "input")
    n_, c_, _, w_ = x.shape
    stats = {
        "mean": trace["mean"].value.detach().double().tolist(),
        "var": trace["var"].value.detach().double().tolist(),
    }
    show = x.size <= MAX_VALUE_CELLS
    strings = [format_value(v) for vs in stats.values() for v in vs] if show else []
    cv = _Canvas(_value_unit(strings) if show else 0.32)
    mu, s2 = _symbols(trace)
    keep = _keepdim_shape(trace.input.dim(), c_)
    dims = {2: "N", 3: "N, L"}.get(trace.input.dim(), "N, H, W")
    full = _shape(trace.input.shape)
    panel_w = _grid_width(x)
    gap = 1.3
    line = LABEL_SIZE * 1.45 / 72 / cv.unit
    bottoms = []
    for k, (key, sym) in enumerate((("mean", mu), ("var", s2))):
        left = k * (panel_w + gap)
        vals = stats[key]
        # the statistic as stored: one cell per channel, above that channel's column
        y_stat = 0.0
        head = tr(f"{sym}: shape {keep}", f"{sym}：形状 {keep}")
        cv.text(left, y_stat + 1.0 + 0.6 * line, head, weight="bold")
        for c in range(c_):
            col = left + c * (w_ + 0.45)
            cv.cell(
                col,
                y_stat,
                format_value(vals[c]) if show else "",
                w=w_,
                face=_tint(channel_edge_color(c), 0.35),
                edge=channel_edge_color(c),
                lw=1.6,
                weight="bold",
            )
            cv.arrow(col + w_ / 2, y_stat - 0.15, col + w_ / 2, y_stat - 1.0, color=MUTED)
        # broadcast: the same value in every cell of the channel, shape of x
        rep = x.copy()
        for c in range(c_):
            rep[:, c] = vals[c]
        g = _draw_grid(
            cv,
            rep,
            left,
            y_stat - 1.15 - 0.15 - 2 * line,
            show_values=show,
            row_labels="short" if k == 0 else "none",
            super_header=False,
        )
        cv.text(
            (g.left + g.right) / 2,
            g.bottom - 0.35,
            tr(
                _bi(f"repeated over {dims} → {full}", f"沿 {dims.replace(', ', '、')} 重复"),
                f"沿 {dims.replace(', ', '、')} 重复 → {full}",
            ),
            ha="center",
            va="top",
            color=INK,
        )
        bottoms.append(g.bottom)
    y = min(bottoms) - 0.35 - line * 1.6
    zdims = dims.replace(", ", "、")
    notes = [
        tr(
            _bi(
                f"x − {mu} and (x − {mu}) / √({s2} + ε) then pair every cell of x with its "
                "channel's statistics",
                "逐元素计算",
            ),
            f"于是 x − {mu} 和 (x − {mu}) / √({s2} + ε) 逐元素计算：x 的每个格子配上"
            "它所在通道的统计量",
        ),
        tr(
            f"no copy is made: {keep} broadcasts against {full} (a view with stride 0 on {dims})",
            f"不复制数据：{keep} 与 {full} 广播（在 {zdims} 上步长为 0 的视图）",
        ),
        tr(
            f"γ and β (shape [{c_}]) are used as {keep} the same way in y = γ·x̂ + β",
            f"γ 和 β（形状 [{c_}]）在 y = γ·x̂ + β 中也同样按 {keep} 使用",
        ),
    ]
    for s in notes:
        cv.text(0.0, y, s, va="top", color=MUTED)
        y -= line * 1.1
    title = tr(
        _bi(f"Broadcasting {keep} statistics over the batch", "广播", "  "),
        f"把形状为 {keep} 的统计量广播到整个小批量",
    )
    _title(
        cv,
        -cv.text_w(f"n={n_ - 1}", LABEL_SIZE) - 0.3,
        1.0 + 1.3 * line,
        title,
        tr(
            f"{mu}, {s2}: {_which(trace)}; keepdim=True keeps {dims} as axes of size 1",
            f"{mu}、{s2}：{_which(trace)}；keepdim=True 把 {zdims} 保留为长度为 1 的维度",
        ),
    )
    return cv.finish()
