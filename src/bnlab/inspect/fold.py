"""Fold batch norm into the layer before it, for inference.

In eval mode a BN layer is a fixed per-channel affine map, y = γ·(x − μ)/√(σ² + ε) + β, with μ, σ²
the running statistics.  Right after a convolution or a linear layer, whose output channel c is
W[c]·x + b[c], the two compose into one layer of the same shape:

    scale = γ / √(σ² + ε)          W' = W · scale (per output channel)
    b'    = (b − μ) · scale + β    (b = 0 where the layer has no bias)

``fold`` finds such pairs in the module graph (``torch.fx`` where the model traces; the order of
``nn.Sequential`` children where it does not), folds them in a copy and reports every BN layer it
left alone, with the reason.  The arithmetic is done in float64 and cast back to the layer's dtype.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parameter import is_lazy

from ..errors import BNTypeError, BNValueError
from ..nn import D2LBatchNorm
from .layers import is_bn_layer

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_CONV_RANK = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
_BN_RANK = {nn.BatchNorm1d: 1, nn.BatchNorm2d: 2, nn.BatchNorm3d: 3}


@dataclass(frozen=True)
class Folded:
    """BN layer ``bn`` was folded into the Conv/Linear layer ``layer`` (names as in the model)."""

    bn: str
    layer: str

    def __str__(self) -> str:
        return f"folded {self.bn!r} into {self.layer!r}"


@dataclass(frozen=True)
class Skipped:
    """BN layer ``bn`` was kept as it is, for ``reason``."""

    bn: str
    reason: str

    def __str__(self) -> str:
        return f"kept   {self.bn!r}: {self.reason}"


@dataclass(frozen=True)
class FoldResult:
    """What :func:`fold` returns: the folded copy (eval mode) and what became of each BN layer.

    ``route`` is ``"fx"`` when the pairs were read off a ``torch.fx`` trace, ``"module order"``
    when the model could not be traced (``trace_error`` says why) and only consecutive children
    of ``nn.Sequential`` containers were paired.
    """

    model: nn.Module = field(repr=False)
    folded: list[Folded]
    skipped: list[Skipped]
    route: str
    trace_error: str | None = None

    def __str__(self) -> str:
        head = f"fold ({self.route}): {len(self.folded)} folded, {len(self.skipped)} kept"
        if self.trace_error is not None:
            head += f" (fx could not trace the model: {self.trace_error})"
        return "\n".join([head, *(f"  {item}" for item in [*self.folded, *self.skipped])])


# --- what may be folded ------------------------------------------------------------------------


def _describe(name: str, m: nn.Module) -> str:
    return f"{name!r} ({type(m).__name__})"


def _has_hooks(m: nn.Module) -> bool:
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return any(getattr(m, kind, None) for kind in kinds)


def _bn_reason(name: str, bn: nn.Module) -> str | None:
    """Why BN layer ``bn`` cannot be folded whatever precedes it, or None."""
    if isinstance(bn, _BatchNorm):
        if bn.running_mean is None or bn.running_var is None:
            return "no running statistics (track_running_stats=False): eval uses batch statistics"
        if is_lazy(bn.running_mean) or (bn.weight is not None and is_lazy(bn.weight)):
            return "not initialized yet (a lazy layer before its first forward)"
    if name == "":
        return "it is the model itself; nothing precedes it"
    if _has_hooks(bn):
        return "it has hooks, which replacing it by Identity would drop"
    return None


def _pair_reason(bn: nn.Module, name: str, layer: nn.Module) -> str | None:
    """Why ``bn`` cannot be folded into ``layer``, the layer that feeds it, or None."""
    if is_lazy(layer.weight):
        return f"{_describe(name, layer)} has no weights yet (run a forward first)"
    if _has_hooks(layer):
        return f"{_describe(name, layer)} has hooks, which would see the folded output"
    kind = type(bn).__name__
    if isinstance(layer, nn.Linear):
        # channel c of a Linear is its last axis, of a BN axis 1: the same only for (N, C)
        ok = not isinstance(bn, (nn.BatchNorm2d, nn.BatchNorm3d)) and (
            not isinstance(bn, D2LBatchNorm) or bn.num_dims == 2
        )
    else:
        rank = next(r for cls, r in _CONV_RANK.items() if isinstance(layer, cls))
        wanted = next((r for cls, r in _BN_RANK.items() if isinstance(bn, cls)), rank)
        if isinstance(bn, D2LBatchNorm):
            wanted = 2 if bn.num_dims == 4 else 0
        ok = wanted == rank
    if not ok:
        return f"a {kind} cannot normalize the output of {_describe(name, layer)}"
    outputs = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    channels = _statistics(bn)[0].numel()
    if channels != outputs:
        return f"it has {channels} channels but {_describe(name, layer)} has {outputs} outputs"
    return None


# --- finding the pairs -------------------------------------------------------------------------


class _Tracer(torch.fx.Tracer):
    """Every BN layer is a leaf, the textbook's too (its forward branches on the input's rank)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_bn_layer(m) or super().is_leaf_module(m, module_qualified_name)


