"""An epoch of LeNet-BN with bnlab's BN against the same with torch's BN, side by side.

Both models train on the same in-memory batches of Fashion-MNIST (random data with --fake),
interleaved block by block so that drift on a shared machine hits both alike.  Prints a table
and JSON; the target is ratio = bnlab / torch ≤ 1.3.

    .venv/bin/python benchmarks/bench_lenet_epoch.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from bnlab.experiments.models import init_xavier, lenet_bn


def _block(model, opt, loss_fn, xs, ys) -> float:
    t0 = time.perf_counter()
    for x, y in zip(xs, ys, strict=True):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blocks", type=int, default=7, help="timed blocks per model")
    p.add_argument("--block-batches", type=int, default=20)
    p.add_argument("--fake", action="store_true", help="random data instead of Fashion-MNIST")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.fake:
        x_all, y_all = (
            torch.rand(256 * args.block_batches, 1, 28, 28),
            torch.randint(0, 10, (256 * args.block_batches,)),
        )
    else:
        from bnlab.experiments.train import load_data

        x_all, y_all = load_data()[:2]
    xs = list(x_all[: 256 * args.block_batches].split(256))
    ys = list(y_all[: 256 * args.block_batches].split(256))
    runs = {}
    for kind in ("bnlab", "torch"):
        torch.manual_seed(0)
        model = lenet_bn(kind)  # type: ignore[arg-type]
        init_xavier(model)
        runs[kind] = (model, torch.optim.SGD(model.parameters(), lr=1.0))
    loss_fn = nn.CrossEntropyLoss()
    for m, o in runs.values():  # warm-up
        _block(m, o, loss_fn, xs[:3], ys[:3])
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.blocks):
        for kind, (m, o) in runs.items():
            times[kind].append(_block(m, o, loss_fn, xs, ys) / len(xs))
    per_batch = {k: statistics.median(v) for k, v in times.items()}
    epoch = {k: v * 235 for k, v in per_batch.items()}  # 60,000 / 256 → 235 batches
    ratio = per_batch["bnlab"] / per_batch["torch"]
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), median of {args.blocks} blocks "
        f"of {len(xs)} batches of 256"
    )
    print(f"{'BN':<8} {'ms/batch':>9} {'s/epoch':>8}")
    for k in runs:
        print(f"{k:<8} {per_batch[k] * 1e3:9.2f} {epoch[k]:8.2f}")
    print(f"ratio bnlab/torch = {ratio:.3f} (target ≤ 1.3)")
    doc = {
        "threads": args.threads,
        "ms_per_batch": {k: v * 1e3 for k, v in per_batch.items()},
        "s_per_epoch": epoch,
        "ratio": ratio,
        "target": 1.3,
    }
    print(json.dumps(doc))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
