"""Training with bnlab's BN against torch's: a LeNet-BN epoch and a ResNet-18 step, side by side.

Two measurements, each a pair of models with identical initial weights (one is built, its
``state_dict`` copied into the other), so that both do the same arithmetic:

* **LeNet-BN epoch**: recipes ``lenet-bn`` and ``lenet-bn-torch`` (their lr and batch size), one
  epoch of the real Fashion-MNIST training set (``--fake``: random data), plain SGD as the
  recipe trains.  The epoch runs in blocks of ``--block-batches`` batches, alternating between
  the models (and which goes first), so drift on a shared machine hits both alike.  Reported:
  each model's epoch seconds (the sum of its blocks), their ratio, and the median per-block ratio.
* **ResNet-18 step** (``benchmarks/resnet18.py``): batch 32 of random 3×64×64 images,
  cross-entropy, SGD with momentum 0.9; a step is zero_grad + forward + backward + step.
  After a warm-up, ``--rounds`` rounds of ``--steps`` steps per model, interleaved; medians of
  the per-step times, and their ratio.  ``--channels-last`` adds the same in channels-last.

The targets (the issue's): bnlab / torch ≤ 1.0 for both, at 2 threads, in the same run; the
LeNet target is judged on the median per-block ratio, the ResNet one on the ratio of the median
step times.  Prints a table; ``--json PATH`` writes the machine, the settings, every
measurement and the targets met or missed.

    .venv/bin/python benchmarks/train_step.py --threads 2 --channels-last --json train_step.json
    .venv/bin/python benchmarks/train_step.py --quick --json /tmp/train_step.json  # seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from resnet18 import resnet18
from torch import Tensor, nn

import bnlab
from bnlab import backends
from bnlab.experiments.recipes import RECIPES
from bnlab.experiments.train import epoch_seed
from bnlab.nn import BatchNorm2d

TARGET = 1.0  # bnlab / torch, at most
KINDS = ("bnlab", "torch")


def machine(threads: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    model_name = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model_name = line.split(":", 1)[1].strip()
                break
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "processor": platform.processor(),
        "cpu_model": model_name,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "bnlab": bnlab.__version__,
        "threads": threads,
    }


def _interleaved(kinds: Sequence[str], i: int) -> Sequence[str]:
    """The models' order in round ``i``: each goes first as often."""
    return kinds if i % 2 == 0 else kinds[::-1]


def _ratios(times: dict[str, list[float]]) -> list[float]:
    return [b / t for b, t in zip(times["bnlab"], times["torch"], strict=True)]


# --- LeNet-BN, one epoch -------------------------------------------------------------------


def _train(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    batches: list[tuple[Tensor, Tensor]],
    loss_fn: nn.Module,
) -> tuple[float, float]:
    """(seconds, last loss) of training ``model`` on ``batches``."""
    loss = torch.zeros(())
    t0 = time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, float(loss.detach())


def lenet_epoch(args: argparse.Namespace) -> dict[str, Any]:
    recipes = {"bnlab": RECIPES["lenet-bn"], "torch": RECIPES["lenet-bn-torch"]}
    recipe = recipes["bnlab"]
    bs = recipe.batch_size
    if args.fake:
        g = torch.Generator().manual_seed(0)
        n = bs * (args.batches or 8)
        xtr = torch.rand(n, 1, 28, 28, generator=g)  # N, 1, 28, 28
        ytr = torch.randint(0, 10, (n,), generator=g)
    else:
        from bnlab.experiments.data import fashion_mnist, to_float

        images, ytr = fashion_mnist("train")
        xtr = to_float(images)  # 60,000, 1, 28, 28 in [0, 1]
    full = math.ceil(len(xtr) / bs)  # 235 for Fashion-MNIST
    n_batches = min(full, args.batches) if args.batches else full

    torch.manual_seed(recipe.seed)
    models = {k: r.build_model() for k, r in recipes.items()}
    models["torch"].load_state_dict(models["bnlab"].state_dict())
    initial = {k: v.clone() for k, v in models["bnlab"].state_dict().items()}
    loss_fn = nn.CrossEntropyLoss()

    warm = [(xtr[i * bs : (i + 1) * bs], ytr[i * bs : (i + 1) * bs]) for i in range(args.warmup)]
    for m in models.values():  # warm-up, then back to the initial weights and statistics
        _train(m, torch.optim.SGD(m.parameters(), lr=recipe.lr), warm, loss_fn)
        m.load_state_dict(initial)
    opts = {k: torch.optim.SGD(m.parameters(), lr=recipes[k].lr) for k, m in models.items()}

    times: dict[str, list[float]] = {k: [] for k in KINDS}
    last_loss: dict[str, float] = {}
    block = 0
    for epoch in range(1, args.epochs + 1):
        g = torch.Generator().manual_seed(epoch_seed(recipe.seed, epoch))
        order = torch.randperm(len(xtr), generator=g)  # the data order train() uses
        for start in range(0, n_batches, args.block_batches):
            idx = [
                order[b * bs : (b + 1) * bs]
                for b in range(start, min(start + args.block_batches, n_batches))
            ]
            batches = [(xtr[i], ytr[i]) for i in idx]  # gathered before the clock starts
            for kind in _interleaved(KINDS, block):
                seconds, last_loss[kind] = _train(models[kind], opts[kind], batches, loss_fn)
                times[kind].append(seconds)
            block += 1
    seconds = {k: sum(v) for k, v in times.items()}
    total_batches = n_batches * args.epochs
    return {
        "data": "fake" if args.fake else "fashion-mnist",
        "recipes": {k: r.name for k, r in recipes.items()},
        "lr": recipe.lr,
        "batch_size": bs,
        "epochs": args.epochs,
        "batches_per_epoch": n_batches,
        "full_batches_per_epoch": full,
        "block_batches": args.block_batches,
        "blocks": block,
        "seconds": seconds,
        # seconds per full epoch (scaled up from the batches run, where --batches cut it short)
        "epoch_seconds": {k: v / total_batches * full for k, v in seconds.items()},
        "ms_per_batch": {k: v / total_batches * 1e3 for k, v in seconds.items()},
        "ratio": seconds["bnlab"] / seconds["torch"],
        "ratio_median_block": statistics.median(_ratios(times)),
        "last_loss": last_loss,
    }


