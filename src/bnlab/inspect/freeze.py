"""Freeze batch norm: every forward uses and keeps the running statistics, even in train mode.

Fine-tuning with small batches, or a detector's frozen backbone, wants BN layers that normalize
with their running statistics and never update them, while the rest of the model trains.
``layer.eval()`` does that until the next ``model.train()`` undoes it.  ``freeze`` puts two hooks
on each BN layer instead: before each forward the layer's ``training`` flag is saved and set to
False, after it (also when the forward raises) the flag is put back.  So each forward runs in
eval mode, ``module.training`` reads as the user set it between calls, and ``model.train()``
changes nothing.  ``affine=True`` also stops γ and β's gradients (``requires_grad = False``).

Layers without running statistics (``track_running_stats=False``) have none to use; ``freeze``
leaves them alone.  ``unfreeze`` removes the hooks and restores the ``requires_grad`` flags.
The hooks are module-level objects, so a frozen model pickles and deep-copies frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn
from torch.utils.hooks import RemovableHandle

from ..errors import BNTypeError, BNValueError
from .layers import require_bn_layers, running_buffers


@dataclass
class FreezeState:
    """How one layer is frozen: ``affine`` whether γ/β's gradients are stopped too, and
    ``requires_grad`` their flags before that (by parameter name), which unfreeze restores."""

    affine: bool = False
    requires_grad: dict[str, bool] = field(default_factory=dict)


class _EvalForward:
    """Forward pre-hook: save ``module.training`` and run this forward in eval mode."""

    def __init__(self) -> None:
        self.state = FreezeState()
        self.saved: list[bool] = []  # a stack: one entry per forward in progress
        self.handles: tuple[RemovableHandle, ...] = ()

    def __call__(self, module: nn.Module, args: object) -> None:
        self.saved.append(module.training)
        module.training = False

    def __repr__(self) -> str:
        return f"bnlab.inspect.freeze(affine={self.state.affine}): forward in eval mode"


class _RestoreMode:
    """Forward hook, always called: give the module back the ``training`` flag it had."""

    def __init__(self, pre: _EvalForward) -> None:
        self.pre = pre

    def __call__(self, module: nn.Module, args: object, output: object) -> None:
        if self.pre.saved:  # empty if a hook before ours raised
            module.training = self.pre.saved.pop()

    def __repr__(self) -> str:
        return "bnlab.inspect.freeze: restore the training flag"


def _pre_hook(module: nn.Module) -> _EvalForward | None:
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, _EvalForward):
            return hook
    return None


def is_frozen(module: nn.Module) -> bool:
    """Whether ``freeze`` froze this layer (and ``unfreeze`` has not undone it)."""
    return _pre_hook(module) is not None


def frozen_layers(model: nn.Module) -> dict[str, FreezeState]:
    """Every frozen layer of ``model`` by name, and how it is frozen."""
    out = {}
    for name, m in model.named_modules():
        hook = _pre_hook(m)
        if hook is not None:
            out[name] = hook.state
    return out


def _freezable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = require_bn_layers("freeze", model)
    tracked = [(name, m) for name, m in layers if running_buffers(m)[0] is not None]
    if not tracked:
        raise BNValueError(
            f"freeze: expected batch-norm layers with running statistics (found "
            f"{len(layers)} in {type(model).__name__}, all with track_running_stats=False)"
        )
    return tracked


def freeze(model: nn.Module, affine: bool = False) -> nn.Module:
    """Make every BN layer with running statistics normalize with them and never update them.

    Survives ``model.train()``.  ``affine=True`` also sets γ and β's ``requires_grad`` to False.
    Freezing again is a no-op, except that ``affine=True`` extends an earlier ``affine=False``
    freeze.  Gradients still flow to the input (and to γ, β unless ``affine``).  Returns ``model``.
    Refuses a model without such layers (BNValueError) or a non-module (BNTypeError), unchanged.
    """
    for _, m in _freezable(model):
        pre = _pre_hook(m)
        if pre is None:
            pre = _EvalForward()
            pre.handles = (
                m.register_forward_pre_hook(pre, prepend=True),  # before any other hook
                m.register_forward_hook(_RestoreMode(pre), always_call=True),
            )
        if affine and not pre.state.affine:
            for pname, p in m.named_parameters(recurse=False):
                pre.state.requires_grad[pname] = p.requires_grad
                p.requires_grad_(False)
            pre.state.affine = True
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Undo :func:`freeze`: remove its hooks and restore γ, β's ``requires_grad``.

    A no-op for layers (or models) that are not frozen.  Returns ``model``.
    """
    if not isinstance(model, nn.Module):
        raise BNTypeError(f"unfreeze: expected a torch.nn.Module (got {type(model).__name__})")
    for m in model.modules():
        pre = _pre_hook(m)
        if pre is None:
            continue
        for h in pre.handles:
            h.remove()
        params = dict(m.named_parameters(recurse=False))
        for pname, flag in pre.state.requires_grad.items():
            if pname in params:
                params[pname].requires_grad_(flag)
    return model
