"""Every user mistake, in every command: exit 2, one line on stderr naming the option, no traceback.

The table runs in this process (a traceback would escape ``main`` and fail the test); a few rows
also run as a real ``python -m bnlab`` process, to see exactly what a shell would see.  Paths in
the table are relative to a fresh folder holding ``a-file``, ``a-dir/`` (empty) and ``a-run/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.runner import run
from tests.helpers import tiny_fashion_mnist

TOO_BIG_SEED = str(2**64)

# (case, argv, the option named, words the line must hold)
MISTAKES = [
    # explain: shapes
    ("malformed shape", ["explain", "--shape", "2,x,2"], "--shape", "comma-separated integers"),
    ("empty shape", ["explain", "--shape", ""], "--shape", "(got '')"),
    ("one size", ["explain", "--shape", "4"], "--shape", "2 to 5 positive sizes"),
    ("zero size", ["explain", "--shape", "2,0,2"], "--shape", "2 to 5 positive sizes"),
    ("negative size", ["explain", "--shape", "-2,3"], "--shape", "2 to 5 positive sizes"),
    ("one value per channel", ["explain", "--shape", "1,3"], "--shape", "more than 1 value"),
    # explain: γ, β, ε, seed
    ("gamma length", ["explain", "--shape", "2,3,2", "--gamma", "1,2"], "--gamma", "3 values"),
    ("beta length", ["explain", "--shape", "2,2", "--beta", "1,2,3"], "--beta", "2 values"),
    ("gamma not numbers", ["explain", "--gamma", "a,b"], "--gamma", "comma-separated numbers"),
    ("empty gamma", ["explain", "--shape", "2,2", "--gamma", ""], "--gamma", "(got '')"),
    ("empty beta", ["explain", "--shape", "2,2", "--beta", ""], "--beta", "(got '')"),
    ("nan gamma", ["explain", "--shape", "2,2", "--gamma", "nan,1"], "--gamma", "finite"),
    ("inf beta", ["explain", "--shape", "2,2", "--beta", "1e400,1"], "--beta", "finite"),
    ("-inf beta", ["explain", "--shape", "2,2", "--beta", "-inf,1"], "--beta", "finite"),
    ("negative eps", ["explain", "--shape", "2,2", "--eps", "-1"], "--eps", "positive number"),
    ("zero eps", ["explain", "--shape", "2,2", "--eps", "0"], "--eps", "positive number"),
    ("eps word", ["explain", "--shape", "2,2", "--eps", "tiny"], "--eps", "positive number"),
    ("inf eps", ["explain", "--shape", "2,2", "--eps", "1e400"], "--eps", "positive number"),
    ("nan eps", ["explain", "--shape", "2,2", "--eps", "nan"], "--eps", "positive number"),
    ("empty eps", ["explain", "--shape", "2,2", "--eps", ""], "--eps", "positive number"),
    ("seed over 64 bits", ["explain", "--shape", "2,2", "--seed", TOO_BIG_SEED], "--seed", "2^64"),
    ("negative seed", ["explain", "--shape", "2,2", "--seed", "-3"], "--seed", "0 to 2^64"),
    ("seed word", ["explain", "--shape", "2,2", "--seed", "x"], "--seed", "whole number"),
    # explain: examples and formats
    ("unknown example", ["explain", "--example", "nope"], "--example", "known: seed-fc"),
    ("gamma on example", ["explain", "--example", "seed-fc", "--gamma", "1"], "--gamma", "--shape"),
    ("seed on example", ["explain", "--example", "seed-fc", "--seed", "1"], "--seed", "--shape"),
    ("png to terminal", ["explain", "--format", "png"], "--format png", "needs --out"),
    ("no figure", ["explain", "--example", "seed-fc", "--format", "svg"], "--format svg", "figure"),
    ("unknown format", ["explain", "--format", "gif"], "--format", "invalid choice: 'gif'"),
    (
        "shape and example",
        ["explain", "--shape", "2,2", "--example", "axes"],
        "--example",
        "not allowed",
    ),
    (
        "too big to draw",
        ["explain", "--shape", "64,8,4,4", "--format", "svg"],
        "--shape",
        "at most 4,096",
    ),
    (
        "too big for json",
        ["explain", "--shape", "16,16,256,256", "--format", "json"],
        "--shape",
        "at most 65,536",
    ),
    ("too big for text", ["explain", "--shape", "2048,1025"], "--shape", "at most 1,048,576"),
    ("out is a folder", ["explain", "--out", "a-dir"], "--out", "a-dir is a folder"),
    ("out under a file", ["explain", "--out", "a-file/x.txt"], "--out", "a-file is a file"),
    ("unknown option", ["explain", "--bogus"], "--bogus", "unrecognized arguments"),
    # tour
    ("tour out is a file", ["tour", "--out", "a-file"], "--out", "a-file is a file"),
    ("tour out under a file", ["tour", "--out", "a-file/tour"], "--out", "a-file is a file"),
    # train
    ("unknown recipe", ["train", "nope"], "RECIPE", "known: lenet-bn"),
    ("no recipe", ["train"], "RECIPE", "required"),
    ("zero epochs", ["train", "lenet", "--epochs", "0"], "--epochs", "positive whole number"),
    ("epochs word", ["train", "lenet", "--epochs", "ten"], "--epochs", "positive whole number"),
    ("zero lr", ["train", "lenet", "--lr", "0"], "--lr", "positive number"),
    ("negative lr", ["train", "lenet", "--lr", "-1"], "--lr", "positive number"),
    ("nan lr", ["train", "lenet", "--lr", "nan"], "--lr", "positive number"),
    ("inf lr", ["train", "lenet", "--lr", "inf"], "--lr", "positive number"),
    ("zero batch size", ["train", "lenet", "--batch-size", "0"], "--batch-size", "positive whole"),
    ("zero limit", ["train", "lenet", "--limit", "0"], "--limit", "positive whole number"),
    ("train seed over 64 bits", ["train", "lenet", "--seed", TOO_BIG_SEED], "--seed", "2^64"),
    ("train out is a file", ["train", "lenet", "--out", "a-file"], "--out", "a-file is a file"),
    (
        "resume a missing folder",
        ["train", "lenet", "--out", "nowhere", "--resume"],
        "--resume",
        "nowhere does not exist",
    ),
    ("run already there", ["train", "lenet", "--out", "a-run"], "a-run", "--resume"),
    (
        "resume with other settings",
        ["train", "lenet", "--out", "a-run", "--resume", "--lr", "0.5"],
        "--resume",
        "was trained with epochs=1, lr=0.9, limit=1; "
        "this command asks for epochs=10, lr=0.5, limit=None",
    ),
    ("zero nproc", ["train", "lenet", "--nproc", "0"], "--nproc", "positive whole number"),
    ("negative nproc", ["train", "lenet", "--nproc", "-2"], "--nproc", "positive whole number"),
    ("nproc word", ["train", "lenet", "--nproc", "two"], "--nproc", "positive whole number"),
    ("nproc over the batch", ["train", "lenet", "--nproc", "300"], "--nproc", "at most 256"),
    ("sync textbook BN", ["train", "lenet-bn-d2l", "--nproc", "2"], "--sync-bn", "D2LBatchNorm"),
    (
        "resume on more processes",
        [
            "train",
            "lenet",
            *["--out", "a-run", "--resume", "--epochs", "1", "--limit", "1", "--nproc", "2"],
        ],
        "--resume",
        "was trained with nproc=1; this command asks for nproc=2",
    ),
    # serve
    ("port zero", ["serve", "--port", "0"], "--port", "1 to 65535"),
    ("port too big", ["serve", "--port", "70000"], "--port", "1 to 65535"),
    ("port word", ["serve", "--port", "http"], "--port", "1 to 65535"),
    ("runs missing", ["serve", "--runs", "nowhere"], "--runs", "nowhere does not exist"),
    ("runs is a file", ["serve", "--runs", "a-file"], "--runs", "a-file is a file"),
    # compare
    ("compare missing", ["compare", "nowhere"], "DIR", "nowhere does not exist"),
    ("compare a file", ["compare", "a-file"], "DIR", "a-file is a file"),
    ("compare an empty folder", ["compare", "a-dir"], "DIR", "neither a run"),
    ("compare out is a file", ["compare", "a-run", "--out", "a-file"], "--out", "a-file is a file"),
    ("compare no folder", ["compare"], "DIR", "required"),
    # inspect
    ("inspect missing", ["inspect", "nowhere"], "RUN_DIR", "nowhere does not exist"),
    ("inspect no checkpoint", ["inspect", "a-dir"], "RUN_DIR", "has no checkpoint.pt"),
    ("inspect no BN", ["inspect", "a-run"], "check", "expected a model with batch-norm layers"),
    ("inspect zero batches", ["inspect", "a-run", "--batches", "0"], "--batches", "positive"),
    # bench
    ("bench zero rounds", ["bench", "--rounds", "0"], "--rounds", "positive whole number"),
    ("bench threads word", ["bench", "--threads", "many"], "--threads", "positive whole number"),
    ("bench json a folder", ["bench", "--json", "a-dir"], "--json", "a-dir is a folder"),
    ("bench json under a file", ["bench", "--json", "a-file/x.json"], "--json", "is a file"),
]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A fresh current folder with a file, an empty folder and one finished tiny run."""
    from bnlab.experiments import data as data_mod
    from bnlab.experiments.recipes import RECIPES
    from bnlab.experiments.train import train

    tiny_fashion_mnist(tmp_path / "data", monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    (work / "a-file").write_text("not a folder\n")
    (work / "a-dir").mkdir()
    from dataclasses import replace

    train(replace(RECIPES["lenet"], epochs=1, limit=1), work / "a-run")
    monkeypatch.chdir(work)
    yield work
    data_mod.clear_cache()


def _one_line(code: int, out: str, err: str, command: str, option: str, words: str) -> None:
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err and "Traceback" not in out
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"bnlab {command}: error: "), err
    assert option in err and words in err, err


