"""Precise BN: replace running statistics by the exact population statistics of the data.

Running averages lag behind the weights (each was taken under older weights, with momentum),
so eval-mode accuracy often differs from what the same weights can do.  ``recalibrate`` runs the
model over the data and sets each BN layer's running mean and variance to the exact mean and
variance of its input over all of it — move 1 per batch, move 2 (Chan's merge) across batches.

Layers are recalibrated one after another, in the order the forward pass meets them: layer k's
input is computed in eval mode with layers 1 … k−1 already recalibrated, which is exactly what
eval-mode inference will feed it.  Each pass stops at the layer it measures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..errors import BNTypeError, BNValueError
from ..nn import D2LBatchNorm
from ..stats import Stats, merge, reduce, reduce_axes
from .layers import bn_layers, input_of, running_buffers


class _Stop(Exception):
    """Raised by the measuring hook: the rest of the forward pass is not needed."""


def bn_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every batch-norm layer with running statistics: bnlab's, torch's and the textbook's."""
    return [(name, m) for name, m in bn_layers(model) if running_buffers(m)[0] is not None]


def _set(module: nn.Module, stats: Stats) -> None:
    with torch.no_grad():
        if isinstance(module, D2LBatchNorm):
            module.moving_mean.copy_(stats.mean.reshape(module.moving_mean.shape))
            module.moving_var.copy_(stats.var.reshape(module.moving_var.shape))
        else:
            module.running_mean.copy_(stats.mean)  # type: ignore[union-attr]
            module.running_var.copy_(stats.var)  # type: ignore[union-attr]


def _execution_order(
    model: nn.Module, layers: list[tuple[str, nn.Module]], first: Any
) -> list[tuple[str, nn.Module]]:
    """``layers`` sorted by when one forward pass first calls them (registration order may lie)."""
    seen: dict[int, int] = {}

    def note(m: nn.Module, _args: Any) -> None:  # returns None: the input passes unchanged
        seen.setdefault(id(m), len(seen))

    handles = [m.register_forward_pre_hook(note) for _, m in layers]
    try:
        model(input_of(first, "recalibrate"))
    finally:
        for h in handles:
            h.remove()
    unused = [name or "the model" for name, m in layers if id(m) not in seen]
    if unused:
        raise BNValueError(
            f"recalibrate: the forward pass does not use {', '.join(unused)}; no statistics "
            "of its input can be measured"
        )
    return sorted(layers, key=lambda nm: seen[id(nm[1])])


def recalibrate(
    model: nn.Module, data: Iterable[Any], batches: int | None = None
) -> dict[str, Stats]:
    """Set every BN layer's running statistics to the exact statistics of its input over ``data``.

    ``data`` is an iterable of input tensors or ``(input, target)`` pairs, iterated once per BN
    layer, so it must be re-iterable (a list, a tensor's ``split``, a DataLoader) — a one-shot
    generator is refused; ``batches`` limits how many batches are used.  Layers are measured in
    the order the forward pass calls them.  On any error every running statistic is restored, and
    the model's training flag is restored in every case.  Returns the statistics set, by name.
    """
    if batches is not None and batches < 1:
        raise BNValueError(f"recalibrate: expected batches ≥ 1 or None (got {batches})")
    if iter(data) is data:  # type: ignore[comparison-overlap]
        raise BNTypeError(
            "recalibrate: data is a one-shot iterator, but it is read once per BN layer; "
            "pass a list (e.g. list(loader)) or a re-iterable loader"
        )
    layers = bn_modules(model)
    if not layers:
        return {}
    first = next(iter(data), None)
    if first is None:
        raise BNValueError("recalibrate: the data yielded no batch")
    saved = [tuple(t.clone() for t in running_buffers(m)) for _, m in layers]
    was_training = model.training
    result: dict[str, Stats] = {}
    model.eval()
    try:
        with torch.no_grad():
            for name, module in _execution_order(model, layers, first):
                acc: list[Stats | None] = [None]

                def hook(
                    _m: nn.Module, args: tuple[Any, ...], acc: list[Stats | None] = acc
                ) -> None:
                    x = args[0]
                    s = reduce(x.detach(), reduce_axes(x.dim()))
                    acc[0] = s if acc[0] is None else merge(acc[0], s)
                    raise _Stop

                handle = module.register_forward_pre_hook(hook)
                try:
                    for i, batch in enumerate(data):
                        if batches is not None and i >= batches:
                            break
                        with contextlib.suppress(_Stop):  # the hook ends the pass at this layer
                            model(input_of(batch, "recalibrate"))
                finally:
                    handle.remove()
                assert acc[0] is not None  # the order pass showed the layer is reached
                _set(module, acc[0])
                result[name] = acc[0]
    except BaseException:
        with torch.no_grad():  # a failure changes nothing: every layer as it was
            for (_, m), old in zip(layers, saved, strict=True):
                for buf, value in zip(running_buffers(m), old, strict=True):
                    buf.copy_(value)
        raise
    finally:
        model.train(was_training)
    return result
