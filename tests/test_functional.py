"""bnlab.functional.batch_norm against torch.nn.functional.batch_norm: values, buffers, grads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnlab.nn as bnlab_nn
from bnlab import BNTypeError, BNValueError
from bnlab.functional import batch_norm
from bnlab.record import recording
from tests.helpers import assert_parity

D = torch.float64

pytestmark = pytest.mark.usefixtures("every_backend")


def _args(shape, dtype=D, affine=True, running=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=D).mul(3).add(1).to(dtype)
    w = (torch.rand(c, generator=g, dtype=D) + 0.5).to(dtype) if affine else None
    b = torch.randn(c, generator=g, dtype=D).to(dtype) if affine else None
    rm = torch.randn(c, generator=g, dtype=D).to(dtype) if running else None
    rv = (torch.rand(c, generator=g, dtype=D) + 0.5).to(dtype) if running else None
    return x, w, b, rm, rv


@pytest.mark.parametrize(
    "shape", [(4, 3), (2, 5, 7), (3, 2, 4, 5), (2, 3, 2, 3, 2), (2, 1, 1, 1, 1, 3)], ids=str
)
@pytest.mark.parametrize(
    ("training", "running"),
    [(True, True), (True, False), (False, True)],  # eval without running stats is an error
    ids=["train-running", "train-norunning", "eval"],
)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_matches_torch(shape, training, affine, running, dtype):
    x, w, b, rm, rv = _args(shape, dtype, affine, running)
    ours_in = [t if t is None else t.clone() for t in (x, w, b, rm, rv)]
    ref_in = [t if t is None else t.clone() for t in (x, w, b, rm, rv)]
    for t in (*ours_in[:3], *ref_in[:3]):
        if t is not None:
            t.requires_grad_(True)
    y = batch_norm(ours_in[0], ours_in[3], ours_in[4], ours_in[1], ours_in[2], training, 0.3, 1e-4)
    y_ref = F.batch_norm(ref_in[0], ref_in[3], ref_in[4], ref_in[1], ref_in[2], training, 0.3, 1e-4)
    assert_parity(y, y_ref, "output", dtype)
    assert_parity(ours_in[3], ref_in[3], "running_mean", dtype)
    assert_parity(ours_in[4], ref_in[4], "running_var", dtype)
    dy = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=D).to(dtype)
    y.backward(dy)
    y_ref.backward(dy)
    for i, name in enumerate(("input", "weight", "bias")):
        if ref_in[i] is not None:
            scale = float(dy.abs().sum()) if name != "input" else 0.0
            assert_parity(ours_in[i].grad, ref_in[i].grad, f"grad {name}", dtype, scale)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 2), (2, 2, 2, 2, 3)], ids=str)
def test_gradcheck(shape, training):
    x, w, b, rm, rv = _args(shape)
    inputs = tuple(t.detach().requires_grad_(True) for t in (x, w, b))

    def fn(x, w, b):
        return batch_norm(x, rm.clone(), rv.clone(), w, b, training=training, eps=1e-3)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8)


def test_gradcheck_channels_last_and_no_affine():
    x = torch.randn(3, 4, 2, 3, dtype=D).to(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: batch_norm(x, None, None, training=True), (x,))


def test_constant_channel_gives_beta_not_nan():
    x = torch.randn(6, 2, 3, 3)
    x[:, 1] = 7.25  # every value of channel 1 equal: σ² = 0
    x.requires_grad_(True)
    w, b = torch.tensor([2.0, 5.0], requires_grad=True), torch.tensor([3.0, 8.0])
    y = batch_norm(x, None, None, w, b, training=True)
    assert torch.isfinite(y).all()
    assert torch.equal(y[:, 1], torch.full_like(y[:, 1], 8.0))  # y = β exactly
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(w.grad).all()


def test_far_from_zero_float32_variance_is_exact():
    g = torch.Generator().manual_seed(0)
    x64 = 1e4 + torch.randn(64, 3, 8, 8, generator=g, dtype=D)
    x = x64.float()
    seen = {}
    with recording(lambda step, t: seen.setdefault(step, t.clone())):
        batch_norm(x, None, None, training=True)
    truth = x.double().var(dim=(0, 2, 3), unbiased=False)  # of the float32 values, in float64
    rel = ((seen["var"].double() - truth).abs() / truth).max().item()
    assert rel <= 1e-3, rel
    # the normalized output keeps unit variance too
    y = batch_norm(x, None, None, training=True)
    assert (y.double().var(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-3


def _ulp(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The spacing of ``dtype`` at the larger of |a|, |b| (float32 tensors of its values)."""
    info = torch.finfo(dtype)
    big = torch.maximum(a.abs(), b.abs()).clamp_min(info.smallest_normal)
    return info.eps * torch.exp2(torch.floor(torch.log2(big)))


