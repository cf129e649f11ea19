"""One training run: progress bar, metrics.jsonl, atomic checkpoints, resume, BN statistics.

Data lives in memory as tensors and batches are index slices (no per-sample Python).  Each
epoch's order comes from a generator seeded by (seed, epoch), and the checkpoint holds the
model, the optimizer and the global RNG state, so a resumed run ends with the same weights and
metrics as one that never stopped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import Tensor, nn

from ..errors import BNValueError
from ..inspect import bn_modules, recalibrate
from .recipes import Recipe

Data = tuple[Tensor, Tensor, Tensor, Tensor]  # train images, train labels, test images, labels
QUANTILES = (0.15, 0.5, 0.85)


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


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)  # atomic on POSIX: a crash leaves the old file or the new one


def _pre_activations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The nonlinearities: their inputs are what the BN paper's Figure 1(b, c) tracks."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Sigmoid, nn.ReLU))]


def _quantiles(x: Tensor) -> dict[str, list[float]]:
    """15th/50th/85th percentile per channel of a (N, C, ...) tensor: O(channels) to keep."""
    per_channel = x.detach().transpose(0, 1).reshape(x.shape[1], -1).float()  # (C, N·H·W)
    if per_channel.shape[1] > 16384:  # a fixed, evenly spaced subsample keeps quantile cheap
        idx = torch.linspace(0, per_channel.shape[1] - 1, 16384).long()
        per_channel = per_channel[:, idx]
    q = torch.quantile(per_channel, torch.tensor(QUANTILES), dim=1)  # (3, C)
    # 4 decimals: far finer than a percentile of one batch is precise, and files stay small
    return {
        k: [round(v, 4) for v in row.tolist()]
        for k, row in zip(("q15", "q50", "q85"), q, strict=True)
    }


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Eval-mode accuracy (running statistics), the training flag restored afterwards."""
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
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


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_jsonl(path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    rows = [r for r in _read_jsonl(path) if keep(r)]
    _write_atomic(path, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in rows)))


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

    ``stop_after`` ends the run after that many epochs, as an interruption would (for tests).
    """
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    if out.exists() and (out / "metrics.jsonl").exists() and not resume:
        raise BNValueError(
            f"{out} already holds a run; pass --resume to continue it, or another --out"
        )
    if resume and not ckpt_path.exists():
        raise BNValueError(f"--resume: no checkpoint in {out}")
    out.mkdir(parents=True, exist_ok=True)
    data = load_data() if data is None else data
    xtr, ytr, xte, yte = data

    torch.manual_seed(recipe.seed)
    model = recipe.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr)
    loss_fn = nn.CrossEntropyLoss()
    start_epoch, step = 0, 0
    if resume:
        state = torch.load(ckpt_path, weights_only=False)
        if state["config"] != asdict(recipe):
            raise BNValueError(f"--resume: {out} was trained with another configuration")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start_epoch, step = state["epoch"], state["step"]
        # drop what an interrupted epoch may have written after the checkpoint
        _truncate_jsonl(out / "metrics.jsonl", lambda r: r["epoch"] <= start_epoch)
        _truncate_jsonl(out / "activations.jsonl", lambda r: r["epoch"] <= start_epoch)
    else:
        for name in ("metrics.jsonl", "activations.jsonl"):
            (out / name).unlink(missing_ok=True)
    config = {
        **asdict(recipe),
        "train_size": len(xtr),
        "test_size": len(xte),
        "torch": torch.__version__,
    }
    _write_atomic(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=1) + "\n"))

    watched = _pre_activations(model)
    latest: dict[str, Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(lambda _m, args, name=name: latest.__setitem__(name, args[0]))
        for name, m in watched
    ]
    n_batches = (len(xtr) + recipe.batch_size - 1) // recipe.batch_size
    if recipe.limit is not None:
        n_batches = min(n_batches, recipe.limit)
    progress = Progress(
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
    metrics = _read_jsonl(out / "metrics.jsonl")
    last_epoch = (
        recipe.epochs if stop_after is None else min(recipe.epochs, start_epoch + stop_after)
    )
    try:
        with progress:
            for epoch in range(start_epoch + 1, last_epoch + 1):
                t0 = time.perf_counter()
                g = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)
                order = torch.randperm(len(xtr), generator=g)
                task = progress.add_task(
                    "", total=n_batches, run=recipe.name, epoch=epoch, loss=0.0, acc=0.0, rate=0.0
                )
                loss_sum, correct, seen = 0.0, 0, 0
                model.train()
                with open(out / "activations.jsonl", "a") as act_file:
                    for b in range(n_batches):
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
                            layers = {n: _quantiles(t) for n, t in latest.items()}
                            act_file.write(
                                json.dumps({"epoch": epoch, "step": step, "layers": layers}) + "\n"
                            )
                        latest.clear()
                        rate = seen / max(time.perf_counter() - t0, 1e-9)
                        progress.update(
                            task, advance=1, loss=loss_sum / seen, acc=correct / seen, rate=rate
                        )
                test_acc = accuracy(model, xte, yte)
                precise = (
                    precise_accuracy(model, data)
                    if epoch > recipe.epochs - recipe.precise_last
                    else None
                )
                row = {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": loss_sum / max(seen, 1),
                    "train_acc": correct / max(seen, 1),
                    "test_acc": test_acc,
                    "test_acc_precise": precise,
                    "seconds": time.perf_counter() - t0,
                }
                metrics.append(row)
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
                _write_atomic(ckpt_path, lambda p, state=state: torch.save(state, p))
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
