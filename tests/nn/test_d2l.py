"""The textbook's batch norm (D2L): where its conventions differ from torch.nn.BatchNorm*d.

Three differences, each pinned down exactly: (a) ``momentum`` is the share of the old value
kept (0.9 in the book = 0.1 in torch); (b) the book's moving variance is biased; (c) the book's
function picks prediction mode by ``torch.is_grad_enabled()``, the layer by ``module.training``.
"""

from __future__ import annotations

import pytest
import torch

import bnlab.nn as bnn

F64 = torch.float64
EPS = 1e-5

CASES = [
    pytest.param(2, (12, 5), torch.nn.BatchNorm1d, id="2d-fully-connected"),
    pytest.param(4, (4, 3, 5, 6), torch.nn.BatchNorm2d, id="4d-convolutional"),
]


def batch(shape, seed):
    g = torch.Generator().manual_seed(seed)
    channel = (1, -1) + (1,) * (len(shape) - 2)
    offsets = torch.arange(shape[1], dtype=F64).reshape(channel)
    return torch.randn(shape, generator=g, dtype=F64) * (1 + offsets) + 2 * offsets - 1


def make_pair(num_dims, channels, torch_bn):
    """A float64 D2L layer (momentum 0.9) and a torch layer (momentum 0.1) with equal γ, β."""
    d2l = bnn.D2LBatchNorm(channels, num_dims=num_dims, momentum=0.9).to(F64)
    theirs = torch_bn(channels, momentum=0.1, dtype=F64)
    g = torch.Generator().manual_seed(channels)
    with torch.no_grad():
        theirs.weight.copy_(torch.rand(channels, generator=g, dtype=F64) + 0.5)
        theirs.bias.copy_(torch.randn(channels, generator=g, dtype=F64))
        d2l.gamma.copy_(theirs.weight.reshape(d2l.gamma.shape))
        d2l.beta.copy_(theirs.bias.reshape(d2l.beta.shape))
    return d2l, theirs


def book_call(X, layer, momentum=0.9):
    """``book_batch_norm`` with the layer's γ, β and moving statistics."""
    return bnn.book_batch_norm(
        X, layer.gamma, layer.beta, layer.moving_mean, layer.moving_var, EPS, momentum
    )


def assert_close(actual, expected, atol=1e-12):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0.0)


# --- (a) momentum: 0.9 "keep" in the book is 0.1 "take" in torch -----------------------------


@pytest.mark.parametrize(("num_dims", "shape", "torch_bn"), CASES)
def test_book_momentum_09_is_torch_momentum_01(num_dims, shape, torch_bn):
    d2l, theirs = make_pair(num_dims, shape[1], torch_bn)
    for step in range(4):
        x = batch(shape, seed=step)
        assert_close(d2l(x), theirs(x))
        assert_close(d2l.moving_mean.reshape(-1), theirs.running_mean)
    # after four steps the mean has moved well away from its start value 0
    assert theirs.running_mean.abs().max() > 0.5
    d2l.eval()
    theirs.eval()
    # only the means agree; the variances differ by convention (b), so eval outputs do too
    x = batch(shape, seed=99)
    assert not torch.allclose(d2l(x), theirs(x))


# --- (b) biased moving variance ---------------------------------------------------------------


@pytest.mark.parametrize(("num_dims", "shape", "torch_bn"), CASES)
def test_moving_var_is_biased_running_var_unbiased(num_dims, shape, torch_bn):
    d2l, theirs = make_pair(num_dims, shape[1], torch_bn)
    x = batch(shape, seed=7)
    d2l(x)
    theirs(x)
    dims = (0, *range(2, x.dim()))
    m = x.numel() // x.shape[1]
    sigma2_B = x.var(dim=dims, unbiased=False)
    assert_close(d2l.moving_var.reshape(-1), 0.9 * 1.0 + 0.1 * sigma2_B)
    assert_close(theirs.running_var, 0.9 * 1.0 + 0.1 * sigma2_B * m / (m - 1))
    gap = theirs.running_var - d2l.moving_var.reshape(-1)
    assert_close(gap, 0.1 * sigma2_B / (m - 1))
    assert gap.min() > 1e-3


# --- (c) the no_grad trap -------------------------------------------------------------------


