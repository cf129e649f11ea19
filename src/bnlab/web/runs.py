"""Training runs for the explorer's training view: curves and percentile bands, compact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a half-written last line of a running experiment
    return out


def _bands(acts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per layer: steps and channel 0's 15/50/85th percentiles of the pre-activation."""
    layers: dict[str, dict[str, list[float]]] = {}
    for rec in acts:
        for name, q in rec.get("layers", {}).items():
            d = layers.setdefault(name, {"step": [], "q15": [], "q50": [], "q85": []})
            d["step"].append(rec["step"])
            for k in ("q15", "q50", "q85"):
                d[k].append(q[k][0])
    return layers


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Every folder under ``root`` holding metrics.jsonl, with its config, metrics and bands."""
    runs = []
    if not root.is_dir():
        return runs
    for metrics in sorted(root.rglob("metrics.jsonl")):
        folder = metrics.parent
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            config = {}
        runs.append(
            {
                "name": str(folder.relative_to(root)),
                "config": config,
                "metrics": _jsonl(metrics),
                "bands": _bands(_jsonl(folder / "activations.jsonl")),
            }
        )
    return runs
