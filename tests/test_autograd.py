"""Every transform a PyTorch user applies to batch norm, on bnlab's and on torch's, side by side.

Double backward, forward-mode AD, torch.func (grad, vmap, jacrev, jacfwd, jvp, hessian,
functional_call) and batched gradients, in float64, in training and in eval, with and without
γ and β: each result is compared with the same transform of ``torch.nn.functional.batch_norm``.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vmap

import bnlab.nn as bnn
from bnlab.functional import batch_norm

pytestmark = pytest.mark.usefixtures("every_backend")

D = torch.float64
MODES = [
    pytest.param(True, True, id="train-affine"),
    pytest.param(True, False, id="train-plain"),
    pytest.param(False, True, id="eval-affine"),
    pytest.param(False, False, id="eval-plain"),
]


def _close(a, b, what: str) -> None:
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=what)


def _data(shape=(4, 3, 2, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=D)
    w = torch.rand(c, generator=g, dtype=D) + 0.5
    b = torch.randn(c, generator=g, dtype=D)
    rm = torch.randn(c, generator=g, dtype=D)
    rv = torch.rand(c, generator=g, dtype=D) + 0.5
    return x, w, b, rm, rv


def _pair(training: bool, affine: bool, rm: torch.Tensor, rv: torch.Tensor):
    """(ours, torch's) as functions of (x, w, b); each call gets fresh copies of the buffers."""

    def make(fn):
        def f(x, w, b):
            return fn(x, rm.clone(), rv.clone(), w if affine else None, b if affine else None,
                      training, 0.1, 1e-5)  # fmt: skip

        return f

    return make(batch_norm), make(F.batch_norm)


@pytest.mark.parametrize(("training", "affine"), MODES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 2)], ids=["2d", "4d"])
def test_gradcheck_every_mode(training, affine, shape):
    x, w, b, rm, rv = _data(shape)
    ours, _ = _pair(training, affine, rm, rv)
    inputs = tuple(t.clone().requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradcheck(
        ours,
        inputs,
        check_batched_grad=True,
        check_forward_ad=True,
        check_backward_ad=True,
        check_batched_forward_grad=True,
    )
    assert torch.autograd.gradgradcheck(ours, inputs, check_batched_grad=True)


@pytest.mark.parametrize(("training", "affine"), MODES)
def test_second_derivatives_equal_torchs(training, affine):
    """The MAML/gradient-penalty pattern: grad with create_graph, then a grad of that grad."""
    x, w, b, rm, rv = _data()
    results = []
    for fn in _pair(training, affine, rm, rv):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        y = fn(xs, ws, bs)
        firsts = torch.autograd.grad((y**3).sum(), (xs, ws), create_graph=True, allow_unused=True)
        penalty = sum(g.square().sum() for g in firsts if g is not None)
        second = torch.autograd.grad(penalty, (xs, ws, bs), allow_unused=True)
        results.append(second)
    for ours, theirs, name in zip(*results, ("x", "γ", "β"), strict=True):
        if theirs is None:  # torch's β does not reach the penalty; bnlab's must not either
            assert ours is None or torch.count_nonzero(ours) == 0, name
        else:
            assert ours is not None, name
            _close(ours, theirs, f"second derivative wrt {name}")
    assert any(torch.count_nonzero(t) for t in results[1] if t is not None)  # a real test


@pytest.mark.parametrize(("training", "affine"), MODES)
def test_torch_func_transforms_equal_torchs(training, affine):
    x, w, b, rm, rv = _data()
    ours, theirs = _pair(training, affine, rm, rv)

    def loss(f):
        return lambda x, w, b: (f(x, w, b) ** 3).sum()

    for name, transform in [
        ("grad", lambda f: grad(loss(f), argnums=(0, 1, 2))(x, w, b)),
        ("jacrev", lambda f: jacrev(f, argnums=(0, 1, 2))(x, w, b)),
        ("jacfwd", lambda f: jacfwd(f, argnums=(0, 1, 2))(x, w, b)),
        ("jvp", lambda f: jvp(f, (x, w, b), (x.cos(), w.sin(), b.cos()))),
        ("hessian", lambda f: hessian(loss(f))(x, w, b)),
        ("vjp", lambda f: torch.func.vjp(f, x, w, b)[1](x.sin())),
    ]:
        a, t = transform(ours), transform(theirs)
        leaves = torch.utils._pytree.tree_leaves
        for i, (u, v) in enumerate(zip(leaves(a), leaves(t), strict=True)):
            _close(u, v, f"{name} [{i}]")


def test_vmap_over_a_batch_of_batches():
    """B independent batch norms at once, with batched, unbatched or no running statistics."""
    _, w, b, _, _ = _data((4, 3, 2, 2))
    xs = torch.randn(5, 4, 3, 2, 2, dtype=D)
    ws = torch.rand(5, 3, dtype=D) + 0.5
    # training, no running statistics; γ batched, β not
    got = vmap(lambda x, w: batch_norm(x, None, None, w, b, True), in_dims=(0, 0))(xs, ws)
    want = vmap(lambda x, w: F.batch_norm(x, None, None, w, b, True), in_dims=(0, 0))(xs, ws)
    _close(got, want, "training without running statistics")
    # training, one set of running statistics per member of the batch: each updated
    rms, rvs = (
        [torch.zeros(5, 3, dtype=D) for _ in range(2)],
        [torch.ones(5, 3, dtype=D) for _ in range(2)],
    )
    outs = [
        vmap(lambda x, m, v, fn=fn: fn(x, m, v, w, b, True, 0.1, 1e-5))(xs, rm_, rv_)
        for fn, rm_, rv_ in zip((batch_norm, F.batch_norm), rms, rvs, strict=True)
    ]
    _close(outs[0], outs[1], "training with batched running statistics")
    _close(rms[0], rms[1], "batched running_mean after the step")
    _close(rvs[0], rvs[1], "batched running_var after the step")
    # eval, one set of running statistics for the whole batch; x in its last dim
    rm, rv = torch.randn(3, dtype=D), torch.rand(3, dtype=D) + 0.5
    x_last = xs.movedim(0, -1)
    got = vmap(lambda x: batch_norm(x, rm, rv, w, b, False), in_dims=-1)(x_last)
    want = vmap(lambda x: F.batch_norm(x, rm, rv, w, b, False), in_dims=-1)(x_last)
    _close(got, want, "eval with shared running statistics")


def test_vmap_refuses_one_set_of_buffers_for_a_batch_in_training():
    xs = torch.randn(5, 4, 3, dtype=D)
    for fn in (batch_norm, F.batch_norm):  # torch refuses it too, with these words
        rm, rv = torch.zeros(3, dtype=D), torch.ones(3, dtype=D)
        with pytest.raises(RuntimeError, match="were not batched"):
            vmap(lambda x, fn=fn, rm=rm, rv=rv: fn(x, rm, rv, None, None, True))(xs)
        assert torch.equal(rm, torch.zeros(3, dtype=D))


def test_forward_ad_refuses_dual_running_statistics_in_eval():
    x, w, b, rm, rv = _data()
    for fn in (batch_norm, F.batch_norm):
        with fwAD.dual_level():
            dual = fwAD.make_dual(rm.clone(), torch.ones_like(rm))
            with pytest.raises(RuntimeError, match="cannot have forward grad defined"):
                fn(fwAD.make_dual(x, x.cos()), dual, rv.clone(), w, b, False)
            # with nothing else dual, no tangent is computed and both go on
            y = fn(x, dual, rv.clone(), w, b, False)
            assert fwAD.unpack_dual(y).tangent is None
    # in training they are only updated: torch and bnlab both go on, with the same tangent
    results = []
    for fn in (batch_norm, F.batch_norm):
        with fwAD.dual_level():
            xd = fwAD.make_dual(x, x.cos())
            dual = fwAD.make_dual(rm.clone(), torch.ones_like(rm))
            y = fn(xd, dual, rv.clone(), w, b, True)
            results.append((fwAD.unpack_dual(y).tangent, *fwAD.unpack_dual(dual)))
    for what, ours, theirs in zip(
        ("y tangent", "running_mean", "its tangent"), *results, strict=True
    ):
        _close(ours, theirs, f"{what} in training")


def _cnn(bn: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), bn(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)
    ).double()


