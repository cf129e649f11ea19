"""The fused CPU kernels (``backend='cpu-fused'``) against torch.nn.functional.batch_norm.

The cases the kernels' own code paths make: one spatial element (read as rows of C channels),
channel counts no multiple of a vector's width, odd spatial sizes, batch 1, every rank, both
dense layouts and the strided tensors made dense first; training and eval, with and without
γ, β; buffers of another dtype; 16-bit inputs; two threads on tensors big enough to split, by
channels and by rows; NaN and inf; x = 10⁴ + N(0, 1) in float32; then gradcheck and torch.func.
Each compares forward (values and strides), backward (dx, dγ, dβ) and the running statistics.
"""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from torch.func import jacfwd, jacrev, vmap

import bnlab.nn as bnn
from bnlab import backends
from bnlab.backends import fused, torch_ref
from bnlab.functional import batch_norm
from tests.helpers import assert_parity

pytestmark = pytest.mark.usefixtures("fused_kernels")

D = torch.float64
LOW = (torch.float16, torch.bfloat16)
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def _randn(shape, dtype=D, seed=0, offset=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=D) * 3 + offset).to(dtype)


def _params(c, dtype, affine, running, seed=1):
    """(γ, β, running_mean, running_var) in the dtype torch keeps them for an input of dtype."""
    acc = torch.float32 if dtype in LOW else dtype
    g = torch.Generator().manual_seed(seed)
    w = (torch.rand(c, generator=g, dtype=D) + 0.5).to(acc) if affine else None
    b = torch.randn(c, generator=g, dtype=D).to(acc) if affine else None
    rm = torch.randn(c, generator=g, dtype=D).to(acc) if running else None
    rv = (torch.rand(c, generator=g, dtype=D) + 0.5).to(acc) if running else None
    return w, b, rm, rv


def _copy(t: torch.Tensor | None) -> torch.Tensor | None:
    """A copy with the same strides (``clone`` makes a strided tensor contiguous)."""
    return None if t is None else torch.empty_strided(t.shape, t.stride(), dtype=t.dtype).copy_(t)


def _run(fn, x, w, b, rm, rv, training, dy, **kw):
    """(y, (dx, dγ, dβ), running_mean, running_var) of one call, on copies of every argument
    but x (the same tensor, strides and all, for both implementations)."""
    xs = x.detach().requires_grad_()
    ws, bs = (None if t is None else _copy(t).requires_grad_() for t in (w, b))
    rms, rvs = _copy(rm), _copy(rv)
    y = fn(xs, rms, rvs, ws, bs, training, 0.3, 1e-5, **kw)
    leaves = [t for t in (xs, ws, bs) if t is not None]
    grads = iter(torch.autograd.grad(y, leaves, dy))
    dx, dw, db = (None if t is None else next(grads) for t in (xs, ws, bs))
    return y, (dx, dw, db), rms, rvs


def _input_term(x, w, rv, training, dy):
    """The size of the terms dx sums (|dy|·|γ|/σ), the scale its rounding acts on."""
    axes = (0, *range(2, x.dim()))
    var = x.double().var(dim=axes, unbiased=False) if training else rv.double()
    gamma = 1.0 if w is None else w.double().abs().max().item()
    return dy.double().abs().max().item() * gamma / torch.sqrt(var.min() + 1e-5).item()


def check(x, *, training=True, affine=True, running=True, dy=None, params=None, what=""):
    """backend='cpu-fused' against F.batch_norm on the same x: output and its strides,
    dx, dγ, dβ, and the running statistics."""
    dtype = x.dtype
    w, b, rm, rv = params if params is not None else _params(x.shape[1], dtype, affine, running)
    if dy is None:
        dy = _randn(x.shape, dtype, seed=2, offset=0.0)
    ours = _run(batch_norm, x, w, b, rm, rv, training, dy, backend="cpu-fused")
    ref = _run(F.batch_norm, x, w, b, rm, rv, training, dy)
    (y, grads, rm1, rv1), (y_ref, grads_ref, rm2, rv2) = ours, ref
    assert y.stride() == y_ref.stride(), (
        f"{what}: output strides {y.stride()}, torch's {y_ref.stride()}"
    )
    assert_parity(y, y_ref, f"{what}: output", dtype)
    sums = float(dy.double().abs().sum())
    scales = (_input_term(x, w, rv, training, dy) if dtype != D else 0.0, sums, sums)
    for name, g, g_ref, scale in zip(("dx", "dγ", "dβ"), grads, grads_ref, scales, strict=True):
        # torch sums some 16-bit gradients in 16 bits (dβ of channels-last bfloat16): the
        # input's tolerance for all three (bnlab's float32 sums: test_16_bit_inputs_match_torch)
        tol = dtype if dtype in LOW or g_ref is None else g_ref.dtype
        assert_parity(g, g_ref, f"{what}: {name}", tol, scale)
    for name, t, t_ref in (("running_mean", rm1, rm2), ("running_var", rv1, rv2)):
        assert_parity(t, t_ref, f"{what}: {name}", t_ref.dtype if t_ref is not None else D)
    return ours


