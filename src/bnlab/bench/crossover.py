"""Where a second thread starts to pay in the fused kernels: ``bnlab bench --crossover``.

The kernels run on one thread below ``bnlab.backends.fused.PARALLEL_MIN_ELEMENTS`` elements,
where waking the other threads costs more than sharing the work saves.  This times forward and
backward through the kernels with one thread and with all of torch's, on growing tensors of
both layouts, interleaved; the first size where all threads win in both layouts is the
crossover.
"""

from __future__ import annotations

from typing import Any

import torch

from ..backends import fused
from . import timing

SHAPES = (
    (16, 16, 4, 4),
    (32, 16, 8, 8),
    (64, 16, 8, 8),
    (128, 16, 8, 8),
    (256, 16, 8, 8),
    (64, 120),
    (128, 120),
    (256, 120),
    (512, 120),
    (1024, 120),
)


def _fwd_bwd(shape: tuple[int, ...], threads: int) -> timing.Fn:
    c = shape[1]
    x, dy = torch.randn(shape), torch.randn(shape)
    w, b, rm, rv = torch.ones(c), torch.zeros(c), torch.zeros(c), torch.ones(c)
    _, mean, invstd = fused.forward(x, w, b, rm, rv, True, 0.1, 1e-5)

    def run() -> object:
        saved = fused.PARALLEL_MIN_ELEMENTS
        fused.PARALLEL_MIN_ELEMENTS = 0 if threads > 1 else 1 << 62
        try:
            fused.forward(x, w, b, rm, rv, True, 0.1, 1e-5)
            return fused.backward(dy, x, w, mean, invstd, True, True)
        finally:
            fused.PARALLEL_MIN_ELEMENTS = saved

    return run


def measure(rounds: int = 25) -> list[dict[str, Any]]:
    """Per shape: median seconds of forward+backward with 1 thread and with all threads."""
    threads = torch.get_num_threads()
    rows = []
    for shape in SHAPES:
        fns = {"1 thread": _fwd_bwd(shape, 1), f"{threads} threads": _fwd_bwd(shape, threads)}
        samples = timing.interleaved(fns, rounds)
        numel = 1
        for s in shape:
            numel *= s
        medians = {k: timing.median(v) for k, v in samples.items()}
        rows.append({"shape": list(shape), "elements": numel, "seconds": medians})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        (a, ta), (b, tb) = row["seconds"].items()
        shape = "×".join(map(str, row["shape"]))
        lines.append(
            f"{shape:>14} {row['elements']:>9,} elements: {a} {ta * 1e6:7.1f} µs, "
            f"{b} {tb * 1e6:7.1f} µs ({tb / ta:.2f}×)"
        )
    return "\n".join(lines)
