"""monitor: what each BN layer saw, exact against its concatenated inputs; the model untouched."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from torch import nn

import bnlab.nn as bnn
from bnlab.errors import BNLabError
from bnlab.inspect import LayerSummary, Monitor, monitor

F64 = torch.float64

# name: (BN layer for C channels, the input shape for a batch of N after the first layer)
CASES = {
    "torch-2d": (lambda c: nn.BatchNorm2d(c, dtype=F64), "conv"),
    "bnlab-2d": (lambda c: bnn.BatchNorm2d(c, dtype=F64), "conv"),
    "d2l-4d": (lambda c: bnn.D2LBatchNorm(c, 4).double(), "conv"),
    "torch-1d-NC": (lambda c: nn.BatchNorm1d(c, dtype=F64), "linear"),
    "torch-1d-NCL": (lambda c: nn.BatchNorm1d(c, dtype=F64), "seq"),
    "bnlab-1d-NC": (lambda c: bnn.BatchNorm1d(c, dtype=F64), "linear"),
    "d2l-2d": (lambda c: bnn.D2LBatchNorm(c, 2).double(), "linear"),
}


def _model(case: str) -> nn.Sequential:
    make, kind = CASES[case]
    torch.manual_seed(0)
    first = {
        "conv": lambda: nn.Conv2d(3, 4, 3, padding=1, dtype=F64),
        "linear": lambda: nn.Linear(3, 4, dtype=F64),
        "seq": lambda: nn.Conv1d(3, 4, 3, padding=1, dtype=F64),
    }[kind]
    second = {
        "conv": lambda: nn.Conv2d(4, 5, 1, dtype=F64),
        "linear": lambda: nn.Linear(4, 5, dtype=F64),
        "seq": lambda: nn.Conv1d(4, 5, 1, dtype=F64),
    }[kind]
    return nn.Sequential(first(), make(4), nn.ReLU(), second(), make(5))


def _batch(case: str, n: int, g: torch.Generator) -> torch.Tensor:
    shape = {"conv": (n, 3, 5, 6), "linear": (n, 3), "seq": (n, 3, 7)}[CASES[case][1]]
    return torch.randn(*shape, generator=g, dtype=F64) * 3 + 2


def _capture(model: nn.Module) -> tuple[dict[str, list[torch.Tensor]], list]:
    """The test's own record of every BN layer's inputs (hooks registered before monitor's)."""
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, bnn.D2LBatchNorm)):

            def hook(_m, args, name=name):
                seen.setdefault(name, []).append(args[0].detach().clone())

            handles.append(m.register_forward_pre_hook(hook))
    return seen, handles


def _hook_state(model: nn.Module) -> dict[str, tuple]:
    return {
        name: (
            dict(m._forward_hooks),
            dict(m._forward_pre_hooks),
            dict(m._forward_pre_hooks_with_kwargs),
            dict(m._forward_hooks_always_called),
            m.training,
            {k: id(b) for k, b in m.named_buffers(recurse=False)},
        )
        for name, m in model.named_modules()
    }


