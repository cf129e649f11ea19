"""The ``bnlab`` command line: one entry point, one subcommand per job.

Usage errors print one line naming the option (``bnlab explain: error: --shape: ...``) and exit
with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

FORMATS = ("text", "png", "svg", "html", "json")
DRAWN = ("png", "svg", "html")
MAX_ELEMENTS_TO_PRINT = 1 << 24  # text and JSON work at any size that fits comfortably in memory


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """A bad option value, reported as one line with exit status 2."""


def _ints(option: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(
            f"{option}: expected comma-separated integers like 2,2,2,2 (got {text!r})"
        ) from None
    if not 2 <= len(values) <= 5 or any(v < 1 for v in values):
        raise UsageError(f"{option}: expected 2 to 5 positive sizes N,C[,H[,W[,D]]] (got {text!r})")
    return values


def _floats(option: str, text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(
            f"{option}: expected comma-separated numbers like 2,5 (got {text!r})"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bnlab", description="Understand, implement, see and inspect batch normalization."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    tour = sub.add_parser("tour", help="the whole source walkthrough: terminal + one HTML page")
    tour.add_argument(
        "--out",
        default="bnlab-tour",
        metavar="DIR",
        help="folder for index.html and figures/ (default: bnlab-tour)",
    )
    ex = sub.add_parser("explain", help="batch norm of one example or tensor, step by step")
    src = ex.add_mutually_exclusive_group()
    src.add_argument(
        "--example",
        metavar="NAME",
        help="a named example of the source document (default: seed-illustrated)",
    )
    src.add_argument("--shape", metavar="N,C,H,W", help="a torch.rand tensor of this shape")
    ex.add_argument("--seed", type=int, default=0, help="torch.manual_seed before torch.rand")
    ex.add_argument("--gamma", metavar="G1,G2,...", help="γ per channel (default: ones)")
    ex.add_argument("--beta", metavar="B1,B2,...", help="β per channel (default: zeros)")
    ex.add_argument("--eps", default="1e-5", metavar="E", help="ε > 0 (default 1e-5)")
    ex.add_argument("--format", default="text", choices=FORMATS, help="output format")
    ex.add_argument("--out", metavar="PATH", help="write here instead of standard output")
    sub.add_parser("demo", help="the source's (2, 2, 2, 2) example through bnlab and torch")
    tr = sub.add_parser("train", help="train a recipe on Fashion-MNIST (LeNet, LeNet-BN, Fig. 1)")
    tr.add_argument(
        "recipe",
        metavar="RECIPE",
        help="lenet-bn, lenet-bn-torch, lenet-bn-d2l, lenet, lenet-lr1, bn-paper-fig1 or lr-sweep",
    )
    tr.add_argument("--epochs", type=int, help="passes over the training set")
    tr.add_argument("--lr", type=float, help="SGD learning rate")
    tr.add_argument("--batch-size", type=int, help="examples per step")
    tr.add_argument("--seed", type=int, help="torch.manual_seed for init and data order")
    tr.add_argument("--limit", type=int, metavar="BATCHES", help="batches per epoch (quick runs)")
    tr.add_argument("--out", metavar="DIR", help="run folder (default: runs/RECIPE)")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run in DIR")
    srv = sub.add_parser("serve", help="the interactive explorer page on a local web server")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument("--open", action="store_true", help="open the page in a browser")
    srv.add_argument(
        "--runs",
        default="docs/results",
        metavar="DIR",
        help="training runs for the training view (default docs/results)",
    )
    cmp_ = sub.add_parser("compare", help="draw runs side by side: PNG plots and one HTML page")
    cmp_.add_argument("runs", nargs="+", metavar="DIR", help="run folders (with metrics.jsonl)")
    cmp_.add_argument("--out", default="compare", metavar="DIR", help="where to write (compare/)")
    return parser


def _write(data: str | bytes, out: str | None) -> None:
    if out is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def _explain(args: argparse.Namespace) -> int:
    import torch

    from .explain import examples
    from .explain.trace import MAX_ELEMENTS_TO_DRAW, explain

    try:
        eps = float(args.eps)
    except ValueError:
        raise UsageError(f"--eps: expected a positive number (got {args.eps!r})") from None
    if not eps > 0:
        raise UsageError(f"--eps: expected a positive number (got {args.eps})")
    if args.format == "png" and args.out is None:
        raise UsageError("--format png: needs --out PATH (PNG is not written to a terminal)")
    gamma = _floats("--gamma", args.gamma) if args.gamma else None
    beta = _floats("--beta", args.beta) if args.beta else None

    if args.shape is None and (args.example is not None or (gamma is None and beta is None)):
        name = args.example or "seed-illustrated"
        if name not in examples.EXAMPLES and name not in ("formulas", "why"):
            known = ", ".join(examples.EXAMPLES)
            raise UsageError(f"--example: unknown example {name!r} (known: {known})")
        if gamma is not None or beta is not None or args.eps != "1e-5":
            raise UsageError(
                "--gamma/--beta/--eps: apply to --shape tensors; a named example "
                "uses the source's own values"
            )
        return _explain_section(examples.build(name), args)

    shape = _ints("--shape", args.shape) if args.shape else (2, 2, 2, 2)
    channels = shape[1]
    for option, values in (("--gamma", gamma), ("--beta", beta)):
        if values is not None and len(values) != channels:
            raise UsageError(
                f"{option}: expected {channels} values, one per channel of shape "
                f"{','.join(map(str, shape))} (got {len(values)})"
            )
    numel = 1
    for d in shape:
        numel *= d
    if numel > MAX_ELEMENTS_TO_PRINT:
        raise UsageError(
            f"--shape: {numel:,} elements is more than bnlab explain handles "
            f"(at most {MAX_ELEMENTS_TO_PRINT:,})"
        )
    if args.format in DRAWN and numel > MAX_ELEMENTS_TO_DRAW:
        raise UsageError(
            f"--format {args.format}: a tensor of {numel} elements is too large to "
            f"draw (at most {MAX_ELEMENTS_TO_DRAW}); use --format text or json"
        )
    if numel // channels < 2:
        raise UsageError(
            f"--shape: batch norm in training needs more than 1 value per channel "
            f"(got shape {','.join(map(str, shape))})"
        )
    torch.manual_seed(args.seed)
    x = torch.rand(shape)
    trace = explain(x, gamma, beta, eps)
    return _explain_trace(trace, args)


def _explain_trace(trace, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from .explain import html, text

    if args.format == "text":
        _write(text.trace_text(trace), args.out)
    elif args.format == "json":
        _write(trace.to_json(indent=1) + "\n", args.out)
    else:
        from .explain import figures

        if args.format in ("png", "svg"):
            _write(figures.render(figures.walkthrough_figure(trace), args.format), args.out)
        else:
            specs = {
                "input": ("the input, one colour per channel", figures.tensor_figure),
                "step1": ("step 1: per-channel mean and variance", figures.stats_figure),
                "step2": ("step 2: y = γ·x̂ + β", figures.affine_figure),
            }
            images = {
                k: figures.render(f(trace), "png")
                if k != "input"
                else figures.render(f(trace, "input"), "png")
                for k, (_, f) in specs.items()
            }
            captions = {k: c for k, (c, _) in specs.items()}
            _write(html.trace_page(trace, images, captions), args.out)
    return 0


def _explain_section(section, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    import json

    from .explain import html, text, tour

    if args.format == "text":
        _write(text.sections_text([section]), args.out)
    elif args.format == "json":
        doc = {
            "example": section.key,
            "title": section.title,
            "title_zh": section.title_zh,
            "printed": section.printed,
            "source_printed": section.source_printed,
            "checks": [
                {"what": c.what, "against": c.against, "max_abs_diff": c.max_abs_diff, "ok": c.ok}
                for c in section.checks
            ],
            "traces": {k: t.to_dict() for k, t in section.traces.items()},
            "data": section.data,
        }
        _write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", args.out)
    elif args.format == "html":
        images = tour.render_figures([section])
        _write(
            html.page(section.title, section.title_zh, section.intro, [section], images), args.out
        )
    else:
        if not section.figures:
            raise UsageError(
                f"--format {args.format}: example {section.key!r} has no figure; "
                "use --format text, json or html"
            )
        from .explain import figures

        _write(figures.render(section.figures[0].factory(), args.format), args.out)
    return 0


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.console import Console

    from .experiments import recipes
    from .experiments.train import load_data, train

    try:
        found = recipes.lookup(args.recipe)
    except ValueError:
        raise UsageError(
            f"RECIPE: unknown recipe {args.recipe!r} (known: {', '.join(recipes.NAMES)})"
        ) from None
    overrides = {
        k: v
        for k, v in (
            ("epochs", args.epochs),
            ("lr", args.lr),
            ("batch_size", args.batch_size),
            ("seed", args.seed),
            ("limit", args.limit),
        )
        if v is not None
    }
    for k, v in overrides.items():
        if (k == "lr" and not v > 0) or (k != "lr" and k != "seed" and v < 1):
            raise UsageError(f"--{k.replace('_', '-')}: expected a positive number (got {v})")
    out = Path(args.out or Path("runs") / args.recipe)
    runs = found.runs if isinstance(found, recipes.Suite) else [found]
    runs = [replace(r, **overrides) for r in runs]
    console = Console()
    data = load_data()
    for r in runs:
        folder = out / r.name if isinstance(found, recipes.Suite) else out
        try:
            train(
                r,
                folder,
                resume=args.resume and (folder / "checkpoint.pt").exists(),
                data=data,
                console=console,
            )
        except ValueError as e:
            raise UsageError(str(e)) from None
    console.print(f"runs in {out.resolve()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from . import demo

            return demo.main()
        if args.command == "tour":
            from .explain import text, tour

            tour.run(args.out, text.make_console())
            return 0
        if args.command == "explain":
            return _explain(args)
        if args.command == "serve":
            if not 0 < args.port < 65536:
                raise UsageError(f"--port: expected 1–65535 (got {args.port})")
            from .web.app import serve

            print(f"bnlab explorer on http://{args.host}:{args.port}/ (Ctrl-C stops it)")
            serve(args.host, args.port, args.runs, args.open)
            return 0
        if args.command == "train":
            return _train(args)
        if args.command == "compare":
            from .experiments import compare

            page = compare.write(args.runs, args.out)
            print(f"wrote {page}")
            return 0
    except UsageError as e:
        print(f"bnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 2  # unreachable: argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
