"""The ``bnlab`` command line: every format, and one-line usage errors with exit status 2."""

from __future__ import annotations

import json

import pytest
import torch

from bnlab.cli import main
from tests.helpers import tiny_fashion_mnist


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


ERRORS = [
    ("malformed shape", ["--shape", "2,x,2"], "--shape: expected comma-separated integers"),
    ("shape too short", ["--shape", "4"], "--shape: expected 2 to 5 positive sizes"),
    ("zero size", ["--shape", "2,0,2"], "--shape: expected 2 to 5 positive sizes"),
    ("one value per channel", ["--shape", "1,3"], "--shape: batch norm in training needs more"),
    ("gamma length", ["--shape", "2,3,2", "--gamma", "1,2"], "--gamma: expected 3 values"),
    ("beta length", ["--shape", "2,2", "--beta", "1,2,3"], "--beta: expected 2 values"),
    (
        "gamma not numbers",
        ["--shape", "2,2", "--gamma", "a,b"],
        "--gamma: expected comma-separated",
    ),
    ("negative eps", ["--shape", "2,2", "--eps", "-1"], "--eps: expected a positive number"),
    ("zero eps", ["--shape", "2,2", "--eps", "0"], "--eps: expected a positive number"),
    ("eps not a number", ["--shape", "2,2", "--eps", "tiny"], "--eps: expected a positive number"),
    ("unknown example", ["--example", "nope"], "--example: unknown example 'nope' (known: seed-fc"),
    (
        "too large to draw",
        ["--shape", "64,8,4,4", "--format", "svg"],
        "too large to draw (at most 4096); use --format text or json",
    ),
    ("png to terminal", ["--format", "png"], "--format png: needs --out PATH"),
    ("example has no figure", ["--example", "seed-fc", "--format", "svg"], "has no figure"),
]


@pytest.mark.parametrize(("case", "argv", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_explain_usage_errors(capsys, case, argv, message):
    code, out, err = run(capsys, "explain", *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("bnlab explain: error: "), err
    assert message in err
    assert "Traceback" not in err and out == ""


def test_unknown_format_is_argparse_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["explain", "--format", "gif"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format" in err


def test_explain_text_default_is_the_illustrated_example(capsys):
    code, out, _ = run(capsys, "explain")
    assert code == 0
    assert "批量归一化图解" in out and "torch.Size([1, 2, 1, 1])" in out
    assert "✗" not in out and out.count("✓") >= 4


def test_explain_json_of_a_shape_matches_torch(capsys):
    code, out, _ = run(
        capsys,
        "explain",
        "--shape",
        "3,2,2",
        "--seed",
        "1",
        "--gamma",
        "2,5",
        "--beta",
        "3,8",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert [s["name"] for s in doc["steps"]][:6] == [
        "input",
        "mean",
        "var",
        "x_minus_mean",
        "xhat",
        "output",
    ]
    torch.manual_seed(1)
    x = torch.rand(3, 2, 2)
    bn = torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 5.0]))
        bn.bias.copy_(torch.tensor([3.0, 8.0]))
        y = bn(x)
    out_step = next(s for s in doc["steps"] if s["name"] == "output")
    got = torch.tensor(out_step["value"]["data"], dtype=torch.float64).reshape(out_step["shape"])
    torch.testing.assert_close(got, y.double(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "example", ["seed-fc", "seed-conv", "mean-dims", "seed-illustrated", "predict", "axes"]
)
def test_every_example_as_text_and_json(capsys, example):
    code, out, _ = run(capsys, "explain", "--example", example)
    assert code == 0 and "✗" not in out
    code, out, _ = run(capsys, "explain", "--example", example, "--format", "json")
    doc = json.loads(out)
    assert doc["example"] == example and all(c["ok"] for c in doc["checks"])


def test_explain_drawn_formats(tmp_path, capsys):
    png = tmp_path / "w.png"
    assert (
        run(capsys, "explain", "--shape", "2,3,2,2", "--format", "png", "--out", str(png))[0] == 0
    )
    assert png.read_bytes().startswith(b"\x89PNG")
    code, out, _ = run(capsys, "explain", "--example", "mean-dims", "--format", "svg")
    assert code == 0 and out.lstrip().startswith("<?xml") and "</svg>" in out
    page = tmp_path / "e.html"
    assert run(capsys, "explain", "--format", "html", "--out", str(page))[0] == 0
    text = page.read_text()
    assert "<img" in text and "http://" not in text and "https://" not in text
    code, out, _ = run(capsys, "explain", "--shape", "2,2,2", "--format", "html")
    assert code == 0 and out.count("<img") == 3


def test_large_tensor_text_and_json_work(capsys):
    code, out, _ = run(capsys, "explain", "--shape", "64,4,8,8", "--format", "text")
    assert code == 0 and "more" in out
    code, out, _ = run(capsys, "explain", "--shape", "64,4,8,8", "--format", "json")
    assert code == 0 and json.loads(out)["steps"][0]["shape"] == [64, 4, 8, 8]


def test_every_bnlab_command_in_the_readme_runs(tmp_path, monkeypatch, capsys):
    """Each `bnlab ...` line of the README, verbatim, in a fresh folder (tiny data for train)."""
    import shlex
    from pathlib import Path

    from bnlab.experiments import data as data_mod
    from bnlab.web import app as web_app

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("bnlab ")]
    assert {c.split()[1] for c in commands} >= {"explain", "train", "compare", "serve"}
    tiny_fashion_mnist(tmp_path / "data", monkeypatch)
    served = []
    monkeypatch.setattr(web_app, "serve", lambda *a, **k: served.append(a))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for line in commands:
        code, out, err = run(capsys, *shlex.split(line)[1:])
        assert code == 0, f"{line!r} exited {code}: {err}"
        assert out or "wrote" in err, line
    assert served == [("127.0.0.1", 8000, "docs/results", False)]
    assert (work / "runs" / "compare" / "index.html").exists()
    data_mod.clear_cache()
