"""SyncBatchNorm on 2 CPU ranks against local BN on each rank and one process on the whole batch.

Each rank (a process, gloo on 127.0.0.1, 1 thread) times training-mode forward+backward of
``bnlab.nn.SyncBatchNorm`` and of ``bnlab.nn.BatchNorm2d`` on its half of the global batch,
interleaved, medians; the parent times one process (``--threads``, default 2) doing the whole
batch.  Also the bytes each collective moves per call.  LeNet-sized and ResNet-sized inputs.

    .venv/bin/python benchmarks/sync_bn.py --json docs/results/sync_bn.json
    .venv/bin/python benchmarks/sync_bn.py --quick          # seconds: checks the harness
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch

SHAPES = {"LeNet-BN conv1": (256, 6, 24, 24), "ResNet-18 layer1": (32, 64, 56, 56)}
QUICK = {"tiny": (8, 4, 5, 5)}


def _time(fn, reps: int) -> float:
    fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _fwd_bwd(module, x, dy):
    def step():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).backward(dy)

    return step


def rank_main(rank: int, world: int, port: int, shapes: dict, reps: int, out: str) -> None:
    import torch.distributed as dist

    import bnlab.nn as bnn

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=timedelta(seconds=60),
    )  # fmt: skip
    result = {}
    for name, shape in shapes.items():
        local_shape = (shape[0] // world, *shape[1:])
        x = torch.randn(local_shape).requires_grad_()
        dy = torch.randn(local_shape)
        sync, local = bnn.SyncBatchNorm(shape[1]), bnn.BatchNorm2d(shape[1])
        times = {"sync": [], "local": []}
        for _ in range(5):  # interleaved rounds, both ranks in step (sync needs its peer)
            for kind, module in (("sync", sync), ("local", local)):
                dist.barrier()
                times[kind].append(_time(_fwd_bwd(module, x, dy), reps))
        result[name] = {k: statistics.median(v) for k, v in times.items()}
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collective_bytes(channels: int, world: int) -> dict:
    """Bytes each rank sends per call, and what each collective holds."""
    header, payload, grads = 3 * 8, 2 * channels * 8, 2 * channels * 8
    return {
        "forward: all_gather of (C, count, has-NaN) int64": {"per_rank": header,
                                                            "gathered": header * world},
        "forward: all_gather of (mean, M2) float64, 2·C": {"per_rank": payload,
                                                          "gathered": payload * world},
        "backward: all_reduce of (Σdy, Σdy·x̂) float64, 2·C": {"per_rank": grads},
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="threads of the one-process run")
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--rank-main", nargs=4, metavar=("RANK", "WORLD", "PORT", "OUT"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    shapes = QUICK if args.quick else SHAPES
    reps = 2 if args.quick else args.reps
    if args.rank_main:
        rank, world, port, out = args.rank_main
        rank_main(int(rank), int(world), int(port), shapes, reps, out)
        return
    import bnlab.nn as bnn

    world = 2
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ranks.json")
        port = _free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, __file__, *(["--quick"] if args.quick else []),
               "--reps", str(reps), "--rank-main"]  # fmt: skip
        procs = [subprocess.Popen([*cmd, str(r), str(world), str(port), out], env=env)
                 for r in range(world)]  # fmt: skip
        for proc in procs:
            proc.wait(timeout=600)
        if any(proc.returncode for proc in procs):
            sys.exit("a rank failed")
        ranks = json.loads(Path(out).read_text())
    torch.set_num_threads(args.threads)
    rows = []
    for name, shape in shapes.items():
        x, dy = torch.randn(shape).requires_grad_(), torch.randn(shape)
        one = _time(_fwd_bwd(bnn.BatchNorm2d(shape[1]), x, dy), reps)
        r = ranks[name]
        rows.append({
            "case": name, "global_batch": list(shape), "per_rank_batch": shape[0] // world,
            "seconds": {"sync, 2 ranks": r["sync"], "local, 2 ranks": r["local"],
                        f"one process, {args.threads} threads": one},
            "sync_over_local": r["sync"] / r["local"],
            "bytes": collective_bytes(shape[1], world),
        })  # fmt: skip
    print(f"{'case':<18} {'sync (2 ranks)':>15} {'local (2 ranks)':>16} {'one process':>12}")
    for row in rows:
        s = list(row["seconds"].values())
        print(f"{row['case']:<18} {s[0] * 1e3:13.2f} ms {s[1] * 1e3:14.2f} ms {s[2] * 1e3:10.2f} ms"
              f"   sync/local {row['sync_over_local']:.2f}")
    for row in rows:
        sent = sum(v["per_rank"] for v in row["bytes"].values())
        print(f"{row['case']}: each rank sends {sent} bytes per forward+backward")
    if args.json:
        doc = {"machine": {"cores": os.cpu_count(), "torch": torch.__version__}, "rows": rows}
        Path(args.json).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
