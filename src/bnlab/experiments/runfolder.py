"""A run's folder: what a training run writes, continuing it, and tidying it after a failure.

A folder holds ``config.json``, ``metrics.jsonl`` and ``activations.jsonl`` (one row per epoch
and per record) and ``checkpoint.pt`` (the last finished epoch).  A run that fails leaves its
folder as its last checkpoint left it: the rows written after that checkpoint are dropped, and
a run that had saved no epoch yet removes what it had created.  Ctrl-C becomes
:class:`TrainingInterrupted`, which says where the run stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from ..errors import BNValueError
from .recipes import Recipe

RUN_FILES = ("config.json", "metrics.jsonl", "activations.jsonl", "checkpoint.pt")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`, raised once the run's folder is consistent again.

    ``out`` holds the checkpoint of epoch ``epochs_done`` and the metrics up to it (0: no epoch
    was saved, and what the call had created is removed).  ``epoch`` is the epoch in progress
    (the next one before its batches start), ``batch`` of ``batches`` the batch in
    progress in it (both 0 outside the batch loop), and ``phase`` what the run was doing:
    "reading the checkpoint", "loading data", "setting up", "training", "testing", "precise BN"
    or "saving checkpoint".
    """

    def __init__(
        self, out: Path, epoch: int, batch: int, batches: int, epochs_done: int, phase: str
    ) -> None:
        self.out, self.epoch, self.batch, self.batches = out, epoch, batch, batches
        self.epochs_done, self.phase = epochs_done, phase
        where = f"batch {batch}/{batches}, {phase}" if batches else phase
        saved = f"epoch {epochs_done} is saved" if epochs_done else "no epoch is saved"
        super().__init__(f"{out}: interrupted in epoch {epoch} ({where}); {saved}")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)  # atomic on POSIX: a crash leaves the old file or the new one


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_jsonl(path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    rows = [r for r in read_jsonl(path) if keep(r)]
    write_atomic(path, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in rows)))


def mismatch(out: Path, saved: dict[str, Any], asked: dict[str, Any]) -> str | None:
    """The resume error naming every setting that differs, with both values; None if none."""
    keys = [*asked, *(k for k in saved if k not in asked)]
    differ = [k for k in keys if k not in saved or k not in asked or saved[k] != asked[k]]
    if not differ:
        return None

    def show(config: dict[str, Any]) -> str:
        return ", ".join(f"{k}={config[k]!r}" if k in config else f"{k} unset" for k in differ)

    return (
        f"--resume: {out} was trained with {show(saved)}; this command asks for {show(asked)} "
        "(use the same settings, or another --out)"
    )


def starting_state(
    recipe: Recipe, out: Path, resume: bool, console: Console | None
) -> dict[str, Any] | None:
    """The checkpoint to continue from, or None to start at epoch 1; refuses what cannot be."""
    ckpt_path = out / "checkpoint.pt"
    if not resume:
        if (out / "metrics.jsonl").exists() or ckpt_path.exists():
            raise BNValueError(
                f"{out} already holds a run; pass --resume to continue it, or another --out"
            )
        return None
    if not out.exists():
        raise BNValueError(f"--resume: {out} does not exist; there is nothing to resume")
    if not ckpt_path.exists():
        if console is not None:
            console.print(
                f"--resume: no epoch of {out} had finished; starting it from the beginning"
            )
        return None
    state: dict[str, Any] = torch.load(ckpt_path, weights_only=False)
    message = mismatch(out, state["config"], asdict(recipe))
    if message is not None:
        raise BNValueError(message)
    return state


def saved_epoch(ckpt_path: Path, fallback: int) -> int:
    """The epoch of the checkpoint on disk (0: none), e.g. after Ctrl-C while it was written."""
    if not ckpt_path.exists():
        return 0
    try:
        return int(torch.load(ckpt_path, weights_only=False)["epoch"])
    except Exception:
        return fallback


class Folder:
    """What one call creates in a run's folder, to tidy up after a failure.

    Created means absent when the call began, or removed by it as a leftover; everything else
    in the folder (a run being resumed, unrelated files) is never deleted.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.new_dirs = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
        names = [*RUN_FILES, *(n + ".tmp" for n in RUN_FILES)]
        self.new_files = [out / n for n in names if not (out / n).exists()]

    def discard(self, name: str) -> None:
        """Delete a leftover of an earlier attempt: the file written in its place is this call's."""
        (self.out / name).unlink(missing_ok=True)
        self.new_files.append(self.out / name)

    def tidy(self, epochs_done: int) -> None:
        """Back to the checkpoint of ``epochs_done``, or (0) remove what this call created."""
        if epochs_done == 0:
            for f in self.new_files:
                f.unlink(missing_ok=True)
            for d in self.new_dirs:
                try:
                    d.rmdir()
                except OSError:  # not empty: something this call did not make lives there
                    break
            return
        for f in self.new_files:
            if f.suffix == ".tmp":
                f.unlink(missing_ok=True)  # a write that was cut short
        for name in ("metrics.jsonl", "activations.jsonl"):
            if (self.out / name).exists():
                truncate_jsonl(self.out / name, lambda r: r["epoch"] <= epochs_done)


@dataclass
class Position:
    """Where a run is, for :class:`TrainingInterrupted`."""

    epoch: int
    epochs_done: int
    phase: str = "loading data"
    batch: int = 0
    batches: int = 0
