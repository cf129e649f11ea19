"""The fused CPU backend: each direction of batch norm in one compiled call (``kernels.cpp``).

Forward: reduce → running-statistics update → apply, one call that writes y, μ and 1/√(σ²+ε).
Backward: Σdy, Σdy·x̂ and dx in one call.  Where the portable backend makes several passes
over memory and a temporary per step, these read x once per reduction and once per apply,
and, for a contiguous tensor whose channels divide among the threads, apply each channel
straight after reducing it, while it is still in the core's cache.

It takes dense CPU tensors of float32, float64, bfloat16 or float16, contiguous or
channels-last; anything else is made dense first (or, for a layout the kernels cannot read,
e.g. a tensor of another device, handed to the portable backend).  Two callers always get the
portable backend, step by step: a recorder (``bnlab.explain`` needs each intermediate, x̂
included) and a batch of gradients (vmap over the backward: jacrev, batched gradcheck), whose
tensors have no memory of their own to hand to a kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...record import Recorder
from ...stats import Stats, as_dtype, update_running
from .. import torch_ref
from .build import KernelsUnavailable, available, library

name = "cpu-fused"

__all__ = ["KernelsUnavailable", "available", "backward", "forward", "supports"]

_DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.bfloat16: 2, torch.float16: 3}
# below this many elements more threads cost more than they save: measured with
# `bnlab bench --crossover` (docs/results/speed.md), 2 threads lose at 32K elements and win at
# 61K, in both strategies (by channels and by rows)
PARALLEL_MIN_ELEMENTS = 3 << 14

# tensors that stand for others have no memory of their own to hand to a kernel: torch.func's
# wrappers (vmap's batches, grad's tracking tensors, functionalization's) and the legacy vmap's
# batches (batched gradcheck)
_never = lambda t: False  # noqa: E731  -- an older torch without one of the checks
_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", _never)
_legacy_batched = getattr(torch._C._functorch, "is_legacy_batchedtensor", _never)
_PLAIN_TYPES = (Tensor, nn.Parameter)


def _plain(t: Tensor) -> bool:
    """A tensor of type Tensor (or Parameter) with memory of its own, not a wrapper of another."""
    return type(t) in _PLAIN_TYPES and not _wrapped(t) and not _legacy_batched(t)


def supports(x: Tensor) -> bool:
    """Whether the kernels can take ``x``: a plain CPU tensor of a dtype they know."""
    return x.dtype in _DTYPE_CODES and x.is_cpu and x.dim() >= 2 and _plain(x)


def _layout(x: Tensor) -> tuple[Tensor, int, int, int, int]:
    """(dense x, layout, N, C, S): layout 0 reads (N, C, S) rows, 1 reads (N·S, C) rows."""
    n, c = x.shape[0], x.shape[1]
    s = x.numel() // max(n * c, 1)
    if x.is_contiguous():
        return x, (1 if s == 1 else 0), n, c, s
    if (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)) or (
        x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d)
    ):
        return x, 1, n, c, s
    return x.contiguous(), (1 if s == 1 else 0), n, c, s


def _like(t: Tensor, dense: Tensor, layout: int) -> Tensor:
    """``t`` (a gradient) dense in the same layout and dtype as ``dense``."""
    t = as_dtype(t, dense.dtype)
    if layout == 0 or dense.dim() == 2:
        return t.contiguous()
    fmt = torch.channels_last if dense.dim() == 4 else torch.channels_last_3d
    return t.contiguous(memory_format=fmt) if dense.dim() in (4, 5) else t.contiguous()


def _per_channel(t: Tensor | None, acc: torch.dtype) -> Tensor | None:
    return None if t is None else as_dtype(t, acc).contiguous()


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(numel: int) -> int:
    """Threads for one call: torch's, or 1 where sharing the work would not pay."""
    return torch.get_num_threads() if numel >= PARALLEL_MIN_ELEMENTS else 1


def _fallback(*tensors: Tensor | None) -> bool:
    """Whether any of ``tensors`` is one the kernels cannot read (checked before any call)."""
    for t in tensors:  # a loop, not any(genexpr): this runs twice per batch norm
        if t is not None and (
            type(t) not in _PLAIN_TYPES or _wrapped(t) or _legacy_batched(t)
        ):
            return True
    return False


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
    """(y, μ, 1/√(σ²+ε)), running statistics updated in place: one kernel call."""
    if (
        recorder is not None
        or not supports(input)
        or _fallback(weight, bias, running_mean, running_var)
    ):
        return torch_ref.forward(
            input, weight, bias, running_mean, running_var, batch_stats, momentum, eps, recorder
        )
    code = _DTYPE_CODES[input.dtype]
    x, layout, n, c, s = _layout(input)
    acc = torch.float64 if code == 1 else torch.float32
    # x is dense: its layout, with torch's strides where x is both layouts (size-1 dims)
    y = torch.empty_like(x, memory_format=torch_ref.memory_format(x))
    mean = torch.empty(c, dtype=acc)
    invstd = torch.empty(c, dtype=acc)
    var = rm = rv = None
    if not batch_stats:  # read only
        rm, rv = _per_channel(running_mean, acc), _per_channel(running_var, acc)
    elif running_mean is not None and running_var is not None:
        if (
            running_mean.dtype == acc == running_var.dtype
            and running_mean.is_contiguous()
            and running_var.is_contiguous()
        ):
            rm, rv = running_mean, running_var  # updated in place by the kernel
        else:  # another dtype: the kernel returns σ², the update happens here
            var = torch.empty(c, dtype=acc)
    w, b = _per_channel(weight, acc), _per_channel(bias, acc)  # locals outlive the call
    library().bnlab_forward(
        code, layout, x.data_ptr(), y.data_ptr(), n, c, s,
        _ptr(w), _ptr(b), _ptr(rm), _ptr(rv), int(batch_stats), momentum, eps,
        mean.data_ptr(), invstd.data_ptr(), _ptr(var), _threads(x.numel()),
    )  # fmt: skip
    if var is not None:
        update_running(running_mean, running_var, Stats(n * s, mean, var), momentum)
    return y, mean, invstd


def backward(
    grad_output: Tensor,
    input: Tensor,
    weight: Tensor | None,
    mean: Tensor,
    invstd: Tensor,
    batch_stats: bool,
    need_input: bool,
) -> tuple[Tensor | None, Tensor, Tensor]:
    """(dx or None, Σdy, Σdy·x̂): one kernel call."""
    if not supports(input) or _fallback(grad_output, weight, mean, invstd):
        return torch_ref.backward(grad_output, input, weight, mean, invstd, batch_stats, need_input)
    code = _DTYPE_CODES[input.dtype]
    x, layout, n, c, s = _layout(input)
    acc = torch.float64 if code == 1 else torch.float32
    dy = _like(grad_output, x, layout)
    dx = torch.empty_like(x, memory_format=torch_ref.memory_format(x)) if need_input else None
    sum_dy = torch.empty(c, dtype=acc)
    sum_dy_xhat = torch.empty(c, dtype=acc)
    # locals: each must outlive the call that reads its memory
    w, mu, inv = _per_channel(weight, acc), _per_channel(mean, acc), _per_channel(invstd, acc)
    library().bnlab_backward(
        code, layout, x.data_ptr(), dy.data_ptr(), _ptr(dx), n, c, s, _ptr(w), _ptr(mu),
        _ptr(inv), int(batch_stats), sum_dy.data_ptr(), sum_dy_xhat.data_ptr(),
        _threads(x.numel()),
    )  # fmt: skip
    return dx, sum_dy, sum_dy_xhat
