"""The tour's experiments section, from a results folder the test writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bnlab.explain import results

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "results"
RUN_FILES = ("config.json", "metrics.jsonl", "activations.jsonl")


def _run(folder, name, losses, bn="bnlab"):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"name": name, "bn": bn, "epochs": len(losses)}))
    rows = [
        {
            "epoch": i + 1,
            "step": 10 * (i + 1),
            "train_loss": loss,
            "train_acc": 0.5 + i / 10,
            "test_acc": 0.4 + i / 10,
            "test_acc_precise": 0.45 if i == len(losses) - 1 else None,
            "seconds": 1.0,
        }
        for i, loss in enumerate(losses)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_section_from_committed_runs(tmp_path, monkeypatch):
    _run(tmp_path / "lenet-bn", "lenet-bn", [1.0, 0.5, 0.25])
    _run(tmp_path / "lenet-bn-torch", "lenet-bn-torch", [1.0, 0.5, 0.2500001], bn="torch")
    monkeypatch.setenv("BNLAB_RESULTS", str(tmp_path))
    sec = results.experiments_section()
    assert [line.split()[0] for line in sec.printed] == ["lenet-bn", "lenet-bn-torch"]
    assert "train loss 0.250" in sec.printed[0] and "precise-BN 0.450" in sec.printed[0]
    assert len(sec.checks) == 1 and sec.checks[0].ok
    assert abs(sec.checks[0].max_abs_diff - 1e-7) < 1e-12
    assert [f.key for f in sec.figures] == ["experiments-curves"]


def test_a_diverging_pair_is_reported_not_hidden(tmp_path, monkeypatch):
    _run(tmp_path / "lenet-bn", "lenet-bn", [1.0, 0.5])
    _run(tmp_path / "lenet-bn-torch", "lenet-bn-torch", [1.0, 0.7], bn="torch")
    monkeypatch.setenv("BNLAB_RESULTS", str(tmp_path))
    check = results.experiments_section().checks[0]
    assert not check.ok and "DIFFERS" in check.line()


def test_no_results_says_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLAB_RESULTS", str(tmp_path))
    sec = results.experiments_section()
    assert not sec.figures and "No committed runs" in sec.notes[0]


def test_results_dir_finds_the_committed_runs_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("BNLAB_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert results.results_dir().resolve() == COMMITTED.resolve()


def test_results_dir_without_a_checkout_uses_the_wheels_copy(tmp_path, monkeypatch):
    """An installed wheel has no docs/ beside it: the runs it ships as bnlab/_results."""
    monkeypatch.delenv("BNLAB_RESULTS", raising=False)
    monkeypatch.setattr(results, "SOURCE_TREE", tmp_path / "no-checkout" / "docs" / "results")
    monkeypatch.setattr(results, "PACKAGED", tmp_path / "site" / "bnlab" / "_results")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "docs" / "results").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert results.results_dir() == elsewhere / "docs" / "results"  # the last resort
    results.PACKAGED.mkdir(parents=True)
    assert results.results_dir() == results.PACKAGED  # before ./docs/results
    monkeypatch.setenv("BNLAB_RESULTS", str(tmp_path))
    assert results.results_dir() == tmp_path  # the environment first


def test_the_wheel_ships_the_committed_runs_where_results_dir_looks(tmp_path):
    """Build the wheel (hatchling, as pip would), unpack it and ask its own results_dir()."""
    wheel_builder = pytest.importorskip("hatchling.builders.wheel")
    (wheel,) = wheel_builder.WheelBuilder(str(ROOT)).build(
        directory=str(tmp_path / "dist"), versions=["standard"]
    )
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    shipped = {n for n in names if n.startswith("bnlab/_results/")}
    want = {
        f"bnlab/_results/{run.relative_to(COMMITTED).as_posix()}/{f}"
        for run in (m.parent for m in COMMITTED.rglob("metrics.jsonl"))
        for f in RUN_FILES
        if (run / f).exists()
    }
    assert len(want) >= 3 * 7
    assert shipped == want  # the runs' files, not the plots, READMEs or checkpoints
    assert "bnlab/web/static/main.js" in names and "bnlab/__init__.py" in names
    env = {k: v for k, v in os.environ.items() if k != "BNLAB_RESULTS"}
    env["PYTHONPATH"] = str(tmp_path / "site")  # ahead of the editable checkout
    code = "import bnlab.explain.results as r; print(r.__file__); print(r.results_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split("\n")
    assert Path(out[0]).is_relative_to(tmp_path / "site"), out
    assert Path(out[1]) == tmp_path / "site" / "bnlab" / "_results", out


def test_the_inspect_reports_are_printed_and_linked(tmp_path, monkeypatch):
    """Each committed report: its two accuracies in the section, its page linked and copied."""
    _run(tmp_path / "lenet-bn", "lenet-bn", [1.0, 0.5])
    report = tmp_path / "inspect" / "lenet-bn-seed7"
    report.mkdir(parents=True)
    extra = {
        "test accuracy, running statistics": "0.7000",
        "test accuracy after recalibrate": "0.8000",
    }
    (report / "report.json").write_text(json.dumps({"extra": extra}))
    (report / "report.html").write_text("<!DOCTYPE html><p>the report</p>")
    monkeypatch.setenv("BNLAB_RESULTS", str(tmp_path))
    sec = results.experiments_section()
    assert any("lenet-bn-seed7" in p and "0.7000" in p and "0.8000" in p for p in sec.printed)
    assert [(href, src) for _, href, src in sec.pages] == [
        ("inspect/lenet-bn-seed7.html", str(report / "report.html"))
    ]


def test_the_committed_reports_cover_every_lenet_bn_seed():
    reports = {p.parent.name for p in (COMMITTED / "inspect").glob("*/report.json")}
    assert reports == {"lenet-bn", "lenet-bn-seed1", "lenet-bn-seed2"}
    for name in reports:
        data = json.loads((COMMITTED / "inspect" / name / "report.json").read_text())
        final = json.loads((COMMITTED / name / "metrics.jsonl").read_text().splitlines()[-1])
        # the reproduced checkpoint scores what the committed run's last epoch scored
        assert data["extra"]["test accuracy, running statistics"] == f"{final['test_acc']:.4f}"
        after = data["extra"]["test accuracy after recalibrate"]
        assert after == f"{final['test_acc_precise']:.4f}"
