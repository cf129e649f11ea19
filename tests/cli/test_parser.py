"""The parser: negative values without '=', bare ``bnlab``, --version, and train's help."""

from __future__ import annotations

import pytest

import bnlab
from bnlab.cli import parser
from tests.cli.runner import run


@pytest.mark.parametrize(
    ("argv", "joined"),
    [
        (["explain", "--gamma", "-1,2,3"], ["explain", "--gamma=-1,2,3"]),
        (["explain", "--beta", "-0.5,1"], ["explain", "--beta=-0.5,1"]),
        (["explain", "--beta", "-.5,1"], ["explain", "--beta=-.5,1"]),
        (["explain", "--eps", "-inf"], ["explain", "--eps=-inf"]),
        (["train", "lenet", "--lr", "-1"], ["train", "lenet", "--lr=-1"]),
        # a flag after an option is the user's next option, not a value
        (["train", "lenet", "--out", "--resume"], ["train", "lenet", "--out", "--resume"]),
        (
            ["explain", "--shape", "2,2", "--gamma", "1,2"],
            ["explain", "--shape", "2,2", "--gamma", "1,2"],
        ),
    ],
)
def test_negative_values_need_no_equals_sign(argv, joined):
    assert parser.rejoin_negative(parser.build(), argv) == joined


def test_negative_gamma_and_beta_work(capsys):
    import json

    argv = ["explain", "--shape", "2,3", "--gamma", "-1,2,3", "--beta", "-0.5,1,0"]
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["weight"]["data"] == [-1.0, 2.0, 3.0]
    assert doc["bias"]["data"] == [-0.5, 1.0, 0.0]


def test_bare_bnlab_lists_the_commands(capsys):
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    assert err.startswith("usage: bnlab")
    for command in ("tour", "explain", "demo", "train", "serve", "compare"):
        assert f"    {command} " in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith(f"bnlab {bnlab.__version__} (torch ")


def test_train_help_shows_each_recipes_defaults(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    assert "--epochs N       passes over the training set (default: the recipe's)" in out
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[-7:]}
    assert rows == {
        "lenet-bn": ["10", "1", "256"],
        "lenet-bn-torch": ["10", "1", "256"],
        "lenet-bn-d2l": ["10", "1", "256"],
        "lenet": ["10", "0.9", "256"],
        "lenet-lr1": ["10", "1", "256"],
        "bn-paper-fig1": ["50", "0.5", "60"],
        "lr-sweep": ["3", "0.03…10", "256"],
    }
