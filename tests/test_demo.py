"""The main job's demo and the README's commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

from bnlab import demo

ROOT = Path(__file__).resolve().parent.parent


def test_demo_matches_torch_and_the_source():
    result = demo.run()
    assert result.x.shape == (2, 2, 2, 2)
    torch.manual_seed(0)
    assert torch.equal(result.x, torch.rand(2, 2, 2, 2))  # the source's tensor, built its way
    assert result.matches
    # per-channel statistics against torch's own, in float64
    x64 = result.x.double()
    torch.testing.assert_close(result.mean.double(), x64.mean(dim=(0, 2, 3)), rtol=1e-6, atol=0)
    torch.testing.assert_close(
        result.var.double(), x64.var(dim=(0, 2, 3), unbiased=False), rtol=1e-5, atol=0
    )
    # y = γ·x̂ + β with γ = (2, 5), β = (3, 8): the per-channel mean of y is β exactly in theory
    torch.testing.assert_close(result.ours.mean(dim=(0, 2, 3)), torch.tensor([3.0, 8.0]))


def test_cli_demo_runs():
    out = subprocess.run(
        [sys.executable, "-m", "bnlab", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "120", "PATH": ""},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "torch.Size([2, 2, 2, 2])" in out.stdout
    assert re.search(r"bnlab matches torch.nn.BatchNorm2d: max \|Δ\| = ", out.stdout)


def test_cli_unknown_command_is_a_usage_error():
    out = subprocess.run(
        [sys.executable, "-m", "bnlab", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert "make tour" in lines and "make test" in lines
    assert "make test" in (ROOT / ".ci" / "run").read_text()
