"""Precise BN: recalibrated running statistics are the exact statistics of each layer's input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import bnlab.nn as bnn
from bnlab.inspect import bn_modules, recalibrate

BN = {
    "bnlab": lambda c: bnn.BatchNorm1d(c, dtype=torch.float64),
    "torch": lambda c: nn.BatchNorm1d(c, dtype=torch.float64),
    "d2l": lambda c: bnn.D2LBatchNorm(c, 2).double(),
}


def _model(kind):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 4, dtype=torch.float64),
        BN[kind](4),
        nn.ReLU(),
        nn.Linear(4, 3, dtype=torch.float64),
        BN[kind](3),
        nn.ReLU(),
    )


def _batches():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, 5, generator=g, dtype=torch.float64) * 3 + 1 for n in (7, 16, 5, 9)]


def _running(m):
    if isinstance(m, bnn.D2LBatchNorm):
        return m.moving_mean.flatten(), m.moving_var.flatten()
    return m.running_mean, m.running_var


@pytest.mark.parametrize("kind", list(BN))
def test_statistics_are_exact_layer_by_layer(kind):
    model = _model(kind)
    model.train()
    for b in _batches():  # some training so the running stats are off the mark
        model(b)
    data = _batches()
    recalibrate(model, data)
    assert model.training, "the training flag is restored"
    x = torch.cat(data)
    with torch.no_grad():
        h1 = model[0](x)  # the first BN's input over all data
        mean1, var1 = _running(model[1])
        torch.testing.assert_close(mean1, h1.mean(0), rtol=0, atol=1e-12)
        torch.testing.assert_close(var1, h1.var(0, unbiased=False), rtol=0, atol=1e-12)
        model.eval()
        h2 = model[3](model[2](model[1](h1)))  # what eval feeds the second BN, layer 1 fixed
        mean2, var2 = _running(model[4])
        torch.testing.assert_close(mean2, h2.mean(0), rtol=0, atol=1e-12)
        torch.testing.assert_close(var2, h2.var(0, unbiased=False), rtol=0, atol=1e-12)


def test_batches_limit_and_pairs():
    model = _model("bnlab")
    data = [(b, torch.zeros(len(b))) for b in _batches()]
    stats = recalibrate(model, data, batches=2)
    x = torch.cat([b for b, _ in data[:2]])
    assert stats["1"].count == len(x)
    torch.testing.assert_close(
        model[1].running_mean, model[0](x).mean(0).detach(), rtol=0, atol=1e-12
    )


def test_precise_bn_closes_the_gap_of_lagging_running_stats():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 3, dtype=torch.float64), bnn.BatchNorm1d(3, momentum=0.01, dtype=torch.float64)
    )
    data = [torch.randn(32, 3, dtype=torch.float64) + 5 for _ in range(4)]
    model(data[0])  # momentum 0.01: running stats barely moved from (0, 1)
    model.eval()
    before = model(torch.cat(data)).detach()
    recalibrate(model, data)
    after = model(torch.cat(data)).detach()
    assert before.mean(0).abs().max() > 1.0  # eval output far from normalized
    assert after.mean(0).abs().max() < 1e-10  # now centred exactly on this data


def test_errors_and_discovery():
    model = _model("torch")
    assert [n for n, _ in bn_modules(model)] == ["1", "4"]
    with pytest.raises(ValueError, match="the data yielded no batch"):
        recalibrate(model, [])
    with pytest.raises(TypeError, match="expected batches that are tensors"):
        recalibrate(model, ["not a tensor"])
    with pytest.raises(ValueError, match="batches ≥ 1"):
        recalibrate(model, _batches(), batches=0)
    no_stats = nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False))
    assert bn_modules(no_stats) == []


def test_layers_are_measured_in_execution_order_not_registration_order():
    class LateFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn_late = bnn.BatchNorm1d(2, dtype=torch.float64)  # registered first ...
            self.bn_early = bnn.BatchNorm1d(2, dtype=torch.float64)  # ... but called second

        def forward(self, x):
            return self.bn_late(self.bn_early(x) * 3 + 1)

    g = torch.Generator().manual_seed(0)
    data = [torch.randn(16, 2, generator=g, dtype=torch.float64) * 4 + 7 for _ in range(4)]
    m = LateFirst()
    recalibrate(m, data)
    m.eval()
    with torch.no_grad():
        h = m.bn_early(torch.cat(data)) * 3 + 1  # what eval feeds bn_late
    torch.testing.assert_close(m.bn_late.running_mean, h.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(m.bn_late.running_var, h.var(0, unbiased=False), rtol=0, atol=1e-12)


def test_one_shot_iterators_are_refused_and_failures_change_nothing():
    model = _model("bnlab")
    model(_batches()[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TypeError, match="one-shot iterator"):
        recalibrate(model, (b for b in _batches()))

    class BreaksLater:  # breaks only once layer 1 has been set
        passes = 0

        def __iter__(self):
            self.passes += 1
            yield from _batches()
            if self.passes >= 3:  # first batch, layer 1: fine; layer 2: not
                yield "not a batch"

    with pytest.raises(TypeError, match="expected batches that are tensors"):
        recalibrate(model, BreaksLater())
    unused = nn.Sequential(model, bnn.BatchNorm1d(9))  # an extra BN that forward never calls
    unused.forward = lambda x: model(x)  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="does not use 1"):
        recalibrate(unused, _batches())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed by a failed recalibration"