@pytest.mark.parametrize("case", list(CASES))
def test_statistics_equal_a_direct_computation_over_the_concatenated_inputs(case):
    model = _model(case)
    seen, handles = _capture(model)
    g = torch.Generator().manual_seed(1)
    plan = [(7, "train"), (16, "train"), (5, "eval"), (9, "train"), (16, "eval")]
    with monitor(model) as mon:
        for n, mode in plan:
            model.train(mode == "train")
            model(_batch(case, n, g))
    for h in handles:
        h.remove()
    model.train()
    assert list(mon.layers) == ["1", "4"]
    for name, xs in seen.items():
        s = mon.layers[name]
        c = xs[0].shape[1]
        axes = (0, *range(2, xs[0].dim()))
        per_call = [x[0].numel() // c * x.shape[0] for x in xs]
        # every value per channel, concatenated: (C, total)
        flat = torch.cat([x.transpose(0, 1).reshape(c, -1) for x in xs], dim=1)
        assert s.name == name and s.num_features == c
        assert s.kind == type(model[int(name)]).__name__
        assert s.calls == len(plan) and s.count == flat.shape[1] == sum(per_call)
        assert s.batch_sizes == Counter(n for n, _ in plan)
        assert s.values_per_channel == Counter(per_call)
        assert s.modes == Counter(mode for _, mode in plan)
        for t in s.tensors():
            assert t.dtype == F64 and t.device.type == "cpu" and t.shape == (c,)
        torch.testing.assert_close(s.mean, flat.mean(1), rtol=0, atol=1e-12)
        torch.testing.assert_close(s.var, flat.var(1, unbiased=False), rtol=0, atol=1e-12)
        means = torch.stack([x.mean(axes) for x in xs])  # calls, C
        variances = torch.stack([x.var(axes, unbiased=False) for x in xs])
        torch.testing.assert_close(s.batch_mean_min, means.min(0).values, rtol=0, atol=1e-12)
        torch.testing.assert_close(s.batch_mean_max, means.max(0).values, rtol=0, atol=1e-12)
        torch.testing.assert_close(s.batch_var_min, variances.min(0).values, rtol=0, atol=1e-12)
        torch.testing.assert_close(s.batch_var_max, variances.max(0).values, rtol=0, atol=1e-12)
        assert s.updated
        layer = model[int(name)]
        buffers = (
            (layer.moving_mean, layer.moving_var)
            if isinstance(layer, bnn.D2LBatchNorm)
            else (layer.running_mean, layer.running_var)
        )
        assert torch.equal(s.running_mean, buffers[0].flatten())
        assert torch.equal(s.running_var, buffers[1].flatten())
        assert s.running_mean is not buffers[0]  # a copy


def test_float32_input_is_summarized_in_float64():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    xs = [torch.randn(4, 3, 5, 5) * 2 + 100 for _ in range(3)]
    with monitor(bn) as mon:
        for x in xs:
            bn(x)
    s = mon.layers[""]
    ref = torch.cat(xs).double()
    assert s.mean.dtype == F64
    torch.testing.assert_close(s.mean, ref.mean((0, 2, 3)), rtol=1e-6, atol=0)
    torch.testing.assert_close(s.var, ref.var((0, 2, 3), unbiased=False), rtol=1e-4, atol=0)


def test_layers_are_listed_in_forward_order_and_unused_ones_last():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.late = nn.BatchNorm1d(2)  # registered first, called second
            self.early = nn.BatchNorm1d(2)
            self.unused = nn.BatchNorm1d(6)

        def forward(self, x):
            return self.late(self.early(x))

    m = Reversed()
    with monitor(m) as mon:
        m(torch.randn(8, 2))
    assert list(mon.layers) == ["early", "late", "unused"]
    unused = mon.layers["unused"]
    assert unused.calls == 0 and unused.count == 0 and not unused.updated
    assert unused.mean.shape == (6,) and unused.mean.isnan().all()
    assert unused.modes == Counter() and "never called" in repr(unused)


def test_memory_does_not_grow_with_the_batches_seen():
    model = _model("bnlab-2d")
    g = torch.Generator().manual_seed(2)
    sizes = []
    with monitor(model) as mon:
        for i in range(50):
            model(_batch("bnlab-2d", 4 + i % 3, g))
            if i in (9, 49):
                sizes.append(sum(s.nbytes for s in mon.layers.values()))
    assert sizes[0] == sizes[1] > 0
    for s in mon.layers.values():
        for value in vars(s).values():  # no tensor bigger than C, no growing list
            if isinstance(value, torch.Tensor):
                assert value.numel() <= s.num_features
            assert not isinstance(value, (list, tuple))
        assert len(s.batch_sizes) == 3 and len(s.values_per_channel) == 3


class Boom(RuntimeError):
    pass


class RaisesMidway(nn.Module):
    """Runs its first BN layer, then raises on purpose."""

    def __init__(self):
        super().__init__()
        self.bn1 = bnn.BatchNorm1d(3)
        self.bn2 = nn.BatchNorm1d(3)

    def forward(self, x):
        self.bn1(x)
        raise Boom("on purpose")


@pytest.mark.parametrize("raises", [False, True], ids=["normal", "model-raises"])
def test_hooks_modes_and_buffers_are_restored(raises):
    model = RaisesMidway() if raises else _model("torch-2d")
    layer = model.bn1 if raises else model[1]
    user = layer.register_forward_hook(lambda m, a, o: None)  # a user's hook stays
    model.eval()
    layer.train()  # mixed flags survive as they are
    before = _hook_state(model)
    x = torch.randn(6, 3) if raises else torch.randn(6, 3, 4, 4, dtype=F64)
    if raises:
        with pytest.raises(Boom, match="on purpose"), monitor(model) as mon:
            model(x)
    else:
        with monitor(model) as mon:
            model(x)
    assert _hook_state(model) == before
    assert mon.layers[next(iter(mon.layers))].calls == 1
    assert not mon.active
    user.remove()


def test_buffers_are_left_as_the_forward_passes_made_them():
    model = _model("bnlab-2d")
    twin = copy.deepcopy(model)
    g = torch.Generator().manual_seed(3)
    xs = [_batch("bnlab-2d", 5, g) for _ in range(3)]
    with monitor(model):
        out = [model(x) for x in xs]
    ref = [twin(x) for x in xs]
    for a, b in zip(out, ref, strict=True):
        assert torch.equal(a, b)
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_updated_and_running_buffers():
    model = nn.Sequential(
        nn.BatchNorm1d(3), nn.BatchNorm1d(3, track_running_stats=False), nn.BatchNorm1d(3)
    )
    model[2].eval()
    with monitor(model) as mon:
        model(torch.randn(8, 3))
    assert [s.updated for s in mon.layers.values()] == [True, False, False]
    assert mon.layers["1"].running_mean is None and mon.layers["1"].running_var is None
    assert mon.layers["2"].modes == Counter(eval=1) and mon.layers["0"].modes == Counter(train=1)
    with monitor(model) as mon:  # momentum 0 moves no statistic, but counts the batch
        model[0].momentum = 0.0
        model(torch.randn(8, 3))
    assert mon.layers["0"].updated


def test_no_grad_inference_mode_and_autograd():
    model = _model("torch-2d")
    twin = copy.deepcopy(model)
    g = torch.Generator().manual_seed(4)
    x = _batch("torch-2d", 6, g).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    with monitor(model) as mon:
        with torch.no_grad():
            model(x)
        with torch.inference_mode():
            model(x.detach())
        y = model(x)
        y.square().sum().backward()
    twin(x2.detach())
    twin(x2.detach())
    twin(x2).square().sum().backward()
    assert mon.layers["1"].calls == 3
    assert torch.equal(x.grad, x2.grad)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_tracers_and_torch_func_are_skipped():
    model = _model("bnlab-1d-NC").eval()
    with monitor(model) as mon:
        torch.func.vmap(model)(torch.randn(2, 4, 3, dtype=F64))
        torch.func.grad(lambda x: model(x).sum())(torch.randn(4, 3, dtype=F64))
        torch.fx.symbolic_trace(model)
        model(torch.randn(4, 3, dtype=F64))
    assert mon.layers["1"].calls == 1


def test_empty_batch_counts_a_call_and_no_value():
    bn = nn.BatchNorm1d(3).eval()
    with monitor(bn) as mon:
        bn(torch.randn(0, 3))
    s = mon.layers[""]
    assert s.calls == 1 and s.count == 0 and s.batch_sizes == Counter({0: 1})
    assert s.mean.isnan().all()


def test_sync_batchnorm_is_monitored():
    model = nn.Sequential(nn.Linear(3, 4), nn.SyncBatchNorm(4))  # CPU: no forward, only attach
    with monitor(model) as mon:
        assert len(model[1]._forward_pre_hooks) == 1
    assert len(model[1]._forward_pre_hooks) == 0
    assert mon.layers["1"].kind == "SyncBatchNorm" and mon.layers["1"].calls == 0


def test_a_wrong_input_raises_the_layers_own_error():
    model = nn.Sequential(nn.BatchNorm2d(4))
    with pytest.raises(RuntimeError, match="running_mean should contain"), monitor(model):
        model(torch.randn(2, 3, 4, 4))
    assert not model[0]._forward_pre_hooks


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (
            nn.Sequential(nn.Linear(2, 3), nn.ReLU()),
            ValueError,
            "monitor: expected a model with batch-norm layers (found none in Sequential)",
        ),
        (nn.LayerNorm(3), ValueError, "(found none in LayerNorm)"),
        ("resnet", TypeError, "monitor: expected a torch.nn.Module (got str)"),
    ],
    ids=["no-bn", "layernorm", "not-a-module"],
)
def test_bad_models_are_refused_untouched(model, error, message):
    before = _hook_state(model) if isinstance(model, nn.Module) else None
    with pytest.raises(error) as info:
        monitor(model)
    assert isinstance(info.value, BNLabError)
    assert message in str(info.value) and "\n" not in str(info.value)
    if before is not None:
        assert _hook_state(model) == before


