"""bnlab's modules where torch's tooling meets them: the type hierarchy, fx, TorchScript,
tracing, export, compile, checkpointing, and the edge behaviours torch's own tests check.

Every test builds the same small CNN twice, once with torch's BN layers and once with bnlab's
(the same initial weights), and compares outputs, gradients and buffers with torch's.
"""

from __future__ import annotations

import collections
import functools
import io
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import bnlab.nn as bnn
from bnlab.backends import fused, torch_ref
from bnlab.functional import batch_norm

pytestmark = pytest.mark.usefixtures("every_backend")

D = torch.float64
PAIRS = [
    (bnn.BatchNorm1d, nn.BatchNorm1d),
    (bnn.BatchNorm2d, nn.BatchNorm2d),
    (bnn.BatchNorm3d, nn.BatchNorm3d),
]


def _cnn(
    bn2d: type[nn.Module], bn1d: type[nn.Module], cumulative: bool = True, backend: str = ""
) -> nn.Module:
    """``cumulative``: the 1-D layer keeps a cumulative average (momentum None), which torch's
    own layers cannot export or compile with fullgraph (the factor 1/k is data-dependent).
    ``backend``: bnlab's layers get it explicitly, the string the registered op carries."""
    if backend:
        bn2d, bn1d = (functools.partial(bn, backend=backend) for bn in (bn2d, bn1d))  # type: ignore[assignment]
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        bn2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 6),
        bn1d(6, momentum=None if cumulative else 0.1),
        nn.Linear(6, 3),
    ).double()


@dataclass
class Kernel:
    """The backend under test, and how often its kernels ran (``forward``, ``backward``)."""

    name: str
    calls: collections.Counter[str] = field(default_factory=collections.Counter)


@pytest.fixture
def kernel(every_backend: str, monkeypatch: pytest.MonkeyPatch) -> Kernel:
    """Counts the calls that reach the backend's own kernels: for 'cpu-fused' the compiled
    entry points themselves, so that a graph which quietly fell back to the portable code
    (a string lost on the way through script, export or compile) shows as zero calls."""
    k = Kernel(every_backend)
    if every_backend == "cpu-fused":
        owner, names = fused.library(), ("bnlab_forward", "bnlab_backward")
    else:
        owner, names = torch_ref, ("forward", "backward")

    def counting(real, key: str):
        def counted(*args):
            k.calls[key] += 1
            return real(*args)

        return counted

    for name in names:
        key = name.removeprefix("bnlab_")
        monkeypatch.setattr(owner, name, counting(getattr(owner, name), key))
    return k


@pytest.fixture
def nets(kernel: Kernel) -> tuple[nn.Module, nn.Module]:
    ours = _cnn(bnn.BatchNorm2d, bnn.BatchNorm1d, backend=kernel.name)
    return ours, _cnn(nn.BatchNorm2d, nn.BatchNorm1d)


def _batch(seed: int = 0, n: int = 8) -> torch.Tensor:
    return torch.randn(n, 2, 5, 5, generator=torch.Generator().manual_seed(seed), dtype=D)


def _same_state(ours: nn.Module, theirs: nn.Module, what: str) -> None:
    sd_o, sd_t = ours.state_dict(), theirs.state_dict()
    assert list(sd_o) == list(sd_t), what
    for k, v in sd_t.items():
        torch.testing.assert_close(sd_o[k], v, rtol=1e-9, atol=1e-10, msg=f"{what}: {k}")


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=what)


# --- the type hierarchy -----------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=["1d", "2d", "3d"])
def test_is_an_instance_of_torchs_classes(ours, theirs):
    m = ours(3)
    assert isinstance(m, theirs) and isinstance(m, nn.modules.batchnorm._BatchNorm)
    assert isinstance(m, nn.modules.batchnorm._NormBase)
    others = {t for _, t in PAIRS} - {theirs}
    assert not any(isinstance(m, o) for o in others)
    assert repr(m) == repr(theirs(3))  # torch's repr, whatever torch prints
    assert list(m.state_dict()) == list(theirs(3).state_dict())