# --- odd sizes and layouts, float64 ------------------------------------------------------------

SHAPES = {
    "N,C,1,1": (6, 3, 1, 1),  # one spatial element: rows of C channels
    "N,C,1": (5, 17, 1),
    "C=1 7x5": (4, 1, 7, 5),
    "C=3 7x5": (3, 3, 7, 5),
    "C=17 3x3": (4, 17, 3, 3),
    "C=33 L=5": (2, 33, 5),
    "N=1 7x5": (1, 3, 7, 5),  # batch 1 with spatial > 1: training is fine
    "N,C": (6, 17),
    "N,C,D,H,W": (2, 3, 3, 2, 5),
    "N,C,1,1,1": (4, 33, 1, 1, 1),
}


def _transposed(shape, dtype):
    """Every stride reversed: the tensor of the reversed shape, permuted back."""
    return _randn(shape[::-1], dtype).permute(*reversed(range(len(shape))))


LAYOUTS = {
    "contiguous": lambda shape, dtype: _randn(shape, dtype),
    "channels_last": lambda shape, dtype: _randn(shape, dtype).contiguous(
        memory_format=CHANNELS_LAST[len(shape)]
    ),
    "transposed": _transposed,
    "strided": lambda shape, dtype: _randn((*shape[:-1], 2 * shape[-1]), dtype)[..., ::2],
    "expanded": lambda shape, dtype: _randn((1, *shape[1:]), dtype).expand(shape),  # stride 0
}
MODES = {
    "train": dict(training=True, running=True),
    "train-no-running": dict(training=True, running=False),
    "eval": dict(training=False, running=True),
}
CASES = [
    pytest.param(shape, layout, id=f"{name}-{layout}")
    for name, shape in SHAPES.items()
    for layout in LAYOUTS
    if layout != "channels_last" or len(shape) in CHANNELS_LAST
]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("shape", "layout"), CASES)
def test_odd_sizes_and_layouts_match_torch(shape, layout, mode, affine):
    x = LAYOUTS[layout](shape, D)
    assert x.shape == shape
    check(x, affine=affine, **MODES[mode], what=f"{shape} {layout} {mode}")


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 3), (1, 17), (1, 33), (1, 5, 1, 1), (1, 3, 1)], ids=str
)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_of_one_in_eval(shape, affine):
    check(_randn(shape), training=False, affine=affine, what=f"eval {shape}")
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):  # as torch
        batch_norm(_randn(shape), None, None, training=True, backend="cpu-fused")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
def test_float32_matches_torch(layout, mode):
    check(LAYOUTS[layout]((5, 7, 3, 3), torch.float32), **MODES[mode], what=f"f32 {layout}")


# --- grad_output of any layout ---------------------------------------------------------------

GRAD_LAYOUTS = {
    "expanded ones (y.sum())": lambda x: torch.ones((), dtype=x.dtype).expand(x.shape),
    "transposed": lambda x: _transposed(tuple(x.shape), x.dtype),
    "channels_last": lambda x: _randn(x.shape, x.dtype, seed=3).to(
        memory_format=torch.channels_last
    ),
    "contiguous": lambda x: _randn(x.shape, x.dtype, seed=3),
}


