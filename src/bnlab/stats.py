"""Moves 1 and 2: per-channel statistics — reduce one tensor, combine shards.

``reduce`` computes (count, mean, biased variance) over every axis but the channel axis with a
two-pass scheme: first the mean, then the mean of squared deviations from it.  It never uses
E[x²] − E[x]², which loses every digit when |mean| ≫ std (x = 10⁴ + N(0, 1) in float32 would give
a variance of pure rounding noise).

``merge`` is Chan et al.'s parallel formula on (count, mean, M2 = count·var): two shards'
statistics combine exactly into the statistics of their union, which is what micro-batching and
distributed batch norm need.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import BNValueError

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are accumulated in: float32 for 16-bit floats, else the input's."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def as_dtype(t: Tensor, dtype: torch.dtype) -> Tensor:
    """``t.to(dtype)``, without the call when it is that dtype already (a hot path: per call,
    batch norm converts several tensors that almost always have the right dtype)."""
    return t if t.dtype == dtype else t.to(dtype)


def reduce_axes(ndim: int) -> tuple[int, ...]:
    """Every axis of an (N, C, *spatial) tensor except the channel axis 1."""
    return (0, *range(2, ndim))


@dataclass(frozen=True)
class Stats:
    """Statistics of a set of channels: ``count`` values each, their ``mean`` and biased ``var``.

    ``count`` is a Python int for one tensor, or a 0-d tensor when it travelled through a
    collective.  ``mean`` and ``var`` have the shape of the kept axes (``(C,)`` for batch norm).
    """

    count: int | Tensor
    mean: Tensor
    var: Tensor

    @property
    def m2(self) -> Tensor:
        """Sum of squared deviations from the mean, Σ(x − μ)² = count·var."""
        return self.var * self.count

    def unbiased_var(self) -> Tensor:
        """Σ(x − μ)² / (count − 1): what ``running_var`` tracks (needs count > 1)."""
        return self.m2 / (self.count - 1)

    def __repr__(self) -> str:
        count = int(self.count)
        return f"Stats(count={count}, mean={self.mean.tolist()}, var={self.var.tolist()})"


def reduce(x: Tensor, axes: Sequence[int] | None = None) -> Stats:
    """Move 1: count, mean and biased variance of ``x`` over ``axes`` (default: all but dim 1).

    Accumulates in float32 for float16/bfloat16 input.  Two passes: μ = Σx/m, then σ² = Σ(x − μ)²/m.
    """
    axes = reduce_axes(x.dim()) if axes is None else tuple(axes)
    xa = as_dtype(x, accumulate_dtype(x.dtype))
    count = 1
    for a in axes:
        count *= x.shape[a]
    mean = xa.mean(dim=axes, keepdim=True)  # (1, C, 1, ...) for batch norm
    var = (xa - mean).square().mean(dim=axes)  # (C,)
    return Stats(count, mean.reshape(var.shape), var)


def merge(a: Stats, b: Stats) -> Stats:
    """Move 2: Chan's parallel formula — the statistics of the union of two shards.

    δ = μ_b − μ_a;  n = n_a + n_b;  μ = μ_a + δ·n_b/n;  M2 = M2_a + M2_b + δ²·n_a·n_b/n.
    A shard with count 0 contributes nothing (and never produces 0/0).
    """
    if isinstance(a.count, int) and isinstance(b.count, int):
        if a.count == 0:
            return b
        if b.count == 0:
            return a
        n: int | Tensor = a.count + b.count
        delta = b.mean - a.mean
        frac_b = b.count / n
        mean = a.mean + delta * frac_b
        m2 = a.m2 + b.m2 + delta.square() * (a.count * frac_b)
        return Stats(n, mean, m2 / n)
    # Counts that travelled as tensors (a collective): do the arithmetic in the statistics'
    # dtype, and mask empty shards, whose mean and variance are NaN (0/0), instead of branching.
    dt = a.mean.dtype
    na = torch.as_tensor(a.count, device=a.mean.device).to(dt)
    nb = torch.as_tensor(b.count, device=a.mean.device).to(dt)
    n_t = na + nb
    safe_n = torch.clamp(n_t, min=1)
    zero = torch.zeros((), dtype=dt, device=a.mean.device)
    mean_a = torch.where(na > 0, a.mean, zero)
    mean_b = torch.where(nb > 0, b.mean, zero)
    m2_a = torch.where(na > 0, a.var * na, zero)
    m2_b = torch.where(nb > 0, b.var * nb, zero)
    delta = mean_b - mean_a
    frac_b = nb / safe_n
    mean = torch.where(na > 0, mean_a + delta * frac_b, mean_b)
    m2 = m2_a + m2_b + torch.where((na > 0) & (nb > 0), delta.square() * (na * frac_b), zero)
    return Stats(n_t, mean, m2 / safe_n)


def combine(shards: Sequence[Stats]) -> Stats:
    """Move 2 over any number of shards: ``merge`` folded left to right."""
    if not shards:
        raise BNValueError("combine() needs at least one Stats (got none)")
    return functools.reduce(merge, shards)


@torch.no_grad()
def update_running(
    running_mean: Tensor | None,
    running_var: Tensor | None,
    stats: Stats,
    momentum: float,
) -> None:
    """Move 3 (record side): exponential moving averages, in place, as torch keeps them.

    running_mean ← (1 − momentum)·running_mean + momentum·μ_B
    running_var  ← (1 − momentum)·running_var  + momentum·σ²_B·m/(m − 1)   (unbiased)
    """
    if running_mean is not None:
        new_mean = as_dtype(stats.mean, running_mean.dtype)
        running_mean.mul_(1.0 - momentum).add_(new_mean * momentum)
    if running_var is not None:
        new_var = as_dtype(stats.unbiased_var(), running_var.dtype)
        running_var.mul_(1.0 - momentum).add_(new_var * momentum)


NORMALIZATIONS = ("batch", "layer", "instance", "group")


def normalization_axes(kind: str, ndim: int) -> tuple[int, ...]:
    """The axes one mean and variance are taken over, for an (N, C, *spatial) tensor.

    batch: (N, *spatial) per channel; layer: (C, *spatial) per sample; instance: (*spatial) per
    sample and channel.  group: (C/G, *spatial) per sample and group — for the tensor viewed as
    (N, G, C/G·spatial), see :func:`group_view`.
    """
    if kind == "batch":
        return reduce_axes(ndim)
    if kind == "layer":
        return tuple(range(1, ndim))
    if kind == "instance":
        return tuple(range(2, ndim))
    if kind == "group":
        return (2,)
    raise BNValueError(
        f"normalization kind must be one of {', '.join(NORMALIZATIONS)} (got {kind!r})"
    )


def group_view(x: Tensor, groups: int) -> Tensor:
    """(N, C, *spatial) → (N, G, C/G·prod(spatial)): group norm reduces over the last axis."""
    n, c = x.shape[0], x.shape[1]
    if groups < 1 or c % groups:
        raise BNValueError(f"group norm: expected groups dividing {c} channels (got {groups})")
    return x.reshape(n, groups, -1)