def test_maml_meta_gradient_equals_torchs():
    """One inner SGD step through functional_call, then the meta-gradient of the outer loss."""
    g = torch.Generator().manual_seed(1)
    xs, ys = torch.randn(8, 2, 5, 5, generator=g, dtype=D), torch.randint(0, 3, (8,), generator=g)
    xq, yq = torch.randn(8, 2, 5, 5, generator=g, dtype=D), torch.randint(0, 3, (8,), generator=g)
    metas, buffers = [], []
    for bn in (bnn.BatchNorm2d, nn.BatchNorm2d):
        net = _cnn(bn)
        params = dict(net.named_parameters())
        inner = F.cross_entropy(functional_call(net, params, (xs,)), ys)
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
        fast = {k: v - 0.4 * gr for (k, v), gr in zip(params.items(), grads, strict=True)}
        outer = F.cross_entropy(functional_call(net, fast, (xq,)), yq)
        metas.append(torch.autograd.grad(outer, list(params.values())))
        buffers.append({k: v.clone() for k, v in net.named_buffers()})
    for ours, theirs in zip(*metas, strict=True):
        _close(ours, theirs, "meta-gradient")
    for k in buffers[1]:
        torch.testing.assert_close(buffers[0][k], buffers[1][k], msg=k)


def test_per_sample_gradients_with_vmap_and_grad():
    """The torch.func recipe: replace_all_batch_norm_modules_, then vmap(grad(...))."""
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 2, 5, 5, generator=g, dtype=D), torch.randint(0, 3, (6,), generator=g)
    results = []
    for bn in (bnn.BatchNorm2d, nn.BatchNorm2d):
        net = _cnn(bn)
        torch.func.replace_all_batch_norm_modules_(net)
        params = {k: v.detach() for k, v in net.named_parameters()}

        def loss(p, xi, yi, net=net):
            pair = xi.unsqueeze(0).expand(2, -1, -1, -1)  # batch norm needs 2 values a channel
            return F.cross_entropy(functional_call(net, p, (pair,)), yi.expand(2))

        results.append(vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y))
    for k in results[1]:
        _close(results[0][k], results[1][k], f"per-sample gradient of {k}")


