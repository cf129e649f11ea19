"""Training on tiny generated data: every recipe trains, files are well formed, resume is exact."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import pytest
import torch
from rich.console import Console

import bnlab.experiments.train as training
from bnlab.cli import main
from bnlab.errors import BNValueError
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
    (tmp_path / "r" / "metrics.jsonl").unlink()
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        train(recipe, tmp_path / "r", data=tiny_data())  # a checkpoint alone is a run too


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


# ---- very large batches (the percentiles' subsample: tests/experiments/test_percentiles.py) ----


def test_one_step_with_a_batch_of_30000(tmp_path):
    # 30,000·24·24 > 2**24 values a channel after LeNet-BN's first conv: the reported crash
    n = 30_000
    recipe = replace(recipes.LENET_BN, epochs=1, limit=1, batch_size=n, precise_last=0)
    res = train(recipe, tmp_path / "run", data=tiny_data(n_train=n, n_test=10))
    assert res.metrics[0]["step"] == 1 and res.metrics[0]["train_loss"] > 0
    acts = (tmp_path / "run" / "activations.jsonl").read_text().splitlines()
    acts = [json.loads(x) for x in acts]
    assert len(acts) == 1 and len(acts[0]["layers"]) == 4
    assert all(len(q["q50"]) in (6, 16, 120, 84) for q in acts[0]["layers"].values())


# ---- Ctrl-C, resume, and what a failed run leaves behind ----


def run_files(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())} if out.exists() else None


def strip_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_same_run(whole, other):
    """``other`` (a RunResult) ends with the weights, metrics and files of ``whole``."""
    for (k, a), (k2, b) in zip(
        whole.model.state_dict().items(), other.model.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b), k
    assert strip_seconds(other.metrics) == strip_seconds(whole.metrics)
    read = [json.loads(x) for x in (other.out / "metrics.jsonl").read_text().splitlines()]
    assert strip_seconds(read) == strip_seconds(whole.metrics)
    acts = (other.out / "activations.jsonl").read_text()
    assert acts == (whole.out / "activations.jsonl").read_text()
    assert not list(other.out.glob("*.tmp"))


def with_model_hook(recipe, built, hook=None):
    """``recipe`` (same settings) whose models are kept in ``built`` and carry forward ``hook``."""
    spy = replace(recipe)

    def build():
        model = recipes.Recipe.build_model(spy)
        if hook is not None:
            model.register_forward_hook(hook)
        built.append(model)
        return model

    spy.build_model = build  # type: ignore[method-assign]
    return spy


def raise_on_forward(n, training_mode, error=KeyboardInterrupt):
    """A forward hook raising ``error`` on the model's n-th forward pass in that mode."""
    calls = []

    def hook(module, args, output):
        if module.training == training_mode:
            calls.append(1)
            if len(calls) == n:
                raise error("boom")

    return hook


def raise_on_call(monkeypatch, owner, name, n, after=False, when=lambda *a: True):
    """Make ``owner.name`` raise KeyboardInterrupt on its n-th call (``after`` it ran)."""
    original = getattr(owner, name)
    calls = []

    def wrapper(*args, **kwargs):
        hit = when(*args) and (calls.append(1) or len(calls) == n)
        if hit and not after:
            raise KeyboardInterrupt
        result = original(*args, **kwargs)
        if hit:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(owner, name, wrapper)


@dataclass
class Interrupt:
    name: str
    inject: Any  # (monkeypatch) -> forward hook or None
    expected: tuple[int, int, int, int, str]  # epoch, batch, batches, epochs_done, phase