@pytest.mark.parametrize(
    ("case", "argv", "option", "words"), MISTAKES, ids=[m[0] for m in MISTAKES]
)
def test_mistake_is_one_line_and_exit_2(place, capsys, case, argv, option, words):
    before = sorted(p.relative_to(place) for p in place.rglob("*"))
    code, out, err = run(capsys, *argv)
    _one_line(code, out, err, argv[0], option, words)
    assert sorted(p.relative_to(place) for p in place.rglob("*")) == before  # nothing made


def test_port_in_use(place, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out, err = run(capsys, "serve", "--port", port)
    _one_line(code, out, err, "serve", "--port", f"cannot listen on 127.0.0.1:{port}")


REAL_PROCESS = [
    ["explain", "--shape", "2,2", "--gamma", "nan,1"],
    ["explain", "--shape", "2,2", "--seed", TOO_BIG_SEED],
    ["compare", "nowhere"],
    ["tour", "--out", "a-file"],
    ["train", "lenet", "--lr", "inf"],
]


@pytest.mark.parametrize("argv", REAL_PROCESS, ids=[" ".join(a) for a in REAL_PROCESS])
def test_in_a_real_process(tmp_path, argv):
    (tmp_path / "a-file").write_text("x")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "bnlab", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    _one_line(done.returncode, done.stdout, done.stderr, argv[0], "", "error")
