"""``BatchNormFunction``: the four moves in one ``torch.autograd.Function`` that torch.func sees.

Forward: reduce → update running statistics → apply, through a backend's kernels.  It returns
the output and, as outputs autograd does not differentiate, the per-channel μ and 1/√(σ² + ε)
the backward needs (``setup_context`` keeps them), so that the Function has the form torch.func
requires and works under ``grad``, ``vmap``, ``jvp``, ``jacrev``, ``jacfwd`` and
``functional_call``.

* ``backward``: the analytic gradient.  First order it runs the kernels; while a graph of the
  backward is being built (double backward) it uses :func:`bnlab.derivatives.backward_graph`,
  whose every op is differentiable.
* ``jvp``: forward-mode AD from :func:`bnlab.derivatives.jvp`.
* ``vmap``: a batch of B independent batch norms is one batch norm over B·C channels: the
  vmapped dimension is folded into the channel axis, one kernel call for the whole batch.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from . import backends, derivatives
from .errors import BNRuntimeValueError
from .record import current_recorder

# torch's own words for the vmap mistake: a batch of inputs updating one set of buffers
UNBATCHED_RUNNING_STATS = (
    "Batch norm got a batched tensor as input while the running_mean or running_var, which will "
    "be updated in place, were not batched. If you are using a module and do not need eval "
    "mode, please set `track_running_stats` to be False. If you are using a prebuilt module "
    "and do not need eval mode, please see torch.func.replace_all_batch_norm_modules_"
)


try:  # torch's own checks inside Function.apply, used by the cheaper apply below
    from torch._functorch.utils import unwrap_dead_wrappers as _unwrap_dead_wrappers

    _transforms_active = torch._C._are_functorch_transforms_active
except (ImportError, AttributeError):  # another torch: use its apply unchanged
    _unwrap_dead_wrappers = None  # type: ignore[assignment]
    _transforms_active = None  # type: ignore[assignment]


def _in_transform() -> bool:
    """Whether a torch.func transform (vmap, grad, jvp, …) is running around this call."""
    return True if _transforms_active is None else bool(_transforms_active())


class BatchNormFunction(torch.autograd.Function):
    """(output, μ, 1/√(σ²+ε)) = batch norm of ``input``; running statistics updated in place."""

    @classmethod
    def apply(cls, *args: Any) -> Any:  # type: ignore[override]
        """torch's ``Function.apply``, less its per-call ``inspect.signature`` bind.

        With ``setup_context`` defined, torch binds the arguments to ``forward``'s signature on
        every call (about 35 µs, more than a small batch norm itself); bnlab always passes all
        nine positionally, so outside torch.func transforms it goes straight to the C++ apply,
        as torch's own code then does.
        """
        if _unwrap_dead_wrappers is None or _in_transform():
            return super().apply(*args)
        return super(torch.autograd.Function, cls).apply(*_unwrap_dead_wrappers(args))

    @staticmethod
    def forward(  # type: ignore[override]
        input: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        batch_stats: bool,
        momentum: float,
        eps: float,
        kernel: ModuleType,
    ) -> tuple[Tensor, Tensor, Tensor]:
        # reduce → update running statistics → apply (a recorder sees each step)
        return kernel.forward(
            input, weight, bias, running_mean, running_var, batch_stats, momentum, eps,
            current_recorder(),
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        saved = setup_context(ctx, inputs, output)
        ctx.mark_non_differentiable(*output[1:])
        ctx.save_for_forward(*saved)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor, *_unused: Any) -> tuple[Tensor | None, ...]:
        grads = backward(ctx, grad_output)
        return *grads, *(None,) * 6

    @staticmethod
    def jvp(
        ctx: Any,
        input_t: Tensor | None,
        weight_t: Tensor | None,
        bias_t: Tensor | None,
        running_mean_t: Tensor | None,
        running_var_t: Tensor | None,
        *_constants: Any,
    ) -> tuple[Tensor, Tensor, Tensor]:
        # running statistics are constants here: torch.autograd.forward_ad refuses dual ones
        # before the call (bnlab.functional), and torch.func's tangents of them are ignored
        input, weight, mean, invstd = ctx.saved_tensors
        out_t, _, _ = derivatives.jvp(
            input, weight, mean, invstd, ctx.batch_stats, input_t, weight_t, bias_t
        )
        return out_t, None, None  # μ and 1/√(σ²+ε) are not differentiable outputs

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], *args: Any) -> tuple[Any, Any]:
        input, weight, bias, running_mean, running_var, batch_stats, momentum, eps, kernel = args
        x_dim, w_dim, b_dim, rm_dim, rv_dim = in_dims[:5]
        B = info.batch_size
        if batch_stats and running_mean is not None and (rm_dim is None or rv_dim is None):
            raise BNRuntimeValueError(UNBATCHED_RUNNING_STATS)
        # (B, N, C, *S) → (N, B·C, *S): sample b's channel c becomes channel b·C + c
        x = input.movedim(x_dim, 0) if x_dim is not None else input.expand(B, *input.shape)
        N, C, rest = x.shape[1], x.shape[2], x.shape[3:]
        folded = x.movedim(0, 1).reshape(N, B * C, *rest)

        def per_channel(t: Tensor | None, dim: int | None) -> Tensor | None:
            if t is None:
                return None
            return t.movedim(dim, 0).reshape(B * C) if dim is not None else t.repeat(B)

        stats = [running_mean, running_var]
        flat = [per_channel(t, d) for t, d in zip(stats, (rm_dim, rv_dim), strict=True)]
        out, mean, invstd = BatchNormFunction.apply(
            folded,
            per_channel(weight, w_dim),
            per_channel(bias, b_dim),
            *flat,
            batch_stats,
            momentum,
            eps,
            kernel,
        )
        if batch_stats:  # the update went into (B·C,) tensors: back into the caller's buffers
            for t, d, f in zip(stats, (rm_dim, rv_dim), flat, strict=True):
                if t is not None and f is not None:  # C·B values: copy, view or not (nested
                    t.movedim(d, 0).copy_(f.reshape(B, C))  # vmap has no data pointers)
        out = out.reshape(N, B, C, *rest)
        return (out, mean.reshape(B, C), invstd.reshape(B, C)), (1, 0, 0)


def setup_context(
    ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]
) -> tuple[Tensor | None, ...]:
    """What the backward keeps: x, γ, μ, 1/√(σ²+ε) and the settings (the op shares this)."""
    input, weight, bias, _, _, batch_stats, _, eps, kernel = inputs
    _, mean, invstd = output
    saved = (input, weight, mean, invstd)
    ctx.save_for_backward(*saved)
    ctx.batch_stats, ctx.eps, ctx.kernel = batch_stats, eps, kernel
    ctx.bias_dtype = None if bias is None else bias.dtype
    ctx.count = input.numel() // max(input.shape[1], 1)
    return saved


def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """(dx, dγ, dβ): the kernels first order, differentiable ops while a graph is being built."""
    input, weight, mean, invstd = ctx.saved_tensors
    need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
    kernel = ctx.kernel
    if isinstance(kernel, str):  # the op keeps the backend's name, the Function the module
        kernel = backends.select(kernel, input)
    grad_input = None
    if torch.is_grad_enabled():  # a graph of this backward is wanted: differentiable ops
        grad_input, sum_dy_xhat, sum_dy = derivatives.backward_graph(
            grad_output, input, weight, mean, invstd, ctx.batch_stats, ctx.eps
        )
    else:  # Σdy, Σdy·x̂ (dβ and dγ), then dx
        grad_input, sum_dy, sum_dy_xhat = kernel.backward(
            grad_output, input, weight, mean, invstd, ctx.batch_stats, need_input
        )
    grad_weight = sum_dy_xhat.to(weight.dtype) if weight is not None and need_weight else None
    grad_bias = sum_dy.to(ctx.bias_dtype) if ctx.bias_dtype is not None and need_bias else None
    return (grad_input if need_input else None), grad_weight, grad_bias


def empty_output(input: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """An input with no elements: an empty output of its dtype, still joined to γ's and β's
    graph (their gradients are zeros), as torch returns one; nothing else is read or changed."""
    out = input.clone()
    if isinstance(weight, Tensor) and weight.numel() > 0:
        out = out * weight.reshape(-1)[0]
    if isinstance(bias, Tensor) and bias.numel() > 0:
        out = out + bias.reshape(-1)[0]
    return out


def uses_batch_stats(training: bool, running_mean: Tensor | None) -> bool:
    """Batch statistics in training, and in eval when there are no running ones to use."""
    return bool(training) or running_mean is None


def flat(t: Tensor | None) -> Tensor | None:
    """γ or β as (C,): torch takes them in any shape with C elements."""
    return t if t is None or t.dim() == 1 else t.reshape(-1)
