"""BN folding: the folded copy computes what the model computes in eval mode; the model is kept."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import bnlab.nn as bnn
from bnlab.errors import BNTypeError, BNValueError
from bnlab.inspect import Folded, FoldResult, Skipped, fold

# name: (layer(dtype), BN(dtype), input shape)
CASES = {
    "conv1d": (
        lambda d: nn.Conv1d(4, 6, 3, dtype=d),
        lambda d: nn.BatchNorm1d(6, dtype=d),
        (8, 4, 10),
    ),
    "conv1d-nobias": (
        lambda d: nn.Conv1d(4, 6, 3, bias=False, dtype=d),
        lambda d: bnn.BatchNorm1d(6, dtype=d),
        (8, 4, 10),
    ),
    "conv2d": (
        lambda d: nn.Conv2d(4, 6, 3, dtype=d),
        lambda d: nn.BatchNorm2d(6, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-nobias-bnlab": (
        lambda d: nn.Conv2d(4, 6, 3, bias=False, padding=1, dtype=d),
        lambda d: bnn.BatchNorm2d(6, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-groups2": (
        lambda d: nn.Conv2d(4, 6, 3, groups=2, dtype=d),
        lambda d: bnn.BatchNorm2d(6, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-depthwise-nobias": (
        lambda d: nn.Conv2d(6, 6, 3, groups=6, bias=False, dtype=d),
        lambda d: nn.BatchNorm2d(6, dtype=d),
        (8, 6, 7, 7),
    ),
    "conv2d-affine-false": (
        lambda d: nn.Conv2d(4, 6, 3, dtype=d),
        lambda d: nn.BatchNorm2d(6, affine=False, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-affine-false-bnlab-nobias": (
        lambda d: nn.Conv2d(4, 6, 3, bias=False, dtype=d),
        lambda d: bnn.BatchNorm2d(6, affine=False, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-momentum-none": (
        lambda d: nn.Conv2d(4, 6, 3, dtype=d),
        lambda d: nn.BatchNorm2d(6, momentum=None, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-momentum-none-bnlab": (
        lambda d: nn.Conv2d(4, 6, 3, bias=False, dtype=d),
        lambda d: bnn.BatchNorm2d(6, momentum=None, eps=1e-3, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-bnlab-bn-bias-false": (
        lambda d: nn.Conv2d(4, 6, 3, dtype=d),
        lambda d: bnn.BatchNorm2d(6, bias=False, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-syncbn": (
        lambda d: nn.Conv2d(4, 6, 3, dtype=d),
        lambda d: nn.SyncBatchNorm(6, dtype=d),
        (8, 4, 7, 7),
    ),
    "conv2d-d2l": (
        lambda d: nn.Conv2d(4, 6, 3, dtype=d),
        lambda d: bnn.D2LBatchNorm(6, 4).to(d),
        (8, 4, 7, 7),
    ),
    "conv3d": (
        lambda d: nn.Conv3d(4, 6, 3, dtype=d),
        lambda d: nn.BatchNorm3d(6, dtype=d),
        (8, 4, 5, 5, 5),
    ),
    "conv3d-nobias-groups2-bnlab": (
        lambda d: nn.Conv3d(4, 6, 3, groups=2, bias=False, dtype=d),
        lambda d: bnn.BatchNorm3d(6, dtype=d),
        (8, 4, 5, 5, 5),
    ),
    "linear": (lambda d: nn.Linear(5, 6, dtype=d), lambda d: nn.BatchNorm1d(6, dtype=d), (8, 5)),
    "linear-nobias-bnlab": (
        lambda d: nn.Linear(5, 6, bias=False, dtype=d),
        lambda d: bnn.BatchNorm1d(6, dtype=d),
        (8, 5),
    ),
    "linear-affine-false": (
        lambda d: nn.Linear(5, 6, dtype=d),
        lambda d: bnn.BatchNorm1d(6, affine=False, momentum=None, dtype=d),
        (8, 5),
    ),
    "linear-d2l": (
        lambda d: nn.Linear(5, 6, bias=False, dtype=d),
        lambda d: bnn.D2LBatchNorm(6, 2).to(d),
        (8, 5),
    ),
}


def _randomize_affine(model: nn.Module, g: torch.Generator) -> None:
    """γ, β away from 1, 0, so folding them wrongly shows."""
    with torch.no_grad():
        for m in model.modules():
            gamma, beta = getattr(m, "weight", None), getattr(m, "bias", None)
            if isinstance(m, bnn.D2LBatchNorm):
                gamma, beta = m.gamma, m.beta
            elif not isinstance(m, nn.modules.batchnorm._BatchNorm):
                continue
            if gamma is not None:
                gamma.copy_(torch.rand(gamma.shape, generator=g, dtype=gamma.dtype) + 0.5)
            if beta is not None:
                beta.copy_(torch.randn(beta.shape, generator=g, dtype=beta.dtype))


def _trained(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    """A few training batches, so the running statistics are far from (0, 1)."""
    g = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(shape, generator=g, dtype=dtype) * 3 + 2)
    _randomize_affine(model, g)
    return model


def _eval_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The oracle: the unfolded model in eval mode (a copy: the model's flag is not changed)."""
    with torch.no_grad():
        return copy.deepcopy(model).eval()(x)


