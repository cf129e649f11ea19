"""Watch what every batch-norm layer of a live model sees, without keeping what it sees.

``with monitor(model) as mon:`` puts one forward pre-hook on each BN layer (torch's
``_BatchNorm`` subclasses — ``BatchNorm1d/2d/3d``, ``SyncBatchNorm``, bnlab's, which subclass
torch's — and the textbook ``D2LBatchNorm``).  Each call reduces the layer's input once, per
channel over every axis but 1 (move 1, :func:`bnlab.stats.reduce`), and folds the result into a
streaming summary (move 2, Chan's merge): the mean and variance of everything seen so far, the
range of the per-call means and variances, and counters of the batch sizes and modes.  What is
kept is O(channels) per layer, however many batches go through; no activation is retained.

The monitor observes and changes nothing: on exit — normal or by an exception, which it never
swallows — every hook it added is removed, and the buffers stay as the forward passes made them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils.hooks import RemovableHandle

from ..errors import BNValueError
from ..stats import Stats, merge, reduce
from .layers import require_bn_layers, running_buffers

SUMMARY_DTYPE = torch.float64  # every LayerSummary tensor, on the CPU once the block is left

# the per-channel statistics a summary accumulates, then the buffers' copies taken on exit
_STAT_FIELDS = ("mean", "var", "batch_mean_min", "batch_mean_max", "batch_var_min", "batch_var_max")
_TENSOR_FIELDS = (*_STAT_FIELDS, "running_mean", "running_var")


def _is_real(x: Any) -> bool:
    """A tensor with data: not an fx Proxy, a meta or fake tensor, or a torch.func wrapper."""
    if not isinstance(x, Tensor) or x.is_meta or isinstance(x, FakeTensor):
        return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    """Equal values (NaN equal to NaN), or both absent."""
    if a is None or b is None:
        return a is None and b is None
    if a.shape != b.shape or not a.is_floating_point():
        return torch.equal(a, b)
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def _snapshot(module: nn.Module) -> tuple[Tensor | None, ...]:
    """Copies of the buffers training updates (O(C)), to tell on exit whether they changed."""
    rm, rv = running_buffers(module)
    nbt = getattr(module, "num_batches_tracked", None)
    out = []
    for t in (rm, rv, nbt):
        lazy = t is not None and nn.parameter.is_lazy(t)
        out.append(None if t is None or lazy else t.detach().clone())
    return tuple(out)


def _cpu(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().reshape(-1).to("cpu", SUMMARY_DTYPE, copy=True)


@dataclass(eq=False)
class LayerSummary:
    """What one BN layer saw while monitored, per channel; O(C) memory however long it ran.

    ``count`` is the number of values per channel seen in all calls, ``mean`` and ``var`` their
    population mean and biased variance; ``batch_*_min/max`` the range over calls of each call's
    channel means and variances; ``values_per_channel`` counts each call's N·prod(spatial) (the
    batch size normalization sees), ``batch_sizes`` its N, ``modes`` "train"/"eval" as
    ``module.training`` read when it was called.  ``updated``: whether running_mean, running_var
    or num_batches_tracked changed while monitored; ``running_mean``/``running_var`` are copies of
    the buffers at exit (None where the layer keeps none).  Tensors are float64 of shape (C,), on
    the CPU after the block (during it, on the input's device); NaN where no value was seen.
    """

    name: str
    kind: str
    num_features: int
    calls: int = 0
    count: int = 0
    mean: Tensor = field(default_factory=lambda: torch.empty(0, dtype=SUMMARY_DTYPE))
    var: Tensor = field(default_factory=lambda: torch.empty(0, dtype=SUMMARY_DTYPE))
    batch_mean_min: Tensor = field(default_factory=lambda: torch.empty(0, dtype=SUMMARY_DTYPE))
    batch_mean_max: Tensor = field(default_factory=lambda: torch.empty(0, dtype=SUMMARY_DTYPE))
    batch_var_min: Tensor = field(default_factory=lambda: torch.empty(0, dtype=SUMMARY_DTYPE))
    batch_var_max: Tensor = field(default_factory=lambda: torch.empty(0, dtype=SUMMARY_DTYPE))
    values_per_channel: Counter[int] = field(default_factory=Counter)
    batch_sizes: Counter[int] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    updated: bool = False
    running_mean: Tensor | None = None
    running_var: Tensor | None = None

    @classmethod
    def empty(cls, name: str, module: nn.Module) -> LayerSummary:
        c = int(getattr(module, "num_features", 0))
        nan = torch.full((c,), float("nan"), dtype=SUMMARY_DTYPE)
        return cls(
            name,
            type(module).__name__,
            c,
            mean=nan,
            var=nan,
            batch_mean_min=nan,
            batch_mean_max=nan,
            batch_var_min=nan,
            batch_var_max=nan,
        )

    def _add(self, x: Tensor, training: bool) -> None:
        """One call: count it, then fold the input's channel statistics into the summary."""
        n = x.shape[0]
        per_channel = x.numel() // x.shape[1] if x.shape[1] else 0  # N·prod(spatial)
        self.calls += 1
        self.batch_sizes[n] += 1
        self.values_per_channel[per_channel] += 1
        self.modes["train" if training else "eval"] += 1
        if per_channel == 0:
            return  # an empty batch adds no value
        # Move 1 in the input's accumulation dtype (float32 for float32 and 16-bit input, as the
        # layer itself computes), then float64 across calls: one float64 copy of every activation
        # would double the monitor's cost.
        s = reduce(x)
        mean = s.mean.to(SUMMARY_DTYPE)  # (C,)
        var = s.var.to(SUMMARY_DTYPE)  # (C,)
        if self.count == 0:  # the first values: out of place, so no summary tensor is aliased
            self.mean, self.var = mean, var
            self.batch_mean_min = self.batch_mean_max = mean
            self.batch_var_min = self.batch_var_max = var
        else:  # move 2: Chan's merge of (count, mean, M2) with what came before
            total = merge(Stats(self.count, self.mean, self.var), Stats(per_channel, mean, var))
            self.mean, self.var = total.mean, total.var
            self.batch_mean_min = torch.minimum(self.batch_mean_min, mean)
            self.batch_mean_max = torch.maximum(self.batch_mean_max, mean)
            self.batch_var_min = torch.minimum(self.batch_var_min, var)
            self.batch_var_max = torch.maximum(self.batch_var_max, var)
        self.count += per_channel

    def _finish(self, module: nn.Module, entry: tuple[Tensor | None, ...]) -> None:
        """On exit: tensors to the CPU, the buffers' copies, and whether training moved them."""
        for name in _STAT_FIELDS:
            setattr(self, name, _cpu(getattr(self, name)))
        rm, rv = running_buffers(module)
        nbt = getattr(module, "num_batches_tracked", None)
        self.updated = not all(
            _same(old, new.detach() if new is not None else None)
            for old, new in zip(entry, (rm, rv, nbt), strict=True)
        )
        self.running_mean, self.running_var = _cpu(rm), _cpu(rv)

    def tensors(self) -> Iterator[Tensor]:
        """Every tensor the summary holds."""
        for name in _TENSOR_FIELDS:
            t = getattr(self, name)
            if t is not None:
                yield t

    @property
    def nbytes(self) -> int:
        """Bytes held in the summary's tensors: O(C), not growing with the calls seen."""
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def __repr__(self) -> str:
        modes = ", ".join(f"{k} {v}" for k, v in sorted(self.modes.items())) or "never called"
        sizes = ", ".join(f"{k}×{v}" for k, v in sorted(self.batch_sizes.items()))
        return (
            f"LayerSummary({self.name or '<model>'}: {self.kind}({self.num_features}), "
            f"{self.calls} calls ({modes}), batch sizes [{sizes}], {self.count} values/channel, "
            f"{'updated' if self.updated else 'not updated'})"
        )


class Monitor:
    """The context manager :func:`monitor` returns; ``layers`` holds one summary per BN layer.

    ``layers`` is keyed by module name, in the order the forward passes first called each layer;
    on exit the layers never called follow, with ``calls == 0``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._bn = require_bn_layers("monitor", model)
        self.layers: dict[str, LayerSummary] = {}
        self._handles: list[RemovableHandle] = []
        self._entry: dict[str, tuple[Tensor | None, ...]] = {}
        self.active = False

    def __enter__(self) -> Monitor:
        if self.active:
            raise BNValueError("monitor: this monitor is active already (enter it once at a time)")
        self.layers = {}
        self._entry = {name: _snapshot(m) for name, m in self._bn}
        try:
            for name, m in self._bn:
                hook = self._hook(name)
                self._handles.append(m.register_forward_pre_hook(hook, with_kwargs=True))
        except BaseException:
            self._remove_hooks()
            raise
        self.active = True
        return self

    def __exit__(self, *exc_info: object) -> None:  # returns None: an exception propagates
        self._remove_hooks()
        self.active = False
        with torch.no_grad():
            for name, m in self._bn:
                if name not in self.layers:  # never called: after the ones that were
                    self.layers[name] = LayerSummary.empty(name, m)
                self.layers[name]._finish(m, self._entry[name])
        self._entry = {}

    def _remove_hooks(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def _hook(self, name: str) -> Any:
        layers = self.layers

        def observe(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else next(iter(kwargs.values()), None)
            if not _is_real(x) or x.dim() < 2:
                return  # a tracer's proxy, or an input the layer is about to refuse
            if x.shape[1] != getattr(module, "num_features", x.shape[1]):
                return  # the layer raises its own error for the wrong channel count
            summary = layers.get(name)
            if summary is None:
                summary = layers[name] = LayerSummary.empty(name, module)
            with torch.no_grad():
                summary._add(x.detach(), module.training)

        return observe

    @property
    def nbytes(self) -> int:
        """Bytes the monitor holds in tensors: the summaries, and the entry copies while active."""
        held = sum(s.nbytes for s in self.layers.values())
        for snap in self._entry.values():
            held += sum(t.numel() * t.element_size() for t in snap if t is not None)
        return held

    def __repr__(self) -> str:
        state = "active" if self.active else "done"
        called = sum(1 for s in self.layers.values() if s.calls)
        return (
            f"Monitor({type(self.model).__name__}: {len(self._bn)} BN layers, "
            f"{called} called, {state})"
        )


def monitor(model: nn.Module) -> Monitor:
    """A context manager recording, per BN layer and channel, what the forward passes feed it.

    ``with monitor(model) as mon: model(x)``, then ``mon.layers[name]`` is a
    :class:`LayerSummary`.  Refuses (before adding any hook) anything but an ``nn.Module``
    (BNTypeError) and a model without batch-norm layers (BNValueError).
    """
    return Monitor(model)
