"""bnlab.reference (NumPy, the formulas as written) against torch and bnlab.functional."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bnlab import functional as bnf
from bnlab import reference
from tests.helpers import assert_parity

pytestmark = pytest.mark.usefixtures("every_backend")

SHAPES = {
    2: (16, 3),
    3: (6, 4, 5),
    4: (5, 3, 4, 3),
    5: (3, 2, 3, 2, 4),
}
RANKS = [pytest.param(rank, id=f"r{rank}") for rank in SHAPES]
F64 = torch.float64


def case(rank, seed=0):
    """x with per-channel offset and scale, non-trivial γ and β, and a random dy."""
    shape = SHAPES[rank]
    c = shape[1]
    g = torch.Generator().manual_seed(seed + rank)
    channel = (1, -1) + (1,) * (rank - 2)
    x = (
        torch.randn(shape, generator=g, dtype=F64)
        * (torch.rand(c, generator=g, dtype=F64) * 3 + 0.5).reshape(channel)
        + torch.randn(c, generator=g, dtype=F64).reshape(channel) * 4
    )
    weight = torch.rand(c, generator=g, dtype=F64) + 0.5
    bias = torch.randn(c, generator=g, dtype=F64)
    dy = torch.randn(shape, generator=g, dtype=F64)
    return x, weight, bias, dy


def autograd_grads(fn, x, weight, bias, dy):
    """(y, dx, dγ, dβ) of ``fn(x, weight, bias)`` by autograd."""
    xs, ws, bs = (t.clone().requires_grad_(True) for t in (x, weight, bias))
    y = fn(xs, ws, bs)
    y.backward(dy)
    return y.detach(), xs.grad, ws.grad, bs.grad


def torch_train(x, w, b):
    return F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)


def bnlab_train(x, w, b):
    return bnf.batch_norm(x, None, None, w, b, training=True, eps=1e-5)


ORACLES = [
    pytest.param(torch_train, id="torch"),
    pytest.param(bnlab_train, id="bnlab.functional"),
]


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize("rank", RANKS)
def test_forward_matches(rank, oracle):
    x, weight, bias, _ = case(rank)
    y, mu_B, sigma2_B, cache = reference.forward(x.numpy(), weight.numpy(), bias.numpy())
    expected = oracle(x, weight, bias)
    assert_parity(torch.from_numpy(y), expected, "y", F64)
    var, mean = torch.var_mean(x, dim=(0, *range(2, rank)), correction=0)
    assert_parity(torch.from_numpy(mu_B), mean, "μ_B", F64)
    assert_parity(torch.from_numpy(sigma2_B), var, "σ²_B", F64)
    assert cache.m == x.numel() // x.shape[1]


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize("rank", RANKS)
def test_backward_matches(rank, oracle):
    x, weight, bias, dy = case(rank, seed=100)
    _, _, _, cache = reference.forward(x.numpy(), weight.numpy(), bias.numpy())
    dx, d_gamma, d_beta = reference.backward(dy.numpy(), cache)
    _, ex_dx, ex_dgamma, ex_dbeta = autograd_grads(oracle, x, weight, bias, dy)
    assert_parity(torch.from_numpy(dx), ex_dx, "dx", F64)
    assert_parity(torch.from_numpy(d_gamma), ex_dgamma, "dγ", F64)
    assert_parity(torch.from_numpy(d_beta), ex_dbeta, "dβ", F64)
    # dx of batch norm sums to zero per channel: a check independent of both oracles
    sums = dx.sum(axis=(0, *range(2, rank)))
    assert abs(sums).max() < 1e-10


@pytest.mark.parametrize("rank", RANKS)
def test_inference_matches_torch_eval(rank):
    x, weight, bias, _ = case(rank, seed=200)
    c = x.shape[1]
    g = torch.Generator().manual_seed(rank)
    running_mean = torch.randn(c, generator=g, dtype=F64)
    running_var = torch.rand(c, generator=g, dtype=F64) + 0.25
    y = reference.inference(
        x.numpy(), weight.numpy(), bias.numpy(), running_mean.numpy(), running_var.numpy()
    )
    rm, rv = running_mean.clone(), running_var.clone()
    expected = F.batch_norm(x, rm, rv, weight, bias, training=False, eps=1e-5)
    assert_parity(torch.from_numpy(y), expected, "inference y", F64)
    ours = bnf.batch_norm(x, rm, rv, weight, bias, training=False, eps=1e-5)
    assert_parity(torch.from_numpy(y), ours, "inference y vs bnlab", F64)
    # eval mode must not use the batch statistics
    batch_y, *_ = reference.forward(x.numpy(), weight.numpy(), bias.numpy())
    assert abs(batch_y - y).max() > 1e-3


@pytest.mark.parametrize("momentum", [0.1, 0.7], ids=lambda m: f"m{m}")
@pytest.mark.parametrize("rank", RANKS)
def test_update_running_matches_torch_buffers(rank, momentum):
    x, weight, bias, _ = case(rank, seed=300)
    c = x.shape[1]
    g = torch.Generator().manual_seed(rank)
    start_mean = torch.randn(c, generator=g, dtype=F64)
    start_var = torch.rand(c, generator=g, dtype=F64) + 0.25
    rm, rv = start_mean.clone(), start_var.clone()
    F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=momentum, eps=1e-5)
    _, mu_B, sigma2_B, cache = reference.forward(x.numpy(), weight.numpy(), bias.numpy())
    new_mean, new_var = reference.update_running(
        start_mean.numpy(), start_var.numpy(), mu_B, sigma2_B, cache.m, momentum
    )
    assert not torch.allclose(rv, start_var)  # torch did update its buffers
    assert_parity(torch.from_numpy(new_mean), rm, "running_mean", F64)
    assert_parity(torch.from_numpy(new_var), rv, "running_var", F64)
