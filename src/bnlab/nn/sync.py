"""``SyncBatchNorm``: batch norm over the global batch of every process, on CPU and GPU alike.

torch's own ``nn.SyncBatchNorm`` refuses CPU tensors; this one runs wherever
``torch.distributed`` does (gloo on CPU, NCCL on GPU).  It is an instance of torch's class, so
code that finds BN layers by type finds it, and it is built from the four moves:

1. each rank reduces its own batch (move 1);
2. the ranks combine (count, mean, M2) with Chan's formula (move 2, :mod:`bnlab.distributed`);
3. each rank updates the running statistics with the global batch's and normalizes its own
   part (move 3);

and backward all-reduces Σdy and Σdy·x̂, so that dx is the gradient of the global batch's
loss.  dγ and dβ are returned per rank (this rank's part of the sum), as torch's are, for
DistributedDataParallel to reduce with every other parameter's gradient.

Outside training, without an initialised process group, or with a world of one process, it is
bnlab's ordinary batch norm.  A rank with an empty batch still joins every collective (it must
still call backward, as with torch's, for example through a loss of ``y.sum() * 0``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .. import distributed
from ..backends import torch_ref
from ..checks import check_arguments
from ..errors import BNValueError
from ..functional import batch_norm
from ..stats import Stats, accumulate_dtype, reduce, update_running
from .batchnorm import _BNLab


class _SyncBatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        input: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        momentum: float,
        eps: float,
        group: Any,
        timeout: float,
    ) -> Tensor:
        acc = accumulate_dtype(input.dtype)
        channels = input.shape[1]
        if input.numel():
            local = reduce(input)
        else:
            zeros = torch.zeros(channels, dtype=acc, device=input.device)
            local = Stats(0, zeros, zeros.clone())
        total = distributed.global_stats(local, group, timeout, input.device)
        if total.count <= 1:  # the same count on every rank: all raise alike
            raise BNValueError(
                "Expected more than 1 value per channel when training, got "
                f"{total.count} over all ranks (this rank's input size {tuple(input.shape)})"
            )
        mean = total.mean.to(acc).to(input.device)
        var = total.var.to(acc).to(input.device)
        if total.count > 1:
            update_running(running_mean, running_var, Stats(total.count, mean, var), momentum)
        invstd = torch.sqrt(var + eps).reciprocal_()
        if input.numel():
            out = torch_ref.forward_apply(input, mean, invstd, weight, bias)
        else:
            out = input.clone()
        ctx.save_for_backward(input, weight, mean, invstd)
        ctx.count, ctx.group, ctx.timeout = total.count, group, timeout
        ctx.bias_dtype = None if bias is None else bias.dtype
        return out

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        input, weight, mean, invstd = ctx.saved_tensors
        channels = input.shape[1]
        if input.numel():
            xhat = torch_ref.normalized(input, mean, invstd)
            sum_dy, sum_dy_xhat = torch_ref.backward_reduce(grad_output, xhat)
        else:
            xhat = None
            sum_dy = torch.zeros(channels, dtype=mean.dtype, device=input.device)
            sum_dy_xhat = torch.zeros_like(sum_dy)
        packed = torch.cat([sum_dy, sum_dy_xhat]).double()
        total = distributed.all_reduce_sum(
            packed, ctx.group, "all_reduce of the gradient sums", ctx.timeout
        ).to(mean.dtype).to(input.device)
        grad_input = None
        if ctx.needs_input_grad[0]:
            if xhat is None:
                grad_input = torch.zeros_like(input)
            else:
                grad_input = torch_ref.backward_apply(
                    grad_output, xhat, invstd, weight, total[:channels], total[channels:],
                    ctx.count, True,
                )  # fmt: skip
        grad_weight = (
            sum_dy_xhat.to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        )
        grad_bias = (
            sum_dy.to(ctx.bias_dtype)
            if ctx.bias_dtype is not None and ctx.needs_input_grad[2]
            else None
        )
        return grad_input, grad_weight, grad_bias, None, None, None, None, None, None


class SyncBatchNorm(nn.SyncBatchNorm):
    """Batch norm over every process's batch; torch's signature, and it is one of torch's.

    ``timeout`` (keyword, seconds, default 60): how long a collective may wait for the other
    ranks before it is an error; ``backend`` is the kernel for the local (unsynced) path.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
        timeout: float = distributed.DEFAULT_TIMEOUT,
        backend: str = "auto",
    ) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 0:
            raise BNValueError(
                "SyncBatchNorm: expected num_features to be a non-negative int "
                f"(got {num_features!r})"
            )
        if not (isinstance(timeout, int | float) and timeout > 0):
            raise BNValueError(f"SyncBatchNorm: expected timeout > 0 seconds (got {timeout!r})")
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, process_group, device, dtype
        )
        if not bias and affine:
            self.register_parameter("bias", None)
        self.timeout = float(timeout)
        self.backend = backend

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise BNValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        # the same momentum factor, counting and buffers as bnlab's BatchNorm*d
        factor, counting, use_batch_stats, running_mean, running_var = _BNLab._state(self)
        if not (use_batch_stats and distributed.active(self.process_group)):
            out = batch_norm(
                input, running_mean, running_var, self.weight, self.bias, use_batch_stats,
                factor, self.eps, backend=self.backend,
            )  # fmt: skip
        else:
            if input.numel():  # every check first, before any collective or state change
                check_arguments(
                    input, running_mean, running_var, self.weight, self.bias, True, factor,
                    self.eps, local_batch=False,
                )  # fmt: skip
            out = _SyncBatchNormFunction.apply(
                input, self.weight, self.bias, running_mean, running_var, factor, self.eps,
                self.process_group, self.timeout,
            )  # fmt: skip
        if counting:
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module: nn.Module, process_group: Any = None) -> nn.Module:
        """Every BatchNorm*d in ``module`` (torch's or bnlab's) → bnlab's SyncBatchNorm,
        sharing the same parameter and buffer tensors; torch's signature and semantics (a BN
        module itself is returned converted; others are converted in place)."""
        out = module
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls):
            out = cls(
                module.num_features, module.eps, module.momentum, module.affine,
                module.track_running_stats, process_group, bias=module.bias is not None,
                backend=getattr(module, "backend", "auto"),
            )  # fmt: skip
            if module.affine:
                with torch.no_grad():
                    out.weight = module.weight
                    out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
            if hasattr(module, "qconfig"):
                out.qconfig = module.qconfig
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
