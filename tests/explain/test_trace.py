"""bnlab.explain.explain: every recorded step against torch, computed independently.

The references are built here from torch's own ops (``mean``/``var``, the formula in float64) and
modules (``torch.nn.BatchNorm1d``/``BatchNorm2d``), never from the trace itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from bnlab.explain import Trace, explain
from bnlab.functional import batch_norm
from tests.helpers import assert_parity

pytestmark = pytest.mark.usefixtures("every_backend")

ELEMENT_STEPS = ("input", "x_minus_mean", "xhat", "output")
CHANNEL_STEPS = ("mean", "var", "running_mean", "running_var")
TRAIN_ORDER = [
    "input",
    "mean",
    "var",
    "x_minus_mean",
    "xhat",
    "output",
    "running_mean",
    "running_var",
]
EVAL_ORDER = ["input", "mean", "var", "x_minus_mean", "xhat", "output"]


@dataclass
class Case:
    """One call of ``explain``: the arguments, as the caller would pass them."""

    x: torch.Tensor
    weight: list[float] | torch.Tensor | None = None
    bias: list[float] | torch.Tensor | None = None
    running_mean: torch.Tensor | None = None
    running_var: torch.Tensor | None = None
    training: bool = True
    momentum: float = 0.1
    eps: float = 1e-5

    @property
    def dtype(self) -> torch.dtype:
        return self.x.dtype

    @property
    def axes(self) -> tuple[int, ...]:
        return (0, *range(2, self.x.dim()))

    def tensor(self, v: list[float] | torch.Tensor | None) -> torch.Tensor | None:
        return None if v is None else torch.as_tensor(v, dtype=self.dtype).clone()

    def call(self) -> Trace:
        return explain(
            self.x,
            self.weight,
            self.bias,
            self.eps,
            running_mean=self.running_mean,
            running_var=self.running_var,
            training=self.training,
            momentum=self.momentum,
        )


def _seed() -> Case:
    torch.manual_seed(0)
    return Case(torch.rand(2, 2, 2, 2), weight=[2.0, 5.0], bias=[3.0, 8.0])


def _randn(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 1).to(dtype)


def _cases() -> dict[str, Case]:
    g = torch.Generator().manual_seed(7)
    return {
        "seed-2x2x2x2": _seed(),
        "fc-4x3": Case(_randn((4, 3), 1), weight=[0.5, -1.0, 2.0], bias=[0.1, 0.2, -0.3]),
        "seq-3x2x5": Case(_randn((3, 2, 5), 2)),
        "f64-2x3x2x2": Case(
            _randn((2, 3, 2, 2), 3, torch.float64),
            weight=torch.tensor([1.5, 0.25, -2.0], dtype=torch.float64),
            bias=torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64),
        ),
        "train-given-running": Case(
            _randn((3, 2, 3, 2), 4),
            running_mean=torch.tensor([0.5, -0.5]),
            running_var=torch.tensor([2.0, 0.5]),
            momentum=0.3,
            eps=1e-3,
        ),
        "eval-4x3x2x2": Case(
            _randn((4, 3, 2, 2), 5),
            weight=[2.0, 5.0, 1.0],
            bias=[3.0, 8.0, 0.0],
            running_mean=torch.randn(3, generator=g),
            running_var=torch.rand(3, generator=g) + 0.5,
            training=False,
        ),
        "eval-f64-5x2": Case(
            _randn((5, 2), 6, torch.float64),
            running_mean=torch.tensor([1.0, -2.0], dtype=torch.float64),
            running_var=torch.tensor([9.0, 0.25], dtype=torch.float64),
            training=False,
        ),
    }


CASE_IDS = list(_cases())


@pytest.fixture(params=CASE_IDS)
def case(request: pytest.FixtureRequest) -> Case:
    return _cases()[request.param]  # fresh tensors for every test


def _chan(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _reference_stats(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """μ and σ² the normalization must use: the batch's (biased) or the given running ones."""
    if case.training:
        return case.x.mean(dim=case.axes), case.x.var(dim=case.axes, unbiased=False)
    assert case.running_mean is not None and case.running_var is not None
    return case.running_mean.clone(), case.running_var.clone()


