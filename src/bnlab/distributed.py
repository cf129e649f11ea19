"""Move 2 across processes: per-channel statistics combined over ``torch.distributed``.

Each rank reduces its own batch (move 1); the ranks then exchange what they found and combine
it with Chan's formula (:func:`bnlab.stats.merge`), so every rank normalizes with the
statistics of the global batch.  Works on every backend ``torch.distributed`` has, gloo on CPU
included.

Why these collectives:

* **all_gather, not all_reduce, for the forward statistics.** Ranks may hold different batch
  sizes (the last batch of an epoch, uneven shards), and an empty rank must not count: Chan's
  merge needs each rank's own (count, mean, M2), not their sums.  Two gathers: first a small
  header per rank, (C, count, has-NaN) as int64, so that a rank with another channel count is
  named instead of failing inside a collective of mismatched sizes, and a NaN is reported
  instead of spread; then the (2·C,) float64 payload (mean, M2).
* **all_reduce (sum) for the backward.** Σdy and Σdy·x̂ over the global batch are plain sums:
  one (2·C,) float64 tensor per rank.

Every collective is waited for with a timeout: a peer that died or never reached the layer is
an error naming the collective and the rank, not a hang.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from .errors import BNRuntimeValueError
from .stats import Stats, merge

DEFAULT_TIMEOUT = 60.0  # seconds a collective may take before it is an error


def active(group: Any = None) -> bool:
    """Whether a process group of more than one rank is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return False
    return dist.get_world_size(group) > 1


def _wait(work: Any, what: str, timeout: float) -> None:
    try:
        ok = work.wait(timeout=timedelta(seconds=timeout))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BNRuntimeValueError(
            f"SyncBatchNorm on rank {dist.get_rank()}: the {what} did not complete within "
            f"{timeout:g} s: a peer died or never reached this layer ({first})"
        ) from None
    if ok is False:
        raise BNRuntimeValueError(
            f"SyncBatchNorm on rank {dist.get_rank()}: the {what} did not complete within "
            f"{timeout:g} s: a peer died or never reached this layer"
        )


def all_gather(t: Tensor, group: Any, what: str, timeout: float) -> Tensor:
    """(world, *t.shape): every rank's ``t``, in rank order."""
    world = dist.get_world_size(group)
    out = [torch.empty_like(t) for _ in range(world)]
    _wait(dist.all_gather(out, t, group=group, async_op=True), what, timeout)
    return torch.stack(out)


def all_reduce_sum(t: Tensor, group: Any, what: str, timeout: float) -> Tensor:
    """``t`` summed over the ranks (in place, and returned)."""
    _wait(dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group, async_op=True), what, timeout)
    return t


def global_stats(
    local: Stats, group: Any = None, timeout: float = DEFAULT_TIMEOUT, device: Any = None
) -> Stats:
    """The statistics of the union of every rank's batch, on every rank.

    ``local``: this rank's (count, mean, biased var) of shape (C,); count may be 0 (an empty
    batch still joins both gathers, so no peer waits for it).  ``device``: where the
    exchanged tensors live (the input's: NCCL needs CUDA tensors, gloo takes CPU ones).
    Returns float64 statistics with an int count.

    Raises BNRuntimeValueError, on every rank alike, when the ranks disagree on the channel
    count (naming each rank's), when a rank's statistics are NaN, or when a gather times out.
    """
    channels = int(local.mean.numel())
    count = int(local.count)
    mean = local.mean.detach().double().reshape(-1).to(device)
    m2 = (local.var.detach().double() * count).reshape(-1).to(device)
    has_nan = bool(count and (torch.isnan(mean).any() or torch.isnan(m2).any()))
    header = torch.tensor([channels, count, int(has_nan)], dtype=torch.int64, device=device)
    headers = all_gather(header, group, "all_gather of the batch-statistics headers", timeout)
    sizes = headers[:, 0].tolist()
    if len(set(sizes)) > 1:
        by_rank = ", ".join(f"rank {r}: {c}" for r, c in enumerate(sizes))
        raise BNRuntimeValueError(
            f"SyncBatchNorm: the ranks disagree on the number of channels ({by_rank}); every "
            "rank must run the same model"
        )
    nan_ranks = [r for r, flag in enumerate(headers[:, 2].tolist()) if flag]
    if nan_ranks:
        raise BNRuntimeValueError(
            f"SyncBatchNorm: rank{'s' if len(nan_ranks) > 1 else ''} "
            f"{', '.join(map(str, nan_ranks))} computed NaN batch statistics; they would "
            "spread to every rank (look for NaN or inf in that rank's input)"
        )
    payload = (
        torch.cat([mean, m2])
        if count
        else torch.zeros(2 * channels, dtype=torch.float64, device=device)
    )
    gathered = all_gather(payload, group, "all_gather of the batch statistics", timeout)
    total: Stats | None = None
    gathered = gathered.cpu()
    for (_, n, _), row in zip(headers.tolist(), gathered, strict=True):
        if n == 0:
            continue
        shard = Stats(int(n), row[:channels], row[channels:] / n)
        total = shard if total is None else merge(total, shard)
    if total is None:  # every rank empty: nothing to normalize anywhere
        zeros = torch.zeros(channels, dtype=torch.float64)
        return Stats(0, zeros, zeros.clone())
    return total
