"""One training run: progress bar, metrics.jsonl, atomic checkpoints, resume, BN statistics.

Data lives in memory as tensors and batches are index slices (no per-sample Python).  Each
epoch's order comes from a generator seeded by (seed, epoch), and the checkpoint holds the
model, the optimizer and the global RNG state, so a resumed run ends with the same weights and
metrics as one that never stopped.

A run that fails leaves its folder as the last checkpoint left it, and Ctrl-C becomes
:class:`TrainingInterrupted` (see :mod:`.runfolder`); the pre-activation percentiles come from
:mod:`.percentiles`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from torch import Tensor, nn

from ..inspect import bn_modules, recalibrate
from .percentiles import QUANTILES, SAMPLE, pre_activations, quantiles
from .recipes import Recipe
from .runfolder import (
    RUN_FILES,
    Folder,
    Position,
    TrainingInterrupted,
    read_jsonl,
    saved_epoch,
    starting_state,
    truncate_jsonl,
    write_atomic,
)

__all__ = [
    "QUANTILES",
    "RUN_FILES",
    "SAMPLE",
    "RunResult",
    "TrainingInterrupted",
    "accuracy",
    "epoch_seed",
    "load_data",
    "precise_accuracy",
    "summary_table",
    "train",
]

Data = tuple[Tensor, Tensor, Tensor, Tensor]  # train images, train labels, test images, labels


def load_data() -> Data:
    """Fashion-MNIST as float32 (N, 1, 28, 28) in [0, 1] and int64 labels."""
    from .data import fashion_mnist, to_float

    xtr, ytr = fashion_mnist("train")
    xte, yte = fashion_mnist("test")
    return to_float(xtr), ytr, to_float(xte), yte


@dataclass
class RunResult:
    out: Path
    metrics: list[dict[str, Any]]
    model: nn.Module


def epoch_seed(seed: int, epoch: int) -> int:
    """The data order's seed for one epoch, kept within the 64 bits a torch seed may have."""
    return (seed * 100_003 + epoch) % (1 << 64)


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Eval-mode accuracy (running statistics), the training flag restored afterwards."""
    was = model.training
    model.eval()
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    finally:
        model.train(was)
    return correct / max(len(x), 1)


def precise_accuracy(model: nn.Module, data: Data, batch_size: int = 1000) -> float | None:
    """Test accuracy after recalibrating BN on the whole training set (on a copy of the model)."""
    import copy

    if not bn_modules(model):
        return None
    twin = copy.deepcopy(model)
    xtr = data[0]
    recalibrate(twin, [xtr[i : i + batch_size] for i in range(0, len(xtr), batch_size)])
    return accuracy(twin, data[2], data[3], batch_size)


class _Progress(Progress):
    """The epochs' bars, and under them a line saying what the run does between batches."""

    status = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.status:
            yield Text(f"  {self.status}", style="italic", no_wrap=True, overflow="ellipsis")

    def say(self, status: str) -> None:
        """Show ``status`` now (the testing and precise-BN passes take seconds); "" hides it."""
        self.status = status
        self.refresh()


def train(
    recipe: Recipe,
    out: str | Path,
    *,
    resume: bool = False,
    data: Data | None = None,
    console: Console | None = None,
    stop_after: int | None = None,
) -> RunResult:
    """Train ``recipe`` into ``out`` (config.json, metrics.jsonl, activations.jsonl, checkpoint).

    ``resume`` continues from ``out``'s checkpoint, with the same settings (a folder without
    one starts from the beginning).  On any failure ``out`` is left as its last checkpoint left
    it, and a run that saved no epoch removes the files and folders it had created; Ctrl-C
    raises :class:`TrainingInterrupted`, which says where it stopped.  ``stop_after`` ends the
    run after that many epochs, as an interruption would (for tests).
    """
    out = Path(out)
    try:
        state = starting_state(recipe, out, resume, console)
    except KeyboardInterrupt as e:  # while the checkpoint was read: nothing is changed yet
        done = saved_epoch(out / "checkpoint.pt", 0)
        raise TrainingInterrupted(out, done + 1, 0, 0, done, "reading the checkpoint") from e
    done = 0 if state is None else int(state["epoch"])
    pos = Position(epoch=done + 1, epochs_done=done)
    folder = Folder(out)
    try:
        return _run(recipe, out, state, data, console, stop_after, pos, folder)
    except BaseException as e:
        if pos.phase == "saving checkpoint":  # Ctrl-C may have come just after the replace
            pos.epochs_done = saved_epoch(out / "checkpoint.pt", pos.epochs_done)
        with contextlib.suppress(Exception):  # the failure itself is what the caller must see
            folder.tidy(pos.epochs_done)
        if isinstance(e, KeyboardInterrupt) and not isinstance(e, TrainingInterrupted):
            raise TrainingInterrupted(
                out, pos.epoch, pos.batch, pos.batches, pos.epochs_done, pos.phase
            ) from e
        raise


