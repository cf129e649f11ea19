"""The portable backend: moves 1 and 3, forward and backward, in vectorized torch ops.

Written step by step like the formulas (x − μ, then x̂, then γ·x̂ + β) rather than folded into
one scale-and-shift: one more pass over memory, but each intermediate exists for a recorder, and
x − μ is formed before scaling, which keeps float32 exact for inputs far from zero where
x·(γ/σ) + (β − μγ/σ) cancels catastrophically.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..record import Recorder
from ..stats import Stats, accumulate_dtype, as_dtype, reduce, reduce_axes, update_running

name = "torch"


def _per_channel(v: Tensor, ndim: int) -> Tensor:
    """(C,) → (1, C, 1, ..., 1), broadcastable against an (N, C, *spatial) tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def memory_format(x: Tensor) -> torch.memory_format:
    """The layout of batch norm's output for ``x``: channels-last when x is, else contiguous."""
    if not x.is_contiguous():
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return torch.channels_last
        if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
            return torch.channels_last_3d
    return torch.contiguous_format


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
    # x − μ, (N, C, ...), the one new tensor: dense in x's memory format (contiguous, or
    # channels-last), as torch's output is, whatever strides x itself has
    y = torch.empty_like(x, dtype=acc, memory_format=memory_format(x))
    torch.sub(as_dtype(x, acc), _per_channel(as_dtype(mean, acc), nd), out=y)
    if recorder is not None:
        recorder("x_minus_mean", y)
        recorder("invstd", invstd)
    y.mul_(_per_channel(as_dtype(invstd, acc), nd))  # x̂ = (x − μ)/√(σ² + ε)
    if recorder is not None:
        recorder("xhat", y)
    if weight is not None:
        y.mul_(_per_channel(as_dtype(weight, acc), nd))  # γ·x̂
    if bias is not None:
        y.add_(_per_channel(as_dtype(bias, acc), nd))  # γ·x̂ + β
    out = as_dtype(y, x.dtype)
    if recorder is not None:
        recorder("output", out)
    return out


def backward_reduce(dy: Tensor, xhat: Tensor) -> tuple[Tensor, Tensor]:
    """Move 1, backward: per channel Σdy and Σdy·x̂ (which are also dβ and dγ)."""
    axes = reduce_axes(dy.dim())
    dy = as_dtype(dy, xhat.dtype)
    return dy.sum(dim=axes), (dy * xhat).sum(dim=axes)


def normalized(x: Tensor, mean: Tensor, invstd: Tensor) -> Tensor:
    """x̂ recomputed from the saved input (cheaper to keep x than a second full tensor)."""
    nd = x.dim()
    acc = accumulate_dtype(x.dtype)
    return (as_dtype(x, acc) - _per_channel(as_dtype(mean, acc), nd)).mul_(
        _per_channel(as_dtype(invstd, acc), nd)
    )


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
    """Move 3, backward: the input gradient (written into ``xhat``'s buffer when it can be).

    With batch statistics, μ and σ² depend on every x, so
    dx = γ·invstd·(dy − Σdy/m − x̂·Σ(dy·x̂)/m);  with running statistics they are constants and
    dx = γ·invstd·dy.
    """
    nd = dy.dim()
    # γ/√(σ² + ε), (C,)
    scale = invstd if weight is None else invstd * as_dtype(weight, invstd.dtype)
    g = as_dtype(dy, xhat.dtype)
    if not batch_stats:
        return as_dtype(g * _per_channel(scale, nd), dy.dtype)
    # dx = x̂·(−scale·Σ(dy·x̂)/m) − scale·Σdy/m + scale·dy
    k_shift = _per_channel(-(sum_dy * scale) / count, nd)
    k_xhat = _per_channel(-(sum_dy_xhat * scale) / count, nd)
    try:  # in x̂'s buffer: no new tensor
        dx = xhat.mul_(k_xhat)
    except RuntimeError as e:
        # a batch of gradients (vmap over the backward: jacrev, batched gradcheck) cannot be
        # written into the one unbatched x̂; torch refuses before it writes anything
        if "vmap" not in str(e):
            raise
        dx = xhat * k_xhat
    dx.add_(k_shift).addcmul_(g, _per_channel(scale, nd))
    return as_dtype(dx, dy.dtype)


def forward(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    batch_stats: bool,
    momentum: float,
    eps: float,
    recorder: Recorder | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(y, μ, 1/√(σ²+ε)): reduce → update running statistics → apply, each step shown to a
    recorder as it is made."""
    if recorder is not None:
        recorder("input", input)
    if batch_stats:
        stats = forward_reduce(input)  # move 1: (count, μ_B, σ²_B) per channel
        mean, var = stats.mean, stats.var
        if stats.count > 0:
            update_running(running_mean, running_var, stats, momentum)  # move 3, record side
    else:
        assert running_mean is not None and running_var is not None
        acc = accumulate_dtype(input.dtype)
        # copies: the buffers may be updated in place before this output's backward runs
        mean, var = running_mean.to(acc, copy=True), running_var.to(acc, copy=True)
    if recorder is not None:
        recorder("mean", mean)
        recorder("var", var)
        if batch_stats and running_mean is not None and running_var is not None:
            recorder("running_mean", running_mean)
            recorder("running_var", running_var)
    invstd = torch.sqrt(var + eps).reciprocal_()  # 1/√(σ² + ε), (C,): what 1.0/t computes
    output = forward_apply(input, mean, invstd, weight, bias, recorder)  # move 3
    return output, mean, invstd


def backward(
    grad_output: Tensor,
    input: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    invstd: Tensor,
    batch_stats: bool,
    need_input: bool,
) -> tuple[Tensor | None, Tensor, Tensor]:
    """(dx or None, Σdy, Σdy·x̂): x̂ recomputed, move 1 backward, then move 3 backward."""
    xhat = normalized(input, mean, invstd)
    sum_dy, sum_dy_xhat = backward_reduce(grad_output, xhat)
    grad_input = None
    if need_input:
        count = input.numel() // max(input.shape[1], 1)
        grad_input = backward_apply(
            grad_output, xhat, invstd, weight, sum_dy, sum_dy_xhat, count, batch_stats
        )
    return grad_input, sum_dy, sum_dy_xhat