@pytest.mark.parametrize(("num_dims", "shape", "torch_bn"), CASES)
def test_book_function_under_no_grad_predicts_instead_of_training(num_dims, shape, torch_bn):
    d2l, _ = make_pair(num_dims, shape[1], torch_bn)
    with torch.no_grad():
        d2l.moving_mean.copy_(torch.randn(d2l.moving_mean.shape, dtype=F64))
        d2l.moving_var.copy_(torch.rand(d2l.moving_var.shape, dtype=F64) + 0.5)
    mm, mv = d2l.moving_mean.clone(), d2l.moving_var.clone()
    x = batch(shape, seed=3)
    with torch.no_grad():  # the caller means to train, but...
        y, new_mm, new_mv = book_call(x, d2l)
    # ...the output is the prediction formula with the moving statistics,
    predict = d2l.gamma * (x - mm) / torch.sqrt(mv + EPS) + d2l.beta
    assert_close(y, predict)
    # not the batch-statistics output,
    y_train, _, _ = book_call(x, d2l)
    assert (y - y_train).abs().max() > 0.1
    # and the moving statistics come back unchanged.
    assert torch.equal(new_mm, mm) and torch.equal(new_mv, mv)


@pytest.mark.parametrize(("num_dims", "shape", "torch_bn"), CASES)
def test_layer_trains_under_no_grad_like_torch(num_dims, shape, torch_bn):
    d2l, theirs = make_pair(num_dims, shape[1], torch_bn)
    x = batch(shape, seed=4)
    start_mm = d2l.moving_mean.clone()
    with torch.no_grad():
        y_book, _, _ = book_call(x, d2l)  # prediction, by the trap
    with torch.enable_grad():
        y_expected, expected_mm, expected_mv = book_call(x, d2l)  # training
    with torch.no_grad():
        y = d2l(x)
        y_torch = theirs(x)
    assert_close(y, y_expected)  # batch statistics
    assert (y - y_book).abs().max() > 0.1
    assert_close(d2l.moving_mean, expected_mm)  # and the buffers were updated
    assert_close(d2l.moving_var, expected_mv)
    assert (d2l.moving_mean - start_mm).abs().max() > 1e-3
    # torch.nn.BatchNorm*d in train mode under no_grad does the same
    assert_close(y, y_torch)
    assert_close(d2l.moving_mean.reshape(-1), theirs.running_mean)
    assert theirs.num_batches_tracked.item() == 1


@pytest.mark.parametrize(("num_dims", "shape", "torch_bn"), CASES)
def test_layer_in_eval_with_grad_does_not_train(num_dims, shape, torch_bn):
    d2l, theirs = make_pair(num_dims, shape[1], torch_bn)
    d2l(batch(shape, seed=5))  # non-trivial moving statistics
    theirs(batch(shape, seed=5))
    d2l.eval()
    theirs.eval()
    mm, mv = d2l.moving_mean.clone(), d2l.moving_var.clone()
    x = batch(shape, seed=6)
    assert torch.is_grad_enabled()
    y = d2l(x)
    assert torch.equal(d2l.moving_mean, mm) and torch.equal(d2l.moving_var, mv)
    assert_close(y, d2l.gamma * (x - mm) / torch.sqrt(mv + EPS) + d2l.beta)
    # torch.nn.BatchNorm*d in eval mode with grad enabled does not train either
    running_mean = theirs.running_mean.clone()
    theirs(x)
    assert torch.equal(theirs.running_mean, running_mean)
    assert_close(d2l.moving_mean.reshape(-1), running_mean)
    # the book's function, called the same way, trains its moving statistics
    _, book_mm, book_mv = book_call(x, d2l)
    assert (book_mm - mm).abs().max() > 1e-3 and (book_mv - mv).abs().max() > 1e-3


# --- the layer against the book's function --------------------------------------------------