def _run(
    recipe: Recipe,
    out: Path,
    state: dict[str, Any] | None,
    data: Data | None,
    console: Console | None,
    stop_after: int | None,
    pos: Position,
    folder: Folder,
) -> RunResult:
    """The body of :func:`train`, recording in ``pos`` where it is."""
    ckpt_path = out / "checkpoint.pt"
    data = load_data() if data is None else data
    xtr, ytr, xte, yte = data
    pos.phase = "setting up"

    torch.manual_seed(recipe.seed)
    model = recipe.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr)
    loss_fn = nn.CrossEntropyLoss()
    start_epoch, step = 0, 0
    out.mkdir(parents=True, exist_ok=True)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start_epoch, step = state["epoch"], state["step"]
        # drop what an interrupted epoch may have written after the checkpoint
        truncate_jsonl(out / "metrics.jsonl", lambda r: r["epoch"] <= start_epoch)
        truncate_jsonl(out / "activations.jsonl", lambda r: r["epoch"] <= start_epoch)
    else:
        for name in ("metrics.jsonl", "activations.jsonl"):
            if (out / name).exists():
                folder.discard(name)
    config = {
        **asdict(recipe),
        "train_size": len(xtr),
        "test_size": len(xte),
        "torch": torch.__version__,
    }
    write_atomic(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=1) + "\n"))

    latest: dict[str, Tensor] = {}

    def record(module: nn.Module, args: tuple[Any, ...], name: str) -> None:
        if module.training:  # training steps only, not testing or precise BN (on a copy)
            latest[name] = args[0]

    watched = pre_activations(model)
    n_batches = (len(xtr) + recipe.batch_size - 1) // recipe.batch_size
    if recipe.limit is not None:
        n_batches = min(n_batches, recipe.limit)
    progress = _Progress(
        TextColumn("[bold]{task.fields[run]}[/] epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
        TextColumn("{task.fields[rate]:,.0f} ex/s"),
        TimeRemainingColumn(),
        console=console,
        disable=console is None,
        transient=False,
    )
    metrics = read_jsonl(out / "metrics.jsonl")
    last_epoch = (
        recipe.epochs if stop_after is None else min(recipe.epochs, start_epoch + stop_after)
    )
    hooks = [
        m.register_forward_pre_hook(lambda m, args, name=name: record(m, args, name))
        for name, m in watched
    ]
    try:
        with progress:
            for epoch in range(start_epoch + 1, last_epoch + 1):
                pos.epoch, pos.phase, pos.batches = epoch, "training", n_batches
                t0 = time.perf_counter()
                g = torch.Generator().manual_seed(epoch_seed(recipe.seed, epoch))
                order = torch.randperm(len(xtr), generator=g)
                task = progress.add_task(
                    "", total=n_batches, run=recipe.name, epoch=epoch, loss=0.0, acc=0.0, rate=0.0
                )
                loss_sum, correct, seen = 0.0, 0, 0
                model.train()
                with open(out / "activations.jsonl", "a") as act_file:
                    for b in range(n_batches):
                        pos.batch = b + 1
                        idx = order[b * recipe.batch_size : (b + 1) * recipe.batch_size]
                        x, y = xtr[idx], ytr[idx]
                        opt.zero_grad(set_to_none=True)
                        logits = model(x)
                        loss = loss_fn(logits, y)
                        loss.backward()
                        opt.step()
                        step += 1
                        loss_sum += loss.item() * len(y)
                        correct += int((logits.argmax(1) == y).sum())
                        seen += len(y)
                        if step % recipe.record_every == 0 or step == 1:
                            layers = {n: quantiles(t) for n, t in latest.items()}
                            act_file.write(
                                json.dumps({"epoch": epoch, "step": step, "layers": layers}) + "\n"
                            )
                        latest.clear()
                        rate = seen / max(time.perf_counter() - t0, 1e-9)
                        progress.update(
                            task, advance=1, loss=loss_sum / seen, acc=correct / seen, rate=rate
                        )
                pos.phase, pos.batch, pos.batches = "testing", 0, 0
                progress.say(f"testing on {len(xte):,} images")
                test_acc = accuracy(model, xte, yte)
                precise = None
                if epoch > recipe.epochs - recipe.precise_last and bn_modules(model):
                    pos.phase = "precise BN"
                    progress.say(f"precise BN: population statistics over {len(xtr):,} images")
                    precise = precise_accuracy(model, data)
                row = {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": loss_sum / max(seen, 1),
                    "train_acc": correct / max(seen, 1),
                    "test_acc": test_acc,
                    "test_acc_precise": precise,
                    "seconds": time.perf_counter() - t0,
                }
                pos.phase = "saving checkpoint"
                progress.say("saving checkpoint")
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                state = {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "rng": torch.get_rng_state(),
                    "epoch": epoch,
                    "step": step,
                    "config": asdict(recipe),
                }
                write_atomic(ckpt_path, lambda p, state=state: torch.save(state, p))
                pos.epochs_done = epoch
                metrics.append(row)
                progress.say("")
    finally:
        for h in hooks:
            h.remove()
    if console is not None and metrics:
        console.print(summary_table(recipe.name, metrics))
    return RunResult(out, metrics, model)


def summary_table(name: str, metrics: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{name}: per epoch", title_justify="left")
    for col in ("epoch", "train loss", "train acc", "test acc", "precise-BN test acc", "s"):
        table.add_column(col, justify="right")
    for r in metrics:
        p = r.get("test_acc_precise")
        table.add_row(
            str(r["epoch"]),
            f"{r['train_loss']:.4f}",
            f"{r['train_acc']:.4f}",
            f"{r['test_acc']:.4f}",
            "" if p is None else f"{p:.4f}",
            f"{r['seconds']:.1f}",
        )
    return table