# --- ResNet-18, one training step --------------------------------------------------------------


def _stepper(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def _resnet_pair(args: argparse.Namespace, channels_last: bool) -> dict[str, Callable[[], None]]:
    """A training step for each model, same weights, same batch."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    models = {
        "bnlab": resnet18(BatchNorm2d, args.classes, args.stem),
        "torch": resnet18(nn.BatchNorm2d, args.classes, args.stem),
    }
    models["torch"].load_state_dict(models["bnlab"].state_dict())
    x = torch.randn(args.batch, 3, args.size, args.size).to(memory_format=fmt)  # N, 3, H, W
    y = torch.randint(0, args.classes, (args.batch,))
    return {k: _stepper(m.to(memory_format=fmt), x, y) for k, m in models.items()}


def resnet_step(args: argparse.Namespace, channels_last: bool) -> dict[str, Any]:
    steps = _resnet_pair(args, channels_last)
    for step in steps.values():
        for _ in range(args.resnet_warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in KINDS}  # seconds per step, one per round
    for i in range(args.rounds):
        for kind in _interleaved(KINDS, i):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[kind]()
            times[kind].append((time.perf_counter() - t0) / args.steps)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {
        "batch": args.batch,
        "input": [3, args.size, args.size],
        "stem": args.stem,
        "classes": args.classes,
        "memory_format": "channels_last" if channels_last else "contiguous",
        "warmup_steps": args.resnet_warmup,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "ms_median": ms,
        "ms_min": {k: min(v) * 1e3 for k, v in times.items()},
        "ratio": ms["bnlab"] / ms["torch"],
        "ratio_median_round": statistics.median(_ratios(times)),
    }


def profile(args: argparse.Namespace, channels_last: bool, n: int) -> None:
    """Where a ResNet step's time goes, for each model: torch.profiler over ``n`` steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for kind, step in _resnet_pair(args, channels_last).items():
        for _ in range(2):
            step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(n):
                step()
        print(f"\n{kind}: {n} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


# --- the report ------------------------------------------------------------------------------


def targets(measurements: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    judged = {"lenet_epoch": "ratio_median_block", "resnet18_step": "ratio"}
    out = []
    for name, key in judged.items():
        if name in measurements:
            ratio = measurements[name][key]
            out.append(
                {
                    "measurement": name,
                    "judged_on": key,
                    "ratio": ratio,
                    "max": TARGET,
                    "met": ratio <= TARGET,
                }
            )
    return out


def report(doc: dict[str, Any]) -> None:
    m, s = doc["machine"], doc["settings"]
    print(
        f"{m['cpu_model'] or m['processor'] or '?'}, {m['cores_usable']} core(s); torch "
        f"{m['torch']}, {m['threads']} thread(s); bnlab's BN backend: {s['backend']} → "
        f"{doc['bnlab_kernels']}"
    )
    le = doc["measurements"].get("lenet_epoch")
    if le:
        cut = (
            ""
            if le["batches_per_epoch"] == le["full_batches_per_epoch"]
            else (f" (of {le['full_batches_per_epoch']}; s/epoch scaled up)")
        )
        print(
            f"\nLeNet-BN epoch: {le['data']}, {le['epochs']} epoch(s) of "
            f"{le['batches_per_epoch']} batches of {le['batch_size']}{cut}, SGD lr {le['lr']:g}, "
            f"{le['blocks']} interleaved blocks of {le['block_batches']}"
        )
        print(f"  {'BN':<8} {'seconds':>9} {'s/epoch':>9} {'ms/batch':>9} {'last loss':>10}")
        for k in KINDS:
            print(
                f"  {k:<8} {le['seconds'][k]:9.2f} {le['epoch_seconds'][k]:9.2f} "
                f"{le['ms_per_batch'][k]:9.2f} {le['last_loss'][k]:10.4f}"
            )
        print(
            f"  bnlab/torch: {le['ratio']:.3f} (epoch), {le['ratio_median_block']:.3f} "
            f"(median of {le['blocks']} blocks)"
        )
    rows = [v for k, v in doc["measurements"].items() if k.startswith("resnet18_step")]
    if rows:
        r0 = rows[0]
        print(
            f"\nResNet-18 training step: batch {r0['batch']}, "
            f"{'×'.join(map(str, r0['input']))}, {r0['stem']} stem, {r0['classes']} classes, SGD "
            f"momentum 0.9; median of {r0['rounds']} interleaved rounds × "
            f"{r0['steps_per_round']} steps"
        )
        print(f"  {'layout':<14} {'bnlab ms':>9} {'torch ms':>9} {'ratio':>7} {'per round':>10}")
        for r in rows:
            print(
                f"  {r['memory_format']:<14} {r['ms_median']['bnlab']:9.2f} "
                f"{r['ms_median']['torch']:9.2f} {r['ratio']:7.3f} {r['ratio_median_round']:10.3f}"
            )
    if doc["targets"]:
        print("\ntargets (bnlab / torch)")
        for t in doc["targets"]:
            print(
                f"  {t['measurement']:<14} {t['ratio']:.3f} ≤ {t['max']:.1f}  "
                f"{'met' if t['met'] else 'MISSED'}"
            )


QUICK = {  # --quick: a smoke run of a few seconds
    "fake": True,
    "batches": 4,
    "block_batches": 2,
    "warmup": 1,
    "batch": 2,
    "size": 32,
    "resnet_warmup": 1,
    "rounds": 2,
    "steps": 1,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    p.add_argument(
        "--backend",
        default="auto",
        choices=backends.BACKEND_NAMES,
        help="what bnlab's BN layers (backend 'auto') run with (auto)",
    )
    p.add_argument(
        "--only", choices=("lenet", "resnet"), default=None, help="run one of the two measurements"
    )
    p.add_argument("--json", default=None, metavar="PATH", help="write the results here")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few seconds: random data, a few tiny steps",
    )
    g = p.add_argument_group("LeNet-BN epoch")
    g.add_argument("--fake", action="store_true", help="random data instead of Fashion-MNIST")
    g.add_argument("--epochs", type=int, default=1)
    g.add_argument(
        "--batches",
        type=int,
        default=None,
        metavar="N",
        help="batches per epoch (default: all, 235)",
    )
    g.add_argument(
        "--block-batches", type=int, default=20, help="batches per interleaved block (20)"
    )
    g.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="warm-up batches per model, weights reset afterwards (3)",
    )
    g = p.add_argument_group("ResNet-18 step")
    g.add_argument("--batch", type=int, default=32)
    g.add_argument("--size", type=int, default=64, help="input height and width (64)")
    g.add_argument("--classes", type=int, default=10, choices=(10, 200))
    g.add_argument("--stem", default="imagenet", choices=("imagenet", "cifar"))
    g.add_argument("--resnet-warmup", type=int, default=3, help="warm-up steps per model (3)")
    g.add_argument("--rounds", type=int, default=15, help="interleaved rounds (15)")
    g.add_argument("--steps", type=int, default=3, help="steps per model per round (3)")
    g.add_argument(
        "--channels-last",
        action="store_true",
        help="also measure the step with channels-last model and input",
    )
    g.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="instead of timing, print torch.profiler tables of N steps per model",
    )
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    for name in ("epochs", "block_batches", "batch", "size", "rounds", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batches is not None and args.batches < 1:
        p.error("--batches must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with backends.prefer(args.backend):
        kernels = backends.select("auto", torch.zeros(2, 2)).name  # what bnlab's layers run
        if args.profile:
            profile(args, args.channels_last, args.profile)
            return
        measurements: dict[str, dict[str, Any]] = {}
        if args.only in (None, "lenet"):
            measurements["lenet_epoch"] = lenet_epoch(args)
        if args.only in (None, "resnet"):
            measurements["resnet18_step"] = resnet_step(args, channels_last=False)
            if args.channels_last:
                measurements["resnet18_step_channels_last"] = resnet_step(args, True)
    doc = {
        "benchmark": "train_step",
        "machine": machine(args.threads),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "bnlab_kernels": kernels,
        "measurements": measurements,
        "targets": targets(measurements),
    }
    report(doc)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