def _torch_module(case: Case) -> torch.nn.modules.batchnorm._BatchNorm:
    cls = torch.nn.BatchNorm1d if case.x.dim() in (2, 3) else torch.nn.BatchNorm2d
    c = case.x.shape[1]
    bn = cls(c, eps=case.eps, momentum=case.momentum, dtype=case.dtype)
    with torch.no_grad():
        if case.weight is not None:
            bn.weight.copy_(case.tensor(case.weight))
        if case.bias is not None:
            bn.bias.copy_(case.tensor(case.bias))
        if case.running_mean is not None:
            bn.running_mean.copy_(case.running_mean)
            bn.running_var.copy_(case.running_var)
    bn.train(case.training)
    return bn


# --- each step against torch ---------------------------------------------------------------


def test_mean_and_var_match_torch(case: Case) -> None:
    trace = case.call()
    mean_ref, var_ref = _reference_stats(case)
    assert_parity(trace["mean"].value, mean_ref, "μ", case.dtype)
    assert_parity(trace["var"].value, var_ref, "σ²", case.dtype)


def test_centred_and_normalized_match_formula(case: Case) -> None:
    trace = case.call()
    mean_ref, var_ref = _reference_stats(case)
    nd = case.x.dim()
    x64 = case.x.double()
    centred = x64 - _chan(mean_ref.double(), nd)
    xhat = centred / torch.sqrt(_chan(var_ref.double(), nd) + case.eps)
    assert_parity(trace["x_minus_mean"].value, centred.to(case.dtype), "x − μ", case.dtype)
    assert_parity(trace["xhat"].value, xhat.to(case.dtype), "x̂", case.dtype)


def test_output_matches_torch_module(case: Case) -> None:
    trace = case.call()
    bn = _torch_module(case)
    with torch.no_grad():
        y_ref = bn(case.x.clone())
    assert_parity(trace.output, y_ref, "y", case.dtype)
    # and it really was normalized: a train-mode output has per-channel mean β (not the input's)
    if case.training:
        beta = case.tensor(case.bias) if case.bias is not None else torch.zeros(case.x.shape[1])
        got = trace.output.double().mean(dim=case.axes)
        assert torch.allclose(got, beta.double(), atol=1e-5)


def test_running_statistics_match_torch_buffers(case: Case) -> None:
    trace = case.call()
    if not case.training:
        assert "running_mean" not in trace and "running_var" not in trace
        return
    bn = _torch_module(case)
    with torch.no_grad():
        bn(case.x.clone())
    assert_parity(trace["running_mean"].value, bn.running_mean, "running_mean", case.dtype)
    assert_parity(trace["running_var"].value, bn.running_var, "running_var", case.dtype)
    # one step moved them away from where they started
    c = case.x.shape[1]
    start_var = case.running_var if case.running_var is not None else torch.ones(c)
    assert not torch.equal(trace["running_var"].value, start_var.to(case.dtype))


def test_output_is_exactly_the_functional_output(case: Case, every_backend: str) -> None:
    """A trace runs the portable kernels step by step (a recorder needs each one): its output
    is bit for bit backend='torch''s, and the active backend's within its dtype's tolerance."""
    trace = case.call()
    for backend in ("torch", every_backend):
        rm = None if case.running_mean is None else case.running_mean.clone()
        rv = None if case.running_var is None else case.running_var.clone()
        if case.training and rm is None:  # explain starts from a fresh module's buffers
            c = case.x.shape[1]
            rm, rv = torch.zeros(c, dtype=case.dtype), torch.ones(c, dtype=case.dtype)
        y = batch_norm(
            case.x.clone(),
            rm,
            rv,
            case.tensor(case.weight),
            case.tensor(case.bias),
            training=case.training,
            momentum=case.momentum,
            eps=case.eps,
            backend=backend,
        )
        assert trace.output.dtype == y.dtype
        if backend == "torch":
            assert torch.equal(trace.output, y)
        else:
            assert_parity(trace.output, y, f"output vs {backend}", case.dtype)
        if not case.training:
            continue
        for name, buffer in (("running_mean", rm), ("running_var", rv)):
            if backend == "torch":
                assert torch.equal(trace[name].value, buffer), name
            else:
                assert_parity(trace[name].value, buffer, f"{name} vs {backend}", case.dtype)


