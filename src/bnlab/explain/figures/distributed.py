"""Several processes: how one rank's batch statistics scatter around the global batch's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ...render.style import INK, LABEL_SIZE, MUTED, PALETTE, TITLE_SIZE, _styled, tr


@_styled
def rank_stats_figure(
    mean_dev: Mapping[int, Sequence[float]], var_ratio: Mapping[int, Sequence[float]]
) -> Figure:
    """Per-rank batch mean (in global standard deviations off the global mean) and batch
    variance (as a ratio to the global variance), one dot per rank, against the per-rank
    batch size: what local BN normalizes with, where synced BN uses the global values (0, 1)."""
    fig = Figure(figsize=(9.0, 3.6))
    sizes = sorted(mean_dev)
    rng = np.random.default_rng(0)
    panels = (
        (mean_dev, tr("batch mean − global mean (σ)", "小批量均值 − 全局均值（σ）"), 0.0),
        (var_ratio, tr("batch variance / global variance", "小批量方差 / 全局方差"), 1.0),
    )
    for k, (values, label, synced) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, b in enumerate(sizes):
            ys = np.asarray(values[b], dtype=float)
            xs = i + rng.uniform(-0.18, 0.18, size=len(ys))
            ax.plot(xs, ys, "o", ms=3, alpha=0.55, color=PALETTE[0], mec="none")
        every = tr("synced BN: every rank", "同步 BN：每个进程")
        ax.axhline(synced, color=PALETTE[5], lw=2, label=every)
        ax.legend(loc="upper right", frameon=False, fontsize=LABEL_SIZE)
        ax.set_xticks(range(len(sizes)), [str(b) for b in sizes], fontsize=LABEL_SIZE)
        ax.set_xlabel(tr("images per rank", "每个进程的图像数"), color=MUTED, fontsize=LABEL_SIZE)
        ax.set_ylabel(label, color=MUTED, fontsize=LABEL_SIZE)
        ax.tick_params(labelsize=LABEL_SIZE)
    fig.suptitle(
        tr("local BN: each rank's own statistics, scattered around the global batch's",
           "各进程各自的 BN：每个进程的统计量散布在全局批量的统计量周围"),
        color=INK, fontsize=TITLE_SIZE,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
