"""What ``bnlab.inspect.monitor`` costs: a ResNet-18 training step with and without it, and memory.

Two measurements on ``benchmarks/resnet18.py`` (torch's ``BatchNorm2d`` by default, ``--bn
bnlab`` for bnlab's), batch 32 of random 3×64×64 images:

* **step time**: a training step is zero_grad + forward + backward + SGD step (momentum 0.9).
  After a warm-up, ``--rounds`` rounds of ``--steps`` steps each way, interleaved (which goes
  first alternates); a monitored round enters ``monitor(model)`` around its steps, so entry and
  exit are paid inside the clock.  Reported: the medians of the per-step times, their ratio
  (the target: monitored / plain ≤ 1.10), and the median of the per-round ratios.
* **memory**: one monitor over ``--memory-batches`` (200) training-mode forward passes.  The
  monitor's own retained bytes (numel × element size over every LayerSummary tensor) after 10
  batches and at the end must be equal: the summary is O(channels), not O(batches).  The
  process's resident set size (VmRSS) at the same two points is supporting evidence.

    .venv/bin/python benchmarks/inspect_monitor.py --json /tmp/inspect_monitor.json
    .venv/bin/python benchmarks/inspect_monitor.py --quick  # seconds
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from resnet18 import resnet18
from torch import Tensor, nn
from train_step import _stepper, machine

from bnlab.inspect import Monitor, monitor
from bnlab.nn import BatchNorm2d

TARGET = 1.10  # monitored / plain step time, at most
KINDS = ("plain", "monitored")
CHECKPOINT = 10  # the memory is read after this many batches, and at the end
BN = {"torch": nn.BatchNorm2d, "bnlab": BatchNorm2d}


def _rss_bytes() -> int | None:
    """The process's resident set size now (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _summary_bytes(mon: Monitor) -> int:
    return sum(s.nbytes for s in mon.layers.values())


def _model(args: argparse.Namespace) -> nn.Module:
    torch.manual_seed(0)
    return resnet18(BN[args.bn], args.classes, args.stem)


def _data(args: argparse.Namespace) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g)  # N, 3, H, W
    y = torch.randint(0, args.classes, (args.batch,), generator=g)
    return x, y


def step_time(args: argparse.Namespace) -> dict[str, Any]:
    model = _model(args)
    x, y = _data(args)
    step = _stepper(model, x, y)
    for _ in range(args.warmup):
        step()
    with monitor(model):
        step()  # the monitored path warmed up too
    times: dict[str, list[float]] = {k: [] for k in KINDS}  # seconds per step, one per round
    layers = 0
    for i in range(args.rounds):
        for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
            t0 = time.perf_counter()
            if kind == "plain":
                for _ in range(args.steps):
                    step()
            else:
                with monitor(model) as mon:
                    for _ in range(args.steps):
                        step()
                layers = len(mon.layers)
            times[kind].append((time.perf_counter() - t0) / args.steps)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    ratios = [m / p for m, p in zip(times["monitored"], times["plain"], strict=True)]
    return {
        "bn": args.bn,
        "batch": args.batch,
        "input": [3, args.size, args.size],
        "stem": args.stem,
        "bn_layers": layers,
        "warmup_steps": args.warmup,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "ms_median": ms,
        "ms_min": {k: min(v) * 1e3 for k, v in times.items()},
        "ratio": ms["monitored"] / ms["plain"],
        "ratio_median_round": statistics.median(ratios),
    }


def memory(args: argparse.Namespace) -> dict[str, Any]:
    model = _model(args).train()
    x, _ = _data(args)
    with torch.no_grad():
        model(x)  # allocator and kernels warm before the first reading
    rss = {"before": _rss_bytes()}
    held: dict[str, int] = {}
    with torch.no_grad(), monitor(model) as mon:
        for i in range(1, args.memory_batches + 1):
            model(x)
            if i in (CHECKPOINT, args.memory_batches):
                key = "after_checkpoint" if i == CHECKPOINT else "after_all"
                held[key] = _summary_bytes(mon)
                held[f"{key}_with_entry_copies"] = mon.nbytes
                rss[key] = _rss_bytes()
    calls = {s.calls for s in mon.layers.values()}
    return {
        "bn": args.bn,
        "batch": args.batch,
        "input": [3, args.size, args.size],
        "batches": args.memory_batches,
        "checkpoint": CHECKPOINT,
        "calls_per_layer": sorted(calls),
        "bn_layers": len(mon.layers),
        "channels": sum(s.num_features for s in mon.layers.values()),
        "summary_bytes": held,
        "summary_bytes_equal": held["after_checkpoint"] == held["after_all"],
        "rss_bytes": rss,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    st = doc["measurements"].get("step_time")
    if st:
        ratio = st["ratio"]
        out.append(
            {"measurement": "step_time", "ratio": ratio, "max": TARGET, "met": ratio <= TARGET}
        )
    mem = doc["measurements"].get("memory")
    if mem:
        out.append({"measurement": "memory", "met": mem["summary_bytes_equal"]})
    return out


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.1f} MiB"