def _source(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    """What produced ``node``, in words."""
    if node.op == "placeholder":
        return "the model's input"
    if node.op == "call_module":
        return _describe(str(node.target), modules[str(node.target)])
    if node.op == "call_method":
        return f"a call of .{node.target}()"
    if node.op == "get_attr":
        return f"the attribute {node.target!r}"
    return f"a call of {getattr(node.target, '__name__', node.target)}"


def _storage(t: Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _trace(model: nn.Module) -> tuple[torch.fx.Graph, dict[str, int]]:
    """The graph, and each tensor forward reads as an attribute (its name → its storage).

    Tensors computed outside the graph (``self.bn.running_mean[:, None]``) become constants the
    tracer sets on ``model``; they are read here, to recognise views of a layer's buffers, and
    removed again, so the copy carries nothing of the trace.
    """
    attrs = set(vars(model))
    try:
        graph = _Tracer().trace(model)
        read = {}
        for node in graph.nodes:
            if node.op == "get_attr":
                value = model
                for part in str(node.target).split("."):
                    value = getattr(value, part)
                if isinstance(value, Tensor):
                    read[str(node.target)] = _storage(value)
    finally:
        for attr in set(vars(model)) - attrs:
            delattr(model, attr)
    return graph, read


def _pairs_fx(
    graph: torch.fx.Graph, read: dict[str, int], model: nn.Module, bns: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(BN name → layer name) for the foldable pairs, (BN name → reason) for the rest."""
    modules = dict(model.named_modules())
    calls = Counter(str(n.target) for n in graph.nodes if n.op == "call_module")
    node_of = {str(n.target): n for n in graph.nodes if n.op == "call_module"}

    def read_elsewhere(name: str) -> bool:
        m = modules[name]
        own = {_storage(t) for t in [*m.parameters(), *m.buffers()] if t.numel()}
        return any(t.startswith(name + ".") or ptr in own for t, ptr in read.items())

    pairs: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for bn_name in bns:
        bn = modules[bn_name]
        reason = _bn_reason(bn_name, bn)
        node = node_of.get(bn_name)
        if reason is None and node is None:
            reason = "forward does not call it"
        if reason is None and calls[bn_name] > 1:
            reason = "forward calls it more than once"
        if reason is None and read_elsewhere(bn_name):
            reason = "forward reads its parameters or buffers directly"
        if reason is None and (len(node.args) != 1 or node.kwargs):  # type: ignore[union-attr]
            reason = "it is called with more than one argument"
        if reason is None:
            src = node.args[0]  # type: ignore[union-attr]
            if not isinstance(src, torch.fx.Node):
                reason = "its input is not a tensor computed in forward"
            elif src.op != "call_module" or not isinstance(modules[str(src.target)], _LAYERS):
                reason = f"it follows {_source(src, modules)}, not a Conv1d/2d/3d or Linear"
            else:
                name, layer = str(src.target), modules[str(src.target)]
                if len(src.users) > 1:
                    reason = f"the output of {_describe(name, layer)} is used elsewhere too"
                elif calls[name] > 1:
                    reason = f"forward calls {_describe(name, layer)} more than once"
                elif read_elsewhere(name):
                    reason = f"forward reads the weights of {_describe(name, layer)} directly"
                else:
                    reason = _pair_reason(bn, name, layer)
                if reason is None:
                    pairs[bn_name] = name
        if reason is not None:
            reasons[bn_name] = reason
    return pairs, reasons


def _pairs_module_order(model: nn.Module, bns: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The same, from consecutive children of every plain ``nn.Sequential`` (no trace)."""
    name_of = {id(m): name for name, m in model.named_modules()}
    registered = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    before: dict[str, tuple[str, nn.Module] | None] = {}  # BN name → the child before it
    for _, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential) or type(seq).forward is not nn.Sequential.forward:
            continue  # a subclass may run its children in any order
        kids = [(name_of[id(m)], m) for m in seq.children()]
        for i, (kid_name, kid) in enumerate(kids):
            if is_bn_layer(kid):
                before[kid_name] = kids[i - 1] if i > 0 else None
    modules = dict(model.named_modules())
    pairs: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for bn_name in bns:
        bn = modules[bn_name]
        reason = _bn_reason(bn_name, bn)
        if reason is None and bn_name not in before:
            reason = "not a child of an nn.Sequential, and without a trace what feeds it is unknown"
        if reason is None and before[bn_name] is None:
            reason = "first in its nn.Sequential, and without a trace what feeds it is unknown"
        if reason is None:
            name, layer = before[bn_name]  # type: ignore[misc]
            if not isinstance(layer, _LAYERS):
                reason = f"it follows {_describe(name, layer)}, not a Conv1d/2d/3d or Linear"
            elif registered[id(layer)] > 1 or registered[id(bn)] > 1:
                reason = "the layer or the BN is registered more than once (shared)"
            else:
                reason = _pair_reason(bn, name, layer)
            if reason is None:
                pairs[bn_name] = name
        if reason is not None:
            reasons[bn_name] = reason
    return pairs, reasons


# --- folding -----------------------------------------------------------------------------------


def _statistics(bn: nn.Module) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, float]:
    """(running mean, running var, γ or None, β or None, ε), each per-channel of shape (C,)."""
    if isinstance(bn, D2LBatchNorm):
        return (
            bn.moving_mean.flatten(),
            bn.moving_var.flatten(),
            bn.gamma.flatten(),
            bn.beta.flatten(),
            float(bn.eps),
        )
    return bn.running_mean, bn.running_var, bn.weight, bn.bias, float(bn.eps)  # type: ignore[return-value]


@torch.no_grad()
def _fold_into(layer: nn.Module, bn: nn.Module) -> None:
    """Give ``layer`` the weight and bias of ``layer`` followed by ``bn`` in eval mode."""
    weight: Tensor = layer.weight  # type: ignore[assignment]
    bias: Tensor | None = layer.bias  # type: ignore[assignment]
    dtype, device = weight.dtype, weight.device
    C = weight.shape[0]  # output channels: dim 0 for Conv (grouped too) and Linear

    def f64(t: Tensor | None, default: float) -> Tensor:
        if t is None:
            return torch.full((C,), default, dtype=torch.float64)
        return t.detach().to("cpu", torch.float64)

    mean, var, gamma, beta, eps = _statistics(bn)
    scale = f64(gamma, 1.0) / torch.sqrt(f64(var, 1.0) + eps)  # γ / √(σ² + ε), (C,)
    w = f64(weight, 0.0) * scale.reshape(-1, *([1] * (weight.dim() - 1)))  # W · scale, W's shape
    b = (f64(bias, 0.0) - f64(mean, 0.0)) * scale + f64(beta, 0.0)  # (b − μ)·scale + β, (C,)
    grad = weight.requires_grad
    layer.weight = nn.Parameter(w.to(device, dtype), requires_grad=grad)  # new: ties stay intact
    layer.bias = nn.Parameter(b.to(device, dtype), requires_grad=grad)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, new)


