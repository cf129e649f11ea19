"""The tour's experiments section, from a results folder the test writes."""

from __future__ import annotations

import json

from bnlab.explain import results


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
