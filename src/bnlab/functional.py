"""``batch_norm`` with ``torch.nn.functional.batch_norm``'s signature, built from the four moves.

Three layers, as in torch: this stateless function validates its arguments (every check before
any state changes) and hands off to ``_BatchNormFunction``, one ``torch.autograd.Function`` whose
forward runs reduce → update running statistics → apply, and whose backward is the analytic
batch-norm gradient — no autograd through means and variances.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import backends
from .errors import (
    BNRankError,
    BNRuntimeTypeError,
    BNRuntimeValueError,
    BNTypeError,
    BNUnsupportedDTypeError,
    BNValueError,
    shape_str,
)
from .record import Recorder
from .stats import Stats, accumulate_dtype, update_running

__all__ = ["batch_norm"]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_input(input: Any) -> None:
    if not isinstance(input, Tensor):
        raise BNTypeError(
            f"batch_norm: expected input to be a torch.Tensor (got {type(input).__name__})"
        )
    if input.dtype not in _FLOATS:
        raise BNUnsupportedDTypeError(
            "batch_norm: expected a floating-point input (float16, bfloat16, float32 or float64) "
            f"(got {input.dtype})"
        )
    if input.dim() < 2:
        raise BNRankError(
            "batch_norm: expected input of shape (N, C, ...) with at least 2 dimensions "
            f"(got {input.dim()}D input of shape {shape_str(input.shape)})"
        )


def _check_per_channel(name: str, t: Any, input: Tensor) -> None:
    """``weight``/``bias``/``running_*``: a float tensor of C elements on the input's device."""
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise BNTypeError(
            f"batch_norm: expected {name} to be a torch.Tensor or None (got {type(t).__name__})"
        )
    channels = input.shape[1]
    if t.dim() != 1 or t.numel() != channels:
        raise BNRuntimeValueError(
            f"batch_norm: expected {name} of shape ({channels},), one value per channel of the "
            f"input of shape {shape_str(input.shape)} (got {name} of shape {shape_str(t.shape)})"
        )
    if t.dtype not in _FLOATS:
        raise BNRuntimeTypeError(
            f"batch_norm: expected {name} to be a floating-point tensor (got {t.dtype})"
        )
    if t.dtype != input.dtype and not (
        input.dtype in (torch.float16, torch.bfloat16) and t.dtype == torch.float32
    ):
        raise BNRuntimeTypeError(
            f"batch_norm: expected {name} of dtype {input.dtype} (or float32 for a 16-bit input), "
            f"like the input (got {t.dtype})"
        )
    if t.device != input.device:
        raise BNRuntimeValueError(
            f"batch_norm: expected {name} on the input's device {input.device} (got {t.device})"
        )


def _is_real(v: Any) -> bool:
    """A real number as torch takes one: int, float, numpy scalar or 0-d float tensor; not bool."""
    if isinstance(v, bool) or v is None:
        return False
    if isinstance(v, Tensor):
        return v.dim() == 0 and v.dtype.is_floating_point
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return not isinstance(v, str)


def _verify_batch_size(size: torch.Size) -> None:
    """Training needs at least two values per channel, or the variance is 0 and x̂ meaningless."""
    size_prods = size[0]
    for d in size[2:]:
        size_prods *= d
    if size_prods == 1:
        raise BNValueError(
            f"Expected more than 1 value per channel when training, got input size {size}"
        )


def check_arguments(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    training: bool,
    momentum: float | None,
    eps: float,
) -> None:
    """Every check ``batch_norm`` makes; raises BNValueError/BNTypeError before any work."""
    _check_input(input)
    if (running_mean is None) != (running_var is None):
        raise BNValueError(
            "running_mean and running_var must either both be None or neither be None"
        )
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        _check_per_channel(name, t, input)
    if not training and running_mean is None:
        raise BNRuntimeValueError(
            "running_mean must be defined in evaluation mode "
            "(pass running_mean and running_var, or training=True)"
        )
    if training:
        _verify_batch_size(input.size())
    if not _is_real(eps):
        raise BNTypeError(f"batch_norm: expected eps to be a number (got {type(eps).__name__})")
    eps = float(eps)
    if training and eps <= 0.0:
        raise BNValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise BNValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if training and running_mean is not None and not _is_real(momentum):
        raise BNTypeError(
            "batch_norm: expected momentum to be a number when training updates running statistics "
            f"(got {momentum!r})"
        )


