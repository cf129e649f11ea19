"""``batch_norm`` with ``torch.nn.functional.batch_norm``'s signature, built from the four moves.

Three layers, as in torch: this stateless function validates its arguments (every check before
any state changes, in torch's order) and hands off to :class:`bnlab.autograd.BatchNormFunction`,
one ``torch.autograd.Function`` whose forward runs reduce → update running statistics → apply,
and whose backward is the analytic batch-norm gradient — no autograd through means and
variances.  A recorder (move 4) reaches the kernels through :func:`bnlab.record.recording`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.forward_ad import unpack_dual
from torch.overrides import handle_torch_function, has_torch_function_variadic

from . import backends, ops
from .autograd import BatchNormFunction, empty_output, flat, uses_batch_stats
from .checks import check_arguments
from .errors import BNRuntimeValueError

__all__ = ["batch_norm", "check_arguments"]

# torch.compile, torch.export and torch.jit.trace see one opaque op rather than tracing into a
# Python autograd.Function (whose in-place updates of the buffers would be recorded twice)
_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


def _dual(*tensors: Tensor | None) -> bool:
    """Whether any of ``tensors`` carries a forward-mode tangent (torch.autograd.forward_ad)."""
    return any(t is not None and unpack_dual(t).tangent is not None for t in tensors)


def _batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    training: bool,
    momentum: float | None,
    eps: float,
    backend: str,
) -> Tensor:
    """``batch_norm`` after the torch-function hook: checks, then the one autograd.Function."""
    check_arguments(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if input.numel() == 0:
        return empty_output(input, weight, bias)
    batch_stats = uses_batch_stats(training, running_mean)
    if _dual(running_mean, running_var):  # forward AD: the buffers are not differentiable
        if not batch_stats and _dual(input, weight, bias):
            raise BNRuntimeValueError(
                "batch_norm is not differentiable wrt running_mean and running_var, they cannot "
                "have forward grad defined"
            )
        # as torch: their tangents neither reach the output nor change (primals share storage)
        running_mean = unpack_dual(running_mean).primal  # type: ignore[arg-type]
        running_var = unpack_dual(running_var).primal  # type: ignore[arg-type]
    momentum, eps = float(momentum), float(eps)  # type: ignore[arg-type]  # checked numbers
    if ops.OP is not None and (_compiling() or torch.jit.is_tracing()):
        return ops.batch_norm(
            input, weight, bias, running_mean, running_var, batch_stats, momentum, eps, backend
        )
    output, _, _ = BatchNormFunction.apply(
        input,
        flat(weight),
        flat(bias),
        running_mean,
        running_var,
        batch_stats,
        momentum,
        eps,
        backends.select(backend, input),
    )
    return output


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
    if has_torch_function_variadic(input, running_mean, running_var, weight, bias):
        # fx's Proxy, tensor subclasses and torch-function modes see one call of this function
        return handle_torch_function(
            batch_norm,
            (input, running_mean, running_var, weight, bias),
            input,
            running_mean,
            running_var,
            weight=weight,
            bias=bias,
            training=training,
            momentum=momentum,
            eps=eps,
            backend=backend,
        )
    return _batch_norm(
        input, running_mean, running_var, weight, bias, training, momentum, eps, backend
    )