# --- structure ------------------------------------------------------------------------------


def test_step_order_names_shapes_and_axes(case: Case) -> None:
    trace = case.call()
    assert trace.names == (TRAIN_ORDER if case.training else EVAL_ORDER)
    assert trace.training is case.training
    assert trace.eps == case.eps and trace.momentum == case.momentum
    c = case.x.shape[1]
    for step in trace:
        if step.name in ELEMENT_STEPS:
            assert step.shape == tuple(case.x.shape), step.name
            assert step.reduced_axes == (), step.name
        else:
            assert step.name in CHANNEL_STEPS
            assert step.shape == (c,), step.name
        assert step.title and step.formula and step.latex
    for name in ("mean", "var"):
        expected = case.axes if case.training else ()  # eval: the running stats, no reduction
        assert trace[name].reduced_axes == expected
    for name in ("running_mean", "running_var"):
        if name in trace:
            assert trace[name].reduced_axes == ()
    assert torch.equal(trace.input, case.x)


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((4, 3), (0,)),
        ((3, 2, 5), (0, 2)),
        ((2, 2, 2, 2), (0, 2, 3)),
        ((2, 2, 2, 1, 3), (0, 2, 3, 4)),
    ],
    ids=str,
)
def test_reduced_axes_by_rank(shape: tuple[int, ...], axes: tuple[int, ...]) -> None:
    trace = explain(_randn(shape, 8))
    assert trace["mean"].reduced_axes == axes
    assert trace["var"].reduced_axes == axes
    assert all(trace[n].reduced_axes == () for n in ELEMENT_STEPS)


def test_seed_example_values() -> None:
    """The source's (2, 2, 2, 2) batch with γ = (2, 5), β = (3, 8), against BatchNorm2d."""
    case = _seed()
    trace = case.call()
    assert torch.equal(trace.weight, torch.tensor([2.0, 5.0]))
    assert torch.equal(trace.bias, torch.tensor([3.0, 8.0]))
    assert torch.equal(trace.gamma, torch.tensor([2.0, 5.0]))
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 5.0]))
        bn.bias.copy_(torch.tensor([3.0, 8.0]))
        y = bn(case.x)
    assert_parity(trace.output, y, "seed y", torch.float32)
    # channel 1's output has mean β=3 and (biased) std ≈ γ=2; channel 2's mean 8 and std ≈ 5
    out = trace.output.double()
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.tensor([3.0, 8.0], dtype=torch.float64))
    std = out.var(dim=(0, 2, 3), unbiased=False).sqrt()
    assert torch.allclose(std, torch.tensor([2.0, 5.0], dtype=torch.float64), rtol=1e-3)


def test_list_input_matches_tensor_input() -> None:
    rows = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]
    from_list = explain(rows)
    from_tensor = explain(torch.tensor(rows))
    assert from_list.input.dtype == torch.float32
    assert torch.equal(from_list.output, from_tensor.output)
    assert torch.equal(from_list["mean"].value, torch.tensor([4.5, 5.5, 6.5]))


def test_defaults_without_weight_and_bias() -> None:
    trace = explain(_randn((4, 3), 9))
    assert trace.weight is None and trace.bias is None
    assert torch.equal(trace.gamma, torch.ones(3))
    assert torch.equal(trace.beta, torch.zeros(3))
    assert torch.equal(trace.output, trace["xhat"].value)  # γ = 1, β = 0


def test_unknown_step_raises_key_error() -> None:
    trace = explain(
        _randn((4, 3), 9), training=False, running_mean=[0.0] * 3, running_var=[1.0] * 3
    )
    with pytest.raises(KeyError, match="running_mean"):
        trace["running_mean"]