INTERRUPTS = [
    Interrupt("epoch 1, batch 2", lambda mp: raise_on_forward(2, True), (1, 2, 3, 0, "training")),
    Interrupt("epoch 2, batch 2", lambda mp: raise_on_forward(5, True), (2, 2, 3, 1, "training")),
    Interrupt("epoch 2 testing", lambda mp: raise_on_forward(2, False), (2, 0, 0, 1, "testing")),
    Interrupt(
        "epoch 3 precise BN",
        lambda mp: raise_on_call(mp, training, "recalibrate", 1),
        (3, 0, 0, 2, "precise BN"),
    ),
    Interrupt(
        "writing checkpoint 2",  # checkpoint.pt.tmp is written, never renamed
        lambda mp: raise_on_call(mp, torch, "save", 2, after=True),
        (2, 0, 0, 1, "saving checkpoint"),
    ),
    Interrupt(
        "just after checkpoint 2 is renamed",
        lambda mp: raise_on_call(
            mp, os, "replace", 2, after=True, when=lambda src, dst: str(dst).endswith(".pt")
        ),
        (2, 0, 0, 2, "saving checkpoint"),
    ),
]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """lenet-bn, 3 epochs of 3 batches (precise BN in the last), never interrupted."""
    recipe = quick(recipes.LENET_BN, epochs=3)
    return train(recipe, tmp_path_factory.mktemp("whole") / "run", data=tiny_data())


@pytest.mark.parametrize("case", INTERRUPTS, ids=lambda c: c.name)
def test_ctrl_c_leaves_a_folder_that_resumes_exactly(tmp_path, monkeypatch, whole, case):
    recipe, out, built = quick(recipes.LENET_BN, epochs=3), tmp_path / "run", []
    with monkeypatch.context() as mp:
        spy = with_model_hook(recipe, built, case.inject(mp))
        with pytest.raises(training.TrainingInterrupted) as info:
            train(spy, out, data=tiny_data())
    e = info.value
    assert isinstance(e, KeyboardInterrupt) and isinstance(e.__cause__, KeyboardInterrupt)
    assert (e.out, e.epoch, e.batch, e.batches, e.epochs_done, e.phase) == (out, *case.expected)
    assert f"interrupted in epoch {e.epoch}" in str(e)
    assert not any(m._forward_pre_hooks for m in built[0].modules()), "train's hooks removed"
    if e.epochs_done == 0:
        assert not out.exists(), "a run that saved no epoch leaves no folder"
        again = train(recipe, out, data=tiny_data())
    else:
        assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == e.epochs_done
        metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert strip_seconds(metrics) == strip_seconds(whole.metrics[: e.epochs_done])
        acts = [json.loads(x) for x in (out / "activations.jsonl").read_text().splitlines()]
        assert {a["epoch"] for a in acts} == set(range(1, e.epochs_done + 1))
        assert not list(out.glob("*.tmp"))
        again = train(recipe, out, data=tiny_data(), resume=True)
    assert_same_run(whole, again)


@pytest.mark.parametrize("phase", ["reading the checkpoint", "loading data"])
def test_ctrl_c_before_the_batches_start(tmp_path, monkeypatch, phase):
    recipe, out = quick(recipes.LENET_BN, epochs=3), tmp_path / "run"
    train(recipe, out, data=tiny_data(), stop_after=1)
    before = run_files(out)
    with monkeypatch.context() as mp:
        if phase == "reading the checkpoint":
            raise_on_call(mp, torch, "load", 1)
        else:
            raise_on_call(mp, training, "load_data", 1)
        with pytest.raises(training.TrainingInterrupted) as info:
            train(recipe, out, resume=True)  # data=None: train loads it
    e = info.value
    assert (e.epoch, e.batch, e.batches, e.epochs_done, e.phase) == (2, 0, 0, 1, phase)
    assert str(e) == f"{out}: interrupted in epoch 2 ({phase}); epoch 1 is saved"
    assert run_files(out) == before


def test_resume_of_a_missing_folder_is_refused(tmp_path):
    out = tmp_path / "nope"
    with pytest.raises(BNValueError, match="nothing to resume") as info:
        train(quick(recipes.LENET_BN), out, data=tiny_data(), resume=True)
    assert str(out) in str(info.value)
    assert not out.exists()


