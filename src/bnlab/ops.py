"""``torch.ops.bnlab.batch_norm``: bnlab's batch norm as a registered operator.

TorchScript cannot call a Python ``autograd.Function``, and a compiler would rather see one
opaque op than trace a Python function: both call this operator.  It runs the same checks and
kernels as :func:`bnlab.functional.batch_norm`, has a fake (meta) implementation for tracing,
and its autograd formula is the Function's own (:func:`bnlab.autograd.backward`).  Eager calls
keep using the Function directly, which is cheaper per call and is what ``torch.func`` needs.

An operator with an autograd formula must be functional, so this one does not update the
running statistics in place: it returns their updated values (5 outputs: y, μ, 1/√(σ²+ε),
running_mean, running_var; the last two empty when there are none to update), and
:func:`batch_norm` copies them back.

Registered when torch has ``torch.library.custom_op`` (torch ≥ 2.4); ``OP`` is None otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import autograd, backends
from .backends.torch_ref import memory_format
from .checks import check_arguments
from .stats import accumulate_dtype

NAME = "bnlab::batch_norm"


def _impl(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    check_arguments(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if input.numel() == 0:
        empty = input.new_empty((0,), dtype=accumulate_dtype(input.dtype))
        out = autograd.empty_output(input, weight, bias).detach()
        return out, *(empty.clone() for _ in range(4))
    batch_stats = autograd.uses_batch_stats(training, running_mean)
    updating = batch_stats and running_mean is not None and running_var is not None
    new_mean = running_mean.clone() if updating else None  # type: ignore[union-attr]
    new_var = running_var.clone() if updating else None  # type: ignore[union-attr]
    out, mean, invstd = autograd.BatchNormFunction.forward(
        input,
        autograd.flat(weight),
        autograd.flat(bias),
        new_mean if updating else running_mean,
        new_var if updating else running_var,
        batch_stats,
        momentum,
        eps,
        backends.select(backend, input),
    )
    nothing = input.new_empty((0,), dtype=mean.dtype)
    return (
        out,
        mean,  # never an input's alias: computed in training, a copy of the buffer in eval
        invstd,
        nothing if new_mean is None else new_mean,
        nothing.clone() if new_var is None else new_var,
    )


def _fake(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    channels = input.shape[1] if input.dim() >= 2 and input.numel() else 0
    stat = input.new_empty((channels,), dtype=accumulate_dtype(input.dtype))
    updating = training and running_mean is not None and channels
    new_mean = torch.empty_like(running_mean) if updating else stat.new_empty((0,))
    new_var = torch.empty_like(running_var) if updating else stat.new_empty((0,))
    out = torch.empty_like(input, memory_format=memory_format(input))  # as the kernel's
    return out, stat, torch.empty_like(stat), new_mean, new_var


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
    input, weight, bias, running_mean, running_var, training, momentum, eps, backend = inputs
    batch_stats = autograd.uses_batch_stats(training, running_mean)
    autograd.setup_context(
        ctx,
        (input, weight, bias, running_mean, running_var, batch_stats, momentum, eps, backend),
        output[:3],
    )


def _backward(ctx: Any, grad_output: Tensor, *_unused: Any) -> tuple[Tensor | None, ...]:
    if ctx.count == 0 or ctx.saved_tensors[0].numel() == 0:
        input, weight = ctx.saved_tensors[:2]
        return (
            torch.zeros_like(input),
            None if weight is None else torch.zeros_like(weight),
            None if ctx.bias_dtype is None else torch.zeros_like(weight),
            *(None,) * 6,
        )
    return *autograd.backward(ctx, grad_output), *(None,) * 6


def _register() -> Any:
    if not hasattr(torch.library, "custom_op"):
        return None
    op = torch.library.custom_op(NAME, mutates_args=())(_impl)
    op.register_fake(_fake)
    op.register_autograd(_backward, setup_context=_setup_context)
    return op


OP = _register()


def batch_norm(
    input: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    backend: str,
) -> Tensor:
    """The operator, then the running statistics' new values copied into the buffers."""
    out, _, _, new_mean, new_var = torch.ops.bnlab.batch_norm(
        input, weight, bias, running_mean, running_var, training, momentum, eps, backend
    )
    if running_mean is not None and running_var is not None and new_mean.numel() > 0:
        with torch.no_grad():  # detached too: an exported graph keeps no no_grad around it
            running_mean.copy_(new_mean.detach())
            running_var.copy_(new_var.detach())
    return out