@pytest.mark.parametrize("x_layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dy_layout", GRAD_LAYOUTS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_grad_output_of_any_layout(x_layout, dy_layout, training):
    x = LAYOUTS[x_layout]((4, 3, 5, 3), D)
    check(x, training=training, dy=GRAD_LAYOUTS[dy_layout](x), what=f"dy {dy_layout}")


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_sum_backward_matches_torch(training):
    """y.sum().backward() hands the backward a stride-0 tensor of ones (in training dx is 0:
    Σy does not depend on x, and the kernel must find that, not noise)."""
    grads = []
    for fn, kw in ((batch_norm, {"backend": "cpu-fused"}), (F.batch_norm, {})):
        x = _randn((4, 3, 5, 5)).requires_grad_()
        w, b, rm, rv = _params(3, D, affine=True, running=True)
        w, b = w.requires_grad_(), b.requires_grad_()
        fn(x, rm, rv, w, b, training, **kw).sum().backward()
        grads.append((x.grad, w.grad, b.grad))
    for ours, theirs, name in zip(*grads, ("dx", "dγ", "dβ"), strict=True):
        assert_parity(ours, theirs, name, D, scale=float(x.numel()))


# --- buffers and parameters of another dtype or layout ---------------------------------------


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    ("x_dtype", "p_dtype", "strided"),
    [
        pytest.param(torch.bfloat16, torch.float32, False, id="bf16-input-f32-buffers"),
        pytest.param(torch.float16, torch.float32, False, id="f16-input-f32-buffers"),
        pytest.param(torch.bfloat16, torch.bfloat16, False, id="bf16-input-bf16-buffers"),
        pytest.param(torch.float32, torch.float32, True, id="f32-strided-buffers"),
        pytest.param(D, D, True, id="f64-strided-buffers"),
    ],
)
def test_buffers_of_another_dtype_or_layout(x_dtype, p_dtype, strided, training):
    """The kernel updates float32/float64 contiguous buffers in place; any other kind is
    updated from the batch σ² it returns.  (torch refuses float32 input with float64 buffers.)"""
    c = 5
    params = []
    for t in _params(c, D, affine=True, running=True):
        t = t.to(p_dtype)
        params.append(torch.stack([t, torch.zeros_like(t)], 1)[:, 0] if strided else t)  # stride 2
    if strided:
        assert not params[2].is_contiguous()
    x = _randn((6, c, 4, 3), x_dtype)
    for layout in (torch.contiguous_format, torch.channels_last):
        what = f"{x_dtype} input, {p_dtype} buffers, {layout}"
        check(x.contiguous(memory_format=layout), training=training, params=params, what=what)


# --- 16-bit inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 5, 6, 7), (16, 3), (4, 17, 1, 1)], ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", LOW, ids=["f16", "bf16"])
def test_16_bit_inputs_match_torch(dtype, mode, shape):
    x, dy = _randn(shape, dtype), _randn(shape, dtype, seed=2, offset=0.0)
    axes = (0, *range(2, x.dim()))
    layouts = [x] + ([x.to(memory_format=torch.channels_last)] if x.dim() == 4 else [])
    for x in layouts:
        _, (_, _, db), _, _ = check(x, **MODES[mode], dy=dy, what=f"{dtype} {x.stride()}")
        # accumulated in float32: dβ = Σdy of the 16-bit values to float32's precision
        torch.testing.assert_close(db.double(), dy.double().sum(dim=axes), rtol=1e-6, atol=1e-6)


def test_cumulative_average_through_the_module():
    """momentum=None: the module's factor 1/k reaches the kernel's in-place update."""
    ours = bnn.BatchNorm2d(5, momentum=None, dtype=D, backend="cpu-fused")
    theirs = torch.nn.BatchNorm2d(5, momentum=None, dtype=D)
    for step in range(4):
        x = _randn((4, 5, 3, 3), seed=step, offset=step)
        assert_parity(ours(x), theirs(x), f"step {step}", D)
        for name in ("running_mean", "running_var"):
            assert_parity(getattr(ours, name), getattr(theirs, name), f"{name} @ {step}", D)
    assert int(ours.num_batches_tracked) == 4
    ours.eval(), theirs.eval()
    x = _randn((2, 5, 3, 3), seed=9)
    assert_parity(ours(x), theirs(x), "eval after a cumulative average", D)


# --- threads: the "channels" and "rows" strategies ----------------------------------------------