def test_resume_of_a_folder_without_checkpoint_starts_over(tmp_path, whole):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "step": 3}) + "\n")  # a leftover
    console = Console(record=True, width=400)
    recipe = quick(recipes.LENET_BN, epochs=3)
    res = train(recipe, out, data=tiny_data(), resume=True, console=console)
    line = f"--resume: no epoch of {out} had finished; starting it from the beginning"
    assert line in console.export_text()
    assert_same_run(whole, res)
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("changes", "was", "asks"),
    [
        ({"lr": 1.0}, "lr=0.9", "lr=1.0"),
        ({"lr": 1.0, "epochs": 3}, "epochs=1, lr=0.9", "epochs=3, lr=1.0"),
        ({"limit": None, "seed": 7}, "seed=0, limit=3", "seed=7, limit=None"),
        ({"bn": "torch", "batch_size": 8}, "bn=None, batch_size=16", "bn='torch', batch_size=8"),
    ],
    ids=["lr", "lr and epochs", "seed and limit", "bn and batch size"],
)
def test_resume_names_every_setting_that_differs(tmp_path, changes, was, asks):
    recipe = quick(recipes.RECIPES["lenet"], epochs=1)  # lr 0.9
    out = tmp_path / "r"
    train(recipe, out, data=tiny_data())
    before = run_files(out)
    with pytest.raises(BNValueError) as info:
        train(replace(recipe, **changes), out, data=tiny_data(), resume=True)
    message = str(info.value)
    assert message == (
        f"--resume: {out} was trained with {was}; this command asks for {asks} "
        "(use the same settings, or another --out)"
    )
    for key in asdict(recipe):
        assert (f" {key}=" in message or f", {key}=" in message) == (key in changes), key
    assert run_files(out) == before, "a refused resume changes nothing"


def test_progress_says_what_it_does_after_the_batches(tmp_path):
    console = Console(record=True, width=200, force_terminal=True)
    train(quick(recipes.LENET_BN, epochs=1), tmp_path / "run", data=tiny_data(), console=console)
    text = console.export_text()
    assert "testing on 40 images" in text
    assert "precise BN: population statistics over 96 images" in text
    assert "saving checkpoint" in text


FAILURES = ["fresh nested folder", "folder with an unrelated file", "resume without checkpoint"]


@pytest.mark.parametrize("failure", ["model", "data", "Ctrl-C"])
@pytest.mark.parametrize("where", FAILURES)
def test_a_run_failing_in_its_first_epoch_leaves_nothing(tmp_path, where, failure):
    out = tmp_path / "a" / "b" / "run" if where == "fresh nested folder" else tmp_path / "run"
    if where != "fresh nested folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = run_files(out)
    recipe, data = quick(recipes.LENET_BN), tiny_data()
    error: type[BaseException] = RuntimeError
    if failure == "model":
        recipe = with_model_hook(recipe, [], raise_on_forward(2, True, RuntimeError))
    elif failure == "data":
        data = (data[0][:, :, :20], *data[1:])  # 20×28 images: LeNet's flatten does not fit
    else:
        recipe = with_model_hook(recipe, [], raise_on_forward(2, True))
        error = training.TrainingInterrupted
    with pytest.raises(error):
        train(recipe, out, data=data, resume=where == "resume without checkpoint")
    assert run_files(out) == before
    if where == "fresh nested folder":
        assert not (tmp_path / "a").exists()


def test_a_resumed_run_that_fails_keeps_its_folder(tmp_path):
    recipe, out = quick(recipes.LENET_BN, epochs=3), tmp_path / "run"
    train(recipe, out, data=tiny_data(), stop_after=1)
    before = run_files(out)
    failing = with_model_hook(recipe, [], raise_on_forward(2, True, RuntimeError))
    with pytest.raises(RuntimeError, match="boom"):  # after step 4 wrote an activation record
        train(failing, out, data=tiny_data(), resume=True)
    after = run_files(out)
    assert after is not None and before is not None
    assert after.pop("config.json") == before.pop("config.json")  # rewritten, same content
    assert after == before


def test_every_seed_the_command_line_accepts_trains(tmp_path):
    """Seeds up to 2^64 − 1 (torch's limit) train; small seeds keep their data order."""
    from bnlab.experiments.train import epoch_seed

    assert epoch_seed(0, 1) == 1 and epoch_seed(2, 3) == 200_009  # unchanged for small seeds
    xtr = torch.rand(8, 1, 28, 28)
    data = (xtr, torch.arange(8) % 10, xtr[:4], torch.arange(4))
    recipe = replace(recipes.RECIPES["lenet"], seed=2**64 - 1, epochs=1, limit=1, precise_last=0)
    assert train(recipe, tmp_path / "big-seed", data=data).metrics[0]["epoch"] == 1
