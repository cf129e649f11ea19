"""A training run read back from its folder: ``Run``, ``load_run`` and ``expand`` (suites).

A run is a folder written by :func:`bnlab.experiments.train.train` (``config.json``,
``metrics.jsonl``, ``activations.jsonl``); a suite (``bn-paper-fig1``, ``lr-sweep``) is a folder
of such runs.

Runs that are still being written are fine: a last line without its newline (a write in
progress) is ignored, and a suite's sub-run without a finished epoch is skipped with a note.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import BNValueError

METRIC_KEYS = ("epoch", "step", "train_loss", "train_acc", "test_acc", "seconds")
ACTIVATION_KEYS = ("epoch", "step", "layers")
QUANTILE_KEYS = ("q15", "q50", "q85")


# --- loading -----------------------------------------------------------------------------------


@dataclass
class Run:
    """One training run as read from its folder."""

    path: Path
    name: str  # config.json's name, else the folder's name
    config: dict[str, Any]
    metrics: list[dict[str, Any]]  # one row per finished epoch, in order
    activations: list[dict[str, Any]] = field(default_factory=list)
    suite: str | None = None  # the suite folder it was found in, if any

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics[-1]

    @property
    def label(self) -> str:
        """The name, prefixed by its suite for a suite's sub-run: bn-paper-fig1/with-bn."""
        target, _, is_suite = _recipe_for(self)
        return f"{target}/{self.name}" if is_suite and target != self.name else self.name

    @property
    def precise(self) -> float | None:
        """The last precise-BN test accuracy recorded (None when the run has none)."""
        values = [r.get("test_acc_precise") for r in self.metrics]
        values = [v for v in values if _is_number(v)]
        return values[-1] if values else None


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _read_jsonl(folder: Path, path: Path, required: Sequence[str]) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")  # the last item is "" when the file ends with a newline
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):  # no newline yet: the trainer is writing this line right now
                break
            raise BNValueError(
                f"{folder}: {path.name} line {i} is not valid JSON ({e.msg})"
            ) from None
        if not isinstance(row, dict):
            raise BNValueError(f"{folder}: {path.name} line {i} is not a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise BNValueError(
                f"{folder}: {path.name} line {i} lacks {', '.join(repr(k) for k in missing)}"
            )
        rows.append(row)
    return rows


def _check_metrics(folder: Path, rows: list[dict[str, Any]]) -> None:
    for i, row in enumerate(rows, 1):
        for k in METRIC_KEYS:
            if not _is_number(row[k]):
                raise BNValueError(
                    f"{folder}: metrics.jsonl row {i}: {k!r} is {row[k]!r}, not a number"
                )
        p = row.get("test_acc_precise")
        if p is not None and not _is_number(p):
            raise BNValueError(
                f"{folder}: metrics.jsonl row {i}: 'test_acc_precise' is {p!r}, not a number"
            )


def _check_activations(folder: Path, rows: list[dict[str, Any]]) -> None:
    for i, row in enumerate(rows, 1):
        layers = row["layers"]
        if not isinstance(layers, dict):
            raise BNValueError(f"{folder}: activations.jsonl row {i}: 'layers' is not an object")
        for name, q in layers.items():
            ok = isinstance(q, dict) and all(isinstance(q.get(k), list) for k in QUANTILE_KEYS)
            if not ok or not len(q["q15"]) == len(q["q50"]) == len(q["q85"]):
                raise BNValueError(
                    f"{folder}: activations.jsonl row {i}: layer {name!r} needs q15, q50 and "
                    "q85 lists of one length"
                )


def load_run(path: str | Path) -> Run:
    """Read one run folder; a missing or malformed file is a ``BNValueError`` naming the folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise BNValueError(f"{folder}: no such run folder")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise BNValueError(f"{folder}: no config.json (not a run folder written by bnlab train)")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BNValueError(f"{folder}: config.json is not valid JSON ({e.msg})") from None
    if not isinstance(config, dict):
        raise BNValueError(f"{folder}: config.json is not a JSON object")
    metrics_path = folder / "metrics.jsonl"
    if not metrics_path.is_file():
        raise BNValueError(f"{folder}: no metrics.jsonl (has the run finished an epoch?)")
    metrics = _read_jsonl(folder, metrics_path, METRIC_KEYS)
    if not metrics:
        raise BNValueError(f"{folder}: metrics.jsonl holds no epoch yet")
    _check_metrics(folder, metrics)
    act_path = folder / "activations.jsonl"
    activations = _read_jsonl(folder, act_path, ACTIVATION_KEYS) if act_path.is_file() else []
    _check_activations(folder, activations)
    name = config.get("name")
    return Run(
        path=folder,
        name=name if isinstance(name, str) and name else folder.name,
        config=config,
        metrics=metrics,
        activations=activations,
    )


def _natural(s: str) -> tuple[Any, ...]:
    """Sort key with numbers as numbers: lr0.03 < lr1.9 < lr4.4 < lr10."""
    parts = re.split(r"(\d+(?:\.\d+)?)", s)
    return tuple(float(p) if i % 2 else p for i, p in enumerate(parts))


def _has_epoch(folder: Path) -> bool:
    p = folder / "metrics.jsonl"
    return p.is_file() and any(line.strip() for line in p.read_text(encoding="utf-8").split("\n"))


def expand(run_dirs: Sequence[str | Path]) -> tuple[list[Run], list[str]]:
    """Load run folders and suite folders (expanded to their sub-runs, in natural order).

    Returns the runs and notes on sub-runs skipped because they have no finished epoch yet.
    """
    runs: list[Run] = []
    skipped: list[str] = []
    for d in run_dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise BNValueError(f"{folder}: no such folder")
        if (folder / "metrics.jsonl").exists() or (folder / "config.json").exists():
            runs.append(load_run(folder))
            continue
        subs = sorted(
            (
                c
                for c in folder.iterdir()
                if c.is_dir() and ((c / "metrics.jsonl").exists() or (c / "config.json").exists())
            ),
            key=lambda c: (_natural(c.name), c.name),
        )
        if not subs:
            raise BNValueError(
                f"{folder}: neither a run (no metrics.jsonl) nor a suite of runs "
                "(no sub-folder holds one)"
            )
        for sub in subs:
            if not _has_epoch(sub):
                skipped.append(f"{sub}: no finished epoch yet")
                continue
            runs.append(replace(load_run(sub), suite=folder.name))
    if not runs:
        raise BNValueError("compare: no run with a finished epoch to draw")
    return runs, skipped


def _recipe_for(run: Run) -> tuple[str, Any, bool]:
    """(what to pass to bnlab train, the recipe that wrote the run or None, is it a suite)."""
    from .recipes import RECIPES, suites

    if run.suite is None and run.name in RECIPES:
        return run.name, RECIPES[run.name], False
    for s in suites().values():
        match = [r for r in s.runs if r.name == run.name]
        if match and run.suite in (None, s.name):
            return s.name, match[0], True
    return run.suite or run.name, None, run.suite is not None
