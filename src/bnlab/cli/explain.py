"""``bnlab explain``: one named example, or the learner's own tensor, in any format.

Every format carries the checks against ``torch.nn.BatchNorm*d``: a named example's, or, for a
``--shape`` tensor, each step and the running statistics compared with torch's module.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..explain.trace import MAX_ELEMENTS_TO_DRAW
from . import values
from .output import write
from .values import UsageError

DRAWN = ("png", "svg", "html")
# The largest tensor each format accepts (elements = the product of the sizes).  Text shows 32
# rows per channel, so it can take far more than JSON, which holds every value of every step
# (about 100 bytes an element: 65,536 elements ≈ 7 MB), or a drawing, one cell an element.
MAX_ELEMENTS = {"text": 1 << 20, "json": 1 << 16, **dict.fromkeys(DRAWN, MAX_ELEMENTS_TO_DRAW)}


def run(args: argparse.Namespace) -> int:
    from ..explain import examples

    eps = 1e-5 if args.eps is None else values.number("--eps", args.eps, positive=True)
    gamma = None if args.gamma is None else values.numbers("--gamma", args.gamma)
    beta = None if args.beta is None else values.numbers("--beta", args.beta)
    seed = 0 if args.seed is None else values.seed("--seed", args.seed)
    if args.format == "png" and args.out is None:
        raise UsageError("--format png: needs --out PATH (PNG is not written to a terminal)")
    out = None
    if args.out is not None:
        ext = "txt" if args.format == "text" else args.format
        out = values.out_file("--out", args.out, f"explain.{ext}")

    named = args.shape is None and (args.example is not None or (gamma is None and beta is None))
    if named:
        name = args.example or "seed-illustrated"
        if name not in examples.EXAMPLES and name not in ("formulas", "why"):
            known = ", ".join(examples.EXAMPLES)
            raise UsageError(f"--example: unknown example {name!r} (known: {known})")
        given = [
            o
            for o, v in (
                ("--gamma", gamma),
                ("--beta", beta),
                ("--eps", args.eps),
                ("--seed", args.seed),
            )
            if v is not None
        ]
        if given:
            raise UsageError(
                f"{'/'.join(given)}: {'applies' if len(given) == 1 else 'apply'} to --shape "
                "tensors; a named example uses the source's own values"
            )
        return _section(examples.build(name), args.format, out)

    shape = values.shape("--shape", args.shape) if args.shape is not None else (2, 2, 2, 2)
    text = ",".join(map(str, shape))
    channels = shape[1]
    for option, given_values in (("--gamma", gamma), ("--beta", beta)):
        if given_values is not None and len(given_values) != channels:
            raise UsageError(
                f"{option}: expected {channels} values, one per channel of shape {text} "
                f"(got {len(given_values)})"
            )
    numel = math.prod(shape)
    limit = MAX_ELEMENTS[args.format]
    if numel > limit:
        hint = "; use --format text or json" if args.format in DRAWN else ""
        if args.format == "json":
            hint = "; use --format text"
        raise UsageError(
            f"--shape {text}: {numel:,} elements is too large for --format {args.format} "
            f"(at most {limit:,}){hint}"
        )
    if numel // channels < 2:
        raise UsageError(
            f"--shape: batch norm in training needs more than 1 value per channel "
            f"(got shape {text})"
        )
    return _tensor(shape, seed, gamma, beta, eps, args.format, out)


def _tensor(
    shape: tuple[int, ...],
    seed: int,
    gamma: list[float] | None,
    beta: list[float] | None,
    eps: float,
    fmt: str,
    out: Path | None,
) -> int:
    import torch

    from ..explain import examples, html, text
    from ..explain.trace import explain

    torch.manual_seed(seed)
    x = torch.rand(shape)
    trace = explain(x, gamma, beta, eps)
    checks = examples.trace_checks(trace, "x")
    if fmt == "text":
        write(text.trace_text(trace, checks), out)
    elif fmt == "json":
        doc = {**trace.to_dict(), "checks": [c.to_dict() for c in checks]}
        import json

        write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", out)
    else:
        from ..explain import figures

        if fmt in ("png", "svg"):
            fig = figures.walkthrough_figure(
                trace, footer=examples.checks_summary(checks, _module(x))
            )
            write(figures.render(fig, fmt), out)
        else:
            specs = {
                "input": (
                    "the input, one colour per channel",
                    lambda: figures.tensor_figure(trace, "input"),
                ),
                "step1": (
                    "step 1: per-channel mean and variance",
                    lambda: figures.stats_figure(trace),
                ),
                "step2": ("step 2: y = γ·x̂ + β", lambda: figures.affine_figure(trace)),
            }
            images = {k: figures.render(f(), "png") for k, (_, f) in specs.items()}
            captions = {k: c for k, (c, _) in specs.items()}
            write(html.trace_page(trace, images, captions, checks), out)
    return 0


def _module(x) -> str:  # type: ignore[no-untyped-def]
    from ..explain.examples import torch_module_name

    return f"torch.nn.{torch_module_name(x)}"


def _section(section, fmt: str, out: Path | None) -> int:  # type: ignore[no-untyped-def]
    import json

    from ..explain import html, text, tour

    if fmt == "text":
        write(text.sections_text([section]), out)
    elif fmt == "json":
        doc = {
            "example": section.key,
            "title": section.title,
            "title_zh": section.title_zh,
            "printed": section.printed,
            "source_printed": section.source_printed,
            "checks": [c.to_dict() for c in section.checks],
            "traces": {k: t.to_dict() for k, t in section.traces.items()},
            "data": section.data,
        }
        write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", out)
    elif fmt == "html":
        images = tour.render_figures([section])
        write(html.page(section.title, section.title_zh, section.intro, [section], images), out)
    else:
        if not section.figures:
            raise UsageError(
                f"--format {fmt}: example {section.key!r} has no figure; "
                "use --format text, json or html"
            )
        from ..explain import figures

        write(figures.render(section.figures[0].factory(), fmt), out)
    return 0
