"""bnlab.explain.examples: the source document's examples, rebuilt and checked against torch.

Expected values come from the source document's printed output (copied here as literals) or are
recomputed here with torch; a section's own fields are never compared with themselves.
"""

from __future__ import annotations

import math

import pytest
import torch

from bnlab.explain.examples import EXAMPLES, TOUR_ORDER, Check, Section, build
from tests.helpers import assert_parity

pytestmark = pytest.mark.usefixtures("every_backend")

ALL_NAMES = list(dict.fromkeys((*TOUR_ORDER, *EXAMPLES)))


def _seed_batch() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(2, 2, 2, 2)


@pytest.fixture(scope="module")
def sections() -> dict[str, Section]:
    return {name: build(name) for name in ALL_NAMES}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_each_example_builds(name: str, sections: dict[str, Section]) -> None:
    sec = sections[name]
    assert isinstance(sec, Section)
    assert sec.key == name
    assert sec.title and sec.title_zh and sec.intro
    if name != "why":  # the opening section is prose, as in the source
        assert sec.printed, f"{name} prints nothing"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_check_passes(name: str, sections: dict[str, Section]) -> None:
    for check in sections[name].checks:
        assert math.isfinite(check.max_abs_diff), check.line()
        assert check.tolerance >= 0
        assert check.ok, check.line()
        assert "matches" in check.line()


def test_check_reports_a_difference() -> None:
    bad = Check("y", "torch", max_abs_diff=1e-3, tolerance=1e-5)
    assert not bad.ok
    assert "DIFFERS" in bad.line()
    assert Check("y", "torch", max_abs_diff=0.0, tolerance=0).ok


def test_unknown_example_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="no-such-example") as info:
        build("no-such-example")
    for name in (*EXAMPLES, "formulas"):
        assert name in str(info.value)


# --- fully connected ------------------------------------------------------------------------


def test_seed_fc_prints_the_sources_shapes(sections: dict[str, Section]) -> None:
    sec = sections["seed-fc"]
    source = [
        "torch.Size([10, 256])",
        "torch.Size([256])",
        "torch.Size([10, 256])",
        "torch.Size([10, 256])",
        "torch.Size([256])",
    ]
    assert sec.printed == source
    assert sec.source_printed == source
    assert sec.printed == sec.source_printed


def test_seed_fc_statistics_match_torch(sections: dict[str, Section]) -> None:
    torch.manual_seed(0)
    x_fc = torch.rand(10, 256)
    trace = sections["seed-fc"].traces["fc"]
    assert torch.equal(trace.input, x_fc)
    mean = x_fc.mean(dim=0)
    assert_parity(trace["mean"].value, mean, "μ", torch.float32)
    assert_parity(trace["var"].value, ((x_fc - mean) ** 2).mean(dim=0), "σ²", torch.float32)
    with torch.no_grad():
        y = torch.nn.BatchNorm1d(256)(x_fc)
    assert_parity(trace.output, y, "y", torch.float32)


# --- convolutional --------------------------------------------------------------------------


def test_seed_conv_prints_the_sources_chain(sections: dict[str, Section]) -> None:
    sec = sections["seed-conv"]
    assert sec.printed == [
        "torch.Size([2, 2, 2, 2])",
        "True",
        "torch.Size([1, 2, 2, 2])",
        "torch.Size([1, 2, 1, 2])",
        "torch.Size([1, 2, 1, 1])",
    ]
    assert sec.printed == sec.source_printed
    assert sec.data["chain_shapes"] == [[1, 2, 2, 2], [1, 2, 1, 2], [1, 2, 1, 1]]


def test_seed_conv_chained_mean_is_the_mean(sections: dict[str, Section]) -> None:
    x = _seed_batch()
    chained = x.mean(dim=0, keepdim=True).mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
    at_once = x.mean(dim=(0, 2, 3))
    assert torch.allclose(chained.flatten(), at_once, rtol=1e-6, atol=0)
    trace = sections["seed-conv"].traces["conv"]
    assert torch.equal(trace.input, x)
    assert_parity(trace["mean"].value, at_once, "μ", torch.float32)


def test_seed_conv_variance_does_not_chain(sections: dict[str, Section]) -> None:
    data = sections["seed-conv"].data
    x = _seed_batch().double()
    truth = x.var(dim=(0, 2, 3), unbiased=False)
    naive = torch.tensor(data["naive_chained_var"], dtype=torch.float64)
    merged = torch.tensor(data["merged_var"], dtype=torch.float64)
    reported_truth = torch.tensor(data["true_var"], dtype=torch.float64)
    assert naive.shape == truth.shape == merged.shape
    assert (naive - truth).abs().max() > 1e-3, "the naive chain should miss the true variance"
    assert torch.allclose(merged, truth, rtol=1e-5, atol=1e-7)
    assert torch.allclose(reported_truth, truth, rtol=1e-5, atol=1e-7)
    # the naive chain is what chaining .var() in torch gives
    v = x.var(dim=0, keepdim=True, unbiased=False)
    v = v.var(dim=2, keepdim=True, unbiased=False).var(dim=3, keepdim=True, unbiased=False)
    assert torch.allclose(naive, v.flatten(), rtol=1e-5, atol=1e-7)


# --- mean(dim) ------------------------------------------------------------------------------


def test_mean_dims_values(sections: dict[str, Section]) -> None:
    data = sections["mean-dims"].data
    assert data["dim0"] == [[4.5, 5.5, 6.5]]
    assert data["dim1"] == [[1.0], [4.0], [7.0], [10.0]]
    assert data["all"] == 5.5


