"""Train mode and eval mode: running statistics converging, and one batch through both modes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from ...errors import BNValueError
from ...render.style import (
    INK,
    LABEL_SIZE,
    MUTED,
    TITLE_SIZE,
    _bi,
    _mono,
    _styled,
    channel_edge_color,
    channel_text_color,
    tr,
)
from .grid import _channel

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
    labels = list(labels) if labels is not None else [_channel(c) for c in range(c_)]
    fig = Figure(figsize=(10.5, 4.0), layout="constrained", facecolor="white")
    axs = fig.subplots(1, 2)
    panels = [  # the statistic, its gloss, its title in a Chinese figure
        (axs[0], rm, pm, "running_mean", "移动平均的均值", "running_mean：均值的移动平均"),
        (axs[1], rv, pv, "running_var", "移动平均的方差", "running_var：方差的移动平均"),
    ]
    for ax, run, pop, name, gloss, zh in panels:
        for c in range(c_):
            color = channel_edge_color(c)
            # running ← (1 − momentum)·running + momentum·batch statistic, step after step
            ax.plot(xs, run[:, c], color=color, lw=1.8, label=labels[c])
            ax.axhline(pop[c], color=color, lw=1.2, ls="--", alpha=0.9)
        ax.set_title(tr(_bi(name, gloss), zh), fontsize=TITLE_SIZE - 1.5)
        ax.set_xlabel(_bi("training step", "训练步数"))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.margins(x=0.01)
    handles = [
        Line2D([], [], color=channel_edge_color(c), lw=1.8, label=labels[c]) for c in range(c_)
    ]
    handles.append(Line2D([], [], color=MUTED, lw=1.2, ls="--", label=_bi("population", "总体值")))
    axs[1].legend(handles=handles, fontsize=LABEL_SIZE - 0.5, loc="best", framealpha=0.9)
    fig.suptitle(
        tr(
            _bi(
                "Running statistics converge to the population values",
                "移动平均逐渐逼近总体统计量",
                "  ",
            ),
            "移动平均逐渐逼近总体的统计量",
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
        ax, color = axs[c], channel_edge_color(c)
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
        stats = tr(
            f"train: mean {_f3(yt[c].mean())}, std {_f3(yt[c].std())}\n"
            f"eval:  mean {_f3(ye[c].mean())}, std {_f3(ye[c].std())}",
            f"训练：均值 {_f3(yt[c].mean())}，标准差 {_f3(yt[c].std())}\n"
            f"预测：均值 {_f3(ye[c].mean())}，标准差 {_f3(ye[c].std())}",
        )
        ax.text(
            0.03,
            0.97,
            stats,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=LABEL_SIZE - 1,
            family=_mono(),
            bbox={
                "boxstyle": "round,pad=0.3",
                "facecolor": "white",
                "alpha": 0.85,
                "edgecolor": "#cccccc",
            },
        )
        ax.set_title(
            _channel(c), color=channel_text_color(c), fontsize=LABEL_SIZE + 1, weight="bold"
        )
        ax.set_xlabel(tr(_bi("input x", "输入"), "输入 x"))
        ax.set_ylabel(tr(_bi("output y", "输出"), "输出 y"))
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
            label=tr(
                _bi("eval mode: running mean/var", "预测模式：用移动平均"),
                "预测模式：用均值和方差的移动平均",
            ),
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
