"""``BatchNorm1d/2d/3d``: thin stateful modules over :func:`bnlab.functional.batch_norm`.

Same constructor, parameter and buffer names, ``state_dict`` keys, ``repr`` and behaviour in
every mode as ``torch.nn.BatchNorm*d``, so a state_dict loads across in both directions and the
modules drop into real models.  One deliberate difference: a call that fails leaves
``num_batches_tracked`` and the running statistics untouched (torch counts the batch first).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import init

from ..errors import BNTypeError, BNValueError, shape_str
from ..functional import _batch_norm

# torch 2.13 added a keyword-only ``bias=`` flag (and shows it in the repr); older torch has none.
TORCH_HAS_BIAS_FLAG = "bias" in inspect.signature(nn.BatchNorm1d.__init__).parameters


class _BatchNorm(nn.Module):
    """Common base: state, ``repr`` and ``forward``; subclasses only check the input's rank."""

    _version = 2
    __constants__: ClassVar[list[str]] = [
        "track_running_stats",
        "momentum",
        "eps",
        "num_features",
        "affine",
    ]
    num_features: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

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
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise BNValueError(
                f"{type(self).__name__}: expected num_features to be a positive int "
                f"(got {num_features!r})"
            )
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.backend = backend
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory))
            if bias:
                self.bias = nn.Parameter(torch.empty(num_features, **factory))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """running_mean ← 0, running_var ← 1, num_batches_tracked ← 0."""
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Running statistics reset, γ ← 1, β ← 0."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input: Tensor) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        flag = f"bias={self.bias is not None}, " if TORCH_HAS_BIAS_FLAG else ""
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, {flag}track_running_stats={self.track_running_stats}"
            + ("" if self.backend == "auto" else f", backend={self.backend!r}")
        )

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # state dicts written before version 2 have no num_batches_tracked
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            # as torch does: keep the module's own count (0 for a fresh module)
            current = self.num_batches_tracked
            keep = current is not None and current.device != torch.device("meta")
            state_dict[key] = current if keep else torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, input: Tensor) -> Tensor:
        # Work out the state; every check runs before anything changes.
        if not isinstance(input, Tensor):
            raise BNTypeError(
                f"{type(self).__name__}: expected a torch.Tensor (got {type(input).__name__})"
            )
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise BNValueError(
                f"{type(self).__name__}: expected input with {self.num_features} channels "
                f"(num_features) at dim 1 (got {input.shape[1]} channels in input of shape "
                f"{shape_str(input.shape)})"
            )
        counting = (
            self.training and self.track_running_stats and self.num_batches_tracked is not None
        )
        if self.momentum is None:
            # cumulative moving average: the k-th batch gets weight 1/k
            factor = 1.0 / float(self.num_batches_tracked + 1) if counting else 0.0  # type: ignore[operator]
        else:
            factor = self.momentum
        # Batch statistics in training, and in eval when there are no running ones to use.
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        # Buffers are passed only where they are read (eval) or updated (tracked training).
        tracked = not self.training or self.track_running_stats
        running_mean = self.running_mean if tracked else None
        running_var = self.running_var if tracked else None
        # _batch_norm checks every argument before it touches a buffer, and the batch is counted
        # only once it has gone through.
        out = _batch_norm(
            input,
            running_mean,
            running_var,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
            self.backend,
            None,
        )
        if counting:
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
        return out


class BatchNorm1d(_BatchNorm):
    """Batch normalization over a 2D (N, C) or 3D (N, C, L) input, as torch.nn.BatchNorm1d."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 2 and input.dim() != 3:
            raise BNValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalization over a 4D (N, C, H, W) input; see :class:`torch.nn.BatchNorm2d`."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise BNValueError(f"expected 4D input (got {input.dim()}D input)")


class BatchNorm3d(_BatchNorm):
    """Batch normalization over a 5D (N, C, D, H, W) input; see :class:`torch.nn.BatchNorm3d`."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 5:
            raise BNValueError(f"expected 5D input (got {input.dim()}D input)")
