"""Training runs drawn: curves per epoch, the BN paper's Figure 1(b, c) bands, the lr sweep.

* ``curves_figure``: train loss, train accuracy and test accuracy per epoch, one colour per run;
* ``bands_figure``: the 15th/50th/85th percentiles of the input to one sigmoid over training, one
  column per run (the BN paper's Figure 1(b, c));
* ``sweep_figure``: final test accuracy against learning rate, for the runs named like
  ``<model>-lr<rate>`` (the lr-sweep suite).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..errors import BNValueError
from ..render.style import INK, LABEL_SIZE, MUTED, PALETTE, TITLE_SIZE, _bi, _styled, tr
from .runs import QUANTILE_KEYS, Run, _is_number

# Runs beyond the channel palette: tab10's last two, then tab20's light tints.
RUN_COLORS: tuple[str, ...] = (
    *PALETTE,
    "#7f7f7f",
    "#bcbd22",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
)
SWEEP_NAME = re.compile(r"^(?P<model>.+)-lr(?P<rate>\d+(?:\.\d*)?(?:e[-+]?\d+)?)$")
MODEL_LABELS = {"lenet-bn": "LeNet-BN", "lenet": "LeNet (no BN)", "mlp-fig1": "Fig. 1 MLP"}
MODEL_LABELS_ZH = {"lenet-bn": "LeNet-BN", "lenet": "LeNet（无 BN）", "mlp-fig1": "图 1 的 MLP"}
LOSS_CAP = 3.0  # the loss axis stops here (chance level is ln 10 ≈ 2.30); a diverged run is cut
HEADER_IN = 0.56  # inches above the panels for a figure's title; each subtitle line adds LINE_IN
LINE_IN = 0.22


# --- small helpers -----------------------------------------------------------------------------


def _color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def _labels(runs: Sequence[Run]) -> list[str]:
    """Run names; a name that occurs twice gets its folder path to tell them apart."""
    names = [r.label for r in runs]
    return [
        n if names.count(n) == 1 else f"{n} ({r.path.parent.name}/{r.path.name})"
        for n, r in zip(names, runs, strict=True)
    ]


def _dataset(run: Run) -> str:
    ds = run.config.get("dataset")
    return ds if isinstance(ds, str) and ds else "Fashion-MNIST"  # train.load_data's data set


def _paper_note(runs: Sequence[Run]) -> str:
    """The BN paper's Figure 1 used MNIST; say so when these runs are its network on another."""
    fig1 = [
        r
        for r in runs
        if (r.config.get("model") == "mlp-fig1" or r.suite == "bn-paper-fig1")
        and _dataset(r) != "MNIST"
    ]
    if not fig1:
        return ""
    sets = ", ".join(sorted({_dataset(r) for r in fig1}))
    note = tr(f"the paper used MNIST; this is {sets}", f"论文用的是 MNIST；这里是 {sets}")
    who = _and([r.label for r in fig1])
    return note if len(fig1) == len(runs) else tr(f"{who}: {note}", f"{who}：{note}")


def _header(fig: Figure, height: float, title: str, subtitle: str = "") -> None:
    """A bold title and a muted subtitle in a strip above the constrained-layout panels."""
    top = 1 - 0.1 / height
    fig.text(0.5, top, title, ha="center", va="top", fontsize=TITLE_SIZE, weight="bold", color=INK)
    if subtitle:
        fig.text(
            0.5,
            top - (TITLE_SIZE * 1.55 / 72) / height,
            subtitle,
            ha="center",
            va="top",
            fontsize=LABEL_SIZE + 0.5,
            color=MUTED,
        )


def _header_in(subtitle: str) -> float:
    return HEADER_IN + LINE_IN * (subtitle.count("\n") + 1 if subtitle else 0)


def _constrained(fig: Figure, height: float, header: float) -> None:
    fig.set_layout_engine("constrained", rect=(0, 0, 1, 1 - header / height))


def _steps_fmt(v: float, _pos: object) -> str:
    return f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"


COINCIDE_TOL = 1e-3  # curves closer than this at every epoch lie on top of each other


