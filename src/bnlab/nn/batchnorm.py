"""``BatchNorm1d/2d/3d``: torch's modules, with bnlab's batch norm inside.

Each class *is* its torch counterpart (``bnlab.nn.BatchNorm2d`` subclasses
``torch.nn.BatchNorm2d``, and so ``torch.nn.modules.batchnorm._BatchNorm``): the constructor,
parameters, buffers, ``state_dict`` keys, ``repr`` and ``reset_*`` methods are torch's own, so
code that finds BN layers by type — ``SyncBatchNorm.convert_sync_batchnorm``,
``torch.func.replace_all_batch_norm_modules_``, weight-decay and freezing utilities — finds
bnlab's.  Only ``forward`` is bnlab's, in three forms:

* eager: every check first (bnlab's errors), then :func:`bnlab.functional.batch_norm`;
* TorchScript (``torch.jit.script``): the same state logic calling the registered operator
  ``torch.ops.bnlab.batch_norm``;
* ``torch.fx.symbolic_trace``: one ``call_module`` node, as torch's own BN layers are leaves.

One deliberate difference: a call that fails leaves ``num_batches_tracked`` and the running
statistics untouched (torch counts the batch before it looks at the input).
"""

from __future__ import annotations

import inspect
import operator

import torch
from torch import Tensor, nn

from ..errors import BNRuntimeValueError, BNTypeError, BNValueError, shape_str
from ..functional import batch_norm

# torch 2.13 added a keyword-only ``bias=`` flag (and shows it in the repr); older torch has none.
TORCH_HAS_BIAS_FLAG = "bias" in inspect.signature(nn.BatchNorm1d.__init__).parameters


def _is_proxy(input: Tensor) -> bool:
    return isinstance(input, torch.fx.Proxy)