def _input(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randn(shape, generator=g, dtype=dtype) * 3 + 2


def _assert_matches(got: torch.Tensor, expected: torch.Tensor) -> None:
    if expected.dtype == torch.float64:
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    else:
        err = ((got - expected).abs().max() / expected.abs().max()).item()
        assert err <= 1e-5, f"relative error {err:.3g}"


def _snapshot(model: nn.Module) -> dict:
    return {
        "tensors": {
            k: (v, v.detach().clone()) for k, v in model.state_dict(keep_vars=True).items()
        },
        "modules": {name: (m, m.training) for name, m in model.named_modules()},
        "hooks": {name: dict(m._forward_hooks) for name, m in model.named_modules()},
    }


def _assert_untouched(model: nn.Module, before: dict) -> None:
    after = model.state_dict(keep_vars=True)
    assert after.keys() == before["tensors"].keys()
    for key, (obj, value) in before["tensors"].items():
        assert after[key] is obj, f"{key} was replaced"
        assert torch.equal(after[key].detach(), value), f"{key} changed value"
    modules = dict(model.named_modules())
    assert modules.keys() == before["modules"].keys()
    for name, (obj, training) in before["modules"].items():
        assert modules[name] is obj, f"module {name!r} was replaced"
        assert modules[name].training == training, f"training flag of {name!r} changed"
        assert dict(modules[name]._forward_hooks) == before["hooks"][name]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_folded_copy_matches_eval_output(case, dtype):
    layer, bn, shape = CASES[case]
    torch.manual_seed(0)
    model = _trained(nn.Sequential(layer(dtype), bn(dtype), nn.ReLU()), shape, dtype)
    before = _snapshot(model)
    x = _input(shape, dtype)
    expected = _eval_output(model, x)

    result = fold(model)

    assert result.route == "fx"
    assert result.folded == [Folded("1", "0")]
    assert result.skipped == []
    assert isinstance(result.model[1], nn.Identity)
    assert not result.model.training
    folded_layer = result.model[0]
    assert folded_layer.bias is not None, "a layer without a bias gets one"
    assert folded_layer.weight.dtype == dtype and folded_layer.bias.dtype == dtype
    with torch.no_grad():
        _assert_matches(result.model(x), expected)
    _assert_untouched(model, before)
    assert model.training, "the model stays in training mode"


def test_deep_model_folds_every_pair_and_keeps_the_rest():
    torch.manual_seed(0)
    d = torch.float64
    model = nn.Sequential(
        nn.BatchNorm2d(3, dtype=d),  # first layer: nothing to fold into
        nn.Conv2d(3, 8, 3, padding=1, bias=False, dtype=d),
        bnn.BatchNorm2d(8, dtype=d),
        nn.ReLU(),
        nn.BatchNorm2d(8, dtype=d),  # after a ReLU
        nn.Sequential(nn.Conv2d(8, 8, 3, groups=8, dtype=d), nn.BatchNorm2d(8, dtype=d)),
        nn.Flatten(),
        nn.Linear(8 * 5 * 5, 10, dtype=d),
        nn.BatchNorm1d(10, track_running_stats=False, dtype=d),  # no running statistics
    )
    model = _trained(model, (6, 3, 7, 7), d)
    model[4].eval()  # a mixed training flag, to be kept as it is
    before = _snapshot(model)
    x = _input((6, 3, 7, 7), d)
    expected = _eval_output(model, x)

    result = fold(model)

    assert result.folded == [Folded("2", "1"), Folded("5.1", "5.0")]
    reasons = {s.bn: s.reason for s in result.skipped}
    assert reasons.keys() == {"0", "4", "8"}
    assert "follows the model's input" in reasons["0"]
    assert "follows '3' (ReLU)" in reasons["4"]
    assert "no running statistics" in reasons["8"]
    assert isinstance(result.model[5][1], nn.Identity)
    assert isinstance(result.model[0], nn.BatchNorm2d)
    with torch.no_grad():
        _assert_matches(result.model(x), expected)
    _assert_untouched(model, before)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, dtype=torch.float64)
        self.bn = nn.BatchNorm2d(4, dtype=torch.float64)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y  # the conv's output feeds the BN and the sum


def test_conv_output_used_elsewhere_is_not_folded():
    model = _trained(_Residual(), (4, 4, 6, 6), torch.float64)
    x = _input((4, 4, 6, 6), torch.float64)
    expected = _eval_output(model, x)
    result = fold(model)
    assert result.folded == []
    assert len(result.skipped) == 1 and result.skipped[0].bn == "bn"
    assert "'conv' (Conv2d) is used elsewhere" in result.skipped[0].reason
    assert isinstance(result.model.bn, nn.BatchNorm2d)
    with torch.no_grad():
        _assert_matches(result.model(x), expected)


