"""Training on tiny generated data: every recipe trains, files are well formed, resume is exact."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from bnlab.cli import main
from bnlab.experiments import recipes
from bnlab.experiments.train import train
from tests.helpers import tiny_fashion_mnist

METRIC_KEYS = {
    "epoch",
    "step",
    "train_loss",
    "train_acc",
    "test_acc",
    "test_acc_precise",
    "seconds",
}


def tiny_data(n_train=96, n_test=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(n_train, 1, 28, 28, generator=g),
        torch.randint(0, 10, (n_train,), generator=g),
        torch.rand(n_test, 1, 28, 28, generator=g),
        torch.randint(0, 10, (n_test,), generator=g),
    )


def quick(recipe, **kw):
    return replace(recipe, **{"epochs": 2, "limit": 3, "batch_size": 16, "record_every": 2, **kw})


ALL_RUNS = [*recipes.RECIPES.values(), *[r for s in recipes.suites().values() for r in s.runs[:2]]]


@pytest.mark.parametrize("recipe", ALL_RUNS, ids=lambda r: r.name)
def test_every_recipe_builds_and_trains(tmp_path, recipe):
    res = train(quick(recipe), tmp_path / "run", data=tiny_data())
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert set(r) == METRIC_KEYS
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["test_acc"] <= 1 and r["train_loss"] > 0
    assert rows[-1]["step"] == 6
    precise = recipe.bn is not None and recipe.precise_last >= 1  # the sweep skips it
    assert (rows[-1]["test_acc_precise"] is not None) == precise
    assert rows[0]["test_acc_precise"] is None
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["name"] == recipe.name and config["epochs"] == 2
    acts = [
        json.loads(x) for x in (tmp_path / "run" / "activations.jsonl").read_text().splitlines()
    ]
    assert [a["step"] for a in acts] == [1, 2, 4, 6]
    sigmoids = [n for n, m in res.model.named_modules() if isinstance(m, torch.nn.Sigmoid)]
    for a in acts:
        assert sorted(a["layers"]) == sorted(sigmoids)
        for q in a["layers"].values():
            assert len(q["q15"]) == len(q["q50"]) == len(q["q85"])
            assert all(
                lo <= mid <= hi for lo, mid, hi in zip(q["q15"], q["q50"], q["q85"], strict=True)
            )
    assert not list((tmp_path / "run").glob("*.tmp")), "atomic writes leave no temp file"


@pytest.mark.parametrize("name", ["lenet-bn", "lenet"])
def test_resume_equals_an_uninterrupted_run(tmp_path, name):
    recipe = quick(recipes.RECIPES[name], epochs=3)
    data = tiny_data()
    whole = train(recipe, tmp_path / "whole", data=data)
    part = train(recipe, tmp_path / "part", data=data, stop_after=1)  # "interrupted" after 1 epoch
    assert [r["epoch"] for r in part.metrics] == [1]
    # an interrupted second epoch may have left activation records after the checkpoint
    with open(tmp_path / "part" / "activations.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 2, "step": 999, "layers": {}}) + "\n")
    resumed = train(recipe, tmp_path / "part", data=data, resume=True)
    for (k, a), (k2, b) in zip(
        whole.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b), k

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert strip(whole.metrics) == strip(resumed.metrics)
    read = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert strip(read) == strip(whole.metrics)
    acts_whole = (tmp_path / "whole" / "activations.jsonl").read_text()
    acts_part = (tmp_path / "part" / "activations.jsonl").read_text()
    assert acts_whole == acts_part


def test_refuses_to_overwrite_and_checks_resume(tmp_path):
    recipe = quick(recipes.RECIPES["lenet"], epochs=1)
    train(recipe, tmp_path / "r", data=tiny_data())
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        train(recipe, tmp_path / "r", data=tiny_data())
    with pytest.raises(ValueError, match="trained with another configuration"):
        train(replace(recipe, lr=0.1), tmp_path / "r", data=tiny_data(), resume=True)
    with pytest.raises(ValueError, match="no checkpoint"):
        train(recipe, tmp_path / "empty", data=tiny_data(), resume=True)


def test_sweep_rates_are_log_spaced():
    import itertools
    import math

    rates = recipes.LR_SWEEP_RATES
    assert len(rates) >= 6 and rates[0] == 0.03 and rates[-1] == 10
    logs = [math.log(r) for r in rates]
    gaps = [b - a for a, b in itertools.pairwise(logs)]
    assert max(gaps) - min(gaps) < 1e-3


def test_cli_train_on_tiny_data(tmp_path, monkeypatch, capsys):
    from bnlab.experiments import data as data_mod

    tiny_fashion_mnist(tmp_path / "data", monkeypatch, n_train=48)
    out = tmp_path / "run"
    argv = [
        "train",
        "lenet-bn",
        "--epochs",
        "1",
        "--limit",
        "2",
        "--batch-size",
        "8",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert (out / "metrics.jsonl").exists() and (out / "checkpoint.pt").exists()
    assert main(argv) == 2  # the folder holds a run now
    assert "already holds a run" in capsys.readouterr().err
    assert main([*argv[:-2], "--out", str(out), "--resume"]) == 0
    assert main(["train", "nope"]) == 2
    assert "unknown recipe 'nope'" in capsys.readouterr().err
    assert main(["train", "lenet", "--lr", "-1"]) == 2
    data_mod.clear_cache()