def test_nested_vmap_with_batched_running_statistics():
    xs = torch.randn(3, 2, 4, 5, dtype=D)
    results = []
    for fn in (batch_norm, F.batch_norm):
        rm, rv = torch.zeros(3, 2, 5, dtype=D), torch.ones(3, 2, 5, dtype=D)

        def one(x, m, v, fn=fn):  # x: (N=4, C=5), its own (5,) running statistics
            return fn(x, m, v, None, None, True, 0.1, 1e-5)

        out = vmap(vmap(one))(xs, rm, rv)
        results.append((out, rm, rv))
    for ours, theirs in zip(*results, strict=True):
        _close(ours, theirs, "nested vmap")


def test_eval_double_backward_uses_the_statistics_of_its_forward():
    """Both backward paths see the running statistics as the forward read them (copies), even
    if the buffers are updated before the backward runs."""
    x, w, b, rm, rv = _data()
    xs = x.clone().requires_grad_()
    y = batch_norm(xs, rm, rv, w, b, False)
    batch_norm(torch.randn(4, 3, 2, 2, dtype=D), rm, rv, w, b, True)  # the buffers move
    (first,) = torch.autograd.grad(y.sum() * 2, xs, retain_graph=True)
    (graph,) = torch.autograd.grad(y.sum() * 2, xs, create_graph=True)
    _close(first, graph, "first-order vs graph backward after a buffer update")