def _sum_in(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Σ over dims (0, 2, 3), every partial sum rounded to ``dtype`` (a pairwise tree, the most
    accurate order a 16-bit accumulator could use)."""
    t = x.to(dtype).transpose(0, 1).reshape(x.shape[1], -1)  # (C, m)
    while t.shape[1] > 1:
        t = (t[:, 0::2].float() + t[:, 1::2].float()).to(dtype)  # each add rounded to dtype
    return t[:, 0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_low_precision_accumulates_in_float32(dtype):
    shape = (8, 3, 4, 4)  # m = 128 values a channel: a power of two, for _sum_in
    x, w, b, rm, rv = _args(shape, torch.float32)
    x16 = x.to(dtype)
    rm0, rm32, rv32 = rm.clone(), rm.clone(), rv.clone()
    y = batch_norm(x16, rm, rv, w, b, training=True)
    y32 = batch_norm(x16.float(), rm32, rv32, w, b, training=True)
    assert y.dtype == dtype
    # float32 math on the same values, rounded once: a kernel may sum in another order than
    # for the float32 input, so the rounding to 16 bits may land on the neighbouring value
    gap = (y.float() - y32.to(dtype).float()).abs()
    one_ulp = _ulp(y.float(), y32, dtype)
    assert (gap <= one_ulp).all(), f"max gap {(gap / one_ulp).max():.1f} ulp of {dtype}"
    assert rm.dtype == rv.dtype == torch.float32
    torch.testing.assert_close(rm, rm32, rtol=2e-6, atol=1e-7)
    torch.testing.assert_close(rv, rv32, rtol=2e-6, atol=1e-7)
    # the margin: statistics summed in 16 bits (even pairwise) fail both checks
    m, per_channel = x.numel() // x.shape[1], (1, -1, 1, 1)
    mean16 = _sum_in(x16.float(), dtype).float() / m
    var16 = _sum_in((x16.float() - mean16.reshape(per_channel)).square(), dtype).float() / m
    xhat16 = (x16.float() - mean16.reshape(per_channel)) / torch.sqrt(var16 + 1e-5).reshape(
        per_channel
    )
    y16 = (xhat16 * w.reshape(per_channel) + b.reshape(per_channel)).to(dtype)
    assert ((y16.float() - y32.to(dtype).float()).abs() > _ulp(y16.float(), y32, dtype)).any()
    assert not torch.allclose(0.9 * rm0 + 0.1 * mean16, rm32, rtol=2e-6, atol=1e-7)
    rm_ref, rv_ref = _args(shape, torch.float32)[3:]
    y_ref = F.batch_norm(x16, rm_ref, rv_ref, w, b, training=True)
    assert_parity(y, y_ref, "16-bit output", dtype)
    # gradients come back in each tensor's own dtype
    xg = x16.clone().requires_grad_(True)
    wg = w.clone().requires_grad_(True)
    batch_norm(xg, None, None, wg, b, training=True).float().sum().backward()
    assert xg.grad.dtype == dtype and wg.grad.dtype == torch.float32


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (2, 3, 2, 4, 4)], ids=str)
def test_channels_last_in_channels_last_out(shape):
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    x = torch.randn(shape, dtype=D).to(memory_format=fmt).requires_grad_(True)
    xr = x.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
    y = batch_norm(x, None, None, training=True)
    y_ref = F.batch_norm(xr, None, None, training=True)
    assert y.is_contiguous(memory_format=fmt)
    assert_parity(y, y_ref, "channels_last output", D)
    dy = torch.randn(shape, dtype=D)
    y.backward(dy)
    y_ref.backward(dy)
    assert_parity(x.grad, xr.grad, "channels_last grad", D)


def test_empty_batch_matches_torch():
    rm, rv = torch.zeros(3), torch.ones(3)
    y = batch_norm(torch.randn(0, 3, 4), rm, rv, training=True)
    assert y.shape == (0, 3, 4)
    assert torch.equal(rm, torch.zeros(3)) and torch.equal(rv, torch.ones(3))


def test_recorder_sees_the_real_intermediates():
    x, w, b, rm, rv = _args((2, 2, 2, 2))
    seen = {}
    with recording(lambda step, t: seen.__setitem__(step, t.detach().clone())):
        y = batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)
    assert list(seen) == [
        "input",
        "mean",
        "var",
        "running_mean",
        "running_var",
        "x_minus_mean",
        "invstd",
        "xhat",
        "output",
    ]
    assert torch.equal(seen["output"], y)
    torch.testing.assert_close(seen["mean"], x.mean(dim=(0, 2, 3)), rtol=0, atol=1e-14)
    torch.testing.assert_close(
        seen["var"], x.var(dim=(0, 2, 3), unbiased=False), rtol=0, atol=1e-14
    )


def test_backend_names(every_backend):
    x = torch.randn(4, 3, 5)
    assert torch.equal(
        batch_norm(x, None, None, training=True, backend=every_backend),
        batch_norm(x, None, None, training=True, backend="auto"),  # prefer()'d to it
    )
    rm = torch.zeros(3)
    with pytest.raises(
        ValueError, match=r"backend must be one of 'auto', 'torch', 'cpu-fused' \(got 'cuda9'\)"
    ):
        batch_norm(x, rm, torch.ones(3), training=True, backend="cuda9")
    assert torch.equal(rm, torch.zeros(3))


# --- bad input: type, message, and running statistics untouched ------------------------------

BAD = [
    (
        "int input",
        dict(input=torch.ones(4, 3, dtype=torch.long)),
        BNTypeError,
        r"expected a floating-point input .* \(got torch.int64\)",
    ),
    (
        "bool input",
        dict(input=torch.ones(4, 3, dtype=torch.bool)),
        BNTypeError,
        r"\(got torch.bool\)",
    ),
    (
        "list input",
        dict(input=[[1.0, 2.0]]),
        BNTypeError,
        r"expected input to be a torch.Tensor \(got list\)",
    ),
    (
        "1-D input",
        dict(input=torch.randn(5)),
        BNValueError,
        r"at least 2 dimensions \(got 1D input of shape \(5,\)\)",
    ),
    (
        "single value per channel",
        dict(input=torch.randn(1, 3)),
        BNValueError,
        r"^Expected more than 1 value per channel when training, "
        r"got input size torch.Size\(\[1, 3\]\)$",
    ),
    (
        "single value per channel 4D",
        dict(input=torch.randn(1, 3, 1, 1)),
        BNValueError,
        r"got input size torch.Size\(\[1, 3, 1, 1\]\)",
    ),
    (
        "weight length",
        dict(weight=torch.ones(4)),
        BNValueError,
        r"expected weight of shape \(3,\), one value per channel of the input of shape \(4, 3, 2\) "
        r"\(got weight of shape \(4,\)\)",
    ),
    ("bias length", dict(bias=torch.ones(2)), BNValueError, r"expected bias of shape \(3,\)"),
    (
        "running_mean length",
        dict(running_mean=torch.zeros(5)),
        BNValueError,
        r"expected running_mean of shape \(3,\).*\(got running_mean of shape \(5,\)\)",
    ),
    (
        "running_var length",
        dict(running_var=torch.ones(1)),
        BNValueError,
        r"expected running_var of shape \(3,\)",
    ),
    (
        "int weight",
        dict(weight=torch.ones(3, dtype=torch.long)),
        BNTypeError,
        r"expected weight to be a floating-point tensor \(got torch.int64\)",
    ),
    (
        "mixed dtype",
        dict(weight=torch.ones(3, dtype=D)),
        BNTypeError,
        r"expected weight of dtype torch.float32 .*\(got torch.float64\)",
    ),
    (
        "only running_mean",
        dict(running_var=None),
        BNValueError,
        r"running_mean and running_var must either both be None or neither be None",
    ),
    (
        "eval without running stats",
        dict(running_mean=None, running_var=None, training=False),
        BNValueError,
        r"running_mean must be defined in evaluation mode",
    ),
    (
        "zero eps in training",
        dict(eps=0.0),
        BNValueError,
        r"eps must be positive during training, but got 0.0",
    ),
    (
        "negative eps in eval",
        dict(eps=-1.0, training=False),
        BNValueError,
        r"eps must be non-negative",
    ),
    (
        "momentum None with running stats",
        dict(momentum=None),
        BNTypeError,
        r"argument 'momentum' must be float, not NoneType",
    ),
    (  # torch's argument parser refuses it even when no statistic is updated
        "momentum None in eval",
        dict(momentum=None, training=False),
        BNTypeError,
        r"argument 'momentum' must be float, not NoneType",
    ),
    ("training None", dict(training=None), BNTypeError, r"'training' must be bool, not NoneType"),
    ("training 1", dict(training=1), BNTypeError, r"'training' must be bool, not int"),
    (
        "running_mean requires grad",
        dict(running_mean=torch.zeros(3, requires_grad=True)),
        BNValueError,  # and a RuntimeError, as torch's
        r"not differentiable with respect to argument 'running_mean'",
    ),
]


@pytest.mark.parametrize(("case", "override", "exc", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_raises_before_any_change(case, override, exc, message):
    kwargs = dict(
        input=torch.randn(4, 3, 2),
        running_mean=torch.full((3,), 0.5),
        running_var=torch.full((3,), 2.0),
        weight=torch.ones(3),
        bias=torch.zeros(3),
        training=True,
        momentum=0.1,
        eps=1e-5,
    )
    kwargs.update(override)
    before = [
        t.clone() if isinstance(t, torch.Tensor) else t
        for t in (kwargs["running_mean"], kwargs["running_var"])
    ]
    with pytest.raises(exc, match=message):
        batch_norm(**kwargs)
    for t, b in zip((kwargs["running_mean"], kwargs["running_var"]), before, strict=True):
        if isinstance(t, torch.Tensor):
            assert torch.equal(t, b), f"{case}: running statistics changed"
    # the same mistake is also the builtin type torch code catches
    assert issubclass(exc, (ValueError, TypeError))


def test_eval_output_still_differentiable_after_the_buffers_move():
    """Eval copies the running statistics: a later training step can't break backward."""
    for module in (bnlab_nn.BatchNorm1d(3).double(), torch.nn.BatchNorm1d(3).double()):
        x = torch.randn(4, 3, dtype=D, requires_grad=True)
        module.eval()
        y = module(x)
        module.train()
        module(torch.randn(4, 3, dtype=D))  # updates running_mean/var in place
        y.sum().backward()
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    "value", [np.float32(1e-3), np.float64(1e-3), torch.tensor(1e-3), 1e-3, 1], ids=repr
)
def test_eps_and_momentum_accept_what_torch_accepts(value):
    x = torch.randn(5, 3, dtype=D)
    rm, rv, rm2, rv2 = (
        torch.zeros(3, dtype=D),
        torch.ones(3, dtype=D),
        torch.zeros(3, dtype=D),
        torch.ones(3, dtype=D),
    )
    momentum = value if not isinstance(value, int) else 1
    y = batch_norm(x, rm, rv, training=True, eps=value, momentum=momentum)
    y_ref = F.batch_norm(x, rm2, rv2, training=True, eps=value, momentum=momentum)
    assert_parity(y, y_ref, "output", D)
    assert_parity(rm, rm2, "running_mean", D)