class _BatchNormFunction(torch.autograd.Function):
    """Forward: reduce → update running statistics → apply.  Backward: the analytic gradient."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        input: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        batch_stats: bool,
        momentum: float,
        eps: float,
        kernel: ModuleType,
        recorder: Recorder | None,
    ) -> Tensor:
        if recorder is not None:
            recorder("input", input)
        if batch_stats:
            stats = kernel.forward_reduce(input)  # move 1: (count, μ_B, σ²_B) per channel
            mean, var = stats.mean, stats.var
            if stats.count > 0:
                update_running(running_mean, running_var, stats, momentum)  # move 3, record side
            count = stats.count
        else:
            assert running_mean is not None and running_var is not None
            acc = accumulate_dtype(input.dtype)
            # copies: the buffers may be updated in place before this output's backward runs
            mean, var = running_mean.to(acc, copy=True), running_var.to(acc, copy=True)
            stats = Stats(0, mean, var)
            count = input.numel() // max(input.shape[1], 1)
        if recorder is not None:
            recorder("mean", mean)
            recorder("var", var)
            if batch_stats and running_mean is not None and running_var is not None:
                recorder("running_mean", running_mean)
                recorder("running_var", running_var)
        invstd = 1.0 / torch.sqrt(var + eps)  # 1/√(σ² + ε), (C,)
        output = kernel.forward_apply(input, mean, invstd, weight, bias, recorder)  # move 3
        ctx.save_for_backward(input, weight, mean, invstd)
        ctx.batch_stats = batch_stats
        ctx.count = count
        ctx.kernel = kernel
        ctx.bias_dtype = None if bias is None else bias.dtype
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        input, weight, mean, invstd = ctx.saved_tensors
        kernel = ctx.kernel
        xhat = kernel.normalized(input, mean, invstd)
        sum_dy, sum_dy_xhat = kernel.backward_reduce(grad_output, xhat)  # Σdy, Σdy·x̂ per channel
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = kernel.backward_apply(
                grad_output, xhat, invstd, weight, sum_dy, sum_dy_xhat, ctx.count, ctx.batch_stats
            )
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = sum_dy_xhat.to(weight.dtype)  # dγ = Σdy·x̂
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = sum_dy.to(ctx.bias_dtype)  # dβ = Σdy
        return grad_input, grad_weight, grad_bias, None, None, None, None, None, None, None


def _batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    backend: str,
    recorder: Recorder | None,
) -> Tensor:
    """``batch_norm`` with an optional recorder (move 4), for :mod:`bnlab.explain`."""
    check_arguments(input, running_mean, running_var, weight, bias, training, momentum, eps)
    kernel = backends.select(backend, input)
    batch_stats = bool(training) or running_mean is None
    return _BatchNormFunction.apply(
        input,
        weight,
        bias,
        running_mean,
        running_var,
        batch_stats,
        float(momentum) if momentum is not None else 0.0,
        float(eps),
        kernel,
        recorder,
    )


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    backend: str = "auto",
) -> Tensor:
    """Batch normalization, a drop-in for :func:`torch.nn.functional.batch_norm`.

    Per channel c (dim 1), over every other axis of ``input``:

        μ_B = (1/m) Σ x,   σ²_B = (1/m) Σ (x − μ_B)²,   x̂ = (x − μ_B)/√(σ²_B + ε),   y = γ·x̂ + β

    In training (or when no running statistics are given) the batch's own μ_B and σ²_B are used,
    and ``running_mean``/``running_var``, if given, are updated in place with ``momentum``
    (``running_var`` tracks the unbiased σ²_B·m/(m − 1)).  Otherwise the running statistics
    normalize.  16-bit inputs are accumulated in float32 and returned in their own dtype.

    Args:
        input: (N, C, ...) floating-point tensor.
        running_mean, running_var: (C,) buffers, or both None.
        weight, bias: (C,) γ and β, or None for 1 and 0.
        training: use batch statistics and update the running ones.
        momentum: weight of the new batch in the running averages.
        eps: added to the variance for numerical stability.
        backend: kernel for moves 1 and 3; ``'auto'`` picks the fastest available.

    Raises:
        BNValueError / BNTypeError (subclasses of ValueError / TypeError) on any bad argument,
        before any running statistic is touched.
    """
    return _batch_norm(
        input, running_mean, running_var, weight, bias, training, momentum, eps, backend, None
    )
