"""Training on 2 processes (gloo on 127.0.0.1) against one process on the same global batches.

With synced BN the metrics, weights and activation records are one process's to float32
tolerance; with local BN they differ; only rank 0 writes, a resume continues exactly, and a
rank that fails is one line naming it.  Each run starts 2 real processes (2–3 s of imports),
so the runs are few and shared by module-scoped fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bnlab.errors import BNValueError
from bnlab.experiments import recipes
from bnlab.experiments.distributed import train_distributed
from bnlab.experiments.train import train
from tests.cli.runner import run
from tests.helpers import tiny_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]
# 96 images in batches of 21: 4 full batches (ranks get 11 and 10 rows), then 12 (6 and 6)
RECIPE = replace(
    recipes.LENET_BN, epochs=2, batch_size=21, record_every=2, precise_last=1, limit=None
)
TOL = 1e-5  # float32: relative, on losses and weights
METRICS = ("train_loss", "train_acc", "test_acc", "test_acc_precise")


def tiny_data(n_train=96, n_test=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(n_train, 1, 28, 28, generator=g),
        torch.randint(0, 10, (n_train,), generator=g),
        torch.rand(n_test, 1, 28, 28, generator=g),
        torch.randint(0, 10, (n_test,), generator=g),
    )


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_same_metrics(ours: list[dict], theirs: list[dict]) -> None:
    assert [r["epoch"] for r in ours] == [r["epoch"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["step"] == b["step"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=TOL), a
        for k in ("train_acc", "test_acc", "test_acc_precise"):
            assert a[k] == b[k], (k, a, b)


def assert_same_weights(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(ref)
    for k, v in ref.items():
        torch.testing.assert_close(mine[k], v, rtol=1e-4, atol=1e-5, msg=k)


def assert_same_activations(ours: Path, theirs: Path) -> None:
    a, b = rows(ours / "activations.jsonl"), rows(theirs / "activations.jsonl")
    assert [(r["epoch"], r["step"]) for r in a] == [(r["epoch"], r["step"]) for r in b]
    for x, y in zip(a, b, strict=True):
        for layer, qs in y["layers"].items():
            for q, values in qs.items():  # rounded to 4 decimals: one unit apart at most
                assert x["layers"][layer][q] == pytest.approx(values, abs=2e-4), (layer, q)


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    """The reference: the whole run in this process."""
    return train(RECIPE, tmp_path_factory.mktemp("one") / "run", data=tiny_data())


@pytest.fixture(scope="module")
def halfway(tmp_path_factory):
    """2 processes, synced BN, stopped after epoch 1 of 2."""
    out = tmp_path_factory.mktemp("two") / "run"
    return train_distributed(RECIPE, out, 2, data=tiny_data(), stop_after=1)


def test_synced_bn_on_two_processes_is_one_process(one, halfway):
    assert_same_metrics(halfway.metrics, one.metrics[:1])
    assert_same_metrics(rows(halfway.out / "metrics.jsonl"), one.metrics[:1])
    assert rows(halfway.out / "activations.jsonl")[0]["step"] == 1
    config = json.loads((halfway.out / "config.json").read_text())
    assert (config["nproc"], config["sync_bn"], config["backend"]) == (2, True, "gloo")
    ckpt = torch.load(halfway.out / "checkpoint.pt", weights_only=False)
    assert ckpt["ranks"] == {"nproc": 2, "sync_bn": True} and ckpt["epoch"] == 1
    # the result and the checkpoint are one-process models: plain BN layers, loadable anywhere
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in halfway.model.modules())
    RECIPE.build_model().load_state_dict(ckpt["model"])


def test_only_rank_0_writes_what_one_process_writes(one, halfway):
    assert sorted(p.name for p in halfway.out.iterdir()) == sorted(
        p.name for p in one.out.iterdir()
    )


def test_a_resume_on_two_processes_ends_as_one_process_does(one, halfway, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(halfway.out, out)
    resumed = train_distributed(RECIPE, out, 2, data=tiny_data(), resume=True)
    assert_same_metrics(resumed.metrics, one.metrics)
    assert_same_metrics(rows(out / "metrics.jsonl"), one.metrics)
    assert_same_weights(resumed.model, one.model)
    assert_same_activations(out, one.out)


@pytest.mark.parametrize(
    ("nproc", "sync_bn", "was", "asks"),
    [
        (1, True, "nproc=2", "nproc=1"),
        (2, False, "sync_bn=True", "sync_bn=False"),
        (3, True, "nproc=2", "nproc=3"),
    ],
    ids=["one process", "local BN", "three processes"],
)
def test_a_resume_on_other_ranks_is_refused_before_any_starts(halfway, nproc, sync_bn, was, asks):
    before = {p.name: p.read_bytes() for p in halfway.out.iterdir()}
    start = time.monotonic()
    with pytest.raises(BNValueError) as info:
        if nproc == 1:
            train(RECIPE, halfway.out, data=tiny_data(), resume=True)
        else:
            train_distributed(RECIPE, halfway.out, nproc, sync_bn=sync_bn, resume=True)
    assert str(info.value) == (
        f"--resume: {halfway.out} was trained with {was}; this command asks for {asks} "
        "(use the same settings, or another --out)"
    )
    assert time.monotonic() - start < 2, "refused here, no process started"
    assert {p.name: p.read_bytes() for p in halfway.out.iterdir()} == before


def test_local_bn_is_another_experiment(one, tmp_path):
    local = train_distributed(replace(RECIPE, epochs=1), tmp_path / "run", 2, sync_bn=False,
                              data=tiny_data())  # fmt: skip
    first = one.metrics[0]
    assert abs(local.metrics[0]["train_loss"] - first["train_loss"]) > 1e-3 * first["train_loss"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["sync_bn"] is False


def test_the_textbook_layer_cannot_be_synced(tmp_path):
    with pytest.raises(BNValueError, match="D2LBatchNorm, which has no synced version"):
        train_distributed(recipes.RECIPES["lenet-bn-d2l"], tmp_path / "run", 2, data=tiny_data())
    assert not (tmp_path / "run").exists()


# ---- the command line: bnlab train --nproc 2, and torchrun -m bnlab train

CLI = ["train", "lenet-bn", "--epochs", "1", "--limit", "3", "--batch-size", "16"]


@pytest.fixture
def fashion(tmp_path, monkeypatch):
    """Tiny Fashion-MNIST files, found by this process and the ones it starts (BNLAB_DATA)."""
    from bnlab.experiments import data as data_mod

    tiny_fashion_mnist(tmp_path / "data", monkeypatch, n_train=64, n_test=24)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield tmp_path
    data_mod.clear_cache()


def test_cli_nproc_2_matches_one_process(fashion, capsys):
    code, _, err = run(capsys, *CLI, "--out", str(fashion / "one"))
    assert code == 0, err
    code, out, err = run(capsys, *CLI, "--nproc", "2", "--out", str(fashion / "two"))
    assert code == 0, err
    assert "runs in" in out
    two, one = rows(fashion / "two" / "metrics.jsonl"), rows(fashion / "one" / "metrics.jsonl")
    assert_same_metrics(two, one)


def test_cli_a_failing_rank_is_one_line_naming_it(fashion, capsys):
    # batches of 3 on 2 ranks: rank 1 holds 1 row, too few for BN over its own shard
    out = fashion / "run"
    code, _, err = run(capsys, *CLI, "--batch-size", "3", "--nproc", "2", "--no-sync-bn",
                       "--out", str(out))  # fmt: skip
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("bnlab train: error: rank 1: Expected more than 1 value per channel")
    assert not out.exists(), "a run that saved no epoch leaves no folder"


def test_cli_nproc_under_torchrun_is_refused(fashion, capsys, monkeypatch):
    for key, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    code, _, err = run(capsys, *CLI, "--nproc", "2", "--out", str(fashion / "run"))
    assert code == 2
    assert err == (
        "bnlab train: error: --nproc: this process is one of torchrun's 2, which "
        "--nproc_per_node sets; leave --nproc out\n"
    )


def test_torchrun_runs_bnlab_as_its_ranks(fashion, capsys):
    code, _, err = run(capsys, *CLI, "--out", str(fashion / "one"))
    assert code == 0, err
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "bnlab", *CLI, "--out", str(fashion / "two")],
        cwd=fashion, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("runs in") == 1, "rank 0 alone reports"
    two, one = rows(fashion / "two" / "metrics.jsonl"), rows(fashion / "one" / "metrics.jsonl")
    assert_same_metrics(two, one)
    assert json.loads((fashion / "two" / "config.json").read_text())["nproc"] == 2


def test_cli_ctrl_c_on_two_processes_keeps_the_last_epoch(fashion, monkeypatch):
    tiny_fashion_mnist(fashion / "data", monkeypatch, n_train=512, n_test=64)  # 32 steps an epoch
    argv = ["train", "lenet-bn", "--epochs", "30", "--batch-size", "16", "--nproc", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = fashion / "runs" / "x"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bnlab", *argv, "--out", "runs/x"], cwd=fashion, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        end = time.monotonic() + 60
        while not (out / "checkpoint.pt").exists():
            assert time.monotonic() < end and proc.poll() is None, "no epoch was saved"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: every process gets it
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.endswith(f"continue with: bnlab {' '.join(argv)} --out runs/x --resume\n"), err
    saved = torch.load(out / "checkpoint.pt", weights_only=False)["epoch"]
    assert [r["epoch"] for r in rows(out / "metrics.jsonl")] == list(range(1, saved + 1))
    assert {r["epoch"] for r in rows(out / "activations.jsonl")} == set(range(1, saved + 1))
    assert not list(out.glob("*.tmp"))
