"""``check(model, data)``: a batch-norm health check for any model, as a :class:`Report`.

Two passes over the same batches, both watched by :func:`bnlab.inspect.monitor`:

1. in the model's own mode (as the caller left it): which layers run in train mode, and which
   update their running statistics — a layer whose γ and β were frozen by hand but which
   ``model.train()`` put back in train mode still updates them at every batch;
2. with every BN layer normalizing by its batch's statistics, as in training (the rest of the
   model in eval mode, the buffers restored afterwards): the population statistics of each
   layer's input — what its running statistics were meant to track, measured layer by layer
   so that one stale layer does not make the layers after it look stale — and each layer's
   train/eval output gap, its output recomputed from the running statistics.

Then the parameters: dead channels (running variance or γ ≈ 0), a bias on the conv/linear layer
feeding a BN (β subsumes it), momentum and ε far from their usual values.  Every finding names
the layer, the numbers behind it and what to do.

``check`` never changes the model: parameters, buffers, every module's mode, the hooks and the
RNG state are as they were afterwards, also when the model raises.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import BNTypeError, BNValueError
from ..nn import D2LBatchNorm
from .freeze import is_frozen
from .layers import input_of, require_bn_layers, running_buffers
from .monitor import monitor
from .report import Finding, LayerRow, Report

# thresholds, each a finding's trigger (the numbers are in the finding)
STALE_SHIFT = 0.5  # |running mean − population mean| in population standard deviations
STALE_RATIO = 2.0  # running variance vs population variance, either way
GAP = 0.5  # train/eval output gap: RMS(y_train − y_eval) / RMS(y_train − β)
DEAD = 1e-6  # a running variance or |γ| below this (relative to the layer's largest) is dead
SMALL_BATCH = 16  # values per channel in one normalization
MOMENTUM_MAX = 0.5  # torch's momentum is the new batch's weight: 0.9/0.99 are Keras' convention
EPS_RANGE = (1e-8, 0.1)


def _batches(data: Iterable[Any], batches: int, seen: list[Any] | None = None) -> Iterator[Tensor]:
    """The first ``batches`` inputs; ``seen`` (if given) holds the shape of the latest one."""
    for i, batch in enumerate(data):
        if i >= batches:
            return
        x = input_of(batch, "check")
        if seen is not None:
            seen[:] = [i, tuple(x.shape)]
        yield x


@contextlib.contextmanager
def _untouched(model: nn.Module) -> Iterator[None]:
    """Afterwards the model is as before: tensors' values, modes, hooks, RNG, grad flags."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t is not None]
    values = [t.detach().clone() for t in tensors]
    modes = [(m, m.training) for m in model.modules()]
    hooks = [
        (m, dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in model.modules()
    ]
    rng = torch.get_rng_state()
    try:
        yield
    finally:
        with torch.no_grad():
            for t, v in zip(tensors, values, strict=True):
                t.copy_(v)
        for m, training in modes:
            m.training = training
        for m, fwd, pre in hooks:
            m._forward_hooks.clear()
            m._forward_hooks.update(fwd)
            m._forward_pre_hooks.clear()
            m._forward_pre_hooks.update(pre)
        torch.set_rng_state(rng)


def _gamma(m: nn.Module) -> Tensor | None:
    w = m.gamma if isinstance(m, D2LBatchNorm) else m.weight
    return None if w is None else w.detach().reshape(-1).double()


def _running(m: nn.Module) -> tuple[Tensor | None, Tensor | None]:
    rm, rv = running_buffers(m)
    return (None, None) if rm is None or rv is None else (rm.reshape(-1).double(),
                                                          rv.reshape(-1).double())


def _torch_momentum(m: nn.Module) -> float | None:
    """The weight of the new batch in the running average, as torch means it."""
    if isinstance(m, D2LBatchNorm):
        return 1.0 - float(m.momentum)  # the book keeps the old value's weight
    return None if m.momentum is None else float(m.momentum)


def _gap_hooks(layers: list[tuple[str, nn.Module]], gaps: dict[str, list[float]]) -> list[Any]:
    """Hooks that recompute each train-mode BN output from the running statistics (as they
    were before the pass): RMS(y_train − y_eval) / RMS(y_train − β), per call."""

    def hook(name: str, m: nn.Module) -> Any:
        rm, rv = _running(m)
        rm = None if rm is None else rm.clone()
        rv = None if rv is None else rv.clone()
        w = _gamma(m)
        b = m.beta if isinstance(m, D2LBatchNorm) else m.bias
        b = None if b is None else b.detach().reshape(-1).double()

        def fn(_m: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
            x = args[0]
            if rm is None or not isinstance(x, Tensor) or x.dim() < 2 or x.numel() == 0:
                return
            xd = x.detach().double()
            y_eval = F.batch_norm(xd, rm, rv, w, b, False, 0.0, float(m.eps))
            y_train = out.detach().double()
            centre = 0.0 if b is None else b.reshape((1, -1) + (1,) * (x.dim() - 2))
            scale = (y_train - centre).square().mean().sqrt().item()
            diff = (y_train - y_eval).square().mean().sqrt().item()
            gaps[name].append(diff / max(scale, 1e-12))

        return fn

    return [m.register_forward_hook(hook(name, m)) for name, m in layers]


def _bias_fed(model: nn.Module, names: dict[int, str]) -> dict[str, str]:
    """BN layer name → the conv/linear with a bias directly before it (module order)."""
    found: dict[str, str] = {}
    for parent_name, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for (a_name, a), (_, b) in itertools.pairwise(children):
            feeds = isinstance(a, nn.Linear | nn.modules.conv._ConvNd)
            if feeds and getattr(a, "bias", None) is not None and id(b) in names:
                found[names[id(b)]] = f"{parent_name}.{a_name}" if parent_name else a_name
    return found


def check(model: nn.Module, data: Iterable[Any], batches: int = 20) -> Report:
    """A batch-norm health check of ``model`` on up to ``batches`` batches of ``data``.

    ``data``: a re-iterable of input tensors or ``(input, target)`` pairs (a list, a DataLoader),
    read twice.  The model is left exactly as it was.

    Raises:
        BNTypeError: ``model`` is not a module, or ``data`` is a one-shot iterator or yields
            something that is not a tensor.
        BNValueError: no BN layer, no batch, or the model refuses the data (its message kept).
    """
    layers = require_bn_layers("check", model)
    if iter(data) is data:  # type: ignore[comparison-overlap]
        raise BNTypeError(
            "check: data is a one-shot iterator, but it is read twice (in the model's mode and "
            "in eval mode); pass a list (e.g. list(loader)) or a re-iterable loader"
        )
    if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
        raise BNValueError(f"check: expected batches ≥ 1 (got {batches!r})")
    if next(_batches(data, 1), None) is None:
        raise BNValueError("check: the data yielded no batch")
    names = {id(m): name for name, m in layers}
    gaps: dict[str, list[float]] = {name: [] for name, _ in layers}
    first_shape = tuple(next(_batches(data, 1)).shape)
    at: list[Any] = [0, first_shape]  # the batch being run, for an error
    try:
        with _untouched(model), torch.no_grad(), monitor(model) as own:  # the caller's mode
            for x in _batches(data, batches, at):
                model(x)
        with _untouched(model):  # the buffers as the caller left them, before the pass above
            model.eval()
            for _, m in layers:  # batch statistics, as in training; the rest as at inference
                m.train()
            handles = _gap_hooks(layers, gaps)
            try:
                with torch.no_grad(), monitor(model) as ev:
                    for x in _batches(data, batches, at):
                        model(x)
            finally:
                for h in handles:
                    h.remove()
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        if isinstance(e, BNValueError | BNTypeError) and str(e).startswith("check:"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        index, shape = at
        raise BNValueError(
            f"check: the model cannot run on this data: batch {index} of shape {list(shape)} "
            f"(the first batch: {list(first_shape)}) gives {type(e).__name__}: {first}"
        ) from e
    return _report(model, layers, own.layers, ev.layers, gaps, _bias_fed(model, names))


def _report(
    model: nn.Module,
    layers: list[tuple[str, nn.Module]],
    own: dict[str, Any],
    ev: dict[str, Any],
    gaps: dict[str, list[float]],
    biased: dict[str, str],
) -> Report:
    findings: list[Finding] = []
    rows: list[LayerRow] = []
    n_batches = 0
    for name, m in layers:
        seen, seen_eval = own.get(name), ev.get(name)
        label = name or "(the model)"
        rm, rv = _running(m)
        gamma = _gamma(m)
        frozen = is_frozen(m)
        row = LayerRow(name=label, kind=type(m).__name__, channels=int(m.num_features))
        row.momentum, row.eps, row.frozen = _torch_momentum(m), float(m.eps), frozen
        if seen is None or seen_eval is None:
            row.note = "not called by the forward pass"
            rows.append(row)
            continue
        n_batches = max(n_batches, seen.calls)
        row.modes = dict(seen.modes)
        row.values_per_channel = min(seen.values_per_channel) if seen.values_per_channel else 0
        row.updated = bool(seen.updated)
        pop_mean, pop_var = seen_eval.mean, seen_eval.var
        row.population_mean, row.population_var = pop_mean.tolist(), pop_var.tolist()
        if rm is not None and rv is not None:
            row.running_mean, row.running_var = rm.tolist(), rv.tolist()
            std = (pop_var + float(m.eps)).sqrt()
            shift = ((rm - pop_mean).abs() / std)
            ratio = (rv + float(m.eps)) / (pop_var + float(m.eps))
            row.stale_shift = float(shift.max())
            row.stale_ratio = float(torch.maximum(ratio, 1 / ratio).max())
        row.gap = sum(gaps[name]) / len(gaps[name]) if gaps[name] else None
        rows.append(row)
        findings.extend(_findings(row, m, rm, rv, gamma, biased.get(name)))
    # a gap is only news where nothing above explains it
    explained = {f.layer for f in findings if f.kind in ("stale", "small-batch", "dead")}
    for row in rows:
        if row.gap is not None and row.gap > GAP and row.name not in explained:
            findings.append(
                Finding(
                    row.name, "gap", "warning",
                    f"train/eval output gap {row.gap:.2f} (RMS difference over RMS output)",
                    "the running statistics do not describe this data's batches: check that "
                    "eval data looks like training data, or recalibrate (bnlab.inspect."
                    "recalibrate)",
                    {"gap": row.gap, "threshold": GAP},
                )
            )
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return Report(type(model).__name__, rows, findings, n_batches)


def _findings(
    row: LayerRow,
    m: nn.Module,
    rm: Tensor | None,
    rv: Tensor | None,
    gamma: Tensor | None,
    bias_from: str | None,
) -> list[Finding]:
    out: list[Finding] = []
    name = row.name
    if row.stale_shift is not None and (
        row.stale_shift > STALE_SHIFT or (row.stale_ratio or 1.0) > STALE_RATIO
    ):
        out.append(
            Finding(
                name, "stale", "warning",
                f"running statistics are far from this data's: mean off by up to "
                f"{row.stale_shift:.2f} σ, variance off by up to {row.stale_ratio:.2f}×",
                "recompute them from the data: bnlab.inspect.recalibrate(model, loader)",
                {"max_mean_shift_sigma": row.stale_shift, "max_var_ratio": row.stale_ratio,
                 "thresholds": [STALE_SHIFT, STALE_RATIO]},
            )
        )
    dead: set[int] = set()
    if rv is not None and rv.numel():
        limit = DEAD * max(float(rv.abs().max()), 1e-30)
        dead |= {int(c) for c in torch.nonzero(rv.abs() <= max(limit, 1e-12)).flatten()}
    if gamma is not None and gamma.numel():
        limit = DEAD * max(float(gamma.abs().max()), 1e-30)
        dead |= {int(c) for c in torch.nonzero(gamma.abs() <= max(limit, 1e-12)).flatten()}
    if dead:
        chans = sorted(dead)
        out.append(
            Finding(
                name, "dead", "warning",
                f"{len(chans)} dead channel{'s' if len(chans) != 1 else ''} (running variance "
                f"or γ ≈ 0): {chans[:10]}{' …' if len(chans) > 10 else ''}",
                "these channels pass a constant: prune them, or look for what zeroes them "
                "(a dead ReLU before, or weight decay on γ)",
                {"channels": chans},
            )
        )
    if row.values_per_channel and row.values_per_channel < SMALL_BATCH:
        out.append(
            Finding(
                name, "small-batch", "warning",
                f"each normalization sees only {row.values_per_channel} values per channel",
                "batch statistics this small are noisy: use larger batches, GroupNorm/LayerNorm, "
                "or SyncBatchNorm across processes",
                {"values_per_channel": row.values_per_channel, "threshold": SMALL_BATCH},
            )
        )
    affine_frozen = gamma is not None and not (
        (m.gamma if isinstance(m, D2LBatchNorm) else m.weight).requires_grad
    )
    if row.updated and (row.frozen or affine_frozen):
        how = "frozen with bnlab.inspect.freeze" if row.frozen else "its γ and β are frozen"
        out.append(
            Finding(
                name, "frozen-but-training", "error",
                f"{how}, yet it ran in train mode and updated its running statistics",
                "model.train() undoes bn.eval(): use bnlab.inspect.freeze(model), which "
                "survives train(), or call eval() on the BN layers after every train()",
                {"modes": row.modes, "updated": True},
            )
        )
    if bias_from is not None:
        out.append(
            Finding(
                name, "bias-before-bn", "info",
                f"the layer before it, '{bias_from}', has a bias, which batch norm subtracts "
                "again (β takes its place)",
                f"construct '{bias_from}' with bias=False: fewer parameters, the same model",
                {"layer": bias_from},
            )
        )
    momentum = row.momentum
    if momentum is not None and momentum > MOMENTUM_MAX:
        out.append(
            Finding(
                name, "momentum", "warning",
                f"momentum {momentum:g}: each batch weighs {momentum:.0%} in the running "
                "averages, which then follow the last batch",
                "torch's momentum is the new batch's weight, Keras' the old average's: "
                f"Keras' {momentum:g} is torch's {round(1 - momentum, 6):g}",
                {"momentum": momentum, "threshold": MOMENTUM_MAX},
            )
        )
    if not (EPS_RANGE[0] <= row.eps <= EPS_RANGE[1]) or math.isnan(row.eps):
        out.append(
            Finding(
                name, "eps", "info",
                f"ε = {row.eps:g}, outside the usual {EPS_RANGE[0]:g} … {EPS_RANGE[1]:g}",
                "torch's default is 1e-5; a large ε flattens low-variance channels",
                {"eps": row.eps},
            )
        )
    return out