def test_mean_dims_prints_the_sources_tensors(sections: dict[str, Section]) -> None:
    sec = sections["mean-dims"]
    source = [  # the source document's output, verbatim
        "tensor([[ 0.,  1.,  2.],\n        [ 3.,  4.,  5.],\n        [ 6.,  7.,  8.],\n"
        "        [ 9., 10., 11.]])",
        "tensor([[4.5000, 5.5000, 6.5000]])",
        "tensor([[ 1.],\n        [ 4.],\n        [ 7.],\n        [10.]])",
        "tensor(5.5000)",
    ]
    assert sec.source_printed == source
    labels = ["x", "x_mean0", "x_mean1", "x_mean"]
    assert sec.printed == [f"{label}:\n{text}" for label, text in zip(labels, source, strict=True)]


# --- illustrated ----------------------------------------------------------------------------


def test_seed_illustrated_matches_batchnorm2d(sections: dict[str, Section]) -> None:
    sec = sections["seed-illustrated"]
    trace = sec.traces["illustrated"]
    x = _seed_batch()
    assert torch.equal(trace.input, x)
    assert torch.equal(trace.gamma, torch.tensor([2.0, 5.0]))
    assert torch.equal(trace.beta, torch.tensor([3.0, 8.0]))
    assert_parity(trace["mean"].value, x.mean(dim=(0, 2, 3)), "μ", torch.float32)
    var = x.var(dim=(0, 2, 3), unbiased=False)
    assert_parity(trace["var"].value, var, "σ²", torch.float32)
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 5.0]))
        bn.bias.copy_(torch.tensor([3.0, 8.0]))
        y = bn(x)
    assert_parity(trace.output, y, "y", torch.float32)
    assert sec.printed[0] == "torch.Size([2, 2, 2, 2])"
    assert "torch.Size([1, 2, 1, 1])" in sec.printed[1]


# --- prediction -----------------------------------------------------------------------------


def _population_stream(steps: int) -> list[torch.Tensor]:
    """The predict section's stream, rebuilt: 2-channel batches, mean (3, −1), std (2, 0.5)."""
    g = torch.Generator().manual_seed(0)
    mean = torch.tensor([3.0, -1.0]).reshape(1, -1, 1, 1)
    std = torch.tensor([2.0, 0.5]).reshape(1, -1, 1, 1)
    stream = [torch.randn((16, 2, 4, 4), generator=g) * std + mean for _ in range(steps)]
    return [*stream, torch.randn((2, 2, 2, 2), generator=g) * std + mean]  # the probe batch


def test_predict_running_stats_approach_the_population(sections: dict[str, Section]) -> None:
    data = sections["predict"].data
    assert data["population_mean"] == [3.0, -1.0]
    assert data["population_var"] == [4.0, 0.25]
    hist_mean = torch.tensor(data["history_mean"])
    hist_var = torch.tensor(data["history_var"])
    pop_mean, pop_var = torch.tensor([3.0, -1.0]), torch.tensor([4.0, 0.25])
    # a momentum-0.1 average of 256-value batch statistics: a few standard errors of slack
    assert torch.allclose(hist_mean[-1], pop_mean, atol=0.15, rtol=0)
    assert torch.allclose(hist_var[-1], pop_var, rtol=0.1, atol=0)
    # and it got there from the fresh buffers (0, 1), which were far away
    early, late = (hist_mean[0] - pop_mean).abs().max(), (hist_mean[-1] - pop_mean).abs().max()
    assert early > 1.0 > 0.15 > late


def test_predict_matches_batchnorm2d_on_the_same_stream(sections: dict[str, Section]) -> None:
    sec = sections["predict"]
    steps = len(sec.data["history_mean"])
    stream = _population_stream(steps)
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        for i, batch in enumerate(stream[:steps]):
            bn(batch)
            ours_mean = torch.tensor(sec.data["history_mean"][i])
            ours_var = torch.tensor(sec.data["history_var"][i])
            assert_parity(ours_mean, bn.running_mean, f"running_mean @ {i}", torch.float32)
            assert_parity(ours_var, bn.running_var, f"running_var @ {i}", torch.float32)
        probe = stream[steps]
        bn.eval()
        y_eval = bn(probe)
    eval_trace, train_trace = sec.traces["eval"], sec.traces["train"]
    assert torch.equal(eval_trace.input, probe)
    assert not eval_trace.training and train_trace.training
    assert_parity(eval_trace["mean"].value, bn.running_mean, "eval μ", torch.float32)
    assert_parity(eval_trace.output, y_eval, "eval y", torch.float32)
    # train mode normalizes the probe by its own statistics: per-channel mean 0 exactly-ish
    train_mean = train_trace.output.mean(dim=(0, 2, 3))
    assert train_mean.abs().max() < 1e-5
    assert (eval_trace.output - train_trace.output).abs().max() > 1e-3


# --- axes -----------------------------------------------------------------------------------


def test_axes_checks_cover_four_norms(sections: dict[str, Section]) -> None:
    checks = sections["axes"].checks
    assert [c.what.split()[0] for c in checks] == ["batch", "layer", "instance", "group"]
    for c in checks:
        assert c.ok, c.line()
        assert c.tolerance <= 1e-10


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_axes_section_line_and_figure_agree(groups):
    """The printed line and the figure's caption describe the same groups of the same tensor."""
    from bnlab.explain.examples import axes
    from tests.explain.test_figures import texts

    sec = axes(groups)
    line = next(p for p in sec.printed if "group norm" in p)
    per = 4 // groups
    words = f"one group of {per} channel{'' if per == 1 else 's'}"
    assert words in line and f"G = {groups} group{'' if groups == 1 else 's'}" in line
    figure = "\n".join(texts(sec.figures[0].factory()))
    assert words in figure and f"C = 4 in G = {groups}" in figure
