"""Option values, parsed and checked before any work starts.

Each parser takes the option's name and the text the user typed, and returns the value or
raises :class:`UsageError` with one line naming the option, what came and what is expected.
"""

from __future__ import annotations

import math
from pathlib import Path

SEED_MAX = (1 << 64) - 1  # torch.manual_seed takes an unsigned 64-bit seed


class UsageError(Exception):
    """A bad option value, reported as one line with exit status 2."""


def ints(option: str, text: str, example: str = "2,2,2,2") -> tuple[int, ...]:
    """Comma-separated integers (``2,3,4,4``)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(
            f"{option}: expected comma-separated integers like {example} (got {text!r})"
        ) from None


def shape(option: str, text: str) -> tuple[int, ...]:
    """A tensor shape N,C[,H[,W[,D]]] of 2 to 5 positive sizes."""
    values = ints(option, text, "2,3,4,4")
    if not 2 <= len(values) <= 5 or any(v < 1 for v in values):
        raise UsageError(f"{option}: expected 2 to 5 positive sizes N,C[,H[,W[,D]]] (got {text!r})")
    return values


def number(option: str, text: str, *, positive: bool = False) -> float:
    """One finite number (and > 0 when ``positive``); nan, inf and 1e400 are refused."""
    what = "a positive number" if positive else "a finite number"
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option}: expected {what} (got {text!r})") from None
    if not math.isfinite(value) or (positive and not value > 0):
        raise UsageError(f"{option}: expected {what} (got {text!r})")
    return value


def numbers(option: str, text: str) -> list[float]:
    """Comma-separated finite numbers (``2,5`` or ``-0.5,1``)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(
            f"{option}: expected comma-separated numbers like 2,5 (got {text!r})"
        ) from None
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise UsageError(f"{option}: expected finite numbers (got {text!r}, which holds {bad[0]})")
    return values


def count(option: str, text: str) -> int:
    """A positive integer (epochs, a batch size, a number of batches)."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{option}: expected a positive whole number (got {text!r})") from None
    if value < 1:
        raise UsageError(f"{option}: expected a positive whole number (got {text!r})")
    return value


def whole(option: str, text: str) -> int:
    """A whole number ≥ 0 (an index: a channel)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"{option}: expected a whole number ≥ 0 (got {text!r})")
    return value


def seed(option: str, text: str) -> int:
    """A seed for torch.manual_seed: a whole number from 0 to 2⁶⁴ − 1."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(
            f"{option}: expected a whole number from 0 to {SEED_MAX} (got {text!r})"
        ) from None
    if not 0 <= value <= SEED_MAX:
        raise UsageError(f"{option}: expected a whole number from 0 to 2^64 − 1 (got {text})")
    return value


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a folder, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def out_folder(option: str, text: str, holds: str) -> Path:
    """A folder to write into: it may exist (as a folder) or not yet; never a file."""
    path = Path(text)
    if text == "":
        raise UsageError(f"{option}: expected a folder for {holds} (got '')")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option}: {text} is a file; expected a folder for {holds}")
    blocker = _blocking_file(path)
    if blocker is not None:
        raise UsageError(f"{option}: {blocker} is a file, so {text} cannot be a folder")
    return path


def out_file(option: str, text: str, example: str) -> Path:
    """A file to write: it may exist (as a file) or not yet; never a folder."""
    path = Path(text)
    if text == "" or path.is_dir() or text.endswith(("/", "\\")):
        raise UsageError(
            f"{option}: {text or repr(text)} is a folder; expected a file path like {example}"
        )
    blocker = _blocking_file(path)
    if blocker is not None:
        raise UsageError(f"{option}: {blocker} is a file, so {text} cannot be written")
    return path


def in_folder(option: str, text: str, holds: str) -> Path:
    """A folder to read that must exist."""
    path = Path(text)
    if not path.exists():
        raise UsageError(f"{option}: {text} does not exist; expected a folder of {holds}")
    if not path.is_dir():
        raise UsageError(f"{option}: {text} is a file; expected a folder of {holds}")
    return path