def fold(model: nn.Module) -> FoldResult:
    """An eval-mode copy of ``model`` with every BN layer that directly follows a Conv1d/2d/3d or
    Linear folded into that layer's weight and bias, and replaced by ``nn.Identity()``.

    "Directly follows" means the BN's only input is that layer's output, and nothing else uses it.
    Pairs are read off a ``torch.fx`` trace; where the model does not trace (data-dependent
    control flow), only consecutive children of ``nn.Sequential`` containers are paired
    (``route="module order"``).  A layer without a bias gets one; grouped convolutions fold like
    any other.  BN layers with ``affine=False`` fold with γ = 1, β = 0; those without running
    statistics, or that cannot be folded for any other reason, are kept and listed with the
    reason.  A Linear is assumed to see (N, features) input, as a BN after it then normalizes
    its output features.  ``model`` itself is not changed: not its parameters, buffers,
    training flag or hooks.
    """
    if not isinstance(model, nn.Module):
        raise BNTypeError(f"fold: expected a torch.nn.Module (got {type(model).__name__})")
    if isinstance(model, torch.jit.ScriptModule):
        raise BNTypeError(
            f"fold: expected an eager torch.nn.Module (got the TorchScript module "
            f"{type(model).__name__}); fold the module before scripting it"
        )
    if not any(is_bn_layer(m) for m in model.modules()):
        raise BNValueError(
            "fold: expected a model with batch-norm layers (BatchNorm1d/2d/3d, SyncBatchNorm "
            f"or D2LBatchNorm; found none in {type(model).__name__})"
        )
    folded_model = copy.deepcopy(model).eval()
    bns = [name for name, m in folded_model.named_modules() if is_bn_layer(m)]
    trace_error = None
    try:
        graph, read = _trace(folded_model)
    except Exception as exc:  # data-dependent control flow, untraceable calls, ...
        lines = str(exc).strip().splitlines()
        trace_error = type(exc).__name__ + (f": {lines[0]}" if lines else "")
        pairs, reasons = _pairs_module_order(folded_model, bns)
    else:
        pairs, reasons = _pairs_fx(graph, read, folded_model, bns)
    for bn_name, layer_name in pairs.items():
        _fold_into(folded_model.get_submodule(layer_name), folded_model.get_submodule(bn_name))
        _replace(folded_model, bn_name, nn.Identity())
    return FoldResult(
        model=folded_model,
        folded=[Folded(bn, layer) for bn, layer in pairs.items()],
        skipped=[Skipped(bn, reason) for bn, reason in reasons.items()],
        route="fx" if trace_error is None else "module order",
        trace_error=trace_error,
    )