def _coincide(a: Run, b: Run, tol: float = COINCIDE_TOL) -> bool:
    """Per-epoch curves within ``tol`` of each other over the epochs both have finished."""
    common = min(len(a.metrics), len(b.metrics))
    return all(
        abs(float(ra[k]) - float(rb[k])) <= tol
        for ra, rb in zip(a.metrics[:common], b.metrics[:common], strict=True)
        for k in ("train_loss", "train_acc", "test_acc")
    )


def _coincident_groups(runs: Sequence[Run]) -> list[list[int]]:
    """Indices of runs whose curves lie on top of each other, groups of two or more."""
    groups: list[list[int]] = []
    for i, run in enumerate(runs):
        for g in groups:
            if _coincide(runs[g[0]], run):
                g.append(i)
                break
        else:
            groups.append([i])
    return [g for g in groups if len(g) > 1]


def _widths(n: int, groups: list[list[int]], base: float = 1.9) -> list[float]:
    """Line widths: coincident runs go from wide (drawn first) to narrow, so each shows."""
    lw = [base] * n
    for g in groups:
        for k, i in enumerate(g):
            lw[i] = base + 2.4 * (len(g) - 1 - k) / (len(g) - 1)
    return lw


# Within a group of coincident runs, member k gets dash pattern k and marker k, and its markers sit
# on every len(group)-th point starting at point k, so no two members' markers overlap.
GROUP_DASHES: tuple[Any, ...] = (
    "-",
    (0, (5, 2)),
    (0, (1.2, 1.6)),
    (0, (6, 2, 1.2, 2)),
    (0, (2, 3)),
)
GROUP_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass(frozen=True)
class _LineStyle:
    """How one run's curve is drawn in every panel (and in the legend)."""

    color: str
    lw: float
    ls: Any
    marker: str | None
    ms: float
    markevery: Any  # None (every point), or (start, step)

    def kwargs(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "lw": self.lw,
            "ls": self.ls,
            "marker": self.marker,
            "ms": self.ms,
            "markevery": self.markevery,
        }


def _line_styles(runs: Sequence[Run], groups: list[list[int]]) -> list[_LineStyle]:
    lws = _widths(len(runs), groups)
    member = {i: (k, len(g)) for g in groups for k, i in enumerate(g)}
    styles = []
    for i, run in enumerate(runs):
        points = len(run.metrics)
        spacing = max(1, math.ceil(points / 12))  # at most ~12 markers a curve
        if i in member:
            k, size = member[i]
            ls: Any = GROUP_DASHES[k % len(GROUP_DASHES)]
            marker: str | None = GROUP_MARKERS[k % len(GROUP_MARKERS)]
            every: Any = (k * spacing, size * spacing)
        else:
            ls = "-" if i < len(RUN_COLORS) else "--"
            marker = "o" if points <= 12 else None
            every = None
        ms = 6.5 if i in member else 1.9 * lws[i]
        styles.append(_LineStyle(_color(i), lws[i], ls, marker, ms, every))
    return styles


def _group_label(names: Sequence[str], width: int = 34) -> str:
    """``a = b = c (identical)``, wrapped before an ``=`` to about ``width`` characters a line."""
    lines = [names[0]]
    for name in names[1:]:
        if len(lines[-1]) + len(name) + 3 > width:
            lines.append(f"= {name}")
        else:
            lines[-1] += f" = {name}"
    lines[-1] += tr(" (identical)", "（完全相同）")
    return "\n".join(lines)


