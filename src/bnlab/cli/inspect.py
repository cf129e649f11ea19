"""``bnlab inspect RUN_DIR``: the batch-norm health check of a run's checkpoint, on its data.

The run's model is rebuilt from its recipe and checkpoint, checked on training batches of the
recipe's size (:func:`bnlab.inspect.check`), and its test accuracy is measured with the running
statistics and after recalibrating them on the whole training set (on a copy).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import output, values
from .values import UsageError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="the BN health check of a training run's checkpoint, with accuracy "
        "before and after recalibrate",
        description="Rebuild a run's model from its checkpoint, check every BN layer on "
        "training batches (stale statistics, train/eval gap, dead channels, small batches, "
        "freezing, biases before BN, momentum, ε), and measure its test accuracy with the "
        "running statistics and after recalibrating them.",
    )
    p.add_argument("run", metavar="RUN_DIR", help="a run folder written by bnlab train")
    p.add_argument("--batches", metavar="N", help="training batches to check on (default 20)")
    p.add_argument(
        "--out", metavar="DIR", help="also write report.html and report.json into DIR"
    )


def load_checkpoint(run: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(model in train mode, recipe, checkpoint) of a run folder, or a UsageError."""
    import torch

    from ..experiments.recipes import Recipe

    ckpt = run / "checkpoint.pt"
    if not ckpt.is_file():
        raise UsageError(
            f"RUN_DIR: {run} has no checkpoint.pt; expected a run folder written by bnlab train"
        )
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        recipe = Recipe(**state["config"])
        model = recipe.build_model()
        model.load_state_dict(state["model"])
    except Exception as e:  # a damaged or foreign file: one line
        raise UsageError(f"RUN_DIR: cannot read {ckpt} ({type(e).__name__}: {e})") from None
    return model, recipe, state


def run(args: argparse.Namespace) -> int:
    from ..experiments.train import accuracy, load_data, precise_accuracy
    from ..inspect import check

    folder = values.in_folder("RUN_DIR", args.run, "a run written by bnlab train")
    batches = values.count("--batches", args.batches) if args.batches is not None else 20
    out = values.out_folder("--out", args.out, "report.html and report.json") if args.out else None
    model, recipe, state = load_checkpoint(folder)
    data = load_data()
    xtr = data[0]
    bs = recipe.batch_size
    train_batches = [xtr[i : i + bs] for i in range(0, min(len(xtr), bs * batches), bs)]
    report = check(model, train_batches, batches=batches)
    report.extra["run"] = f"{recipe.name}, seed {recipe.seed}, after epoch {state['epoch']}"
    before = accuracy(model, data[2], data[3])
    after = precise_accuracy(model, data)
    report.extra["test accuracy, running statistics"] = f"{before:.4f}"
    if after is not None:
        report.extra["test accuracy after recalibrate"] = f"{after:.4f}"
    print(report)
    if out is not None:
        output.write(report.to_html(), out / "report.html")
        output.write(report.to_json(), out / "report.json")
    return 0