class _BNLab:
    """bnlab's constructor keywords and ``forward``, mixed into torch's BatchNorm classes.

    (``backend``, a str, is set in ``__init__``: TorchScript infers its type from the value.)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
        backend: str = "auto",
    ) -> None:
        name = type(self).__name__
        try:  # any integer torch takes, NumPy's included; 0 channels is allowed, as torch allows
            count = operator.index(num_features)
        except TypeError:
            count = -1
        if isinstance(num_features, bool) or count < 0:
            raise BNValueError(
                f"{name}: expected num_features to be a non-negative int (got {num_features!r})"
            )
        num_features = count
        flag = {"bias": bias} if TORCH_HAS_BIAS_FLAG else {}
        super().__init__(  # type: ignore[call-arg]
            num_features, eps, momentum, affine, track_running_stats, device, dtype, **flag
        )
        if not bias and not TORCH_HAS_BIAS_FLAG and affine:
            self.register_parameter("bias", None)  # type: ignore[attr-defined]
        self.backend = backend

    def extra_repr(self) -> str:
        text = super().extra_repr()  # type: ignore[misc]
        return text if self.backend == "auto" else f"{text}, backend={self.backend!r}"

    def forward(self, input: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            return self._eager_forward(input)
        self._check_input_dim(input)  # type: ignore[attr-defined]
        factor, counting, use_batch_stats, running_mean, running_var = self._state()
        out = torch.ops.bnlab.batch_norm(
            input,
            self.weight,  # type: ignore[attr-defined]
            self.bias,  # type: ignore[attr-defined]
            running_mean,
            running_var,
            use_batch_stats,
            factor,
            self.eps,  # type: ignore[attr-defined]
            self.backend,
        )
        # the buffers' new values (none in eval), never part of a graph
        if running_mean is not None and running_var is not None and out[3].numel():
            running_mean.copy_(out[3].detach())
            running_var.copy_(out[4].detach())
        if counting:
            nbt = self.num_batches_tracked  # type: ignore[attr-defined]
            if nbt is not None:
                nbt.add_(1)
        return out[0]

    def _state(self) -> tuple[float, bool, bool, Tensor | None, Tensor | None]:
        """What every form of ``forward`` passes: (momentum factor, whether this batch is
        counted, whether batch statistics are used, the running mean and variance to pass).

        The batch is counted only once it has gone through, so the cumulative average's factor
        1/k looks one batch ahead.  The buffers are passed only where they are read (eval) or
        updated (tracked training).
        """
        training: bool = self.training  # type: ignore[attr-defined]
        counting = training and self.track_running_stats  # type: ignore[attr-defined]
        nbt = self.num_batches_tracked  # type: ignore[attr-defined]
        counting = counting and nbt is not None
        momentum = self.momentum  # type: ignore[attr-defined]
        factor = 0.0
        if momentum is None:
            if counting and nbt is not None:  # cumulative moving average: batch k weighs 1/k
                factor = 1.0 / float(int(nbt.item()) + 1)
        else:
            factor = momentum
        # batch statistics in training, and in eval when there are no running ones to use
        use_batch_stats = training or (
            self.running_mean is None and self.running_var is None  # type: ignore[attr-defined]
        )
        tracked = not training or self.track_running_stats  # type: ignore[attr-defined]
        running_mean = self.running_mean if tracked else None  # type: ignore[attr-defined]
        running_var = self.running_var if tracked else None  # type: ignore[attr-defined]
        return factor, counting, use_batch_stats, running_mean, running_var

    @torch.jit.unused
    def _eager_forward(self, input: Tensor) -> Tensor:
        if _is_proxy(input):
            return self._traced(input)
        if not isinstance(input, Tensor):
            raise BNTypeError(
                f"{type(self).__name__}: expected a torch.Tensor (got {type(input).__name__})"
            )
        self._check_input_dim(input)  # type: ignore[attr-defined]
        factor, counting, use_batch_stats, running_mean, running_var = self._state()
        weight, bias = self.weight, self.bias  # type: ignore[attr-defined]
        self._check_channels(input, (running_mean, running_var, weight, bias))
        # batch_norm checks every argument before it touches a buffer, and the batch is counted
        # only once it has gone through.
        out = batch_norm(
            input,
            running_mean,
            running_var,
            weight,
            bias,
            use_batch_stats,
            factor,
            self.eps,  # type: ignore[attr-defined]
            backend=self.backend,
        )
        if counting:
            self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
        return out

    @torch.jit.unused
    def _traced(self, input: torch.fx.Proxy) -> torch.fx.Proxy:
        """fx.symbolic_trace: a leaf, one ``call_module`` node, as torch's BatchNorm*d are.

        Traced as the root itself, the module becomes what its forward does: one call of
        :func:`bnlab.functional.batch_norm` (and the count), as torch's forward traces.
        """
        tracer = input.tracer
        if getattr(tracer, "root", None) is not self:
            return tracer.create_proxy("call_module", tracer.path_of_module(self), (input,), {})
        if self.momentum is None and self.training:  # type: ignore[attr-defined]
            raise torch.fx.proxy.TraceError(
                f"{type(self).__name__}(momentum=None) cannot be traced as the root module: the "
                "cumulative average's factor 1/k is the value of num_batches_tracked (trace a "
                "model that contains it, where it is a leaf, or give it a momentum)"
            )
        factor, counting, use_batch_stats, running_mean, running_var = self._state()
        out = batch_norm(
            input,  # type: ignore[arg-type]
            running_mean,
            running_var,
            self.weight,  # type: ignore[attr-defined]
            self.bias,  # type: ignore[attr-defined]
            use_batch_stats,
            factor,
            self.eps,  # type: ignore[attr-defined]
            backend=self.backend,
        )
        if counting:  # recorded as a node: the count happens when the graph runs
            nbt = tracer.create_proxy("get_attr", "num_batches_tracked", (), {})
            nbt.add_(1)
        return out  # type: ignore[return-value]

    @torch.jit.unused
    def _check_channels(self, input: Tensor, per_channel: tuple[Tensor | None, ...]) -> None:
        """torch's error for an input with another channel count, then the module's sentence.

        As torch, only where a per-channel tensor is used: with no running statistics and no
        γ, β, any channel count normalizes."""
        channels, expected = input.shape[1], self.num_features  # type: ignore[attr-defined]
        if input.numel() == 0 or channels == expected:
            return
        names = ("running_mean", "running_var", "weight", "bias")
        used = [name for name, t in zip(names, per_channel, strict=True) if t is not None]
        if used:
            raise BNRuntimeValueError(
                f"{used[0]} should contain {channels} elements not {expected}: "
                f"{type(self).__name__} expected input with {expected} channels (num_features) "
                f"at dim 1 (got {channels} channels in input of shape {shape_str(input.shape)})"
            )


class BatchNorm1d(_BNLab, nn.BatchNorm1d):
    """Batch normalization over a 2D (N, C) or 3D (N, C, L) input, as torch.nn.BatchNorm1d."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 2 and input.dim() != 3:
            raise BNValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BNLab, nn.BatchNorm2d):
    """Batch normalization over a 4D (N, C, H, W) input; see :class:`torch.nn.BatchNorm2d`."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise BNValueError(f"expected 4D input (got {input.dim()}D input)")


class BatchNorm3d(_BNLab, nn.BatchNorm3d):
    """Batch normalization over a 5D (N, C, D, H, W) input; see :class:`torch.nn.BatchNorm3d`."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 5:
            raise BNValueError(f"expected 5D input (got {input.dim()}D input)")
