"""The trace's steps drawn from a live ``Trace``: the input, step 1, step 2, and all in one row.

``tensor_figure`` (one per-element step), ``stats_figure`` (step 1: per-channel mean and
variance), ``affine_figure`` (step 2: y = γ·x̂ + β) and ``walkthrough_figure`` (x → μ, σ² → x̂ → y).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from ...render import (
    style,  # cjk_font_available looked up here, so a test can patch it in one place
)
from ...render.style import (
    LABEL_SIZE,
    MAX_VALUE_CELLS,
    MUTED,
    _bi,
    _shape,
    _short,
    _styled,
    _tint,
    _zh,
    channel_color,
    channel_edge_color,
    channel_text_color,
    diverging_limit,
    format_value,
    tr,
)
from ..trace import Trace
from .canvas import _Canvas, _colorbar, _title, _value_unit, _word_math
from .grid import (
    _block_note,
    _channel,
    _draw_grid,
    _Grid,
    _grid_width,
    _row_label_width,
    _step_array,
)

# --- 1. one step of the trace ------------------------------------------------------------------

CENTRED_STEPS = ("x_minus_mean", "xhat")  # centred at 0: shaded on a diverging scale

_STEP_LABEL = {  # English, its gloss, Chinese
    "input": ("input x", "输入", "输入 x"),
    "x_minus_mean": ("centred x − μ", "减去均值", "减去均值 x − μ"),
    "xhat": ("normalized x̂", "标准化", "标准化后的 x̂"),
    "output": ("output y = γ·x̂ + β", "输出", "输出 y = γ·x̂ + β"),
}


@_styled
def tensor_figure(trace: Trace, step: str = "input") -> Figure:
    """One per-element step of ``trace`` as blocks of cells: rows = samples, columns = channels."""
    a = _step_array(trace, step)
    show = a.size <= MAX_VALUE_CELLS
    strings = [format_value(v) for v in a.flat] if show else []
    cv = _Canvas(_value_unit(strings) if show else 0.32)
    centred = step in CENTRED_STEPS
    limit = diverging_limit(a.flat) if centred else None
    g = _draw_grid(cv, a, 0.0, 0.0, show_values=show, diverging=limit)
    en, gloss, zh = _STEP_LABEL.get(step, (trace[step].title, "", trace[step].title))
    shape = _shape(trace[step].value.shape)
    dims = trace[step].value.shape
    each = " × ".join(str(d) for d in dims[2:])
    hw = tr(f", {each} values each", f"，每个 {each} 个值") if len(dims) > 2 else ""
    sub = (
        f"${trace[step].latex}$"
        if step != "input"
        else tr(f"{dims[0]} samples × {dims[1]} channels", f"{dims[0]} 个样本 × {dims[1]} 个通道")
        + hw
    )
    _title(
        cv,
        g.left - _row_label_width(cv, a.shape[0]),
        g.header_top,
        tr(_bi(f"{en} — shape {shape}", gloss), f"{zh} — 形状 {shape}"),
        sub,
    )
    if show:
        note = _block_note(a)
    elif centred:
        note = tr(
            _bi(f"{a.size} values: too many to print, coloured by value", "颜色表示大小"),
            f"{a.size} 个值，太多写不下：颜色表示数值",
        )
    else:
        note = tr(
            _bi(
                f"{a.size} values: too many to print, shading ∝ value within each channel",
                "颜色深浅表示大小",
            ),
            f"{a.size} 个值，太多写不下：颜色深浅 ∝ 在本通道内的大小",
        )
    cv.text(g.left, g.bottom - 0.45, note, size=LABEL_SIZE - 0.5, va="top", color=MUTED)
    if limit is not None:
        y_bar = g.bottom - 0.45 - LABEL_SIZE * 1.6 / 72 / cv.unit
        bar_label = tr(en, zh)
        _colorbar(cv, g.left, y_bar, min(_grid_width(a), 5.0 * 0.7 / cv.unit), limit, bar_label)
    return cv.finish()


# --- 2. step 1: per-channel statistics ---------------------------------------------------------


STAT_LABEL_SIZE = 12.0  # "mean μ_B": its subscript is drawn at 0.7 × this


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
        mu_label, var_label = (
            tr(r"mean $\mu_B$", r"均值 $\mu_B$"),
            tr(r"variance $\sigma_B^2$", r"方差 $\sigma_B^2$"),
        )
    else:
        mu_label, var_label = r"running_mean $\mu$", r"running_var $\sigma^2$"
    _word_math(cv, g.left - 0.35, y_mu + 0.5, mu_label, STAT_LABEL_SIZE)
    _word_math(cv, g.left - 0.35, y_var + 0.5, var_label, STAT_LABEL_SIZE)
    keep = _keepdim_shape(ndim, c_)
    cv.text(
        g.left,
        y_var - 0.35,
        tr(
            _bi(f"result shape {keep}  (keepdim=True)", "结果形状"),
            f"结果形状 {keep}（keepdim=True）",
        )
        if train
        else tr(_bi(f"shape [{c_}], broadcast as {keep}", "形状"), f"形状 [{c_}]，按 {keep} 广播"),
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
        row(tr(f"per channel c, reduce over {dims}:", f"对每个通道 c，在 {dims} 上归约："), 0.26)
        row(
            tr(_bi(f"m = {sizes} = {m} values", f"每个通道 {m} 个数"), f"m = {sizes} = {m} 个值")
            if ndim > 2
            else tr(_bi(f"m = N = {m} values", f"每个特征 {m} 个数"), f"m = N = {m} 个值"),
            0.26,
        )
        row(r"$\mu_B = \frac{1}{m}\sum_{i=1}^{m} x_i$", 0.72, size=14)
        row(r"$\sigma_B^2 = \frac{1}{m}\sum_{i=1}^{m} (x_i - \mu_B)^2$", 0.72, size=14)
        row(
            tr(
                _bi("biased variance: divide by m, not m − 1", "有偏方差"),
                "有偏方差：除以 m，不是 m − 1",
            ),
            0.26,
            color=MUTED,
        )
    else:
        row(_bi("eval mode", "预测模式"), 0.26, weight="bold")
        row(tr("μ and σ² are the running estimates kept", "μ 和 σ² 是训练中用移动平均"), 0.26)
        row(
            tr("during training, not this batch's statistics", "得到的估计值，不是本批的统计量"),
            0.26,
        )
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
    row(_bi(*label), 0.28, color=MUTED)  # the gloss says it all
    for s, shp in chain:
        row(f"{s:<{width}}  {shp}", 0.22, indent=0.25, **mono)
    if len(axes) > 1:
        row(f"= x.mean(dim={axes}, keepdim=True)", 0.3, **mono)
    return _stats_title(cv, g, trace, var_label)


def _stats_title(cv: _Canvas, g: _Grid, trace: Trace, var_label: str) -> Figure:
    if trace.training:
        title = tr(
            _bi("Step 1 / 第一步: mean and variance per channel", "按通道求均值和方差", "  "),
            "第一步：按通道求均值和方差",
        )
        sub = tr(
            f"input x of shape {_shape(trace.input.shape)}; cells outlined in one colour are "
            "averaged together",
            f"输入 x 的形状为 {_shape(trace.input.shape)}；同一颜色框起的格子一起求平均",
        )
    else:
        title = tr(
            _bi("Step 1 (eval) / 第一步: running mean and variance", "用移动平均", "  "),
            "第一步（预测模式）：均值和方差的移动平均",
        )
        sub = tr(
            f"input x of shape {_shape(trace.input.shape)}; nothing is averaged in eval mode",
            f"输入 x 的形状为 {_shape(trace.input.shape)}；预测模式下不对本批求平均",
        )
    if not style.cjk_font_available():
        title = title.replace(" / 第一步", "")
    _title(
        cv,
        g.left - cv.text_w(var_label.replace("$", ""), STAT_LABEL_SIZE) - 0.4,
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
        [f"c={c}" if short else _channel(c), *(gb if narrow else [", ".join(gb)])]
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
        tr(_bi("x̂: normalized", "标准化后"), "x̂：标准化后"),
        ha="center",
        va="top",
        weight="bold",
    )
    cv.text(
        (g2.left + g2.right) / 2,
        g2.bottom - 0.35,
        tr(_bi("y: output", "输出"), "y：输出"),
        ha="center",
        va="top",
        weight="bold",
    )
    # a worked cell per channel: the first element of each (at most four channels)
    line = LABEL_SIZE * 1.7 / 72 / cv.unit
    y0 = g1.bottom - 0.35 - line * 1.3
    eg = tr("e.g.", "例如")
    eg_w = cv.text_w(f"{eg} ", LABEL_SIZE)
    for c in range(min(c_, 4) if show else 0):
        xv, yv = float(xh[0, c, 0, 0]), float(y[0, c, 0, 0])
        approx = gamma[c] * float(format_value(xv)) + beta[c]
        eq = "=" if format_value(approx) == format_value(yv) else "≈"
        xs = format_value(xv) if xv >= 0 else f"({format_value(xv)})"
        bs = f"+ {_short(beta[c])}" if beta[c] >= 0 else f"− {_short(-beta[c])}"
        if c == 0:
            cv.text(g1.left, y0, eg, va="top")
        first = tr(f"c={c}, n=0, first cell", f"c={c}，n=0，第一格")
        ex = f"{first}: y = {_short(gamma[c])} × {xs} {bs} {eq} {format_value(yv)}"
        cv.text(g1.left + eg_w, y0, ex, va="top", color=channel_text_color(c))
        y0 -= line
    cv.text(
        g1.left,
        y0,
        tr(
            _bi(
                "each channel has its own γ (scale) and β (shift), learned in training",
                "每个通道有自己的 γ 和 β",
            ),
            "每个通道有自己的拉伸参数 γ 和偏移参数 β，在训练中学习",
        ),
        va="top",
        color=MUTED,
    )
    title = "Step 2 / 第二步: scale and shift per channel  按通道缩放和平移"
    if not style.cjk_font_available():
        title = "Step 2: scale and shift per channel"
    title = tr(title, "第二步：按通道拉伸和偏移")
    per = tr(";  ", "；  ").join(
        tr(
            f"{_channel(c)}: γ={_short(gamma[c])}, β={_short(beta[c])}",
            f"{_channel(c)}：γ={_short(gamma[c])}，β={_short(beta[c])}",
        )
        for c in range(c_)
    )
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


# --- 4. the whole walkthrough on two rows -----------------------------------------------------


def _elbow(
    cv: _Canvas, pts: list[tuple[float, float]], color: str = MUTED, lw: float = 1.6
) -> None:
    """A polyline through ``pts`` whose last segment is an arrow."""
    xs, ys = zip(*pts[:-1], strict=True)
    cv.ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="butt", zorder=1)
    cv.arrow(*pts[-2], *pts[-1], color=color, lw=lw)
    for x, y in pts:
        cv.extend(x, y, x, y)


@_styled
def walkthrough_figure(trace: Trace, footer: str = "") -> Figure:
    """x → (μ, σ²) on the first row, x̂ → y on the second; ``footer`` (e.g. the check) below.

    Two rows keep the figure inside the page's 1000 px with the values at full size (9 pt).
    """
    x = _step_array(trace, "input")
    xh = _step_array(trace, "xhat")
    y = _step_array(trace, "output")
    n_, c_, _, _ = x.shape
    mean = trace["mean"].value.detach().double().numpy()
    var = trace["var"].value.detach().double().numpy()
    show = x.size <= MAX_VALUE_CELLS
    strings = [format_value(v) for v in (*x.flat, *xh.flat, *y.flat, *mean, *var)] if show else []
    cv = _Canvas(_value_unit(strings) if show else 0.3)
    kw: dict[str, Any] = {"show_values": show, "super_header": False}
    line = LABEL_SIZE * 1.45 / 72 / cv.unit

    def arrow(x0: float, x1: float, y: float, above: str, below: str) -> None:
        cv.arrow(x0 + 0.25, y, x1 - 0.25, y, lw=1.6)
        big = "$" in above
        cv.text(
            (x0 + x1) / 2,
            y + 0.18,
            above,
            ha="center",
            va="bottom",
            size=LABEL_SIZE + (2 if big else 0),
        )
        cv.text((x0 + x1) / 2, y - 0.18, below, ha="center", va="top", color=MUTED)

    def caption(x0: float, x1: float, y: float, s: str) -> None:
        cv.text((x0 + x1) / 2, y - 0.3, s, ha="center", va="top", weight="bold")

    # row 1: x → per-channel μ and σ² (one cell each per channel, stacked)
    g_x = _draw_grid(cv, x, 0.0, 0.0, row_labels="short", **kw)
    mid = (g_x.top + g_x.bottom) / 2
    stats_label = tr("mean, var", "均值、方差") if trace.training else tr("running", "移动平均")
    arrow_w = max(1.9, cv.text_w(stats_label, LABEL_SIZE) + 0.7)
    mu, s2 = (r"$\mu_B$", r"$\sigma_B^2$") if trace.training else (r"$\mu$", r"$\sigma^2$")
    label_w = max(cv.text_w("σ²B", 12), 0.6) + 0.25
    xs = g_x.right + arrow_w + label_w
    arrow(
        g_x.right,
        xs - label_w,
        mid,
        stats_label,
        _zh("按通道") or "per channel",
    )
    for c in range(c_):
        for k, v in enumerate((mean[c], var[c])):
            cv.cell(
                xs + c * 1.15,
                mid + 0.15 - k * 1.3,
                format_value(v) if show else "",
                face=_tint(channel_color(c), 0.35),
                edge=channel_edge_color(c),
                lw=1.4,
            )
    s_right = xs + c_ * 1.15 - 0.15
    cv.text(xs - 0.15, mid + 0.65, mu, ha="right", size=12)
    cv.text(xs - 0.15, mid - 0.65, s2, ha="right", size=12)
    row1_bottom = min(g_x.bottom, mid - 1.15)
    caption(g_x.left, g_x.right, row1_bottom, tr(_bi("x: input", "输入"), "x：输入"))
    caption(xs, s_right, row1_bottom, tr(_bi("per-channel stats", "统计量"), "按通道的统计量"))

    # row 2: x̂ → y, fed by the statistics through an elbow arrow clear of the captions
    start = row1_bottom - 0.3 - line * 1.1 - 0.15
    bend = start - 0.75
    top2 = bend - 0.55 - (g_x.header_top - g_x.top)
    g_h = _draw_grid(cv, xh, 0.0, top2, row_labels="short", **kw)
    g_y = _draw_grid(cv, y, g_h.right + arrow_w, top2, row_labels="none", **kw)
    mid2 = (g_h.top + g_h.bottom) / 2
    arrow(
        g_h.right,
        g_y.left,
        mid2,
        r"$\times\gamma + \beta$",
        tr(_zh("缩放平移") or "per channel", "拉伸和偏移"),
    )
    sx, hx = (xs + s_right) / 2, (g_h.left + g_h.right) / 2
    _elbow(cv, [(sx, start), (sx, bend), (hx, bend), (hx, g_h.header_top + 0.05)])
    cv.text((sx + hx) / 2, bend + 0.12, _bi("normalize", "标准化"), ha="center", va="bottom")
    bottom = g_h.bottom
    caption(g_h.left, g_h.right, bottom, "x̂ = (x − μ) / √(σ² + ε)")
    caption(g_y.left, g_y.right, bottom, tr(_bi("y = γ·x̂ + β", "输出"), "输出 y = γ·x̂ + β"))
    if footer:
        color = "#1a7f37" if footer.startswith("✓") else "#cf222e"
        cv.text(g_h.left, bottom - 0.3 - 2 * line, footer, va="top", color=color)
    mode = (
        tr("training mode: batch statistics", "训练模式：用本批的统计量")
        if trace.training
        else tr("eval mode: running statistics", "预测模式：用移动平均的统计量")
    )
    title = _bi("Batch normalization, step by step", "批量归一化的每一步", "  ")
    _title(
        cv,
        g_x.left - cv.text_w(f"n={n_ - 1}", LABEL_SIZE) - 0.3,
        g_x.header_top,
        title,
        tr(", ", "，").join([f"x.shape = {_shape(trace.input.shape)}", mode, f"ε = {trace.eps:g}"]),
    )
    return cv.finish()
