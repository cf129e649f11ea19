"""``torch.ops.bnlab.batch_norm``: the registered operator that TorchScript and compilers call."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

from bnlab import ops

pytestmark = pytest.mark.usefixtures("every_backend")

D = torch.float64


def _args(training: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 4, generator=g, dtype=D, requires_grad=True)
    w = (torch.rand(3, generator=g, dtype=D) + 0.5).requires_grad_()
    b = torch.randn(3, generator=g, dtype=D, requires_grad=True)
    rm, rv = torch.randn(3, generator=g, dtype=D), torch.rand(3, generator=g, dtype=D) + 0.5
    return x, w, b, rm, rv, training


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_the_op_is_torchs_batch_norm(training, every_backend):
    x, w, b, rm, rv, _ = _args(training)
    rm_t, rv_t = rm.clone(), rv.clone()
    y = ops.batch_norm(x, w, b, rm, rv, training, 0.1, 1e-5, every_backend)
    y_t = F.batch_norm(x, rm_t, rv_t, w, b, training, 0.1, 1e-5)
    torch.testing.assert_close(y, y_t, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(rm, rm_t, rtol=1e-9, atol=1e-10)  # copied back into the buffer
    torch.testing.assert_close(rv, rv_t, rtol=1e-9, atol=1e-10)
    grads = torch.autograd.grad((y**2).sum(), (x, w, b))
    grads_t = torch.autograd.grad((y_t**2).sum(), (x, w, b))
    for a, t in zip(grads, grads_t, strict=True):
        torch.testing.assert_close(a, t, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_the_op_has_second_derivatives(training, every_backend):
    x, w, b, rm, rv, _ = _args(training)
    assert torch.autograd.gradgradcheck(
        lambda x, w, b: ops.batch_norm(
            x, w, b, rm.clone(), rv.clone(), training, 0.1, 1e-5, every_backend
        ),
        (x, w, b),
    )


def test_the_op_is_functional_and_has_a_fake_implementation(every_backend):
    x, w, b, rm, rv, _ = _args(True)
    before = rm.clone()
    out = torch.ops.bnlab.batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5, every_backend)
    assert torch.equal(rm, before)  # the raw op returns the new statistics, changes nothing
    assert [t.shape for t in out] == [x.shape, (3,), (3,), (3,), (3,)]
    plain = x.detach()
    mode = FakeTensorMode()
    fx, frm, frv = (mode.from_tensor(t) for t in (plain, rm, rv))
    with mode:
        fake = torch.ops.bnlab.batch_norm(fx, None, None, frm, frv, True, 0.1, 1e-5, every_backend)
    assert [t.shape for t in fake] == [t.shape for t in out]
    for training in (True, False):  # schema, autograd registration, fake tensors, AOT dispatch
        report = torch.library.opcheck(
            torch.ops.bnlab.batch_norm.default,
            (x, w, b, rm, rv, training, 0.1, 1e-5, every_backend),
        )
        assert set(report.values()) == {"SUCCESS"}, report


def test_the_op_checks_its_arguments():
    x, w, b, rm, rv, _ = _args(True)
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 4"):
        ops.batch_norm(x, w, b, torch.zeros(4, dtype=D), rv, True, 0.1, 1e-5, "auto")
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5, "fastest")


def test_empty_input():
    x = torch.empty(0, 3, dtype=D, requires_grad=True)
    w = torch.ones(3, dtype=D, requires_grad=True)
    y = ops.batch_norm(x, w, None, None, None, True, 0.1, 1e-5, "auto")
    assert y.shape == (0, 3)
