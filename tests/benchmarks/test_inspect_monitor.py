"""benchmarks/inspect_monitor.py runs end to end in its quick mode and writes the JSON it promises.

A smoke test only: a few tiny steps, no assertion on any timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "inspect_monitor.py"


def test_quick_run_writes_the_json(tmp_path):
    out = tmp_path / "inspect_monitor.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--json", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "ResNet-18 training step" in done.stdout and "memory:" in done.stdout

    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "inspect_monitor"
    assert {"cpu_model", "processor", "cores", "torch", "threads"} <= doc["machine"].keys()
    assert doc["machine"]["threads"] == 1 and doc["settings"]["quick"] is True

    step = doc["measurements"]["step_time"]
    assert step["batch"] == 2 and step["input"] == [3, 32, 32] and step["rounds"] == 2
    assert step["bn_layers"] == 20  # ResNet-18: 17 in the blocks and stem, 3 in shortcuts
    assert step["ms_median"].keys() == {"plain", "monitored"}
    assert step["ratio"] > 0 and step["ratio_median_round"] > 0

    mem = doc["measurements"]["memory"]
    assert mem["batches"] == 20 and mem["calls_per_layer"] == [20]
    held = mem["summary_bytes"]
    assert held["after_checkpoint"] == held["after_all"] > 0 and mem["summary_bytes_equal"]
    assert held["after_all"] == 6 * 8 * mem["channels"]  # six float64 (C,) tensors per layer

    targets = {t["measurement"]: t for t in doc["targets"]}
    assert targets.keys() == {"step_time", "memory"}
    assert targets["step_time"]["max"] == 1.10
    assert targets["step_time"]["met"] == (step["ratio"] <= 1.10)
    assert targets["memory"]["met"] is True
