"""bnlab.nn.convert / to_torch on the book's LeNet with batch norm, against the torch model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import bnlab.nn as bnn
from bnlab.nn.batchnorm import _BNLab
from tests.helpers import assert_parity

pytestmark = pytest.mark.usefixtures("every_backend")

F64 = torch.float64
TORCH_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
BN_INDICES = {1: bnn.BatchNorm2d, 5: bnn.BatchNorm2d, 10: bnn.BatchNorm1d, 13: bnn.BatchNorm1d}


def lenet():
    """D2L's LeNet with batch norm (§8.5), built from torch.nn.BatchNorm*d, in float64."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5),
        nn.BatchNorm2d(6),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.BatchNorm2d(16),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.BatchNorm1d(120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.BatchNorm1d(84),
        nn.Sigmoid(),
        nn.Linear(84, 10),
    ).to(F64)


def data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 1, 28, 28, generator=g, dtype=F64)
    y = torch.randint(0, 10, (8,), generator=g)
    return x, y


@pytest.fixture
def models():
    theirs = lenet()
    ours = bnn.convert(copy.deepcopy(theirs))
    return ours, theirs


def assert_same_state(ours, theirs, tag):
    sd_ours, sd_theirs = ours.state_dict(), theirs.state_dict()
    assert list(sd_ours) == list(sd_theirs)
    for k, v in sd_theirs.items():
        if v.dtype == torch.long:
            assert torch.equal(sd_ours[k], v), f"{tag} {k}"
        else:
            assert_parity(sd_ours[k], v, f"{tag} {k}", F64)


def test_every_bn_module_is_converted(models):
    ours, theirs = models
    for i, module in enumerate(ours):
        if i in BN_INDICES:
            assert type(module) is BN_INDICES[i], i
            assert type(theirs[i]) in TORCH_BN  # the original is untouched
        else:
            assert type(module) is type(theirs[i]), i
    assert not any(type(m) in TORCH_BN for m in ours.modules())  # bnlab's subclass torch's
    assert sum(isinstance(m, _BNLab) for m in ours.modules()) == 4


def test_training_and_eval_match_torch(models):
    ours, theirs = models
    opts = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (ours, theirs)]
    loss_fn = nn.CrossEntropyLoss()
    start = ours[0].weight.detach().clone()
    for step in range(3):
        x, y = data(step)
        outs = []
        for model, opt in zip((ours, theirs), opts, strict=True):
            opt.zero_grad()
            out = model(x)
            loss_fn(out, y).backward()
            outs.append(out.detach())
        assert_parity(outs[0], outs[1], f"step {step} output", F64)
        grads_theirs = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_parity(p.grad, grads_theirs[name].grad, f"step {step} grad {name}", F64)
        for opt in opts:
            opt.step()
        assert_same_state(ours, theirs, f"step {step}")
    assert (ours[0].weight - start).abs().max() > 1e-4  # SGD did move the parameters
    assert ours[1].num_batches_tracked.item() == 3
    ours.eval()
    theirs.eval()
    x, _ = data(10)
    with torch.no_grad():
        assert_parity(ours(x), theirs(x), "eval output", F64)
    # the state written by the converted model loads into the torch model (strict)
    fresh = lenet().eval()
    fresh.load_state_dict(ours.state_dict())
    with torch.no_grad():
        assert_parity(fresh(x), theirs(x), "eval output after load_state_dict", F64)
        before = lenet().eval()(x)
    assert (before - theirs(x)).abs().max() > 1e-3  # loading the state made the difference


def test_to_torch_round_trip(models):
    ours, theirs = models
    x, _ = data(1)
    ours(x)  # one training step, so the buffers have moved
    theirs(x)
    back = bnn.to_torch(ours)
    for i, cls in BN_INDICES.items():
        assert type(back[i]) is TORCH_BN[0 if cls is bnn.BatchNorm1d else 1], i
    assert not any(isinstance(m, _BNLab) for m in back.modules())
    assert repr(back) == repr(theirs)
    assert_same_state(back, theirs, "round trip")
    for model in (back, theirs):
        model.eval()
    x, _ = data(2)
    with torch.no_grad():
        assert_parity(back(x), theirs(x), "round-trip eval output", F64)