def report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(
        f"{m['cpu_model'] or m['processor'] or '?'}, {m['cores_usable']} core(s); torch "
        f"{m['torch']}, {m['threads']} thread(s)"
    )
    st = doc["measurements"]["step_time"]
    print(
        f"\nResNet-18 training step ({st['bn']} BN, {st['bn_layers']} layers): batch "
        f"{st['batch']}, {'×'.join(map(str, st['input']))}, SGD momentum 0.9; median of "
        f"{st['rounds']} interleaved rounds × {st['steps_per_round']} steps"
    )
    print(f"  {'':<10} {'ms/step':>9} {'min ms':>9}")
    for k in KINDS:
        print(f"  {k:<10} {st['ms_median'][k]:9.2f} {st['ms_min'][k]:9.2f}")
    print(
        f"  monitored / plain: {st['ratio']:.3f} (medians), "
        f"{st['ratio_median_round']:.3f} (median per round)"
    )
    mem = doc["measurements"]["memory"]
    held, rss = mem["summary_bytes"], mem["rss_bytes"]
    print(
        f"\nmemory: one monitor over {mem['batches']} forward passes (batch {mem['batch']}), "
        f"{mem['bn_layers']} layers, {mem['channels']} channels"
    )
    print(
        f"  {'':<22} {'after ' + str(mem['checkpoint']):>14} {'after ' + str(mem['batches']):>14}"
    )
    print(f"  {'summary tensors':<22} {held['after_checkpoint']:>12} B {held['after_all']:>12} B")
    print(
        f"  {'+ entry copies':<22} {held['after_checkpoint_with_entry_copies']:>12} B "
        f"{held['after_all_with_entry_copies']:>12} B"
    )
    print(
        f"  {'process RSS':<22} {_mib(rss['after_checkpoint']):>14} {_mib(rss['after_all']):>14}"
        f"   (before: {_mib(rss['before'])}, peak {_mib(mem['peak_rss_bytes'])})"
    )
    print("\ntargets")
    for t in doc["targets"]:
        what = (
            f"monitored / plain {t['ratio']:.3f} ≤ {t['max']:.2f}"
            if "ratio" in t
            else "summary bytes equal after 10 and all batches"
        )
        print(f"  {t['measurement']:<10} {what}  {'met' if t['met'] else 'MISSED'}")


QUICK = {"batch": 2, "size": 32, "warmup": 1, "rounds": 2, "steps": 1, "memory_batches": 20}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results here")
    p.add_argument(
        "--quick", action="store_true", help="a smoke run: batch 2, 3×32×32, 2 rounds, 20 passes"
    )
    p.add_argument("--bn", default="torch", choices=tuple(BN), help="the BN class (torch)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=64, help="input height and width (64)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--stem", default="imagenet", choices=("imagenet", "cifar"))
    p.add_argument("--warmup", type=int, default=3, help="warm-up steps (3)")
    p.add_argument("--rounds", type=int, default=15, help="interleaved rounds (15)")
    p.add_argument("--steps", type=int, default=3, help="steps per round each way (3)")
    p.add_argument("--memory-batches", type=int, default=200, help="monitored forward passes (200)")
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    for name in ("batch", "size", "rounds", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.memory_batches < CHECKPOINT:
        p.error(f"--memory-batches must be at least {CHECKPOINT}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    measurements = {"step_time": step_time(args), "memory": memory(args)}
    doc: dict[str, Any] = {
        "benchmark": "inspect_monitor",
        "machine": machine(args.threads),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "measurements": measurements,
    }
    doc["targets"] = targets(doc)
    report(doc)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
