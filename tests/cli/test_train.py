"""``bnlab train`` from the command line: a real Ctrl-C (SIGINT), the line it prints, resuming.

The run happens in a child process, as in a terminal.  Each optimizer step is slowed a little
there (a wrapper around ``bnlab``'s entry point), so that the signal lands inside an epoch.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bnlab.experiments.recipes import RECIPES
from tests.helpers import tiny_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]
SLOW_BNLAB = """
import sys, time, torch
step = torch.optim.SGD.step
def slow(self, *a, **k):
    time.sleep(0.05)
    return step(self, *a, **k)
torch.optim.SGD.step = slow
from bnlab.cli import main
sys.exit(main(sys.argv[1:]))
"""
ARGS = ["train", "lenet-bn", "--epochs", "3", "--batch-size", "64", "--out", "runs/x"]


@pytest.fixture
def data(tmp_path, monkeypatch):
    from bnlab.experiments import data as data_mod

    tiny_fashion_mnist(tmp_path / "data", monkeypatch, n_train=512, n_test=64)
    yield tmp_path
    data_mod.clear_cache()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _start(cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_BNLAB, *ARGS],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _interrupt(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def _epochs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_ctrl_c_says_where_it_stopped_and_the_command_continues_it(data):
    work = data / "work"
    work.mkdir()
    metrics = work / "runs" / "x" / "metrics.jsonl"
    proc = _start(work)
    try:
        # epoch 1 is saved once its checkpoint exists (written after its metrics row)
        _wait_for(lambda: (metrics.parent / "checkpoint.pt").exists())
        code, _, err = _interrupt(proc)
    finally:
        proc.kill()
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert re.match(r"bnlab train: interrupted in epoch 2 \(", line), line
    assert "epoch 1 is saved in runs/x" in line
    command = line.split("continue with: ", 1)[1]
    assert command == ("bnlab train lenet-bn --epochs 3 --batch-size 64 --out runs/x --resume")
    assert len(_epochs(metrics)) == 1  # the interrupted epoch left nothing half-written

    # the printed command, run as printed, finishes the run as if it had never stopped
    done = subprocess.run(
        [sys.executable, "-m", "bnlab", *shlex.split(command)[1:]],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    resumed = _epochs(metrics)
    assert [r["epoch"] for r in resumed] == [1, 2, 3]

    from bnlab.experiments.train import train

    recipe = replace(RECIPES["lenet-bn"], epochs=3, batch_size=64)
    whole = train(recipe, data / "whole").metrics
    for a, b in zip(resumed, whole, strict=True):
        assert a["train_loss"] == b["train_loss"] and a["test_acc"] == b["test_acc"]


def test_ctrl_c_in_the_first_epoch_keeps_nothing(data):
    work = data / "work"
    work.mkdir()
    proc = _start(work)
    try:
        _wait_for(lambda: (work / "runs" / "x" / "config.json").exists())
        code, _, err = _interrupt(proc)
    finally:
        proc.kill()
    assert code == 130, err
    assert "Traceback" not in err
    line = err.strip()
    assert "\n" not in line
    assert "before any epoch finished: nothing was kept" in line
    assert line.endswith(
        "start again with: bnlab train lenet-bn --epochs 3 --batch-size 64 --out runs/x"
    )
    assert not (work / "runs" / "x").exists()


def test_resume_of_a_folder_without_a_finished_epoch_says_so(data, capsys):
    from tests.cli.runner import run

    work = data / "work"
    (work / "runs" / "y").mkdir(parents=True)
    os.chdir(work)
    try:
        argv = ["train", "lenet", "--epochs", "1", "--limit", "1", "--out", "runs/y", "--resume"]
        code, out, err = run(capsys, *argv)
    finally:
        os.chdir(ROOT)
    assert code == 0, err
    assert "no epoch of runs/y had finished" in " ".join(out.split())
    assert len(_epochs(work / "runs" / "y" / "metrics.jsonl")) == 1
