"""Swap batch-norm modules between torch and bnlab inside any model.

Like ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``: children are replaced in place and the
(possibly new) root is returned.  The new module takes over the old one's parameter and buffer
*objects*, so an optimizer built before the swap keeps updating the same tensors, and the
training/eval mode carries over.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import BNTypeError
from .batchnorm import TORCH_HAS_BIAS_FLAG, BatchNorm1d, BatchNorm2d, BatchNorm3d, _BNLab

_TO_BNLAB: dict[type[nn.Module], type[nn.Module]] = {
    nn.BatchNorm1d: BatchNorm1d,
    nn.BatchNorm2d: BatchNorm2d,
    nn.BatchNorm3d: BatchNorm3d,
}
_TO_TORCH: dict[type[nn.Module], type[nn.Module]] = {v: k for k, v in _TO_BNLAB.items()}


def _swap(module: nn.Module, new_type: type[nn.Module]) -> nn.Module:
    """A ``new_type`` module with ``module``'s hyper-parameters and its very tensors."""
    kwargs = {}
    if TORCH_HAS_BIAS_FLAG or issubclass(new_type, _BNLab):
        kwargs["bias"] = getattr(module, "bias", None) is not None
    ref = module.weight if module.weight is not None else module.running_mean
    factory = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
    new = new_type(
        module.num_features,
        eps=module.eps,
        momentum=module.momentum,
        affine=module.affine,
        track_running_stats=module.track_running_stats,
        **factory,
        **kwargs,
    )
    with torch.no_grad():
        for name in ("weight", "bias"):
            if getattr(module, name, None) is not None:
                setattr(new, name, getattr(module, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            if getattr(module, name, None) is not None:
                setattr(new, name, getattr(module, name))
    new.train(module.training)
    return new


def _convert(model: nn.Module, table: dict[type[nn.Module], type[nn.Module]]) -> nn.Module:
    new_type = table.get(type(model))  # the exact type: bnlab's classes are torch's subclasses
    if new_type is not None:
        return _swap(model, new_type)
    for name, child in model.named_children():
        replaced = _convert(child, table)
        if replaced is not child:
            setattr(model, name, replaced)
    return model


def convert(model: nn.Module) -> nn.Module:
    """Replace every ``torch.nn.BatchNorm1d/2d/3d`` in ``model`` by bnlab's (state shared)."""
    if not isinstance(model, nn.Module):
        raise BNTypeError(f"convert: expected a torch.nn.Module (got {type(model).__name__})")
    return _convert(model, _TO_BNLAB)


def to_torch(model: nn.Module) -> nn.Module:
    """Replace every bnlab ``BatchNorm1d/2d/3d`` in ``model`` by torch's (state shared)."""
    if not isinstance(model, nn.Module):
        raise BNTypeError(f"to_torch: expected a torch.nn.Module (got {type(model).__name__})")
    return _convert(model, _TO_TORCH)