@pytest.mark.parametrize("momentum", [0.9, 0.5], ids=lambda m: f"m{m}")
@pytest.mark.parametrize(("num_dims", "shape", "torch_bn"), CASES)
def test_layer_train_output_equals_book_function(num_dims, shape, torch_bn, momentum):
    d2l, _ = make_pair(num_dims, shape[1], torch_bn)
    d2l.momentum = momentum
    for step in range(3):
        x = batch(shape, seed=20 + step)
        y_book, book_mm, book_mv = book_call(x, d2l, momentum)
        y = d2l(x)
        assert_close(y, y_book)
        assert_close(d2l.moving_mean, book_mm)
        assert_close(d2l.moving_var, book_mv)
    # gradients flow through the layer the same way
    x = batch(shape, seed=30).requires_grad_(True)
    dy = batch(shape, seed=31)
    book_call(x, d2l, momentum)[0].backward(dy)
    grads_book = (x.grad.clone(), d2l.gamma.grad.clone(), d2l.beta.grad.clone())
    x.grad = d2l.gamma.grad = d2l.beta.grad = None
    d2l(x).backward(dy)
    for ours, ref in zip((x.grad, d2l.gamma.grad, d2l.beta.grad), grads_book, strict=True):
        assert_close(ours, ref)


# --- module plumbing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_dims", "shape"),
    [pytest.param(2, (1, 6), id="2d"), pytest.param(4, (1, 6, 1, 1), id="4d")],
)
def test_buffers_in_state_dict_and_move_with_to(num_dims, shape):
    layer = bnn.D2LBatchNorm(6, num_dims=num_dims)
    assert list(layer.state_dict()) == ["gamma", "beta", "moving_mean", "moving_var"]
    assert [n for n, _ in layer.named_buffers()] == ["moving_mean", "moving_var"]
    assert layer.moving_mean.shape == layer.moving_var.shape == shape
    assert torch.equal(layer.moving_mean, torch.zeros(shape))
    assert torch.equal(layer.moving_var, torch.ones(shape))
    layer = layer.to(F64)
    assert layer.moving_mean.dtype == layer.moving_var.dtype == F64
    assert layer.gamma.dtype == F64
    x = torch.randn(4, *shape[1:], dtype=F64) + 3
    layer(x)
    other = bnn.D2LBatchNorm(6, num_dims=num_dims).to(F64)
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other.moving_mean, layer.moving_mean)
    assert other.moving_mean.abs().min() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"num_features": 3, "num_dims": 3}, "num_dims 2 or 4", id="num_dims-3"),
        pytest.param({"num_features": 3, "num_dims": 1}, "num_dims 2 or 4", id="num_dims-1"),
        pytest.param({"num_features": 0, "num_dims": 2}, "positive int", id="zero-features"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bnn.D2LBatchNorm(**kwargs)


@pytest.mark.parametrize(
    ("num_dims", "shape", "match"),
    [
        pytest.param(4, (8, 3), r"expected 4D input \(got 2D input\)", id="2d-into-4d"),
        pytest.param(2, (8, 3, 4), r"expected 2D input \(got 3D input\)", id="3d-into-2d"),
        pytest.param(4, (8, 5, 2, 2), r"expected 3 channels at dim 1 \(got 5\)", id="channels"),
        pytest.param(2, (8, 2), r"expected 3 channels at dim 1 \(got 2\)", id="channels-2d"),
        pytest.param(2, (1, 3), "more than 1 value per channel", id="single-row"),
        pytest.param(4, (1, 3, 1, 1), "more than 1 value per channel", id="single-pixel"),
    ],
)
def test_bad_input_raises_and_leaves_moving_stats(num_dims, shape, match):
    layer = bnn.D2LBatchNorm(3, num_dims=num_dims).to(F64)
    good = (6, 3) if num_dims == 2 else (2, 3, 2, 2)
    layer(batch(good, seed=8))
    mm, mv = layer.moving_mean.clone(), layer.moving_var.clone()
    with pytest.raises(ValueError, match=match):
        layer(torch.randn(shape, dtype=F64))
    assert torch.equal(layer.moving_mean, mm) and torch.equal(layer.moving_var, mv)


def test_book_function_rejects_3d_input_when_training():
    x = torch.randn(4, 3, 5)
    with pytest.raises(ValueError, match="expected 2D or 4D input"):
        bnn.book_batch_norm(
            x,
            torch.ones(1, 3, 1),
            torch.zeros(1, 3, 1),
            torch.zeros(1, 3, 1),
            torch.ones(1, 3, 1),
            EPS,
            0.9,
        )
