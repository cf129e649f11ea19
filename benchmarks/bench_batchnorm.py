"""bnlab's portable backend vs torch's CPU batch norm, side by side in one process.

Prints a table and writes JSON (``--json PATH``).  Medians of interleaved repeats; the ratio
is bnlab time / torch time (lower is better; 1.0 is parity).  Run:

    .venv/bin/python benchmarks/bench_batchnorm.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from bnlab.functional import batch_norm

SHAPES = [(256, 64), (32, 64, 28, 28), (16, 128, 14, 14), (8, 32, 8, 16, 16)]


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench(shape: tuple[int, ...], backward: bool, repeats: int) -> dict:
    c = shape[1]
    x = torch.randn(shape, requires_grad=backward)
    w, b = torch.ones(c, requires_grad=backward), torch.zeros(c, requires_grad=backward)
    dy = torch.randn(shape)

    def run(f):
        def go():
            y = f(x, torch.zeros(c), torch.ones(c), w, b, training=True)
            if backward:
                y.backward(dy)

        return go

    ours, theirs = run(batch_norm), run(F.batch_norm)
    ours(), theirs()  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(repeats):  # interleave so drift on a shared machine hits both alike
        t_ours += _time(ours, 1)
        t_theirs += _time(theirs, 1)
    mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
    return {
        "shape": list(shape),
        "pass": "fwd+bwd" if backward else "fwd",
        "bnlab_ms": mo * 1e3,
        "torch_ms": mt * 1e3,
        "ratio": mo / mt,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [bench(s, bwd, args.repeats) for s in SHAPES for bwd in (False, True)]
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'shape':<22} {'pass':<8} {'bnlab ms':>9} {'torch ms':>9} {'ratio':>6}")
    for r in rows:
        print(
            f"{tuple(r['shape'])!s:<22} {r['pass']:<8} {r['bnlab_ms']:9.3f} "
            f"{r['torch_ms']:9.3f} {r['ratio']:6.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"torch": torch.__version__, "threads": args.threads, "rows": rows}, f, indent=1
            )


if __name__ == "__main__":
    main()
