"""bnlab.nn.BatchNorm1d/2d/3d against torch.nn.BatchNorm1d/2d/3d, step by step, every mode."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bnlab.nn as bnn
from tests.helpers import assert_parity

pytestmark = pytest.mark.usefixtures("every_backend")

PAIRS = {
    2: (bnn.BatchNorm1d, torch.nn.BatchNorm1d),
    3: (bnn.BatchNorm1d, torch.nn.BatchNorm1d),
    4: (bnn.BatchNorm2d, torch.nn.BatchNorm2d),
    5: (bnn.BatchNorm3d, torch.nn.BatchNorm3d),
}
SPATIAL = {2: (), 3: (5,), 4: (3, 4), 5: (2, 3, 2)}


def make_pair(rank, channels, dtype, **kw):
    ours_t, theirs_t = PAIRS[rank]
    theirs = theirs_t(channels, dtype=dtype, **kw)
    ours = ours_t(channels, dtype=dtype, **kw)
    if theirs.affine:  # non-trivial γ, β so that an ignored parameter shows
        g = torch.Generator().manual_seed(channels)
        with torch.no_grad():
            theirs.weight.copy_(torch.rand(channels, generator=g, dtype=dtype) + 0.5)
            if theirs.bias is not None:
                theirs.bias.copy_(torch.randn(channels, generator=g, dtype=dtype))
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def term_sizes(module, x, dy, training):
    """Sizes of the terms each gradient sums (float64), the scale float32 rounding acts on."""
    axes = (0, *range(2, x.dim()))
    x, dy = x.double(), dy.double()
    use_batch = training or module.running_var is None
    var = x.var(dim=axes, unbiased=False) if use_batch else module.running_var.double()
    gamma = 1.0 if module.weight is None else module.weight.detach().double().abs()
    invstd = 1.0 / torch.sqrt(var + module.eps)
    mean = x.mean(dim=axes) if use_batch else module.running_mean.double()
    shape = (1, -1) + (1,) * (x.dim() - 2)
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    return {
        "input": (dy.abs().amax(dim=axes) * gamma * invstd).max().item(),
        "weight": (dy * xhat).abs().sum(dim=axes).max().item(),
        "bias": dy.abs().sum(dim=axes).max().item(),
    }


def compare_steps(ours, theirs, shape, dtype, train_steps=3, seed=0):
    """Several training steps (forward, backward, buffers), then eval; everything must agree."""
    g = torch.Generator().manual_seed(seed)
    for step in range(train_steps + 2):
        training = step < train_steps
        ours.train(training)
        theirs.train(training)
        x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.5).to(dtype)
        dy = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        xs = [x.clone().requires_grad_(True) for _ in range(2)]
        ys = [ours(xs[0]), theirs(xs[1])]
        tag = f"step {step} ({'train' if training else 'eval'})"
        assert_parity(ys[0], ys[1], f"{tag} output", dtype)
        for y in ys:
            y.backward(dy)
        term = term_sizes(theirs, x, dy, training)
        assert_parity(xs[0].grad, xs[1].grad, f"{tag} grad input", dtype, term["input"])
        for name in ("weight", "bias"):
            p0, p1 = getattr(ours, name), getattr(theirs, name)
            if p1 is not None:
                assert_parity(p0.grad, p1.grad, f"{tag} grad {name}", dtype, term[name])
                p0.grad = p1.grad = None
        for name in ("running_mean", "running_var"):
            assert_parity(getattr(ours, name), getattr(theirs, name), f"{tag} {name}", dtype)
        if theirs.num_batches_tracked is None:
            assert ours.num_batches_tracked is None
        else:
            assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item(), tag


# The case table: every mode × momentum × affine × dtype × rank; batch and channel sizes are
# cycled through 2–64 and 1–32 so that each appears with every rank.
BATCHES = (2, 5, 16, 64)
CHANNELS = (1, 3, 8, 32)
CASES = [
    pytest.param(
        rank,
        BATCHES[i % 4],
        CHANNELS[(i // 4 + i) % 4],
        momentum,
        affine,
        track,
        dtype,
        id=f"r{rank}-n{BATCHES[i % 4]}-c{CHANNELS[(i // 4 + i) % 4]}-m{momentum}-"
        f"{'affine' if affine else 'plain'}-{'track' if track else 'notrack'}-"
        f"{str(dtype)[6:]}",
    )
    for i, (rank, momentum, affine, track, dtype) in enumerate(
        itertools.product(
            (2, 3, 4, 5),
            (0.1, 0.5, None),
            (True, False),
            (True, False),
            (torch.float32, torch.float64),
        )
    )
]


@pytest.mark.parametrize(
    ("rank", "batch", "channels", "momentum", "affine", "track", "dtype"), CASES
)
def test_parity_table(rank, batch, channels, momentum, affine, track, dtype):
    ours, theirs = make_pair(
        rank, channels, dtype, momentum=momentum, affine=affine, track_running_stats=track
    )
    compare_steps(ours, theirs, (batch, channels, *SPATIAL[rank]), dtype)


@settings(max_examples=60, deadline=None)
@given(
    rank=st.integers(2, 5),
    batch=st.integers(2, 64),
    channels=st.integers(1, 32),
    spatial=st.lists(st.integers(1, 4), min_size=3, max_size=3),
    momentum=st.sampled_from([0.1, 0.5, None]),
    affine=st.booleans(),
    track=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_parity_property(rank, batch, channels, spatial, momentum, affine, track, dtype, seed):
    shape = (batch, channels, *spatial[: rank - 2])
    ours, theirs = make_pair(
        rank, channels, dtype, momentum=momentum, affine=affine, track_running_stats=track
    )
    compare_steps(ours, theirs, shape, dtype, train_steps=2, seed=seed)


def test_bias_flag_false_matches_torch():
    ours, theirs = make_pair(4, 3, torch.float64, bias=False)
    assert ours.bias is None and theirs.bias is None
    assert repr(ours) == repr(theirs)
    compare_steps(ours, theirs, (4, 3, 2, 2), torch.float64)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"eps": 1e-3},
        {"momentum": None},
        {"momentum": 0.25},
        {"affine": False},
        {"track_running_stats": False},
        {"affine": False, "track_running_stats": False},
    ],
    ids=repr,
)
@pytest.mark.parametrize("rank", [2, 4, 5])
def test_repr_and_state_dict_keys(kw, rank):
    ours_t, theirs_t = PAIRS[rank]
    ours, theirs = ours_t(7, **kw), theirs_t(7, **kw)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for k, v in theirs.state_dict().items():
        assert ours.state_dict()[k].dtype == v.dtype, k
        assert torch.equal(ours.state_dict()[k], v), k


def test_state_dict_loads_both_ways():
    theirs = torch.nn.BatchNorm2d(4)
    theirs(torch.randn(8, 4, 3, 3))  # move the buffers off their initial values
    ours = bnn.BatchNorm2d(4)
    ours.load_state_dict(theirs.state_dict())  # strict
    for k, v in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k
    ours(torch.randn(8, 4, 3, 3) + 3)
    back = torch.nn.BatchNorm2d(4)
    back.load_state_dict(ours.state_dict())
    for k, v in ours.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    assert back.num_batches_tracked.item() == 2


def test_old_state_dict_without_num_batches_tracked_loads():
    theirs = torch.nn.BatchNorm1d(3)
    sd = theirs.state_dict()
    del sd["num_batches_tracked"]
    sd._metadata[""]["version"] = 1  # written before num_batches_tracked existed
    for fresh in (True, False):
        ours, again = bnn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
        if not fresh:  # a module that has counted batches keeps its count, as torch's does
            ours.num_batches_tracked.fill_(5)
            again.num_batches_tracked.fill_(5)
        ours.load_state_dict(copy.deepcopy(sd))
        again.load_state_dict(copy.deepcopy(sd))
        assert (
            ours.num_batches_tracked.item()
            == again.num_batches_tracked.item()
            == (0 if fresh else 5)
        )


def test_momentum_none_is_cumulative_average():
    ours = bnn.BatchNorm1d(2, momentum=None, dtype=torch.float64)
    batches = [torch.randn(6, 2, dtype=torch.float64) * (k + 1) + k for k in range(4)]
    for b in batches:
        ours(b)
    # the running mean is the plain average of the four batch means (start value 0 gets weight 0)
    expected = torch.stack([b.mean(0) for b in batches]).mean(0)
    torch.testing.assert_close(ours.running_mean, expected, rtol=0, atol=1e-12)
    expected_var = torch.stack([b.var(0, unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(ours.running_var, expected_var, rtol=0, atol=1e-12)
    assert ours.num_batches_tracked.item() == 4


def test_running_var_is_unbiased_and_normalization_biased():
    m = bnn.BatchNorm1d(1, momentum=1.0, affine=False, dtype=torch.float64)
    x = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)
    y = m(x)
    mu, biased, unbiased = 7 / 3, ((x - 7 / 3) ** 2).sum() / 3, ((x - 7 / 3) ** 2).sum() / 2
    assert m.running_mean.item() == pytest.approx(mu, abs=1e-15)
    assert m.running_var.item() == pytest.approx(unbiased.item(), abs=1e-15)
    torch.testing.assert_close(y, (x - mu) / torch.sqrt(biased + 1e-5), rtol=0, atol=1e-14)


def test_eval_uses_running_stats_and_no_tracking_uses_batch():
    x = torch.randn(10, 3, dtype=torch.float64) * 4 + 2
    m = bnn.BatchNorm1d(3, affine=False, dtype=torch.float64).eval()
    torch.testing.assert_close(m(x), x / torch.sqrt(torch.tensor(1 + 1e-5, dtype=torch.float64)))
    m = bnn.BatchNorm1d(3, affine=False, track_running_stats=False, dtype=torch.float64).eval()
    y = m(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_reset_running_stats_and_parameters():
    m = bnn.BatchNorm2d(3)
    with torch.no_grad():
        m.weight.fill_(3)
        m.bias.fill_(-1)
    m(torch.randn(4, 3, 2, 2) + 5)
    m.reset_running_stats()
    assert torch.equal(m.running_mean, torch.zeros(3))
    assert torch.equal(m.running_var, torch.ones(3))
    assert m.num_batches_tracked.item() == 0
    assert torch.equal(m.weight, torch.full((3,), 3.0))  # parameters untouched by that
    m.reset_parameters()
    assert torch.equal(m.weight, torch.ones(3)) and torch.equal(m.bias, torch.zeros(3))


def test_module_moves_with_to_and_half():
    m = bnn.BatchNorm2d(3).to(torch.float64)
    assert m.weight.dtype == m.running_mean.dtype == torch.float64
    assert m.num_batches_tracked.dtype == torch.long
    t = copy.deepcopy(torch.nn.BatchNorm2d(3)).half()
    o = copy.deepcopy(bnn.BatchNorm2d(3)).half()
    x = torch.randn(4, 3, 5, 5).half()
    assert_parity(o(x), t(x), "half module output", torch.float16)
