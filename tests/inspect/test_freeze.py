"""freeze: BN layers normalize with their running statistics and keep them through train()."""

from __future__ import annotations

import copy
import io
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bnlab.nn as bnn
from bnlab.errors import BNLabError
from bnlab.inspect import FreezeState, freeze, frozen_layers, is_frozen, monitor, unfreeze

F64 = torch.float64

KINDS = {
    "torch-1d": (lambda c: nn.BatchNorm1d(c, dtype=F64), (6, 3)),
    "bnlab-1d": (lambda c: bnn.BatchNorm1d(c, dtype=F64), (6, 3)),
    "torch-2d": (lambda c: nn.BatchNorm2d(c, dtype=F64), (6, 3, 4, 5)),
    "bnlab-2d": (lambda c: bnn.BatchNorm2d(c, dtype=F64), (6, 3, 4, 5)),
    "d2l-4d": (lambda c: bnn.D2LBatchNorm(c, 4).double(), (6, 3, 4, 5)),
}


def _trained(kind: str) -> tuple[nn.Module, torch.Tensor]:
    """A BN layer whose running statistics and γ, β are off their initial values, and an input."""
    make, shape = KINDS[kind]
    torch.manual_seed(0)
    bn = make(3)
    for _ in range(3):
        bn(torch.randn(*shape, dtype=F64) * 2 + 1)
    with torch.no_grad():
        for p in bn.parameters():
            p.add_(torch.randn_like(p))
    return bn, torch.randn(*shape, dtype=F64) * 3 - 1


def _state(bn: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in bn.state_dict().items()}


