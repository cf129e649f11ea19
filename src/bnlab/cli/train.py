"""``bnlab train``: one recipe (or a suite of them) on Fashion-MNIST, from the command line."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import values
from .values import UsageError

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def _per_recipe(field: str) -> dict[str, str]:
    """Each recipe's default for one field, as text (a suite's: its values, or their range)."""
    from ..experiments import recipes

    out: dict[str, str] = {}
    for name in recipes.NAMES:
        found = recipes.lookup(name)
        runs = found.runs if isinstance(found, recipes.Suite) else [found]
        seen = sorted({getattr(r, field) for r in runs})
        out[name] = f"{seen[0]:g}" if len(seen) == 1 else f"{seen[0]:g}…{seen[-1]:g}"
    return out


def recipe_table() -> str:
    """One line per recipe: its defaults for --epochs, --lr and --batch-size, and what it is."""
    from ..experiments import recipes

    cols = {f: _per_recipe(f) for f in ("epochs", "lr", "batch_size")}
    lines = [f"  {'RECIPE':<15} {'epochs':>6} {'lr':>10} {'batch':>6}  what it shows"]
    for name in recipes.NAMES:
        found = recipes.lookup(name)
        lines.append(
            f"  {name:<15} {cols['epochs'][name]:>6} {cols['lr'][name]:>10} "
            f"{cols['batch_size'][name]:>6}  {found.note}"
        )
    return "\n".join(lines)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    if args.epochs is not None:
        parsed["epochs"] = values.count("--epochs", args.epochs)
    if args.lr is not None:
        parsed["lr"] = values.number("--lr", args.lr, positive=True)
    if args.batch_size is not None:
        parsed["batch_size"] = values.count("--batch-size", args.batch_size)
    if args.seed is not None:
        parsed["seed"] = values.seed("--seed", args.seed)
    if args.limit is not None:
        parsed["limit"] = values.count("--limit", args.limit)
    return parsed


def _nproc(args: argparse.Namespace) -> int:
    """--nproc: processes that train (1: this one alone, the plain run)."""
    return 1 if args.nproc is None else values.count("--nproc", args.nproc)


def continue_command(args: argparse.Namespace, out: Path) -> str:
    """The command that continues this run: the same recipe and settings, ``--resume``."""
    words = ["bnlab", "train", args.recipe]
    for option, value in (
        ("--epochs", args.epochs),
        ("--lr", args.lr),
        ("--batch-size", args.batch_size),
        ("--seed", args.seed),
        ("--limit", args.limit),
        ("--nproc", args.nproc),
    ):
        if value is not None:
            words += [option, value]
    if not args.sync_bn:
        words.append("--no-sync-bn")
    words += ["--out", str(out), "--resume"]
    return shlex.join(words)


def _interrupted(e: BaseException, args: argparse.Namespace, out: Path) -> str:
    """One line: where the run stopped, what is saved, and the command that continues it."""
    epoch = getattr(e, "epoch", None)
    batch, batches = getattr(e, "batch", 0), getattr(e, "batches", 0)
    done = getattr(e, "epochs_done", 0)
    phase = getattr(e, "phase", "training")
    where = ""
    if epoch is not None:
        where = f" in epoch {epoch}" + (
            f" (batch {batch}/{batches})" if batches else f" ({phase})" if phase else ""
        )
    if not done:
        return (
            f"interrupted{where}, before any epoch finished: nothing was kept; "
            f"start again with: {continue_command(args, out).removesuffix(' --resume')}"
        )
    saved = "epoch 1 is" if done == 1 else f"epochs 1–{done} are"
    return (
        f"interrupted{where}; {saved} saved in {out}; continue with: {continue_command(args, out)}"
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..errors import BNLabError
    from ..experiments import distributed, recipes
    from ..experiments.train import load_data, train

    try:
        found = recipes.lookup(args.recipe)
    except ValueError:
        raise UsageError(
            f"RECIPE: unknown recipe {args.recipe!r} (known: {', '.join(recipes.NAMES)})"
        ) from None
    overrides = _overrides(args)
    nproc = _nproc(args)
    torchrun = distributed.under_torchrun()
    if torchrun and args.nproc is not None:
        raise UsageError(
            f"--nproc: this process is one of torchrun's {os.environ['WORLD_SIZE']}, which "
            "--nproc_per_node sets; leave --nproc out"
        )
    out = values.out_folder("--out", args.out or str(Path("runs") / args.recipe), "the run")
    if args.resume and not out.exists():
        raise UsageError(
            f"--resume: {out} does not exist, so there is no run to continue "
            f"(start one with: bnlab train {args.recipe} --out {shlex.quote(str(out))})"
        )
    suite = isinstance(found, recipes.Suite)
    runs = found.runs if suite else [found]
    runs = [replace(r, **overrides) for r in runs]
    for r in runs if nproc > 1 or torchrun else []:
        if nproc > r.batch_size:
            raise UsageError(
                f"--nproc: expected at most {r.batch_size} processes, the batch size, so that "
                f"each has a part of every batch (got {nproc})"
            )
        try:
            distributed.check_syncable(r, args.sync_bn)
        except BNLabError as e:
            raise UsageError(str(e)) from None
    # under torchrun every rank runs this command: rank 0 alone draws, and each names itself
    rank = f"rank {os.environ['RANK']}: " if torchrun else ""
    console = Console() if rank in ("", "rank 0: ") else None
    try:
        data = load_data()
    except BNLabError as e:
        raise UsageError(f"{rank}Fashion-MNIST: {e}") from None
    for r in runs:
        folder = out / r.name if suite else out
        # a suite interrupted before this run began has no folder for it yet
        resume = args.resume and (folder.exists() or not suite)
        try:
            if torchrun:
                distributed.train_this_rank(
                    r, folder, sync_bn=args.sync_bn, resume=resume, data=data, console=console
                )
            elif nproc > 1:  # each process loads the data itself
                distributed.train_distributed(
                    r, folder, nproc, sync_bn=args.sync_bn, resume=resume, console=console
                )
            else:
                train(r, folder, resume=resume, data=data, console=console)
        except KeyboardInterrupt as e:
            if console is None:  # another of torchrun's ranks: rank 0 says it
                return EXIT_INTERRUPTED
            console.file.flush()
            print(f"bnlab train: {_interrupted(e, args, out)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except distributed.RankFailed as e:
            print(f"bnlab train: error: {e}", file=sys.stderr)
            return 2 if e.user else 1
        except BNLabError as e:
            raise UsageError(f"{rank}{e}") from None
        except Exception as e:
            if not torchrun:
                raise
            # a peer of torchrun's failed: one line naming this rank, not a traceback per rank
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            print(f"bnlab train: error: {rank}{type(e).__name__}: {first}", file=sys.stderr)
            return 1
    if console is not None:
        console.print(f"runs in {out.resolve()}")
    return 0