@pytest.fixture
def threads(request):
    """torch's (and the kernels') thread count for the test, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


BIG = {  # ≥ 2¹⁷ elements, past fused.PARALLEL_MIN_ELEMENTS: the kernels split the work
    "rows C=3": ((16, 3, 48, 64), torch.contiguous_format),  # C odd, < 4 threads per channel
    "rows C=1": ((128, 1, 32, 32), torch.contiguous_format),
    "channels C=4": ((32, 4, 32, 32), torch.contiguous_format),  # C divisible by 2
    "channels C=9": ((16, 9, 32, 32), torch.contiguous_format),  # C ≥ 4 per thread, uneven
    "channels_last C=3": ((16, 3, 48, 64), torch.channels_last),
    "channels_last C=4": ((32, 4, 32, 32), torch.channels_last),
    "N,C": ((2**15, 5), torch.contiguous_format),  # one spatial element: rows of C
    "long rows C=3": ((2, 3, 2**15), torch.contiguous_format),  # S past one block
}


@pytest.mark.parametrize("threads", [1, 2], indirect=True, ids=["1-thread", "2-threads"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", [torch.float32, D], ids=["f32", "f64"])
@pytest.mark.parametrize("case", BIG)
def test_threads_split_big_tensors_correctly(case, dtype, training, threads):
    shape, layout = BIG[case]
    x = _randn(shape, dtype).contiguous(memory_format=layout)
    assert x.numel() >= 2**17 > fused.PARALLEL_MIN_ELEMENTS
    check(x, training=training, what=f"{case}, {threads} threads")


# --- NaN and inf ----------------------------------------------------------------------------------


def _pattern(t: torch.Tensor) -> torch.Tensor:
    """0 finite, 1 NaN, 2 +inf, 3 −inf, elementwise."""
    return t.isnan().to(torch.int8) + 2 * t.isposinf() + 3 * t.isneginf()


def _same_non_finite(x, rm, rv, training, what):
    """Output and buffers: the same NaN/inf pattern as torch's, the same finite values."""
    results = []
    for fn, kw in ((batch_norm, {"backend": "cpu-fused"}), (F.batch_norm, {})):
        m, v = rm.clone(), rv.clone()
        results.append((fn(x, m, v, None, None, training, 0.1, 1e-5, **kw), m, v))
    for name, ours, theirs in zip(("output", "running_mean", "running_var"), *results, strict=True):
        assert torch.equal(_pattern(ours), _pattern(theirs)), f"{what}: {name} NaN/inf pattern"
        torch.testing.assert_close(ours, theirs, equal_nan=True, msg=f"{what}: {name}")
    return results[0][0]


BAD = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


@pytest.mark.parametrize("threads", [1, 2], indirect=True, ids=["1-thread", "2-threads"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        pytest.param((6, 3, 4, 4), torch.contiguous_format, id="small"),
        pytest.param((6, 3, 4, 4), torch.channels_last, id="small-cl"),
        pytest.param((64, 3), torch.contiguous_format, id="N,C"),
        pytest.param((16, 3, 40, 40), torch.contiguous_format, id="big-rows"),
        pytest.param((16, 4, 32, 32), torch.contiguous_format, id="big-channels"),
        pytest.param((16, 3, 40, 40), torch.channels_last, id="big-cl"),
    ],
)
def test_nan_and_inf_in_one_channel_propagate_as_torchs(shape, layout, bad, training, threads):
    x = _randn(shape, torch.float32).contiguous(memory_format=layout)
    x[(3, 1) + (2,) * (len(shape) - 2)] = BAD[bad]  # one value of channel 1
    rm, rv = torch.zeros(shape[1]), torch.ones(shape[1])
    y = _same_non_finite(x, rm, rv, training, f"{bad} in x")
    others = [c for c in range(shape[1]) if c != 1]
    assert torch.isfinite(y[:, others]).all()  # the other channels are untouched by it
    assert not torch.isfinite(y[:, 1]).all()


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("buffer", ["running_mean", "running_var"])
def test_nan_and_inf_running_statistics_in_eval(buffer, bad):
    x = _randn((6, 3, 4, 4), torch.float32)
    stats = {"running_mean": torch.zeros(3), "running_var": torch.ones(3)}
    stats[buffer][1] = BAD[bad]
    for layout in (torch.contiguous_format, torch.channels_last):
        y = _same_non_finite(x.contiguous(memory_format=layout), *stats.values(), False, buffer)
        assert torch.isfinite(y[:, [0, 2]]).all()


