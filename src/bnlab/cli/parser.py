"""The ``bnlab`` argument parser: every command, option and help text in one place.

Option values arrive as the text the user typed; :mod:`.values` parses and checks them, so
every mistake reads the same way (``bnlab explain: error: --gamma: expected …``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

FORMATS = ("text", "png", "svg", "html", "json")
# "-1,2,3", "-.5", "-inf": a value, not an option (argparse only knows plain negative numbers)
_NEGATIVE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """argparse, with every usage error on one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _version() -> str:
    import platform

    import torch

    from .. import __version__

    return f"bnlab {__version__} (torch {torch.__version__}, Python {platform.python_version()})"


def _train_help(parser: argparse.ArgumentParser) -> None:
    from .train import recipe_table

    tr = parser
    tr.add_argument(
        "recipe",
        metavar="RECIPE",
        help="lenet-bn, lenet-bn-torch, lenet-bn-d2l, lenet, lenet-lr1, bn-paper-fig1 or lr-sweep",
    )
    tr.add_argument(
        "--epochs", metavar="N", help="passes over the training set (default: the recipe's)"
    )
    tr.add_argument("--lr", metavar="RATE", help="SGD learning rate (default: the recipe's)")
    tr.add_argument("--batch-size", metavar="N", help="examples per step (default: the recipe's)")
    tr.add_argument(
        "--seed",
        metavar="S",
        help="torch.manual_seed for init and data order, 0 to 2^64 − 1 (default: 0)",
    )
    tr.add_argument(
        "--limit", metavar="BATCHES", help="batches per epoch, for quick runs (default: all)"
    )
    tr.add_argument("--out", metavar="DIR", help="run folder (default: runs/RECIPE)")
    tr.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in DIR, with the same settings",
    )
    tr.add_argument(
        "--nproc",
        metavar="N",
        help="processes that train together, each on its part of every batch, with "
        "DistributedDataParallel: gloo on the CPU, NCCL on GPUs (default: 1); under torchrun "
        "leave it out: torchrun --nproc_per_node N -m bnlab train RECIPE",
    )
    tr.add_argument(
        "--sync-bn",
        dest="sync_bn",
        action="store_true",
        default=True,
        help="with --nproc: BN over the whole batch, all processes' parts together, as in one "
        "process (the default)",
    )
    tr.add_argument(
        "--no-sync-bn",
        dest="sync_bn",
        action="store_false",
        help="with --nproc: BN over each process's own part of the batch",
    )
    tr.epilog = "each recipe's defaults:\n" + recipe_table()


def build() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bnlab",
        description="Understand, implement, see and inspect batch normalization.",
        epilog="Run 'bnlab COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    tour = sub.add_parser("tour", help="the whole source walkthrough: terminal + one HTML page")
    tour.add_argument(
        "--out",
        default="bnlab-tour",
        metavar="DIR",
        help="folder for index.html and figures/ (default: bnlab-tour)",
    )
    tour.add_argument(
        "--lang",
        default="en",
        choices=("en", "zh"),
        help="language of the walkthrough: en (default) or zh (中文)",
    )

    ex = sub.add_parser(
        "explain",
        help="batch norm of one example or tensor, step by step",
        description="Batch norm of one named example or of a torch.rand tensor, step by step, "
        "each step checked against torch.nn.BatchNorm*d.",
        epilog="Largest --shape per format (elements = the product of the sizes): text "
        "1,048,576; json 65,536; png, svg and html 4,096.  With --run, the same limits apply "
        "to one channel of the layer's input over the batch.",
    )
    src = ex.add_mutually_exclusive_group()
    src.add_argument(
        "--example",
        metavar="NAME",
        help="a named example of the source document (default: seed-illustrated)",
    )
    src.add_argument("--shape", metavar="N,C,H,W", help="a torch.rand tensor of this shape")
    ex.add_argument("--seed", metavar="S", help="torch.manual_seed before torch.rand (default 0)")
    ex.add_argument("--gamma", metavar="G1,G2,...", help="γ per channel (default: ones)")
    ex.add_argument("--beta", metavar="B1,B2,...", help="β per channel (default: zeros)")
    ex.add_argument("--eps", metavar="E", help="ε > 0 (default 1e-5)")
    ex.add_argument(
        "--run",
        metavar="RUN_DIR",
        help="a training run (bnlab train): explain one of its BN layers on a real batch",
    )
    ex.add_argument("--layer", metavar="NAME", help="with --run: the BN layer's name")
    ex.add_argument(
        "--channel", metavar="C", help="with --run: the channel whose values are shown (0)"
    )
    ex.add_argument(
        "--samples",
        metavar="K",
        help="with --run: the batch's first K images (default: the recipe's whole batch)",
    )
    ex.add_argument("--format", default="text", choices=FORMATS, help="output format")
    ex.add_argument("--out", metavar="PATH", help="write here instead of standard output")

    sub.add_parser("demo", help="the source's (2, 2, 2, 2) example through bnlab and torch")

    tr = sub.add_parser(
        "train",
        help="train a recipe on Fashion-MNIST (LeNet, LeNet-BN, Fig. 1)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _train_help(tr)

    srv = sub.add_parser("serve", help="the interactive explorer page on a local web server")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    srv.add_argument("--port", default="8000", help="port (default 8000)")
    srv.add_argument("--open", action="store_true", help="open the page in a browser")
    srv.add_argument(
        "--runs",
        metavar="DIR",
        help="training runs for the training view (default: the committed runs)",
    )

    from . import bench, inspect

    bench.add(sub)
    inspect.add(sub)

    cmp_ = sub.add_parser("compare", help="draw runs side by side: PNG plots and one HTML page")
    cmp_.add_argument(
        "runs", nargs="+", metavar="DIR", help="run folders, or suites of them (bnlab train)"
    )
    cmp_.add_argument(
        "--out", default="compare", metavar="DIR", help="where to write (default: compare)"
    )
    return parser


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string, of any command, that takes one value."""
    found: set[str] = set()
    for action in parser._actions:
        if action.option_strings and action.nargs is None:
            found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found |= _value_options(child)
    return found


def rejoin_negative(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``--gamma -1,2,3`` → ``--gamma=-1,2,3``, so that negative values need no ``=``."""
    takes_value = _value_options(parser)
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in takes_value and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise AssertionError("bnlab's parser has no commands")


def parse(argv: Sequence[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = build()
    args, extra = parser.parse_known_args(
        rejoin_negative(parser, sys.argv[1:] if argv is None else argv)
    )
    if extra:  # said by the command's parser, so the line names the command
        where = _command_parser(parser, args.command) if args.command else parser
        where.error(f"unrecognized arguments: {' '.join(extra)}")
    return parser, args
