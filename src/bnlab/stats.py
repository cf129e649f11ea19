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

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are accumulated in: float32 for 16-bit floats, else the input's."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


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
    xa = x.to(accumulate_dtype(x.dtype))
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
    n = a.count + b.count
    if isinstance(n, int):
        if a.count == 0:
            return b
        if b.count == 0:
            return a
        safe_n: int | Tensor = n
    else:
        safe_n = torch.clamp(n, min=1)
    delta = b.mean - a.mean
    frac_b = b.count / safe_n
    mean = a.mean + delta * frac_b
    m2 = a.m2 + b.m2 + delta.square() * (a.count * frac_b)
    return Stats(n, mean, m2 / safe_n)


def combine(shards: Sequence[Stats]) -> Stats:
    """Move 2 over any number of shards: ``merge`` folded left to right."""
    if not shards:
        raise ValueError("combine() needs at least one Stats (got none)")
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
        new_mean = stats.mean.to(running_mean.dtype)
        running_mean.mul_(1.0 - momentum).add_(new_mean * momentum)
    if running_var is not None:
        new_var = stats.unbiased_var().to(running_var.dtype)
        running_var.mul_(1.0 - momentum).add_(new_var * momentum)