# --- x = 10⁴ + N(0, 1) in float32 ---------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2], indirect=True, ids=["1-thread", "2-threads"])
@pytest.mark.parametrize(
    "layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"]
)
def test_far_from_zero_float32_is_stable(layout, threads):
    g = torch.Generator().manual_seed(0)
    x = (1e4 + torch.randn(64, 8, 16, 16, generator=g, dtype=D)).float()
    x = x.contiguous(memory_format=layout)
    axes = (0, 2, 3)
    truth = x.double().var(dim=axes, unbiased=False)  # of the float32 values, in float64
    rm, rv = torch.zeros(8), torch.ones(8)
    y, mean, invstd = fused.forward(x, None, None, rm, rv, True, 1.0, 1e-5)
    var = invstd.double().pow(-2) - 1e-5
    torch.testing.assert_close(var, truth, rtol=1e-3, atol=0)
    y64 = F.batch_norm(x.double(), None, None, training=True)
    assert (y.double() - y64).abs().max() <= 1e-3
    torch.testing.assert_close(rv.double(), x.double().var(dim=axes), rtol=1e-3, atol=0)
    torch.testing.assert_close(mean.double(), x.double().mean(dim=axes), rtol=2e-7, atol=0)
    # a real test: E[x²] − E[x]² in float32 has nothing left of the variance (|μ| ≫ σ)
    naive = (x * x).mean(dim=axes) - x.mean(dim=axes) ** 2
    assert ((naive.double() - truth).abs() / truth).max() > 1e-1


# --- autograd and torch.func --------------------------------------------------------------------


def _counting(monkeypatch) -> collections.Counter[str]:
    """Counts the calls of the compiled entry points (forward, backward) from here on."""
    lib, calls = fused.library(), collections.Counter()

    def counting(real, key):
        def counted(*args):
            calls[key] += 1
            return real(*args)

        return counted

    for name in ("bnlab_forward", "bnlab_backward"):
        monkeypatch.setattr(lib, name, counting(getattr(lib, name), name.removeprefix("bnlab_")))
    return calls


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script, inside gradcheck
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    "x",
    [
        pytest.param(lambda: _randn((5, 3)), id="2d"),
        pytest.param(
            lambda: _randn((3, 2, 3, 2)).to(memory_format=torch.channels_last), id="4d-cl"
        ),
        pytest.param(lambda: _randn((2, 3, 2, 2, 2)), id="5d"),
    ],
)
def test_gradcheck_and_gradgradcheck(x, training, monkeypatch):
    """First order runs the backward kernel; double backward the differentiable formula."""
    x = x()
    w, b, rm, rv = _params(x.shape[1], D, affine=True, running=True)
    inputs = tuple(t.detach().requires_grad_() for t in (x, w, b))

    def fn(x, w, b):
        return batch_norm(x, rm.clone(), rv.clone(), w, b, training, 0.1, 1e-3, backend="cpu-fused")

    calls = _counting(monkeypatch)
    assert torch.autograd.gradcheck(fn, inputs, check_batched_grad=True, check_forward_ad=True)
    assert calls["forward"] > 0 and calls["backward"] > 0
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_vmap_jacrev_jacfwd_match_torchs(training, monkeypatch):
    xs = _randn((5, 4, 3, 2))
    w, b, rm, rv = _params(3, D, affine=True, running=not training)

    def ours(x):
        return batch_norm(x, rm, rv, w, b, training, backend="cpu-fused")

    def theirs(x):
        return F.batch_norm(x, rm, rv, w, b, training)

    calls = _counting(monkeypatch)
    got = vmap(ours)(xs)
    assert calls["forward"] == 1  # the batch of 5 is folded into the channels: one call
    torch.testing.assert_close(got, vmap(theirs)(xs), rtol=1e-9, atol=1e-10)
    for transform in (jacrev, jacfwd):
        torch.testing.assert_close(
            transform(ours)(xs[0]), transform(theirs)(xs[0]), rtol=1e-9, atol=1e-10
        )


# --- which backend runs -------------------------------------------------------------------------


def test_auto_picks_the_kernels_for_cpu_tensors_they_take(monkeypatch):
    x = torch.randn(4, 3)
    assert backends.select("auto", x) is fused
    assert backends.select("auto", x.bfloat16()) is fused
    assert backends.select("auto", x.to("meta")) is torch_ref  # not a CPU tensor
    with backends.prefer("torch"):
        assert backends.select("auto", x) is torch_ref
        assert backends.select("cpu-fused", x) is fused  # an explicit name is kept
    monkeypatch.setenv("BNLAB_FUSED", "0")
    assert backends.select("auto", x) is torch_ref
    assert backends.select("cpu-fused", x) is fused
    with pytest.raises(ValueError, match="backend must be one of"), backends.prefer("fastest"):
        pass
