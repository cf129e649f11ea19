"""Every code block the tour shows runs exactly as printed, and prints what the tour says."""

from __future__ import annotations

import contextlib
import io
import shlex

import pytest
import torch

from bnlab.explain import tour
from tests.cli.runner import run
from tests.helpers import tiny_fashion_mnist

SECTIONS = {s.key: s for s in tour.build_sections() if s.code}


def _exec(code: str) -> tuple[dict, str]:
    """Run ``code`` in a fresh namespace, as a learner pasting it would; (namespace, stdout)."""
    namespace: dict = {"__name__": "tour"}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "tour", "exec"), namespace)
    return namespace, buf.getvalue()


def test_every_section_with_code_is_covered():
    assert set(SECTIONS) == {
        "seed-fc",
        "seed-conv",
        "predict",
        "mean-dims",
        "seed-illustrated",
        "experiments",
        "distributed",
    }
    assert {s.code_lang for s in SECTIONS.values()} == {"python", "shell"}


@pytest.mark.parametrize("key", ["seed-fc", "seed-conv"])
def test_the_sources_code_prints_what_the_source_printed(key):
    _, out = _exec(SECTIONS[key].code)
    assert out.splitlines() == SECTIONS[key].source_printed


def test_mean_dims_prints_the_three_means():
    _, out = _exec(SECTIONS["mean-dims"].code)
    printed = [p.split(":\n", 1)[1] for p in SECTIONS["mean-dims"].printed[1:]]
    assert out == "".join(p + "\n" for p in printed)


def test_the_illustrated_code_returns_the_sections_trace():
    namespace, out = _exec(SECTIONS["seed-illustrated"].code)
    ours = namespace["trace"]
    shown = SECTIONS["seed-illustrated"].traces["illustrated"]
    assert torch.equal(ours.output, shown.output)
    assert out.startswith("Trace(training, eps=1e-05, input torch.Size([2, 2, 2, 2]))")


def test_the_prediction_code_reaches_the_printed_running_statistics():
    namespace, out = _exec(SECTIONS["predict"].code)
    bn = namespace["bn"]
    said = SECTIONS["predict"].printed[0]  # "after 60 steps: running_mean = [...], ..."
    assert f"running_mean = {[round(v, 4) for v in bn.running_mean.tolist()]}" in said
    assert f"running_var = {[round(v, 4) for v in bn.running_var.tolist()]}" in said
    assert not bn.training and out.count("tensor(") == 3


def test_the_shell_lines_run(tmp_path, monkeypatch, capsys):
    """``bnlab train …`` as the experiments section prints them, on tiny data."""
    from bnlab.experiments import data as data_mod

    tiny_fashion_mnist(tmp_path / "data", monkeypatch)
    monkeypatch.chdir(tmp_path)
    lines = [ln for ln in SECTIONS["experiments"].code.splitlines() if ln.strip()]
    assert all(ln.startswith("bnlab ") for ln in lines)
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        code, _, err = run(capsys, *argv)
        assert code == 0, f"{line}: {err}"
    assert (tmp_path / "runs" / "lr-sweep").is_dir()
    data_mod.clear_cache()



def test_the_distributed_lines_run(tmp_path, monkeypatch, capsys):
    """``bnlab train … --nproc 2`` as the distributed section prints them, on tiny data: the
    synced run's losses equal one process's, the local run's differ."""
    import json

    from bnlab.experiments import data as data_mod

    tiny_fashion_mnist(tmp_path / "data", monkeypatch, n_train=64, n_test=16)
    monkeypatch.chdir(tmp_path)
    for line in SECTIONS["distributed"].code.splitlines():
        argv = [*shlex.split(line, comments=True)[1:], "--batch-size", "16"]
        code, _, err = run(capsys, *argv)
        assert code == 0, f"{line}: {err}"

    def losses(name):
        rows = (tmp_path / "runs" / "ddp" / name / "metrics.jsonl").read_text().splitlines()
        return [json.loads(r)["train_loss"] for r in rows]

    assert losses("sync") == pytest.approx(losses("single"), abs=1e-5)
    assert losses("local") != pytest.approx(losses("single"), abs=1e-5)
    data_mod.clear_cache()
