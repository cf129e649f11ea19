"""benchmarks/train_step.py runs end to end in its quick mode and writes the JSON it promises.

A smoke test only: random data, a few tiny steps, no assertion on any timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "train_step.py"


def test_quick_run_writes_the_json(tmp_path):
    out = tmp_path / "train_step.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--channels-last", "--threads", "1"]
    done = subprocess.run(
        [*cmd, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert "LeNet-BN epoch" in done.stdout and "ResNet-18 training step" in done.stdout

    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "train_step"
    assert {"cpu_model", "processor", "cores", "torch", "threads"} <= doc["machine"].keys()
    assert doc["machine"]["threads"] == 1
    assert doc["settings"]["quick"] is True

    lenet = doc["measurements"]["lenet_epoch"]
    assert lenet["data"] == "fake" and lenet["batches_per_epoch"] == 4
    for key in ("seconds", "epoch_seconds", "ms_per_batch", "last_loss"):
        assert lenet[key].keys() == {"bnlab", "torch"}, key
    assert lenet["ratio"] > 0 and lenet["ratio_median_block"] > 0

    for name, layout in [
        ("resnet18_step", "contiguous"),
        ("resnet18_step_channels_last", "channels_last"),
    ]:
        step = doc["measurements"][name]
        assert step["memory_format"] == layout
        assert step["batch"] == 2 and step["input"] == [3, 32, 32]
        assert step["ms_median"].keys() == {"bnlab", "torch"}
        assert step["ratio"] > 0 and step["ratio_median_round"] > 0

    targets = {t["measurement"]: t for t in doc["targets"]}
    assert targets.keys() == {"lenet_epoch", "resnet18_step"}
    for t in targets.values():
        assert t["max"] == 1.0 and isinstance(t["met"], bool)
        assert t["met"] == (t["ratio"] <= t["max"])
