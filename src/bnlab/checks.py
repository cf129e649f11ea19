"""Every check ``batch_norm`` makes, in torch's order, before any work or state change.

Each error names what was expected and what came, is a :class:`bnlab.BNLabError`, and is also
the builtin type torch raises for the same mistake (and carries torch's words where torch's
tests look for them), so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .errors import (
    BNRankError,
    BNRuntimeTypeError,
    BNRuntimeValueError,
    BNTypeError,
    BNUnsupportedDTypeError,
    BNValueError,
    shape_str,
)

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_input(input: Any) -> None:
    if not isinstance(input, Tensor):
        raise BNTypeError(
            f"batch_norm: expected input to be a torch.Tensor (got {type(input).__name__})"
        )
    if input.dim() < 2 and input.numel() > 0:
        raise BNRankError(
            "batch_norm: expected input of shape (N, C, ...) with at least 2 dimensions "
            f"(got {input.dim()}D input of shape {shape_str(input.shape)})"
        )


def _check_count(name: str, t: Any, input: Tensor) -> None:
    """``weight``/``bias``/``running_*``: a tensor of C elements (torch's words first)."""
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise BNTypeError(
            f"batch_norm: expected {name} to be a torch.Tensor or None (got {type(t).__name__})"
        )
    channels = input.shape[1]
    if t.numel() != channels:
        raise BNRuntimeValueError(
            f"{name} should contain {channels} elements not {t.numel()}: batch_norm expected "
            f"{name} of shape ({channels},), one value per channel of the input of shape "
            f"{shape_str(input.shape)} (got {name} of shape {shape_str(t.shape)})"
        )
    if name.startswith("running") and t.dim() != 1:
        raise BNRuntimeValueError(
            f"batch_norm: expected {name} of shape ({channels},) (got {shape_str(t.shape)})"
        )


def _check_dtypes(input: Tensor, per_channel: dict[str, Tensor | None]) -> None:
    """As torch on CPU: γ, β and the running statistics share one dtype, the input's (or
    float32 for a 16-bit input), and sit on the input's device."""
    if input.dtype not in _FLOATS:
        raise BNUnsupportedDTypeError(
            "batch_norm: expected a floating-point input (float16, bfloat16, float32 or float64) "
            f"(got {input.dtype})"
        )
    given = {k: t for k, t in per_channel.items() if t is not None}
    low = input.dtype in (torch.float16, torch.bfloat16)
    first = next(iter(given.values()), None)
    f32_params = low and first is not None and first.dtype == torch.float32
    ref = torch.float32 if f32_params else input.dtype
    for name, t in given.items():
        if t.dtype not in _FLOATS:
            raise BNRuntimeTypeError(
                f"batch_norm: expected {name} to be a floating-point tensor (got {t.dtype})"
            )
        if t.dtype != ref:
            also = " (or float32 for a 16-bit input)" if low else ""
            raise BNRuntimeTypeError(
                f"mixed dtype (CPU): all inputs must share same datatype: batch_norm expected "
                f"{name} of dtype {ref}{also} like the input ({input.dtype}) and every other "
                f"per-channel tensor (got {t.dtype})"
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
    *,
    local_batch: bool = True,
) -> None:
    """Every check ``batch_norm`` makes, in torch's order, before any work or state change.

    ``local_batch=False`` (SyncBatchNorm): the batch statistics are the global batch's, so one
    value per channel on this rank is no error here; the global count is checked later.

    Raises BNValueError/BNTypeError, which are also the builtin type torch raises for the same
    mistake.  An input with no elements is only checked as torch checks one (batch size and ε):
    there is nothing to normalize.
    """
    _check_input(input)
    if training and local_batch and input.dim() >= 2:
        _verify_batch_size(input.size())
    if not _is_real(eps):
        raise BNTypeError(f"batch_norm: expected eps to be a number (got {type(eps).__name__})")
    eps = float(eps)
    if training and eps <= 0.0:
        raise BNValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise BNValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if not isinstance(training, bool):  # as torch's argument parser: a bool, not 1 or None
        raise BNTypeError(
            f"batch_norm(): argument 'training' must be bool, not {type(training).__name__}"
        )
    if not _is_real(momentum):
        raise BNTypeError(
            f"batch_norm(): argument 'momentum' must be float, not {type(momentum).__name__}"
        )
    if input.numel() == 0:
        return
    if not training and running_mean is None:
        raise BNRuntimeValueError(
            "running_mean must be defined in evaluation mode "
            "(pass running_mean and running_var, or training=True)"
        )
    per_channel = {
        "running_mean": running_mean,
        "running_var": running_var,
        "weight": weight,
        "bias": bias,
    }
    for name, t in per_channel.items():
        _check_count(name, t, input)
    if (running_mean is None) != (running_var is None):  # torch: ValueError or RuntimeError
        raise BNRuntimeValueError(
            "running_mean and running_var must either both be None or neither be None"
        )
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.requires_grad and torch.is_grad_enabled():
            raise BNRuntimeValueError(
                f"The function 'batch_norm' is not differentiable with respect to argument "
                f"'{name}'. This input cannot have requires_grad True."
            )
    _check_dtypes(input, per_channel)