def _and(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return tr(", ", "、").join(names[:-1]) + tr(" and ", " 和 ") + names[-1]


def _ylim_acc(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = max(0.015, 0.08 * (hi - lo))
    return max(0.0, lo - pad), min(1.0 + pad / 3, hi + pad)


# --- figures -----------------------------------------------------------------------------------


@_styled
def curves_figure(runs: Sequence[Run]) -> Figure:
    """Train loss, train accuracy and test accuracy per epoch; one colour per run.

    Two rows of two: the three panels and the legend, so that the figure fits the page's 1000 px
    at full size. Runs whose curves coincide (within ``COINCIDE_TOL``) share one legend entry,
    "a = b (identical)", and are drawn wide to narrow with their own dashes and markers, the
    markers on alternate epochs so each run shows.
    """
    runs = list(runs)
    if not runs:
        raise BNValueError("curves_figure: no runs")
    labels = _labels(runs)
    groups = _coincident_groups(runs)
    styles = _line_styles(runs, groups)
    any_precise = any(r.precise is not None for r in runs)
    notes = [
        tr(
            "test accuracy in eval mode (running statistics)",
            "测试准确率在预测模式下测得（用移动平均）",
        )
        + (
            tr(
                "; ◇ = BN recalibrated on the whole training set",
                "；◇ = BN 在整个训练集上重新统计",
            )
            if any_precise
            else ""
        )
    ]
    notes += [
        tr(
            f"{_and([labels[i] for i in g])} lie on top of each other (within {COINCIDE_TOL:g} "
            "at every epoch)",
            f"{_and([labels[i] for i in g])} 的曲线互相重合（每一轮都相差不到 {COINCIDE_TOL:g}）",
        )
        for g in groups
    ]
    subtitle = "\n".join(notes)
    header = _header_in(subtitle)
    height = 6.6 + header
    fig = Figure(figsize=(8.4, height), facecolor="white")
    _constrained(fig, height, header)
    grid = fig.subplots(2, 2)
    axs, legend_ax = [grid[0, 0], grid[0, 1], grid[1, 0]], grid[1, 1]
    panels = (
        ("train_loss", _bi("train loss", "训练损失"), tr("cross-entropy", "交叉熵")),
        ("train_acc", _bi("train accuracy", "训练准确率"), tr("accuracy", "准确率")),
        (
            "test_acc",
            tr(_bi("test accuracy (eval mode)", "测试准确率"), "测试准确率（预测模式）"),
            tr("accuracy", "准确率"),
        ),
    )
    clipped = False
    acc_values: list[float] = []
    for (key, title, ylabel), ax in zip(panels, axs, strict=True):
        values: list[float] = []
        for i, run in enumerate(runs):
            ep = [r["epoch"] for r in run.metrics]
            ys = [float(r[key]) for r in run.metrics]
            values += ys
            ax.plot(ep, ys, **styles[i].kwargs())
            if key == "test_acc":
                pts = [
                    (r["epoch"], r["test_acc_precise"])
                    for r in run.metrics
                    if _is_number(r.get("test_acc_precise"))
                ]
                if pts:
                    px, py = zip(*pts, strict=True)
                    values += py
                    ax.plot(
                        px,
                        py,
                        ls="none",
                        marker="D",
                        ms=7.5,
                        mfc="white",
                        mec=_color(i),
                        mew=2.0,
                        zorder=5,
                    )
        finite = [v for v in values if math.isfinite(v)]
        if key == "train_loss":
            top = max(finite, default=1.0) * 1.06
            if top > LOSS_CAP:
                top, clipped = LOSS_CAP, True
            ax.set_ylim(0, top)
        else:
            acc_values += values
        cut = tr(f" (cut at {LOSS_CAP:g})", f"（截断于 {LOSS_CAP:g}）")
        ax.set_title(title + (cut if key == "train_loss" and clipped else ""))
        ax.set_xlabel(_bi("epoch", "轮次"))
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axs[1:]:  # train and test accuracy on one scale: the gap between them shows
        ax.set_ylim(*_ylim_acc(acc_values))
    legend_ax.set_axis_off()

    def handle(i: int) -> Line2D:
        st = styles[i]
        return Line2D([], [], color=st.color, lw=st.lw, ls=st.ls, marker=st.marker, ms=st.ms)

    grouped = {i: g for g in groups for i in g}
    handles: list[Any] = []
    texts: list[str] = []
    for i, lab in enumerate(labels):
        g = grouped.get(i)
        if g is None:
            handles.append(handle(i))
            texts.append(lab)
        elif g[0] == i:  # one entry for the whole group: its styles side by side, in name order
            handles.append(tuple(handle(j) for j in g))
            texts.append(_group_label([labels[j] for j in g]))
    if any_precise:
        handles.append(Line2D([], [], ls="none", marker="D", ms=7, mfc="white", mec=MUTED, mew=2.0))
        texts.append(
            tr(
                _bi("precise-BN test accuracy", "重新统计 BN 后", "\n"),
                "重新统计 BN 后的\n测试准确率",
            )
        )
    legend_ax.legend(
        handles,
        texts,
        loc="center",
        fontsize=LABEL_SIZE,
        frameon=False,
        handlelength=4.2,
        labelspacing=0.9,
        handler_map={tuple: HandlerTuple(ndivide=None, pad=0.4)},
    )
    _header(fig, height, _bi("Training curves", "训练曲线", "  "), subtitle)
    return fig


def _layer_choice(run: Run, layer: str | int | None) -> tuple[str, int, int]:
    """(module name, 1-based position, number of recorded layers) of the layer to draw."""
    order: list[str] = []
    for rec in run.activations:
        for name in rec["layers"]:
            if name not in order:
                order.append(name)
    if not order:
        raise BNValueError(f"{run.path}: activations.jsonl records no layer")
    if layer is None:
        pick = order[-1]
    elif isinstance(layer, int):
        if not -len(order) <= layer < len(order):
            raise BNValueError(
                f"{run.path}: layer index {layer} out of range ({len(order)} recorded layers)"
            )
        pick = order[layer]
    else:
        if layer not in order:
            raise BNValueError(
                f"{run.path}: no recorded layer {layer!r} (recorded: {', '.join(order)})"
            )
        pick = layer
    return pick, order.index(pick) + 1, len(order)


@_styled
def bands_figure(runs: Sequence[Run], layer: str | int | None = None, channel: int = 0) -> Figure:
    """The BN paper's Figure 1(b, c): percentiles of one sigmoid's input over training.

    One column per run (runs without activations are left out).  ``layer`` is a module name
    ("9"), a position among the recorded nonlinearities (-1: the last), or None: each run's last
    recorded one (with BN the module names shift, the depth does not).  q50 is the line, the
    band spans q15–q85, and all columns share one y range.
    """
    picked = [(i, r) for i, r in enumerate(runs) if r.activations]
    if not picked:
        raise BNValueError("bands_figure: none of the runs recorded activations")
    labels = _labels(runs)
    n = len(picked)
    ncols = 2 if n == 4 else (min(n, 3) if n <= 9 else 4)  # readable at the page's width
    nrows = math.ceil(len(picked) / ncols)
    which = (
        tr("the last recorded sigmoid", "记录的最后一个 sigmoid")
        if layer is None
        else (
            tr(f"module {layer}", f"模块 {layer}")
            if isinstance(layer, str)
            else tr(f"nonlinearity {layer}", f"非线性层 {layer}")
        )
    )
    sub = tr(
        f"{which}, channel {channel}; x = training step; one y range for all columns",
        f"{which}，通道 {channel}；横轴是训练步数；各列共用一个纵轴范围",
    )
    note = _paper_note([r for _, r in picked])
    subtitle = f"{sub}\n{note}" if note else sub
    header = _header_in(subtitle)
    height = 3.5 * nrows + header + 0.55
    fig = Figure(figsize=(4.4 * ncols + 0.6, height), facecolor="white")
    _constrained(fig, height, header)
    axs = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).reshape(-1)
    lo, hi = math.inf, -math.inf
    where: list[str] = []
    for ax, (i, run) in zip(axs, picked, strict=False):
        name, pos, count = _layer_choice(run, layer)
        recs = [rec for rec in run.activations if name in rec["layers"]]
        width = len(recs[0]["layers"][name]["q50"])
        if not 0 <= channel < width:
            raise BNValueError(
                f"{run.path}: layer {name!r} has {width} channels; no channel {channel}"
            )
        steps = np.array([rec["step"] for rec in recs], dtype=float)
        q15, q50, q85 = (
            np.array([rec["layers"][name][k][channel] for rec in recs], dtype=float)
            for k in QUANTILE_KEYS
        )
        color = _color(i)
        ax.fill_between(steps, q15, q85, color=color, alpha=0.22, lw=0)
        for q in (q15, q85):
            ax.plot(steps, q, color=color, lw=0.8, alpha=0.8)
        ax.plot(steps, q50, color=color, lw=2.0)
        ax.axhline(0.0, color=MUTED, lw=0.8, ls=":", zorder=0)
        finite = np.concatenate([q15, q85])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        ax.set_title(
            f"{labels[i]}\n"
            + tr(
                f"module {name} (nonlinearity {pos} of {count}), channel {channel}",
                f"模块 {name}（第 {pos} 个非线性层，共 {count} 个），通道 {channel}",
            ),
            fontsize=LABEL_SIZE + 0.5,
        )
        ax.set_xlabel(_bi("training step", "训练步数"))
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_fmt))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.grid(alpha=0.3)
        ax.margins(x=0.01)
        where.append(name)
    for ax in axs[len(picked) :]:
        ax.set_axis_off()
    if math.isfinite(lo):
        pad = max(0.05, 0.06 * (hi - lo))
        axs[0].set_ylim(lo - pad, hi + pad)
    for r in range(nrows):
        axs[r * ncols].set_ylabel(_bi("sigmoid input", "sigmoid 的输入"))
    handles = [
        Line2D(
            [],
            [],
            color=MUTED,
            lw=2.0,
            label=tr(_bi("median (50th percentile)", "中位数"), "中位数（第 50 百分位）"),
        ),
        Patch(facecolor=MUTED, alpha=0.3, label=_bi("15th–85th percentile", "第 15–85 百分位")),
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncols=2, fontsize=LABEL_SIZE, frameon=False
    )
    _header(
        fig,
        height,
        tr(
            _bi(
                "Input to one sigmoid over training (BN paper, Fig. 1b–c)",
                "训练中 sigmoid 输入的分布",
            ),
            "训练中一个 sigmoid 的输入分布（BN 论文图 1b–c）",
        ),
        subtitle,
    )
    return fig


