"""benchmarks/sync_bn.py runs: two gloo ranks and one process on a tiny shape (no timing judged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_every_measurement(tmp_path):
    out = tmp_path / "sync.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sync_bn.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=180, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert set(row["seconds"]) == {"sync, 2 ranks", "local, 2 ranks", "one process, 2 threads"}
    assert all(v > 0 for v in row["seconds"].values())
    # C = 4: the header is 3 int64, the payload and the gradient sums 2·C float64 each
    assert [v["per_rank"] for v in row["bytes"].values()] == [24, 64, 64]