# --- the caller's tensors -------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_never_modifies_callers_tensors(training: bool) -> None:
    x = _randn((4, 2, 3), 10)
    w, b = torch.tensor([2.0, 5.0]), torch.tensor([3.0, 8.0])
    rm, rv = torch.tensor([0.5, -0.5]), torch.tensor([2.0, 0.5])
    before = [t.clone() for t in (x, w, b, rm, rv)]
    trace = explain(x, w, b, running_mean=rm, running_var=rv, training=training)
    for t, b0 in zip((x, w, b, rm, rv), before, strict=True):
        assert torch.equal(t, b0)
    if training:
        # the update happened, on a copy: the trace's running stats moved, the caller's did not
        assert not torch.equal(trace["running_mean"].value, rm)
        assert not torch.equal(trace["running_var"].value, rv)
        assert trace.meta["running_before"] == {
            "running_mean": [0.5, -0.5],
            "running_var": [2.0, 0.5],
        }
        # and the trace's tensors share no storage with the caller's
        trace["running_mean"].value.add_(100.0)
        assert torch.equal(rm, before[3])


def test_float64_running_stats_are_not_modified() -> None:
    x = _randn((3, 2, 2, 2), 11, torch.float64)
    rm = torch.zeros(2, dtype=torch.float64)
    rv = torch.ones(2, dtype=torch.float64)
    explain(x, running_mean=rm, running_var=rv)
    assert torch.equal(rm, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(rv, torch.ones(2, dtype=torch.float64))


# --- JSON -----------------------------------------------------------------------------------


def test_json_round_trip(case: Case) -> None:
    trace = case.call()
    text = trace.to_json()
    doc = json.loads(text)
    assert doc["format"] == "bnlab.trace/1"
    back = Trace.from_json(text)
    assert back.names == trace.names
    assert (back.training, back.eps, back.momentum) == (trace.training, trace.eps, trace.momentum)
    assert back.meta == trace.meta
    for a, b in zip(back, trace, strict=True):
        assert (a.name, a.title, a.formula, a.latex) == (b.name, b.title, b.formula, b.latex)
        assert a.shape == b.shape and a.reduced_axes == b.reduced_axes
        assert a.value.dtype == b.value.dtype, a.name
        assert torch.equal(a.value, b.value), a.name
    for a, b in ((back.weight, trace.weight), (back.bias, trace.bias)):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype and torch.equal(a, b)
    assert back.to_json() == text


def test_json_round_trip_keeps_float64_bits() -> None:
    x = torch.tensor([[0.1, 1 / 3], [2.0 / 7.0, 1e-12]], dtype=torch.float64)
    back = Trace.from_json(explain(x).to_json(indent=1))
    assert back.input.dtype == torch.float64
    assert torch.equal(back.input, x)


@pytest.mark.parametrize(
    "text",
    [
        '{"format": "bnlab.trace/2", "steps": []}',
        '{"steps": []}',
        "[]",
        '"bnlab.trace/1"',
        "not json",
    ],
    ids=["other-version", "no-format", "list", "string", "not-json"],
)
def test_from_json_rejects_wrong_format(text: str) -> None:
    with pytest.raises(ValueError):
        Trace.from_json(text)


# --- bad inputs -----------------------------------------------------------------------------


def test_one_dimensional_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, \.\.\.\).*\(4,\)"):
        explain(torch.rand(4))


def test_weight_of_wrong_length_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"weight.*3 values.*got 2"):
        explain(torch.rand(4, 3), weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"bias.*3 values.*got 4"):
        explain(torch.rand(4, 3), bias=torch.ones(4))


def test_non_numeric_list_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="numbers"):
        explain([["a", "b"], ["c", "d"]])
    with pytest.raises(TypeError, match="numbers"):
        explain(torch.rand(4, 2), weight=["a", "b"])


def test_ragged_list_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="numbers"):
        explain([[1.0, 2.0], [3.0]])


def test_integer_tensor_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        explain(torch.arange(12).reshape(4, 3))


def test_eval_without_running_stats_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="running_mean"):
        explain(torch.rand(4, 3), training=False)


def test_one_value_per_channel_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        explain(torch.rand(1, 3))