def _sweep_points(runs: Sequence[Run]) -> dict[tuple[str, int], list[tuple[float, float]]]:
    groups: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for run in runs:
        m = SWEEP_NAME.match(run.name)
        if not m:
            continue
        lr = run.config.get("lr")
        rate = float(lr) if _is_number(lr) and lr > 0 else float(m["rate"])
        groups.setdefault((m["model"], len(run.metrics)), []).append(
            (rate, float(run.final["test_acc"]))
        )
    return groups


def sweep_runs(runs: Sequence[Run]) -> list[Run]:
    """The runs named like ``<model>-lr<rate>`` (the lr-sweep suite's)."""
    return [r for r in runs if SWEEP_NAME.match(r.name)]


@_styled
def sweep_figure(runs: Sequence[Run]) -> Figure:
    """Final test accuracy against learning rate (log x), one line per model (and epoch count)."""
    groups = _sweep_points(runs)
    if not groups:
        raise BNValueError("sweep_figure: no run is named like <model>-lr<rate>")
    subtitle = tr(
        "test accuracy (eval mode) after the last epoch, one point per run",
        "最后一轮之后的测试准确率（预测模式），每次训练对应一个点",
    )
    header = _header_in(subtitle)
    height = 4.6 + header
    fig = Figure(figsize=(8.0, height), facecolor="white")
    _constrained(fig, height, header)
    ax = fig.subplots()
    rates: set[float] = set()
    # LeNet-BN first, then plain LeNet, then anything else, each by epoch count
    order = sorted(groups, key=lambda k: (k[0] != "lenet-bn", k[0] != "lenet", k))
    for i, key in enumerate(order):
        model, epochs = key
        pts = sorted(groups[key])
        xs, ys = zip(*pts, strict=True)
        rates.update(xs)
        ax.plot(
            xs,
            ys,
            color=_color(i),
            lw=2.0,
            marker="o",
            ms=6,
            label=tr(
                f"{MODEL_LABELS.get(model, model)}, {epochs} epoch{'s' if epochs != 1 else ''}",
                f"{MODEL_LABELS_ZH.get(model, model)}，{epochs} 轮",
            ),
        )
    chance = tr(_bi("chance (10 classes)", "随机猜测"), "随机猜测（10 类）")
    ax.axhline(0.1, color=MUTED, lw=1.0, ls="--", label=chance)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_xlim(min(rates) / 1.4, max(rates) * 1.4)
    ax.set_ylim(0, 1)
    ax.set_xlabel(tr(_bi("learning rate (log scale)", "学习率"), "学习率（对数刻度）"))
    ax.set_ylabel(_bi("final test accuracy", "最终测试准确率"))
    ax.grid(alpha=0.3, which="both")
    fig.legend(
        loc="outside lower center", ncols=3, fontsize=LABEL_SIZE, frameon=False
    )  # below the axes: the low-accuracy corner is where diverged runs land
    _header(
        fig,
        height,
        _bi("Learning-rate sweep", "学习率扫描", "  "),
        subtitle,
    )
    return fig
