"""``bnlab explain``: every format, for named examples and for a learner's own tensor.

A ``--shape`` tensor gets what a named example gets: in every format, each step is checked
against ``torch.nn.BatchNorm*d`` and the check is shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bnlab.cli.explain import MAX_ELEMENTS
from tests.cli.runner import run


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


def test_a_learners_tensor_is_checked_against_torch_in_every_format(tmp_path, capsys):
    shape = ["--shape", "2,3,2,2", "--seed", "1", "--gamma", "0,2,-3", "--beta", "1,0,2"]
    code, out, _ = run(capsys, "explain", *shape)
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith(("✓", "✗"))]
    assert len(lines) == 6 and all(line.startswith("✓") for line in lines), lines
    assert "x y matches torch.nn.BatchNorm2d" in out
    assert "x running_var matches torch.nn.BatchNorm2d.running_var" in out

    code, out, _ = run(capsys, "explain", *shape, "--format", "json")
    checks = json.loads(out)["checks"]
    assert [c["ok"] for c in checks] == [True] * 6
    assert {c["against"] for c in checks} >= {"torch.nn.BatchNorm2d", "torch.mean"}

    page = tmp_path / "x.html"
    assert run(capsys, "explain", *shape, "--format", "html", "--out", str(page))[0] == 0
    assert page.read_text().count("<p class='check ok'>") == 6

    code, out, _ = run(capsys, "explain", *shape, "--format", "svg")
    assert code == 0 and "all 6 steps match torch.nn.BatchNorm2d" in out


@pytest.mark.parametrize(
    ("shape", "module"),
    [("4,3", "BatchNorm1d"), ("4,3,5", "BatchNorm1d"), ("2,3,2,2,2", "BatchNorm3d")],
)
def test_checks_name_the_module_of_that_rank(capsys, shape, module):
    code, out, _ = run(capsys, "explain", "--shape", shape, "--format", "json")
    assert code == 0
    checks = json.loads(out)["checks"]
    assert all(c["ok"] for c in checks) and f"torch.nn.{module}" in {c["against"] for c in checks}


def test_a_wrong_step_is_reported_as_differing(monkeypatch, capsys):
    """The check can fail: with bnlab's output nudged, the line says DIFFERS and ✗."""
    from bnlab.explain import examples

    real = examples._torch_bn

    def nudged(x, weight=None, bias=None, momentum=0.1):
        y, bn = real(x, weight, bias, momentum)
        return y + 1e-3, bn

    monkeypatch.setattr(examples, "_torch_bn", nudged)
    code, out, _ = run(capsys, "explain", "--shape", "4,3")
    assert code == 0
    assert "✗ x y DIFFERS from torch.nn.BatchNorm1d: max |Δ| = 1.0e-03" in out


def _peak(argv: list[str], tmp_path: Path) -> tuple[int, int]:
    """(peak resident KiB, bytes written) of ``python -m bnlab ARGV`` in a process of its own."""
    out = tmp_path / "out"
    probe = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "bnlab", *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout), out.stat().st_size


@pytest.mark.parametrize(
    ("fmt", "shape"), [("text", "16,16,64,64"), ("json", "16,16,16,16"), ("svg", "4,4,16,16")]
)
def test_the_largest_accepted_shape_stays_small(tmp_path, fmt, shape):
    numel = 1
    for d in shape.split(","):
        numel *= int(d)
    assert numel == MAX_ELEMENTS[fmt]  # exactly at the documented limit
    kib, size = _peak(["explain", "--shape", shape, "--format", fmt], tmp_path)
    assert kib < 1_200_000, f"peak {kib / 1024:.0f} MiB"
    assert size < 16 << 20, f"wrote {size / 2**20:.1f} MiB"


def test_the_limits_are_documented():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for fmt, limit in MAX_ELEMENTS.items():
        assert f"{limit:,}" in readme, fmt
