"""``bnlab.inspect.check``: one planted problem per model, and check names exactly it.

Each model is the same small CNN (two conv BN layers, one fully connected), its running
statistics settled by training passes over the data (after the problem is planted where the
problem is in the weights, before it where it is in the statistics).  A healthy model raises
no finding at all; each planted model raises only its own, on its own layer.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import bnlab.nn as bnn
from bnlab.errors import BNTypeError, BNValueError
from bnlab.inspect import check
from bnlab.inspect.freeze import freeze
from bnlab.inspect.report import Report

LAYERS = ("1", "4", "9")  # the BN layers' names in the Sequential below


def _model(bn: str = "bnlab", conv_bias: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    BN2, BN1 = (bnn.BatchNorm2d, bnn.BatchNorm1d) if bn == "bnlab" else (
        nn.BatchNorm2d, nn.BatchNorm1d)  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, bias=conv_bias), BN2(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, bias=False), BN2(8), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.1),
        nn.Linear(8 * 4 * 4, 16, bias=False), BN1(16), nn.ReLU(),
        nn.Linear(16, 4),
    )  # fmt: skip


def _data(batch: int = 32, batches: int = 8) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 3, 8, 8, generator=g) * 2 + 1 for _ in range(batches)]


def _settle(model: nn.Module, data: list[torch.Tensor], passes: int = 8) -> nn.Module:
    """Training-mode passes until the running statistics describe the data."""
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            for x in data:
                model(x)
    return model


def _kinds(report: Report) -> list[tuple[str, str]]:
    return sorted((f.kind, f.layer) for f in report.findings)


@pytest.mark.parametrize("bn", ["bnlab", "torch"])
def test_a_healthy_model_raises_nothing(bn):
    data = _data()
    model = _settle(_model(bn), data)
    report = check(model, data)
    assert report.findings == [], str(report)
    assert report.healthy and [r.name for r in report.layers] == list(LAYERS)
    assert all(r.stale_shift is not None and r.stale_shift < 0.2 for r in report.layers)


def test_stale_running_statistics_are_found_in_their_layer_only():
    data = _data()
    model = _settle(_model(), data)
    with torch.no_grad():  # layer 4's statistics from other data: shifted and shrunk
        model[4].running_mean += 3 * model[4].running_var.sqrt()
        model[4].running_var /= 4
    report = check(model, data)
    assert _kinds(report) == [("stale", "4")], str(report)
    (f,) = report.findings
    assert f.numbers["max_mean_shift_sigma"] > 2 and "recalibrate" in f.advice


def test_a_dead_channel_is_named():
    data = _data()
    model = _model()
    with torch.no_grad():
        model[1].weight[3] = 0.0  # γ = 0: the channel passes β only
    _settle(model, data)
    report = check(model, data)
    assert _kinds(report) == [("dead", "1")], str(report)
    assert report.findings[0].numbers["channels"] == [3]


def test_batches_of_four_are_too_small_for_the_fully_connected_layer():
    data = _data(batch=4, batches=40)
    model = _settle(_model(), data, passes=2)
    report = check(model, data)
    # conv layers normalize 4·6·6 = 144 values per channel; the Linear's BN only 4
    assert _kinds(report) == [("small-batch", "9")], str(report)
    assert report.findings[0].numbers["values_per_channel"] == 4


def test_a_hand_frozen_bn_put_back_in_train_mode_is_an_error():
    data = _data()
    model = _settle(_model(), data)
    bn = model[4]
    bn.eval()  # the usual idiom: freeze statistics and affine parameters …
    bn.weight.requires_grad_(False)
    bn.bias.requires_grad_(False)
    model.train()  # … which this undoes for the statistics
    report = check(model, data)
    assert _kinds(report) == [("frozen-but-training", "4")], str(report)
    assert report.findings[0].severity == "error"
    assert not report.healthy


def test_bnlab_freeze_survives_train_and_is_reported_as_frozen():
    data = _data()
    model = _settle(_model(), data)
    freeze(model, affine=True)
    model.train()
    report = check(model, data)
    assert report.findings == [], str(report)
    assert all(r.frozen and not r.updated for r in report.layers)


def test_a_bias_before_bn_is_advice_on_that_layer():
    data = _data()
    model = _settle(_model(conv_bias=True), data)
    report = check(model, data)
    assert _kinds(report) == [("bias-before-bn", "1")], str(report)
    assert report.findings[0].numbers["layer"] == "0" and report.healthy  # info, not a fault


def test_keras_momentum_is_flagged():
    data = _data()
    model = _model()
    model[9].momentum = 0.99
    _settle(model, data)
    report = check(model, data)
    assert _kinds(report) == [("momentum", "9")], str(report)
    assert "0.01" in report.findings[0].advice


def test_check_leaves_the_model_exactly_as_it_was():
    data = _data()
    model = _settle(_model(), data)
    model.train()
    model[4].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    rng = torch.get_rng_state()
    check(model, data)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert modes == [m.training for m in model.modules()]
    assert hooks == [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    assert torch.equal(rng, torch.get_rng_state())


def test_a_model_that_raises_is_left_as_it_was():
    data = _data()
    model = _settle(_model(), data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = [data[0], torch.randn(4, 5)]  # the second batch has the wrong shape
    with pytest.raises(BNValueError, match="check: the model cannot run on this data"):
        check(model, bad)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and all(len(m._forward_hooks) == 0 for m in model.modules())


@pytest.mark.parametrize(
    ("model", "data", "error", "words"),
    [
        (nn.Linear(3, 3), [torch.randn(2, 3)], BNValueError, "found none in Linear"),
        ("a model", [torch.randn(2, 3)], BNTypeError, "expected a torch.nn.Module"),
        (None, [], BNValueError, "yielded no batch"),
        (None, iter([torch.randn(2, 3)]), BNTypeError, "one-shot iterator"),
        (None, ["text"], BNTypeError, "tensors or (input, ...) tuples"),
    ],
)
def test_bad_input_is_one_clear_line(model, data, error, words):
    model = _model() if model is None else model
    with pytest.raises(error) as e:
        check(model, data)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_the_report_as_text_json_rich_and_html():
    data = _data()
    model = _settle(_model(conv_bias=True), data)
    report = check(model, data, batches=3)
    text = str(report)
    assert "bias-before-bn" not in text and "has a bias" in text and "layers:" in text
    as_json = json.loads(report.to_json())
    assert as_json["findings"][0]["kind"] == "bias-before-bn"
    assert len(as_json["layers"]) == 3 and as_json["batches"] == 3
    assert len(as_json["layers"][0]["running_mean"]) == 8
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(report)
    assert "has a bias" in console.export_text()
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>") and page.count("<img") == 4  # gap + 3 layers
    assert "http" not in page.replace("http-equiv", "")  # self-contained
