"""The portable backend: moves 1 and 3, forward and backward, in vectorized torch ops.

Written step by step like the formulas (x − μ, then x̂, then γ·x̂ + β) rather than folded into
one scale-and-shift: one more pass over memory, but each intermediate exists for a recorder, and
x − μ is formed before scaling, which keeps float32 exact for inputs far from zero where
x·(γ/σ) + (β − μγ/σ) cancels catastrophically.
"""

from __future__ import annotations

from torch import Tensor

from ..record import Recorder
from ..stats import Stats, accumulate_dtype, reduce, reduce_axes

name = "torch"


def _per_channel(v: Tensor, ndim: int) -> Tensor:
    """(C,) → (1, C, 1, ..., 1), broadcastable against an (N, C, *spatial) tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def forward_reduce(x: Tensor) -> Stats:
    """Move 1: per-channel (count, mean, biased var), accumulated in float32 or float64."""
    return reduce(x)


def forward_apply(
    x: Tensor,
    mean: Tensor,
    invstd: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    recorder: Recorder | None = None,
) -> Tensor:
    """Move 3: y = γ·(x − μ)·invstd + β, computed in the accumulate dtype, returned in x's.

    One new tensor, updated in place step by step; a recorder sees each step as it is made
    (and must copy what it keeps, since the next step overwrites it).
    """
    nd = x.dim()
    acc = accumulate_dtype(x.dtype)
    y = x.to(acc) - _per_channel(mean.to(acc), nd)  # x − μ, (N, C, ...), a new tensor
    if recorder is not None:
        recorder("x_minus_mean", y)
        recorder("invstd", invstd)
    y.mul_(_per_channel(invstd.to(acc), nd))  # x̂ = (x − μ)/√(σ² + ε)
    if recorder is not None:
        recorder("xhat", y)
    if weight is not None:
        y.mul_(_per_channel(weight.to(acc), nd))  # γ·x̂
    if bias is not None:
        y.add_(_per_channel(bias.to(acc), nd))  # γ·x̂ + β
    out = y.to(x.dtype)
    if recorder is not None:
        recorder("output", out)
    return out


def backward_reduce(dy: Tensor, xhat: Tensor) -> tuple[Tensor, Tensor]:
    """Move 1, backward: per channel Σdy and Σdy·x̂ (which are also dβ and dγ)."""
    axes = reduce_axes(dy.dim())
    dy = dy.to(xhat.dtype)
    return dy.sum(dim=axes), (dy * xhat).sum(dim=axes)


def normalized(x: Tensor, mean: Tensor, invstd: Tensor) -> Tensor:
    """x̂ recomputed from the saved input (cheaper to keep x than a second full tensor)."""
    nd = x.dim()
    acc = accumulate_dtype(x.dtype)
    return (x.to(acc) - _per_channel(mean.to(acc), nd)).mul_(_per_channel(invstd.to(acc), nd))


def backward_apply(
    dy: Tensor,
    xhat: Tensor,
    invstd: Tensor,
    weight: Tensor | None,
    sum_dy: Tensor,
    sum_dy_xhat: Tensor,
    count: int,
    batch_stats: bool,
) -> Tensor:
    """Move 3, backward: the input gradient (overwrites ``xhat``, which is not needed after).

    With batch statistics, μ and σ² depend on every x, so
    dx = γ·invstd·(dy − Σdy/m − x̂·Σ(dy·x̂)/m);  with running statistics they are constants and
    dx = γ·invstd·dy.
    """
    nd = dy.dim()
    scale = invstd if weight is None else invstd * weight.to(invstd.dtype)  # γ/√(σ² + ε), (C,)
    g = dy.to(xhat.dtype)
    if not batch_stats:
        return (g * _per_channel(scale, nd)).to(dy.dtype)
    # dx = scale·dy − scale·Σdy/m − x̂·scale·Σ(dy·x̂)/m, folded into x̂'s buffer (no new tensor)
    k_shift = -(sum_dy * scale) / count
    k_xhat = -(sum_dy_xhat * scale) / count
    dx = xhat.mul_(_per_channel(k_xhat, nd)).add_(_per_channel(k_shift, nd))
    dx.addcmul_(g, _per_channel(scale, nd))
    return dx.to(dy.dtype)
