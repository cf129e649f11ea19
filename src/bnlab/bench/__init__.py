"""``bnlab bench``: bnlab's batch norm against torch's, the textbook's and the memory floor.

For each case (a shape, dtype and layout from LeNet-BN and ResNet-18), training mode, forward
and forward+backward, warm and cache-cold, in one process with the implementations interleaved
(:mod:`bnlab.bench.timing`):

* ``fused``: ``bnlab.nn.BatchNorm*d(backend='cpu-fused')``, the compiled kernels;
* ``portable``: ``bnlab.nn.BatchNorm*d(backend='torch')``, bnlab's vectorized torch ops;
* ``torch``: ``torch.nn.BatchNorm*d``, torch's own kernel;
* ``textbook``: ``bnlab.nn.D2LBatchNorm``, the book's layer, autograd through mean and variance;
* ``copy``: the memory floor, ``torch.add(x, 1, out=y)`` on a tensor of the same size.

Each time is given as a ratio to torch's and to the copy's.  Batch norm is memory-bound:
forward+backward reads the input about 3 times and the gradient twice and writes two tensors,
so about 4 copies' time is its floor.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import timing

IMPLEMENTATIONS = ("fused", "portable", "torch", "textbook", "copy")
MODES = ("forward", "forward+backward")


@dataclass(frozen=True)
class Case:
    """One batch-norm input: where it occurs in a network, its shape, dtype and layout."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    channels_last: bool = False

    @property
    def kind(self) -> str:
        """'fc' for (N, C), 'conv' for images."""
        return "fc" if len(self.shape) == 2 else "conv"

    @property
    def large(self) -> bool:
        """Far bigger than the caches: where the memory floor is the yardstick."""
        n = 1
        for s in self.shape:
            n *= s
        return n >= 1 << 21

    def label(self) -> str:
        extra = [str(self.dtype).removeprefix("torch.")] if self.dtype != torch.float32 else []
        if self.channels_last:
            extra.append("channels_last")
        shape = "×".join(str(s) for s in self.shape)
        return f"{shape}" + (f" ({', '.join(extra)})" if extra else "")


CASES: tuple[Case, ...] = (
    Case("LeNet-BN conv1", (256, 6, 24, 24)),
    Case("LeNet-BN conv2", (256, 16, 8, 8)),
    Case("LeNet-BN fc1", (256, 120)),
    Case("LeNet-BN fc2", (256, 84)),
    Case("ResNet-18 layer1", (32, 64, 56, 56)),
    Case("ResNet-18 layer3", (16, 256, 28, 28)),
    Case("ResNet-18 layer1", (32, 64, 56, 56), channels_last=True),
    Case("ResNet-18 layer3", (16, 256, 28, 28), dtype=torch.bfloat16),
)

# the harness itself, on shapes small enough for a test
QUICK_CASES: tuple[Case, ...] = (
    Case("tiny conv", (4, 3, 5, 5)),
    Case("tiny fc", (8, 5)),
    Case("tiny conv", (2, 4, 3, 3), channels_last=True),
    Case("tiny conv", (2, 3, 4, 4), dtype=torch.bfloat16),
)


def _modules(case: Case) -> dict[str, nn.Module]:
    import bnlab.nn as bnn

    c, nd = case.shape[1], len(case.shape)
    ours = {2: bnn.BatchNorm1d, 3: bnn.BatchNorm1d, 4: bnn.BatchNorm2d, 5: bnn.BatchNorm3d}[nd]
    theirs = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[nd]
    found: dict[str, nn.Module] = {
        "fused": ours(c, backend="cpu-fused"),
        "portable": ours(c, backend="torch"),
        "torch": theirs(c),
    }
    if nd in (2, 4):
        found["textbook"] = bnn.D2LBatchNorm(c, num_dims=nd)
    return found


def _input(case: Case, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(case.shape, generator=g).to(case.dtype)
    if case.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _callables(case: Case, mode: str) -> dict[str, timing.Fn]:
    x = _input(case, 0).requires_grad_(mode != "forward")
    dy = _input(case, 1)
    fns: dict[str, timing.Fn] = {}
    for name, module in _modules(case).items():
        module.train()
        params = [p for p in module.parameters()]

        def fwd(module: nn.Module = module) -> object:
            return module(x)

        def fwd_bwd(module: nn.Module = module, params: list[Tensor] = params) -> object:
            return torch.autograd.grad(module(x), [x, *params], dy)

        fns[name] = fwd if mode == "forward" else fwd_bwd
    out = torch.empty_like(x, requires_grad=False)
    xd = x.detach()
    fns["copy"] = lambda: torch.add(xd, 1, out=out)
    return fns


def _usable(fns: dict[str, timing.Fn]) -> dict[str, timing.Fn]:
    """The implementations that run on this case (the textbook's may refuse a dtype)."""
    kept = {}
    for name, fn in fns.items():
        try:
            fn()
        except (RuntimeError, TypeError, ValueError):
            continue
        kept[name] = fn
    return kept


def measure(case: Case, mode: str, cold: bool, rounds: int, flush: timing.Flusher | None
            ) -> dict[str, float]:
    """Median seconds per call of every implementation on ``case``."""
    fns = _usable(_callables(case, mode))
    samples = timing.interleaved(fns, rounds, flush if cold else None)
    return {name: timing.median(s) for name, s in samples.items()}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "last_level_cache_mib": timing.last_level_cache_bytes() / (1 << 20),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def build_time() -> dict[str, Any]:
    """The fused kernels' compile time, measured now into a temporary folder (the cached build
    is left alone), and whether this process found them cached."""
    from ..backends.fused import build

    info: dict[str, Any] = {"cached_library": None, "compile_seconds": None}
    cxx = build.compiler()
    if cxx is None:
        info["error"] = "no C++ compiler"
        return info
    info["cached_library"] = str(build.library_path(cxx))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        try:
            build._compile(cxx, Path(tmp) / "probe.so")
        except build.KernelsUnavailable as e:
            info["error"] = str(e)
            return info
        info["compile_seconds"] = time.perf_counter() - start
    return info


def run(
    cases: tuple[Case, ...] = CASES,
    rounds: int = 25,
    cold: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every case × mode × cache state; a JSON-ready dict (see :mod:`bnlab.bench.report`)."""
    from ..backends.fused import build

    start = time.perf_counter()
    build.library()  # before any timing: a first build is not a batch norm's time
    first = time.perf_counter() - start
    allocator = timing.steady_allocator()
    flush = timing.Flusher() if cold else None
    rows = []
    for case in cases:
        for mode in MODES:
            for state in ("warm", "cold") if cold else ("warm",):
                if progress is not None:
                    progress(f"{case.name} {case.label()}: {mode}, {state}")
                medians = measure(case, mode, state == "cold", rounds, flush)
                rows.append(
                    {
                        "case": case.name,
                        "shape": list(case.shape),
                        "label": case.label(),
                        "dtype": str(case.dtype).removeprefix("torch."),
                        "channels_last": case.channels_last,
                        "kind": case.kind,
                        "large": case.large,
                        "mode": mode,
                        "cache": state,
                        "seconds": medians,
                    }
                )
    return {
        "machine": machine(),
        "allocator": allocator,
        "rounds": rounds,
        "first_call_seconds": first,
        "build": build_time(),
        "rows": rows,
    }
