"""One training run: progress bar, metrics.jsonl, atomic checkpoints, resume, BN statistics.

Data lives in memory as tensors and batches are index slices (no per-sample Python).  Each
epoch's order comes from a generator seeded by (seed, epoch), and the checkpoint holds the
model, the optimizer and the global RNG state, so a resumed run ends with the same weights and
metrics as one that never stopped.

What differs when a run is spread over several processes goes through :class:`Ranks`, whose
methods are one process's (the default): :mod:`.distributed` overrides them for one rank of
DistributedDataParallel.

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

from ..errors import BNValueError
from ..inspect import bn_modules, recalibrate
from .percentiles import QUANTILES, SAMPLE, pre_activations, quantiles
from .recipes import Recipe
from .runfolder import (
    RUN_FILES,
    Folder,
    Position,
    TrainingInterrupted,
    mismatch,
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
    "Ranks",
    "RunResult",
    "TrainingInterrupted",
    "accuracy",
    "epoch_seed",
    "load_data",
    "precise_accuracy",
    "refuse_other_ranks",
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


class Ranks:
    """How a run is spread over processes: these methods are one process's, i.e. the plain run.

    :class:`bnlab.experiments.distributed.DDPRanks` overrides them for one rank of N.  Only the
    rank that ``writes`` touches the run's folder; every rank calls every other method at the
    same points of the run (several are collectives there).
    """

    writes = True  # this process writes the folder (config, metrics, activations, checkpoint)

    def __repr__(self) -> str:
        return "Ranks(one process)"

    def settings(self) -> dict[str, Any]:
        """What a resume must match besides the recipe; one process counts as synced BN."""
        return {"nproc": 1, "sync_bn": True}

    def config(self) -> dict[str, Any]:
        """Keys added to config.json (none for one process)."""
        return {}

    def checkpoint(self) -> dict[str, Any]:
        """Keys added to the checkpoint (none for one process)."""
        return {}

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training steps call, on ``model``'s tensors (``model`` itself here)."""
        return model

    def rows(self, xtr: Tensor, ytr: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        """This process's images and labels of the global batch ``batch`` (indices)."""
        return xtr[batch], ytr[batch]

    def loss(self, logits: Tensor, y: Tensor, batch_size: int) -> tuple[Tensor, float]:
        """(the loss to backpropagate, this process's sum of per-example losses)."""
        loss = nn.functional.cross_entropy(logits, y)
        return loss, loss.item() * len(y)

    def gather(self, t: Tensor) -> Tensor:
        """``t``'s rows from every process, in batch order (the whole batch's pre-activations)."""
        return t

    def totals(self, loss_sum: float, correct: int, seen: int) -> tuple[float, int, int]:
        """An epoch's training sums over every process."""
        return loss_sum, correct, seen

    def evaluated(self, model: nn.Module) -> nn.Module:
        """The one-process model that is tested, saved and returned (``model`` itself here)."""
        return model

    def end_epoch(self) -> None:
        """Wait until the writing process has tested and saved the epoch (nothing to wait for)."""


def refuse_other_ranks(out: Path, state: dict[str, Any] | None, asked: dict[str, Any]) -> None:
    """A resume runs on as many processes, BN synced or not (``asked``: :meth:`Ranks.settings`),
    as the run it continues."""
    if state is None:
        return
    saved = state.get("ranks", Ranks().settings())  # a one-process checkpoint has no "ranks"
    message = mismatch(out, saved, asked)
    if message is not None:
        raise BNValueError(message)


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
    ranks: Ranks | None = None,
) -> RunResult:
    """Train ``recipe`` into ``out`` (config.json, metrics.jsonl, activations.jsonl, checkpoint).

    ``resume`` continues from ``out``'s checkpoint, with the same settings (a folder without
    one starts from the beginning).  On any failure ``out`` is left as its last checkpoint left
    it, and a run that saved no epoch removes the files and folders it had created; Ctrl-C
    raises :class:`TrainingInterrupted`, which says where it stopped.  ``stop_after`` ends the
    run after that many epochs, as an interruption would (for tests).  ``ranks``: this process's
    part of a run over several (default: the whole run, here).
    """
    out = Path(out)
    ranks = Ranks() if ranks is None else ranks
    try:
        state = starting_state(recipe, out, resume, console)
        refuse_other_ranks(out, state, ranks.settings())
    except KeyboardInterrupt as e:  # while the checkpoint was read: nothing is changed yet
        done = saved_epoch(out / "checkpoint.pt", 0)
        raise TrainingInterrupted(out, done + 1, 0, 0, done, "reading the checkpoint") from e
    done = 0 if state is None else int(state["epoch"])
    pos = Position(epoch=done + 1, epochs_done=done)
    folder = Folder(out)
    try:
        return _run(recipe, out, state, data, console, stop_after, pos, folder, ranks)
    except BaseException as e:
        if pos.phase == "saving checkpoint":  # Ctrl-C may have come just after the replace
            pos.epochs_done = saved_epoch(out / "checkpoint.pt", pos.epochs_done)
        if ranks.writes:
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
    ranks: Ranks,
) -> RunResult:
    """The body of :func:`train`, recording in ``pos`` where it is."""
    ckpt_path = out / "checkpoint.pt"
    data = load_data() if data is None else data
    xtr, ytr, xte, yte = data
    pos.phase = "setting up"

    torch.manual_seed(recipe.seed)
    model = recipe.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr)
    start_epoch, step = 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start_epoch, step = state["epoch"], state["step"]
    net = ranks.wrap(model)  # what the steps call, on model's tensors
    if ranks.writes:
        out.mkdir(parents=True, exist_ok=True)
        if state is not None:  # drop what an interrupted epoch may have written after it
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
            **ranks.config(),
        }
        write_atomic(
            out / "config.json", lambda p: p.write_text(json.dumps(config, indent=1) + "\n")
        )

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
                net.train()
                acts = out / "activations.jsonl"
                with open(acts, "a") if ranks.writes else contextlib.nullcontext() as act_file:
                    for b in range(n_batches):
                        pos.batch = b + 1
                        idx = order[b * recipe.batch_size : (b + 1) * recipe.batch_size]
                        x, y = ranks.rows(xtr, ytr, idx)
                        opt.zero_grad(set_to_none=True)
                        logits = net(x)
                        loss, summed = ranks.loss(logits, y, len(idx))
                        loss.backward()
                        opt.step()
                        step += 1
                        loss_sum += summed
                        correct += int((logits.argmax(1) == y).sum())
                        seen += len(y)
                        if step % recipe.record_every == 0 or step == 1:
                            whole = {n: ranks.gather(t) for n, t in latest.items()}
                            if act_file is not None:
                                layers = {n: quantiles(t) for n, t in whole.items()}
                                record_row = {"epoch": epoch, "step": step, "layers": layers}
                                act_file.write(json.dumps(record_row) + "\n")
                        latest.clear()
                        rate = seen / max(time.perf_counter() - t0, 1e-9)
                        progress.update(
                            task,
                            advance=1,
                            loss=loss_sum / max(seen, 1),
                            acc=correct / max(seen, 1),
                            rate=rate,
                        )
                totals = ranks.totals(loss_sum, correct, seen)
                if totals != (loss_sum, correct, seen):  # the bar showed this process's part
                    loss_sum, correct, seen = totals
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    progress.update(task, loss=loss_sum / seen, acc=correct / seen, rate=rate)
                if not ranks.writes:  # the writer tests and saves; the others wait for it
                    pos.epochs_done = epoch
                    ranks.end_epoch()
                    continue
                evaluated = ranks.evaluated(model)
                pos.phase, pos.batch, pos.batches = "testing", 0, 0
                progress.say(f"testing on {len(xte):,} images")
                test_acc = accuracy(evaluated, xte, yte)
                precise = None
                if epoch > recipe.epochs - recipe.precise_last and bn_modules(evaluated):
                    pos.phase = "precise BN"
                    progress.say(f"precise BN: population statistics over {len(xtr):,} images")
                    precise = precise_accuracy(evaluated, data)
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
                    "model": evaluated.state_dict(),
                    "optimizer": opt.state_dict(),
                    "rng": torch.get_rng_state(),
                    "epoch": epoch,
                    "step": step,
                    "config": asdict(recipe),
                    **ranks.checkpoint(),
                }
                write_atomic(ckpt_path, lambda p, state=state: torch.save(state, p))
                pos.epochs_done = epoch
                metrics.append(row)
                progress.say("")
                ranks.end_epoch()
    finally:
        for h in hooks:
            h.remove()
    if console is not None and metrics:
        console.print(summary_table(recipe.name, metrics))
    return RunResult(out, metrics, ranks.evaluated(model))


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
