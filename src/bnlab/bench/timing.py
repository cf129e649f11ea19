"""Timing on a shared, noisy machine: interleaved rounds, medians, warm and cache-cold.

Every implementation of one case is timed in the same rounds, one after another in an order
that rotates each round, so that a slow spell of the machine hits all of them alike; each
reports the median of its repetitions.  *Cold* repetitions first write a buffer twice the size
of the last-level cache, so the call's tensors come from memory rather than from cache (what
a layer of a real network sees: its input was written by the previous layer long ago, in
cache terms, only for small networks).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

Fn = Callable[[], object]


def last_level_cache_bytes() -> int:
    """The largest CPU cache's size from sysfs (32 MiB when it cannot be read)."""
    best = 0
    for size in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = size.read_text().strip()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            best = max(best, int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return best or 32 << 20


class Flusher:
    """Evicts the caches: writes 2× the last-level cache of unrelated memory."""

    def __init__(self) -> None:
        self.buffer = torch.zeros(2 * last_level_cache_bytes() // 4, dtype=torch.float32)

    def __call__(self) -> None:
        self.buffer.add_(1.0)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def steady_allocator() -> str:
    """Make glibc's malloc keep and reuse freed memory; says what was done.

    By default glibc hands a big freed block back to the system and faults fresh pages in for
    the next allocation, depending on what was freed before (its mmap threshold adapts): a
    batch norm's time would then include a few hundred µs of page faults or not according to
    which implementation ran before it.  Fixed thresholds make freed memory reusable, as
    jemalloc or tcmalloc (often preloaded for PyTorch on CPU) keep it; every implementation is
    measured on the same footing.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return "unchanged (no glibc mallopt)"
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) and mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
    return "glibc: freed memory kept for reuse (mallopt)" if ok else "unchanged (mallopt refused)"


def time_once(fn: Fn, calls: int) -> float:
    """Seconds per call of ``fn``, over ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def calls_per_sample(fn: Fn, target_s: float = 2e-3, least: int = 3) -> int:
    """How many back-to-back calls make one sample of about ``target_s`` (≥ ``least``)."""
    once = time_once(fn, 1)
    once = min(once, time_once(fn, 1))
    return max(least, min(1000, int(target_s / max(once, 1e-7))))


def interleaved(
    fns: dict[str, Fn],
    rounds: int,
    flush: Flusher | None = None,
    warmup: int = 2,
) -> dict[str, list[float]]:
    """Per name, the seconds per call of each round (names rotate order every round).

    Warm: each sample is two untimed calls (which leave the caches as this implementation
    leaves them, whatever ran before it: one is not enough after a layer that swept 30 MB),
    then at least three timed back-to-back calls (and enough for ~2 ms, so the timer's
    resolution does not matter).  Cold (``flush`` given): the caches are flushed before every
    single call, and that call alone is timed.
    """
    names = list(fns)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    calls = {n: 1 if flush is not None else calls_per_sample(fns[n]) for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if flush is not None:
                flush()
            else:
                fns[name]()
                fns[name]()
            samples[name].append(time_once(fns[name], calls[name]))
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)