def _eval_reference(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torch's own eval-mode batch norm with this layer's statistics and γ, β."""
    if isinstance(bn, bnn.D2LBatchNorm):
        flat = [t.flatten() for t in (bn.moving_mean, bn.moving_var, bn.gamma, bn.beta)]
        return F.batch_norm(x, *flat[:2], *flat[2:], training=False, eps=bn.eps)
    ref = nn.BatchNorm2d(3, dtype=F64) if x.dim() == 4 else nn.BatchNorm1d(3, dtype=F64)
    ref.load_state_dict(bn.state_dict())
    return ref.eval()(x)


@pytest.mark.parametrize("kind", list(KINDS))
def test_frozen_layer_normalizes_as_eval_and_keeps_its_statistics_after_train(kind):
    bn, x = _trained(kind)
    assert freeze(bn) is bn
    bn.train()  # what undoes bn.eval(), and must not undo a freeze
    before = _state(bn)
    out = bn(x)
    assert bn.training, "the flag reads as the user set it"
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"  # incl. num_batches_tracked
    torch.testing.assert_close(out, _eval_reference(bn, x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("affine", [False, True])
def test_gradients_flow_to_the_input_and_to_affine_unless_frozen(kind, affine):
    bn, x = _trained(kind)
    twin = copy.deepcopy(bn).eval()
    freeze(bn, affine=affine)
    bn.train()
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    bn(xa).square().sum().backward()
    twin(xb).square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=1e-12)
    for p, q in zip(bn.parameters(), twin.parameters(), strict=True):
        if affine:
            assert not p.requires_grad and p.grad is None
        else:
            torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-12)


def test_unfreeze_restores_training_and_the_requires_grad_flags():
    bn, x = _trained("bnlab-2d")
    bn.bias.requires_grad_(False)  # the user's own choice, kept through freeze/unfreeze
    freeze(bn, affine=True)
    assert (bn.weight.requires_grad, bn.bias.requires_grad) == (False, False)
    assert unfreeze(bn) is bn
    assert not is_frozen(bn) and not bn._forward_pre_hooks and not bn._forward_hooks
    assert (bn.weight.requires_grad, bn.bias.requires_grad) == (True, False)
    before = _state(bn)
    bn.train()(x)
    assert not torch.equal(bn.running_mean, before["running_mean"])
    assert bn.num_batches_tracked == before["num_batches_tracked"] + 1


def test_freeze_twice_is_idempotent_and_affine_extends_it():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), bnn.BatchNorm1d(4))
    freeze(model)
    freeze(model)
    for m in (model[1], model[3]):
        assert len(m._forward_pre_hooks) == 1 and len(m._forward_hooks) == 1
    assert frozen_layers(model) == {"1": FreezeState(), "3": FreezeState()}
    freeze(model, affine=True)
    freeze(model, affine=True)  # the saved flags are the ones before the first affine freeze
    state = frozen_layers(model)["1"]
    assert state.affine and state.requires_grad == {"weight": True, "bias": True}
    freeze(model)  # affine=False does not thaw γ, β
    assert not model[1].weight.requires_grad
    unfreeze(model)
    assert model[1].weight.requires_grad and frozen_layers(model) == {}


def test_unfreeze_on_a_model_never_frozen_is_a_no_op():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    before = _state(model)
    assert unfreeze(model) is model
    assert unfreeze(nn.Linear(2, 2)) is not None  # no BN at all: nothing to undo
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match=r"unfreeze: expected a torch.nn.Module \(got int\)"):
        unfreeze(3)  # type: ignore[arg-type]


def test_layers_without_running_statistics_are_left_alone():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm1d(3, track_running_stats=False))
    freeze(model, affine=True)
    assert list(frozen_layers(model)) == ["0"]
    assert not is_frozen(model[1]) and model[1].weight.requires_grad
    with pytest.raises(ValueError, match="with running statistics") as info:
        freeze(nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (
            nn.Sequential(nn.Linear(2, 3)),
            ValueError,
            "freeze: expected a model with batch-norm layers (found none in Sequential)",
        ),
        ("resnet", TypeError, "freeze: expected a torch.nn.Module (got str)"),
    ],
    ids=["no-bn", "not-a-module"],
)
def test_bad_models_are_refused_untouched(model, error, message):
    if isinstance(model, nn.Module):
        before = [dict(m._forward_pre_hooks) for m in model.modules()]
        flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(error) as info:
        freeze(model, affine=True)
    assert isinstance(info.value, BNLabError)
    assert str(info.value) == message
    if isinstance(model, nn.Module):
        assert [dict(m._forward_pre_hooks) for m in model.modules()] == before
        assert [p.requires_grad for p in model.parameters()] == flags


def test_a_forward_that_raises_still_restores_the_flag():
    bn = nn.BatchNorm2d(3)
    freeze(bn)
    bn.train()
    with pytest.raises(RuntimeError):
        bn(torch.randn(2, 5, 4, 4))  # the wrong channel count
    assert bn.training
    bn.eval()
    bn(torch.randn(2, 3, 4, 4))
    assert not bn.training


def test_monitor_sees_a_frozen_layer_run_in_eval_and_not_update():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.BatchNorm1d(4))
    freeze(model[1])
    model.train()
    with monitor(model) as mon:
        model(torch.randn(8, 3))
    assert mon.layers["1"].modes == Counter(eval=1) and not mon.layers["1"].updated
    assert mon.layers["2"].modes == Counter(train=1) and mon.layers["2"].updated
    with monitor(model) as mon:  # frozen inside the block: its hook still runs first
        freeze(model)
        model(torch.randn(8, 3))
    assert mon.layers["2"].modes == Counter(eval=1) and not mon.layers["2"].updated


def test_a_frozen_model_copies_and_saves_frozen():
    model = nn.Sequential(nn.Linear(3, 4), bnn.BatchNorm1d(4))
    freeze(model, affine=True)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    for twin in (copy.deepcopy(model), torch.load(buf, weights_only=False)):
        assert list(frozen_layers(twin)) == ["1"]
        before = _state(twin)
        twin.train()(torch.randn(5, 3))
        assert torch.equal(twin[1].running_mean, before["1.running_mean"])
        unfreeze(twin)
        assert not is_frozen(twin[1]) and twin[1].weight.requires_grad
        assert not twin[1]._forward_pre_hooks and not twin[1]._forward_hooks
    assert is_frozen(model[1]), "the original stays frozen"
    assert "forward in eval mode" in repr(next(iter(model[1]._forward_pre_hooks.values())))
