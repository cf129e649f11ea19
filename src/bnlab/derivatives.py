"""Batch norm's derivatives as differentiable torch expressions, for the transforms.

The first-order backward of :mod:`bnlab.autograd` runs the kernels (moves 1 and 3 of the
backward), lean and not itself differentiable.  These are the same formulas written with
out-of-place torch ops only, so that autograd, ``vmap`` and forward-mode AD can see through
them:

* ``backward_graph``: the backward while a graph of it is being built (``create_graph=True``,
  ``torch.func.grad`` of a gradient, MAML's meta-gradient, a gradient penalty).  With batch
  statistics μ and σ² are recomputed from the saved input, so their dependence on every x is in
  the graph and the second derivative is the true one.
* ``jvp``: forward-mode AD (``torch.func.jvp``, ``jacfwd``, ``torch.autograd.forward_ad``).

With batch statistics (m values per channel, x̂ = (x − μ)·s, s = 1/√(σ² + ε)):

    dx = γ·s·(dy − mean(dy) − x̂·mean(dy·x̂)),   dγ = Σ dy·x̂,   dβ = Σ dy
    ẏ  = γ·s·(ẋ − mean(ẋ) − x̂·mean(x̂·ẋ)) + γ̇·x̂ + β̇

With running statistics μ and s are constants: dx = γ·s·dy and ẏ = γ·s·ẋ + γ̇·x̂ + β̇.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .stats import accumulate_dtype, reduce_axes


def _per_channel(v: Tensor, ndim: int) -> Tensor:
    """(C,) → (1, C, 1, ..., 1), broadcastable against an (N, C, *spatial) tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _normalized(
    x: Tensor, mean: Tensor, invstd: Tensor, batch_stats: bool, eps: float
) -> tuple[Tensor, Tensor]:
    """(x̂, s) in the accumulate dtype.  With batch statistics they are recomputed from x, so
    the graph holds their dependence on every x; with running statistics the saved μ and
    1/√(σ² + ε) (copies taken at the forward) are constants."""
    nd, axes = x.dim(), reduce_axes(x.dim())
    xa = x.to(accumulate_dtype(x.dtype))
    if batch_stats:
        centred = xa - xa.mean(dim=axes, keepdim=True)  # x − μ_B
        var = centred.square().mean(dim=axes, keepdim=True)  # σ²_B, (1, C, 1, ...)
        invstd_b = 1.0 / torch.sqrt(var + eps)
        return centred * invstd_b, invstd_b
    s = _per_channel(invstd.to(xa.dtype), nd)
    return (xa - _per_channel(mean.to(xa.dtype), nd)) * s, s


def backward_graph(
    grad_output: Tensor,
    input: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    invstd: Tensor,
    batch_stats: bool,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dγ, dβ) from differentiable ops only; dγ and dβ in the accumulate dtype.

    ``mean`` and ``invstd`` are what the forward saved (used as constants with running
    statistics, so both the first-order and this path see the statistics of the forward).
    """
    nd, axes = input.dim(), reduce_axes(input.dim())
    xhat, invstd = _normalized(input, mean, invstd, batch_stats, eps)
    g = grad_output.to(xhat.dtype)
    scale = invstd if weight is None else invstd * _per_channel(weight.to(xhat.dtype), nd)
    if batch_stats:
        dy_mean = g.mean(dim=axes, keepdim=True)
        dy_xhat_mean = (g * xhat).mean(dim=axes, keepdim=True)
        grad_input = scale * (g - dy_mean - xhat * dy_xhat_mean)
    else:
        grad_input = scale * g
    return grad_input.to(input.dtype), (g * xhat).sum(dim=axes), g.sum(dim=axes)


def jvp(
    input: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    invstd: Tensor,
    batch_stats: bool,
    input_t: Tensor | None,
    weight_t: Tensor | None,
    bias_t: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Tangents of (y, μ, s) given the tangents of x, γ and β (None: zero)."""
    nd, axes = input.dim(), reduce_axes(input.dim())
    acc = accumulate_dtype(input.dtype)
    xa = input.to(acc)
    mu, s = _per_channel(mean.to(acc), nd), _per_channel(invstd.to(acc), nd)
    xhat = (xa - mu) * s
    out = torch.zeros_like(xa)
    mean_t = torch.zeros_like(mean)
    invstd_t = torch.zeros_like(invstd)
    if input_t is not None:
        dx = input_t.to(acc)
        if batch_stats:
            dx_mean = dx.mean(dim=axes, keepdim=True)  # μ̇ = mean(ẋ)
            xhat_dx = (xhat * dx).mean(dim=axes, keepdim=True)  # mean(x̂·ẋ)
            dxhat = s * (dx - dx_mean - xhat * xhat_dx)
            mean_t = dx_mean.reshape(mean.shape).to(mean.dtype)
            invstd_t = (-s * s * xhat_dx).reshape(invstd.shape).to(invstd.dtype)  # ṡ = −s²·mean(x̂ẋ)
        else:
            dxhat = s * dx
        out = out + (dxhat if weight is None else dxhat * _per_channel(weight.to(acc), nd))
    if weight_t is not None:
        out = out + xhat * _per_channel(weight_t.to(acc), nd)
    if bias_t is not None:
        out = out + _per_channel(bias_t.to(acc), nd)
    return out.to(input.dtype), mean_t, invstd_t