def test_convert_sync_batchnorm_finds_bnlabs_layers(nets):
    ours, _ = nets
    with torch.no_grad():
        ours[1].weight.mul_(3)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(ours)
    found = [m for m in synced.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len(found) == 2
    torch.testing.assert_close(found[0].weight, ours[1].weight)


def test_replace_all_batch_norm_modules_reaches_bnlabs_layers(nets):
    ours, theirs = nets
    for net in (ours, theirs):
        torch.func.replace_all_batch_norm_modules_(net)
    bns = [m for m in ours.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 2
    assert all(m.running_mean is None and not m.track_running_stats for m in bns)
    _close(ours(_batch()), theirs(_batch()), "after replace_all_batch_norm_modules_")


def test_what_model_libraries_do_by_type(nets):
    """Weight-decay groups and BN freezing find BN layers with isinstance."""
    ours, theirs = nets
    groups = []
    for net in (ours, theirs):
        no_decay = [
            p
            for m in net.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for p in m.parameters(recurse=False)
        ]
        groups.append(len(no_decay))
        for m in net.modules():  # "freeze BN": eval mode and no gradients for γ, β
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.eval()
                for p in m.parameters():
                    p.requires_grad_(False)
    assert groups == [4, 4]
    x = _batch()
    _close(ours(x), theirs(x), "frozen")
    assert ours[1].num_batches_tracked == 0 and ours[1].weight.requires_grad is False


# --- fx -----------------------------------------------------------------------------------------


def test_fx_symbolic_trace_sees_a_leaf_like_torchs(nets):
    ours, theirs = nets
    gm_o, gm_t = torch.fx.symbolic_trace(ours), torch.fx.symbolic_trace(theirs)
    ops_o = [(n.op, n.target) for n in gm_o.graph.nodes]
    assert ops_o == [(n.op, n.target) for n in gm_t.graph.nodes]
    x = _batch()
    _close(gm_o(x), gm_t(x), "traced, training")
    _same_state(gm_o, gm_t, "buffers after the traced training step")
    gm_o.eval(), gm_t.eval()  # the leaf reads its mode when it runs, as torch's does
    _close(gm_o(x), gm_t(x), "traced, eval")


def test_fx_traces_the_module_itself_and_the_functional():
    """As the root, bnlab's module traces to its functional call (torch's own cannot be traced
    as a root at all: its input check is control flow on the Proxy)."""
    ours, theirs = bnn.BatchNorm2d(3).double(), nn.BatchNorm2d(3).double()
    gm_o = torch.fx.symbolic_trace(ours)
    assert any(n.target is batch_norm for n in gm_o.graph.nodes)
    x = torch.randn(4, 3, 2, 2, dtype=D)
    _close(gm_o(x), theirs(x), "root module traced")
    _same_state(gm_o, theirs, "root module's buffers")

    def f(x, w):
        return batch_norm(x, None, None, w, None, training=True).relu()

    gm = torch.fx.symbolic_trace(f)
    assert next(n.target for n in gm.graph.nodes if n.op == "call_function") is batch_norm
    w = torch.rand(3, dtype=D)
    _close(gm(x, w), F.batch_norm(x, None, None, w, None, True).relu(), "traced functional")


# --- TorchScript, tracing, export, compile ------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates jit.script
def test_torchscript_script_save_and_load(nets, kernel):
    ours, theirs = nets
    scripted = torch.jit.script(ours)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    for step in range(3):
        x = _batch(step)
        _close(scripted(x), theirs(x), f"scripted, training step {step}")
    _same_state(scripted, theirs, "scripted buffers after 3 steps (momentum None included)")
    x = _batch(7)
    _close(loaded(x), _cnn(nn.BatchNorm2d, nn.BatchNorm1d)(x), "loaded, training")
    scripted.eval(), theirs.eval()
    _close(scripted(x), theirs(x), "scripted, eval")
    with pytest.raises(Exception, match="expected 4D input"):
        scripted[1](torch.randn(2, 4, dtype=D))
    assert kernel.calls["forward"] == 2 * 5  # both layers, each scripted and loaded call


def test_jit_trace(nets, kernel):
    ours, theirs = nets
    ours.eval(), theirs.eval()
    x = _batch()
    traced = torch.jit.trace(ours, (x,))
    kernel.calls.clear()  # tracing ran the model eagerly: count the traced graph's calls
    _close(traced(_batch(1)), theirs(_batch(1)), "traced")
    assert kernel.calls["forward"] == 2


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_export(training, kernel):
    ours = _cnn(bnn.BatchNorm2d, bnn.BatchNorm1d, cumulative=False, backend=kernel.name)
    theirs = _cnn(nn.BatchNorm2d, nn.BatchNorm1d, cumulative=False)
    ours.train(training), theirs.train(training)
    x = _batch()
    program = torch.export.export(ours, (x,))
    exported = program.module()
    kernel.calls.clear()
    _close(exported(_batch(1)), theirs(_batch(1)), "exported")
    assert kernel.calls["forward"] == 2
    if training:  # the exported module updates its buffers as the eager one does
        _close(exported.get_buffer("1.running_mean"), theirs[1].running_mean, "running_mean")


def test_compile_fullgraph_aot_eager(kernel):
    """The op is opaque to the compiler: its forward runs the backend's kernel at run time.
    Its backward formula is traced (on fake tensors, which no kernel takes): the portable
    ops, compiled into the backward graph."""
    ours = _cnn(bnn.BatchNorm2d, bnn.BatchNorm1d, cumulative=False, backend=kernel.name)
    theirs = _cnn(nn.BatchNorm2d, nn.BatchNorm1d, cumulative=False)
    torch._dynamo.reset()
    compiled = torch.compile(ours, fullgraph=True, backend="aot_eager")
    for step in range(2):
        x = _batch(step).requires_grad_()
        xt = x.detach().clone().requires_grad_()
        y, yt = compiled(x), theirs(xt)
        _close(y, yt, f"compiled output, step {step}")
        y.square().sum().backward()
        yt.square().sum().backward()
        _close(x.grad, xt.grad, "input gradient")
    for (k, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        _close(p.grad, q.grad, f"gradient of {k}")
    _same_state(ours, theirs, "buffers after compiled steps")
    assert kernel.calls["forward"] == 2 * 2  # two layers, two steps: each a kernel call


# --- the edge behaviours torch's tests check ----------------------------------------------------


def test_empty_float64_batch_through_a_float32_module():
    for cls in (bnn.BatchNorm2d, nn.BatchNorm2d):
        m = cls(3)
        x = torch.randn(0, 3, 2, 2, dtype=D, requires_grad=True)
        y = m(x)
        assert y.shape == (0, 3, 2, 2) and y.dtype == D
        y.sum().backward()
        assert x.grad.shape == x.shape and torch.count_nonzero(m.weight.grad) == 0
        assert int(m.num_batches_tracked) == 1  # an empty batch is counted, as torch does
        assert torch.equal(m.running_mean, torch.zeros(3))
    # a non-empty float64 batch through a float32 module: refused by both, in the same type
    for cls in (bnn.BatchNorm2d, nn.BatchNorm2d):
        with pytest.raises(RuntimeError, match="mixed dtype"):
            cls(3)(torch.randn(4, 3, 2, 2, dtype=D))


@pytest.mark.parametrize("training", [True, False])
def test_zero_element_1d_input(training):
    for fn in (batch_norm, F.batch_norm):
        y = fn(torch.empty(0), torch.zeros(0), torch.ones(0), training=training)
        assert y.shape == (0,)


def test_checks_come_in_torchs_order():
    x = torch.randn(4, 3)
    bad = dict(weight=torch.ones(3, dtype=D), eps=-1.0, training=True)
    for fn in (batch_norm, F.batch_norm):
        with pytest.raises(ValueError, match="eps must be positive during training"):
            fn(x, torch.zeros(3), torch.ones(3), **bad)  # ε is reported before the dtype
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            fn(torch.randn(1, 3), torch.zeros(4), torch.ones(4), training=True, eps=-1.0)
        with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 4"):
            fn(x, torch.zeros(4), torch.ones(3), torch.ones(4), training=True)
        with pytest.raises(RuntimeError, match="weight should contain 3 elements not 4"):
            fn(x, None, None, torch.ones(4), torch.ones(4), training=True)
        # γ of any shape with C elements is fine
        fn(x, None, None, torch.ones(1, 3), None, training=True)


@pytest.mark.parametrize(("ours", "theirs"), PAIRS[:2], ids=["1d", "2d"])
def test_wrong_channel_count_is_torchs_error(ours, theirs):
    x = torch.randn(4, 5) if ours is bnn.BatchNorm1d else torch.randn(4, 5, 2, 2)
    for cls in (ours, theirs):
        with pytest.raises(RuntimeError, match="running_mean should contain 5 elements not 3"):
            cls(3)(x)
    # without running statistics torch names γ; without γ, β either it normalizes any C
    for cls in (ours, theirs):
        with pytest.raises(RuntimeError, match="weight should contain 5 elements not 3"):
            cls(3, track_running_stats=False)(x)
        assert cls(3, affine=False, track_running_stats=False)(x).shape == x.shape


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_counts_as_torch_does(use_reentrant, kernel):
    x = _batch()
    nets_ = []
    for bn2d, bn1d in ((bnn.BatchNorm2d, bnn.BatchNorm1d), (nn.BatchNorm2d, nn.BatchNorm1d)):
        net = _cnn(bn2d, bn1d)  # backend 'auto', which every_backend prefer()s
        xs = x.clone().requires_grad_()
        y = checkpoint(net, xs, use_reentrant=use_reentrant)
        y.square().sum().backward()
        nets_.append((net, xs.grad))
    (ours, g_o), (theirs, g_t) = nets_
    _close(g_o, g_t, "input gradient through checkpoint")
    _same_state(ours, theirs, "buffers after the recomputed forward")
    assert int(ours[1].num_batches_tracked) == int(theirs[1].num_batches_tracked)
    assert kernel.calls["forward"] == 2 * 2 and kernel.calls["backward"] == 2  # recomputed


def test_fx_refuses_a_cumulative_root_clearly():
    with pytest.raises(torch.fx.proxy.TraceError, match="momentum=None"):
        torch.fx.symbolic_trace(bnn.BatchNorm1d(3, momentum=None))
    torch.fx.symbolic_trace(bnn.BatchNorm1d(3, momentum=None).eval())  # eval: no factor needed


# --- found by a second reading: training through script, export and trace ----------------------


def _train_steps(step_fn, steps: int = 3) -> None:
    for i in range(steps):
        x = _batch(10 + i).requires_grad_()
        step_fn(x).square().sum().backward()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "kwargs", [{}, {"track_running_stats": False}, {"momentum": None}, {"affine": False}]
)
def test_scripted_training_with_a_layer_before_matches_torch(kwargs, kernel):
    """Several backward passes through a scripted model: the buffers never join the graph."""
    nets_ = []
    for bn in (functools.partial(bnn.BatchNorm2d, backend=kernel.name), nn.BatchNorm2d):
        torch.manual_seed(0)
        nets_.append(nn.Sequential(nn.Conv2d(2, 3, 3), bn(3, **kwargs)).double())
    ours, theirs = nets_
    scripted = torch.jit.script(ours)
    _train_steps(scripted)
    _train_steps(theirs)
    _same_state(ours, theirs, f"scripted training {kwargs}")
    if ours[1].running_mean is not None:
        assert not ours[1].running_mean.requires_grad
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        _close(p.grad, q.grad, "gradient after 3 scripted steps")
    assert kernel.calls["forward"] == 3 and kernel.calls["backward"] == 3


def test_exported_training_runs_backward_step_after_step(kernel):
    ours = _cnn(bnn.BatchNorm2d, bnn.BatchNorm1d, cumulative=False, backend=kernel.name)
    theirs = _cnn(nn.BatchNorm2d, nn.BatchNorm1d, cumulative=False)
    exported = torch.export.export(ours, (_batch(),)).module()
    kernel.calls.clear()
    _train_steps(exported)
    _train_steps(theirs)
    _close(exported.get_buffer("1.running_mean"), theirs[1].running_mean, "running_mean")
    assert not exported.get_buffer("1.running_mean").requires_grad
    assert kernel.calls["forward"] == kernel.calls["backward"] == 2 * 3


@pytest.mark.parametrize("cumulative", [False, True], ids=["momentum", "cumulative"])
def test_traced_training_updates_the_buffers_once(cumulative, kernel):
    ours = _cnn(bnn.BatchNorm2d, bnn.BatchNorm1d, cumulative=cumulative, backend=kernel.name)
    theirs = _cnn(nn.BatchNorm2d, nn.BatchNorm1d, cumulative=cumulative)
    traced_o = torch.jit.trace(ours, (_batch(),), check_trace=False)
    traced_t = torch.jit.trace(theirs, (_batch(),), check_trace=False)
    kernel.calls.clear()
    _train_steps(traced_o)
    _train_steps(traced_t)
    _same_state(ours, theirs, "traced training")
    assert kernel.calls["forward"] == kernel.calls["backward"] == 2 * 3


def test_output_layout_is_torchs():
    """Dense output for any strides (a following .view works), channels-last kept."""
    for x in (
        _batch().transpose(2, 3),
        _batch().permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3),
        _batch().to(memory_format=torch.channels_last),
        _batch()[:, :, ::2],
    ):
        for fn in (batch_norm, F.batch_norm):
            y = fn(x, None, None, training=True)
            if fn is batch_norm:
                got = y
            else:
                assert got.stride() == y.stride(), (x.stride(), got.stride(), y.stride())
        assert got.is_contiguous() or got.is_contiguous(memory_format=torch.channels_last)