TORCH_TYPES = [
    ("weight length", dict(weight=torch.ones(4))),
    ("running_mean length", dict(running_mean=torch.zeros(5))),
    ("1-D input", dict(input=torch.randn(5))),
    (
        "1-D input, no running stats",
        dict(input=torch.randn(5), running_mean=None, running_var=None),
    ),
    ("integer input", dict(input=torch.ones(4, 3, 2, dtype=torch.long))),
    ("float64 weight", dict(weight=torch.ones(3, dtype=D))),
    ("eval without running stats", dict(running_mean=None, running_var=None, training=False)),
    ("single value per channel", dict(input=torch.randn(1, 3))),
]


@pytest.mark.parametrize(("case", "override"), TORCH_TYPES, ids=[c[0] for c in TORCH_TYPES])
def test_each_error_is_also_the_type_torch_raises(case, override):
    kwargs = dict(
        input=torch.randn(4, 3, 2),
        running_mean=torch.zeros(3),
        running_var=torch.ones(3),
        weight=torch.ones(3),
        bias=torch.zeros(3),
        training=True,
    )
    kwargs.update(override)
    with pytest.raises(Exception) as theirs:
        F.batch_norm(**kwargs)
    with pytest.raises(Exception) as ours:
        batch_norm(**kwargs)
    assert isinstance(ours.value, type(theirs.value)), (
        f"{case}: torch raises {type(theirs.value).__name__}, bnlab {type(ours.value).__mro__}"
    )
    assert isinstance(ours.value, (ValueError, TypeError))
