"""``bnlab inspect RUN_DIR``: a run's checkpoint checked on its data, with accuracies."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.cli.runner import run
from tests.helpers import tiny_fashion_mnist


@pytest.fixture
def bn_run(tmp_path, monkeypatch):
    """A finished one-epoch LeNet-BN run on tiny data (batches of 16)."""
    from bnlab.experiments import data as data_mod
    from bnlab.experiments.recipes import RECIPES
    from bnlab.experiments.train import train

    tiny_fashion_mnist(tmp_path / "data", monkeypatch, n_train=64, n_test=32)
    train(replace(RECIPES["lenet-bn"], epochs=1, batch_size=16, limit=2), tmp_path / "run")
    yield tmp_path / "run"
    data_mod.clear_cache()


def test_inspect_reports_a_run_and_writes_the_page(bn_run, tmp_path, capsys):
    code, out, err = run(capsys, "inspect", str(bn_run), "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert "bnlab check: Sequential, 4 BN layers" in out
    assert "test accuracy, running statistics:" in out and "after recalibrate" in out
    assert "after epoch 1" in out
    page = (tmp_path / "r" / "report.html").read_text()
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert page.startswith("<!DOCTYPE html>") and len(data["layers"]) == 4
    assert data["extra"]["run"].startswith("lenet-bn, seed 0")
    # the recipe's Linear and Conv layers have biases before their BN: advice on all four
    assert sorted(f["layer"] for f in data["findings"] if f["kind"] == "bias-before-bn") == [
        "1", "10", "13", "5"
    ]  # fmt: skip


def test_explain_a_real_layer_on_a_real_batch(bn_run, capsys):
    """The layer's own input over one batch: its statistics are that channel's, checked."""
    import torch

    from bnlab.cli.inspect import load_checkpoint
    from bnlab.experiments.train import load_data

    code, out, err = run(capsys, "explain", "--run", str(bn_run), "--layer", "10", "--channel", "3")
    assert code == 0, err
    model, _, _ = load_checkpoint(bn_run)
    seen = []
    model[10].register_forward_pre_hook(lambda m, a: seen.append(a[0][:, 3]))
    with torch.no_grad():
        model(load_data()[0][:16])
    mean = seen[0].mean().item()
    assert f"{mean:.6f}"[:7] in out  # μ of channel 3 over the real batch of 16
    assert "torch.Size([16, 1])" in out and "✓" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--layer", "99"], "no BN layer '99' in the run's model (its BN layers: '1', '5'"),
        (["--layer", "1", "--channel", "6"], "--channel: expected 0 to 5"),
        (["--layer", "1", "--format", "png", "--out", "x.png"], "pass --samples"),
        (["--layer", "1", "--shape", "2,2"], "--shape: does not go with --run"),
        ([], "--layer NAME: needed"),
    ],
)
def test_explain_run_mistakes_are_one_line(bn_run, capsys, argv, words):
    code, _out, err = run(capsys, "explain", "--run", str(bn_run), *argv)
    assert code == 2 and err.count("\n") == 1 and words in err, err


def test_channel_without_run_is_refused(capsys):
    code, _, err = run(capsys, "explain", "--channel", "1")
    assert code == 2 and "--channel: applies with --run" in err