def test_reprs_and_one_entry_at_a_time():
    model = _model("torch-1d-NC")
    mon = monitor(model)
    assert isinstance(mon, Monitor)
    with mon:
        model(torch.randn(4, 3, dtype=F64))
        assert "active" in repr(mon)
        with pytest.raises(ValueError, match="active already"):
            mon.__enter__()
    assert repr(mon) == "Monitor(Sequential: 2 BN layers, 2 called, done)"
    s = mon.layers["1"]
    assert isinstance(s, LayerSummary)
    assert repr(s) == (
        "LayerSummary(1: BatchNorm1d(4), 1 calls (train 1), batch sizes [4×1], "
        "4 values/channel, updated)"
    )
    with mon:  # entered again: a fresh summary
        model(torch.randn(2, 3, dtype=F64))
    assert mon.layers["1"].calls == 1 and mon.layers["1"].count == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_input_is_summarized_on_the_cpu():
    model = _model("torch-2d").cuda()
    x = torch.randn(5, 3, 4, 4, dtype=F64, device="cuda")
    with monitor(model) as mon:
        model(x)
        assert mon.layers["1"].mean.device.type == "cuda"  # no copy per call
    h = model[0](x).detach()
    s = mon.layers["1"]
    assert s.mean.device.type == "cpu" and s.running_mean.device.type == "cpu"
    torch.testing.assert_close(s.mean, h.mean((0, 2, 3)).cpu(), rtol=0, atol=1e-12)
    assert s.updated