def test_convert_shares_parameter_objects():
    model = lenet()
    bn = model[1]
    tensors = [bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)  # built before the conversion
    converted = bnn.convert(model)
    assert converted is model  # the root is kept, its children replaced in place
    new = converted[1]
    assert isinstance(new, bnn.BatchNorm2d)
    shared = [new.weight, new.bias, new.running_mean, new.running_var, new.num_batches_tracked]
    for old_t, new_t in zip(tensors, shared, strict=True):
        assert new_t is old_t
    before = new.weight.detach().clone()
    x, y = data(3)
    nn.functional.cross_entropy(converted(x), y).backward()
    assert new.weight.grad is not None
    opt.step()
    assert (new.weight - before).abs().max() > 1e-6  # the old optimizer updated the new module


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_training_mode_carries_over(training):
    model = lenet().train(training)
    model[5].train(not training)  # one module in the other mode
    converted = bnn.convert(model)
    for i in (1, 10, 13):
        assert converted[i].training is training
    assert converted[5].training is (not training)


@pytest.mark.parametrize(
    ("torch_cls", "bnlab_cls", "shape"),
    [
        pytest.param(nn.BatchNorm1d, bnn.BatchNorm1d, (6, 3), id="1d"),
        pytest.param(nn.BatchNorm2d, bnn.BatchNorm2d, (6, 3, 2, 2), id="2d"),
        pytest.param(nn.BatchNorm3d, bnn.BatchNorm3d, (6, 3, 2, 2, 2), id="3d"),
    ],
)
def test_bare_bn_root_is_converted_and_returned(torch_cls, bnlab_cls, shape):
    bn = torch_cls(3, dtype=F64)
    converted = bnn.convert(bn)
    assert type(converted) is bnlab_cls
    assert converted.weight is bn.weight and converted.running_var is bn.running_var
    x = torch.randn(shape, dtype=F64) * 2 + 1
    reference = copy.deepcopy(bn)
    assert_parity(converted(x), reference(x), "bare root output", F64)
    back = bnn.to_torch(converted)
    assert type(back) is torch_cls
    assert back.running_mean is bn.running_mean


@pytest.mark.parametrize("fn", [bnn.convert, bnn.to_torch], ids=["convert", "to_torch"])
@pytest.mark.parametrize(
    "obj", [None, "BatchNorm2d", torch.zeros(3)], ids=["None", "str", "tensor"]
)
def test_non_module_raises_type_error(fn, obj):
    with pytest.raises(TypeError, match=r"expected a torch\.nn\.Module"):
        fn(obj)


@pytest.mark.parametrize(
    "kw",
    [
        {"affine": False},
        {"track_running_stats": False},
        {"momentum": None},
        {"eps": 1e-3, "momentum": 0.3},
        {"affine": False, "track_running_stats": False},
        {"bias": False},
    ],
    ids=repr,
)
def test_settings_carry_over(kw):
    theirs = nn.BatchNorm2d(5, dtype=F64, **kw)
    model = nn.Sequential(nn.Conv2d(2, 5, 3).to(F64), theirs)
    reference = copy.deepcopy(model)
    converted = bnn.convert(model)
    assert type(converted[1]) is bnn.BatchNorm2d
    assert repr(converted[1]) == repr(theirs)
    assert list(converted.state_dict()) == list(reference.state_dict())
    for step in range(2):
        x = torch.randn(4, 2, 5, 5, dtype=F64) + step
        assert_parity(converted(x), reference(x), f"step {step} output", F64)
    assert_same_state(converted, reference, "after two steps")
    back = bnn.to_torch(converted)
    assert type(back[1]) is nn.BatchNorm2d
    assert repr(back[1]) == repr(theirs)
