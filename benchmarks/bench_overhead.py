"""Per-call cost of ``bnlab.functional.batch_norm``: this tree against an earlier revision.

Small tensors, where Python and autograd overhead dominate: training-mode forward + backward on
(256, 120) and (256, 16, 8, 8) float32, one thread.  The earlier revision (``--before REV``,
default ``HEAD``) is unpacked from git into a temporary folder and imported under another
package name, so both run side by side in one process, interleaved, with torch's own
``F.batch_norm`` as the yardstick.  Prints a table of medians and writes JSON (``--json``).

    .venv/bin/python benchmarks/bench_overhead.py --before 6bd6f16
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bnlab.functional import batch_norm

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(256, 120), (256, 16, 8, 8)]


def load_revision(rev: str, into: Path) -> Any:
    """``bnlab.functional`` as it was at ``rev``, imported as the package ``bnlab_before``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src/bnlab"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "src" / "bnlab"
    spec = importlib.util.spec_from_file_location(
        "bnlab_before", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bnlab_before"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("bnlab_before.functional")


def _step(fn: Callable[..., torch.Tensor], shape: tuple[int, ...]) -> Callable[[], None]:
    c = shape[1]
    x = torch.randn(shape, requires_grad=True)
    w, b = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
    rm, rv = torch.zeros(c), torch.ones(c)
    dy = torch.randn(shape)

    def go() -> None:
        fn(x, rm, rv, w, b, training=True).backward(dy)

    return go


def bench(
    fns: dict[str, Callable[..., torch.Tensor]], shape: tuple[int, ...], repeats: int
) -> dict:
    steps = {k: _step(f, shape) for k, f in fns.items()}
    for go in steps.values():
        for _ in range(20):  # warm-up
            go()
    times: dict[str, list[float]] = {k: [] for k in steps}
    order = list(steps.items())
    for i in range(repeats):  # interleaved, so drift on a shared machine hits every one alike,
        for k, go in order if i % 2 else order[::-1]:  # and each goes first as often

            t0 = time.perf_counter()
            for _ in range(10):
                go()
            times[k].append((time.perf_counter() - t0) / 10)
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    return {"shape": list(shape), "us": med}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default="HEAD", help="git revision to compare with (HEAD)")
    p.add_argument("--repeats", type=int, default=101)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        before = load_revision(args.before, Path(tmp))
        fns = {"torch": F.batch_norm, "before": before.batch_norm, "after": batch_norm}
        rows = [bench(fns, s, args.repeats) for s in SHAPES]
    print(
        f"torch {torch.__version__}, 1 thread, fwd+bwd per call, median of {args.repeats} "
        f"(µs); before = {args.before}"
    )
    print(f"{'shape':<18} {'torch':>8} {'before':>8} {'after':>8} {'after/before':>13}")
    for r in rows:
        us = r["us"]
        r["after_over_before"] = us["after"] / us["before"]
        print(
            f"{tuple(r['shape'])!s:<18} {us['torch']:8.1f} {us['before']:8.1f} "
            f"{us['after']:8.1f} {r['after_over_before']:13.2f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"torch": torch.__version__, "before": args.before, "rows": rows}, indent=1)
            + "\n"
        )


if __name__ == "__main__":
    main()
