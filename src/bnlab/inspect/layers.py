"""Finding a model's batch-norm layers and their tensors: what every inspector tool shares.

A batch-norm layer is any ``torch.nn.modules.batchnorm._BatchNorm`` subclass (torch's
``BatchNorm1d/2d/3d`` and ``SyncBatchNorm``, and bnlab's, which subclass them) or the textbook
``D2LBatchNorm``, whose buffers are ``moving_mean``/``moving_var``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..errors import BNTypeError, BNValueError
from ..nn import D2LBatchNorm


def is_bn_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a batch-norm layer: any ``_BatchNorm`` subclass, or D2LBatchNorm."""
    return isinstance(module, (nn.modules.batchnorm._BatchNorm, D2LBatchNorm))


def bn_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every batch-norm layer of ``model`` by name, with or without running statistics."""
    return [(name, m) for name, m in model.named_modules() if is_bn_layer(m)]


def require_bn_layers(caller: str, model: Any) -> list[tuple[str, nn.Module]]:
    """``bn_layers(model)``, or the one-line error ``caller`` raises for anything else."""
    if not isinstance(model, nn.Module):
        raise BNTypeError(f"{caller}: expected a torch.nn.Module (got {type(model).__name__})")
    layers = bn_layers(model)
    if not layers:
        raise BNValueError(
            f"{caller}: expected a model with batch-norm layers "
            f"(found none in {type(model).__name__})"
        )
    return layers


def running_buffers(module: nn.Module) -> tuple[Tensor | None, Tensor | None]:
    """The running mean and variance (D2LBatchNorm: moving_mean/var), None where not tracked."""
    if isinstance(module, D2LBatchNorm):
        return module.moving_mean, module.moving_var
    return module.running_mean, module.running_var  # type: ignore[return-value]


def input_of(batch: Any, caller: str) -> Tensor:
    """The input of one batch: a tensor, or the first item of an ``(input, ...)`` pair."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, tuple | list) and batch and isinstance(batch[0], Tensor):
        return batch[0]
    raise BNTypeError(
        f"{caller}: expected batches that are tensors or (input, ...) tuples "
        f"(got {type(batch).__name__})"
    )