class _Branchy(nn.Module):
    """Data-dependent control flow: fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        d = torch.float64
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3, dtype=d),
            bnn.BatchNorm2d(6, dtype=d),
            nn.ReLU(),
            nn.Sequential(nn.Conv2d(6, 6, 3, bias=False, groups=2, dtype=d)),
            nn.BatchNorm2d(6, dtype=d),  # across a nested container: not paired
            nn.Conv2d(6, 6, 1, bias=False, dtype=d),
            nn.BatchNorm2d(6, dtype=d),
        )
        self.tail = nn.Sequential(nn.BatchNorm2d(6, dtype=d))
        self.side = nn.BatchNorm2d(6, dtype=d)

    def forward(self, x):
        y = self.tail(self.body(x))
        if x.sum() > 0:
            return self.side(y)
        return -self.side(-y)


def test_untraceable_model_folds_sequential_pairs_in_module_order():
    model = _trained(_Branchy(), (5, 3, 8, 8), torch.float64)
    before = _snapshot(model)
    result = fold(model)
    assert result.route == "module order"
    assert result.trace_error is not None and "TraceError" in result.trace_error
    assert result.folded == [Folded("body.1", "body.0"), Folded("body.6", "body.5")]
    reasons = {s.bn: s.reason for s in result.skipped}
    assert reasons.keys() == {"body.4", "tail.0", "side"}
    assert "follows 'body.3' (Sequential)" in reasons["body.4"]
    assert "first in its nn.Sequential" in reasons["tail.0"]
    assert "not a child of an nn.Sequential" in reasons["side"]
    for sign in (1.0, -1.0):  # both branches
        x = sign * _input((5, 3, 8, 8), torch.float64).abs()
        with torch.no_grad():
            _assert_matches(result.model(x), _eval_output(model, x))
    assert "module order" in str(result)
    _assert_untouched(model, before)


def test_linear_over_the_last_axis_is_not_folded_into_batchnorm2d():
    # Linear acts on the last axis, BatchNorm2d on axis 1: same size here, but not the same axis
    d = torch.float64
    model = _trained(
        nn.Sequential(nn.Linear(4, 4, dtype=d), nn.BatchNorm2d(4, dtype=d)), (3, 4, 5, 4), d
    )
    x = _input((3, 4, 5, 4), d)
    expected = _eval_output(model, x)
    result = fold(model)
    assert result.folded == []
    assert "BatchNorm2d cannot normalize the output of '0' (Linear)" in result.skipped[0].reason
    with torch.no_grad():
        _assert_matches(result.model(x), expected)


class _ReadsBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 1)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(self.conv(x)) + self.bn.running_mean[:, None]


class _ReadsBufferAsIs(_ReadsBuffer):
    def forward(self, x):
        return self.bn(self.conv(x)).transpose(1, 2) + self.bn.running_mean  # a get_attr node


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 3, 1)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(self.conv(self.conv(x)))


def _hooked() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    model[1].register_forward_hook(lambda m, i, o: None)
    return model


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_ReadsBuffer, "reads its parameters or buffers directly"),
        (_ReadsBufferAsIs, "reads its parameters or buffers directly"),
        (_Shared, "calls 'conv' (Conv1d) more than once"),
        (_hooked, "hooks"),
        (lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(5)), "5 channels but '0' (Linear)"),
        (lambda: nn.BatchNorm1d(3), "the model itself"),
    ],
    ids=[
        "reads-buffer-view",
        "reads-buffer",
        "shared-conv",
        "hooked-bn",
        "channel-mismatch",
        "bn-is-the-model",
    ],
)
def test_unfoldable_pairs_are_reported(make, reason):
    result = fold(make())
    assert result.folded == []
    assert len(result.skipped) == 1
    assert reason in result.skipped[0].reason
    assert not any(k.startswith("_tensor_constant") for k in vars(result.model)), "trace leftovers"


def test_result_prints_one_line_per_item():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 4), nn.BatchNorm1d(4))
    result = fold(model)
    assert isinstance(result, FoldResult)
    lines = str(result).splitlines()
    assert lines[0] == "fold (fx): 1 folded, 1 kept"
    assert lines[1].strip() == "folded '2' into '1'"
    assert lines[2].strip().startswith("kept   '0': it follows the model's input")
    assert "Sequential(" not in repr(result), "the repr leaves out the model"
    assert str(Skipped("x", "why")) == "kept   'x': why"


def test_model_without_bn_is_refused_untouched():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    before = _snapshot(model)
    with pytest.raises(BNValueError, match=r"expected a model with batch-norm layers") as info:
        fold(model)
    message = str(info.value)
    assert "\n" not in message and "Sequential" in message
    assert isinstance(info.value, ValueError)
    _assert_untouched(model, before)


@pytest.mark.parametrize("thing", [None, "model", torch.zeros(3)], ids=["none", "str", "tensor"])
def test_non_module_is_refused(thing):
    with pytest.raises(BNTypeError, match=r"fold: expected a torch\.nn\.Module \(got \w+\)"):
        fold(thing)
