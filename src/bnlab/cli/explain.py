"""``bnlab explain``: one named example, or the learner's own tensor, in any format.

Every format carries the checks against ``torch.nn.BatchNorm*d``: a named example's, or, for a
``--shape`` tensor, each step and the running statistics compared with torch's module.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

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

    if args.run is not None or args.layer is not None:
        mixed = [
            o
            for o, v in (
                ("--example", args.example),
                ("--shape", args.shape),
                ("--gamma", gamma),
                ("--beta", beta),
                ("--eps", args.eps),
                ("--seed", args.seed),
            )
            if v is not None
        ]
        if mixed:
            raise UsageError(
                f"{mixed[0]}: does not go with --run, which explains a real layer with its own "
                "values"
            )
        return _layer(args, out)
    for option in ("--channel", "--samples"):
        if getattr(args, option[2:]) is not None:
            raise UsageError(f"{option}: applies with --run RUN_DIR --layer NAME")

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


def _layer(args: argparse.Namespace, out: Path | None) -> int:
    """``--run RUN_DIR --layer NAME``: one BN layer of a run, on one real batch of its input."""
    import torch
    from torch import nn

    from ..experiments.train import load_data
    from ..inspect.layers import bn_layers
    from ..nn import D2LBatchNorm
    from .inspect import load_checkpoint

    if args.run is None or args.layer is None:
        missing = "--run RUN_DIR" if args.run is None else "--layer NAME"
        raise UsageError(f"{missing}: needed: --run RUN_DIR and --layer NAME go together")
    channel = 0 if args.channel is None else values.whole("--channel", args.channel)
    samples = None if args.samples is None else values.count("--samples", args.samples)
    folder = values.in_folder("--run", args.run, "a run written by bnlab train")
    model, recipe, _ = load_checkpoint(folder)
    layers = dict(bn_layers(model))
    if args.layer not in layers:
        known = ", ".join(repr(n) for n in layers) or "none"
        raise UsageError(
            f"--layer: no BN layer {args.layer!r} in the run's model (its BN layers: {known})"
        )
    bn = layers[args.layer]
    if channel >= bn.num_features:
        raise UsageError(
            f"--channel: expected 0 to {bn.num_features - 1}, a channel of layer "
            f"{args.layer!r} (got {channel})"
        )
    xtr = load_data()[0]
    batch = xtr[: samples or recipe.batch_size]
    seen: list[torch.Tensor] = []

    def grab(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        seen.append(inputs[0].detach().clone())

    handle = bn.register_forward_pre_hook(grab)
    try:
        model.train()  # the activations as training feeds them (buffers are a copy's)
        with torch.no_grad():
            model(batch)
    finally:
        handle.remove()
    x = seen[0][:, channel : channel + 1]
    if isinstance(bn, D2LBatchNorm):
        w, b = bn.gamma.detach().reshape(-1), bn.beta.detach().reshape(-1)
        rm, rv = bn.moving_mean.reshape(-1), bn.moving_var.reshape(-1)
        momentum = 1.0 - float(bn.momentum)
    else:
        w = None if bn.weight is None else bn.weight.detach()
        b = None if bn.bias is None else bn.bias.detach()
        rm, rv = bn.running_mean, bn.running_var
        momentum = 0.1 if bn.momentum is None else float(bn.momentum)
    pick = slice(channel, channel + 1)
    numel = x.numel()
    limit = MAX_ELEMENTS[args.format]
    if numel > limit:
        raise UsageError(
            f"--format {args.format}: channel {channel} of layer {args.layer!r} holds {numel:,} "
            f"values in a batch of {len(batch)} (at most {limit:,}); pass --samples "
            f"{max(1, limit * len(batch) // numel)}"
            + (" or use --format text" if args.format != "text" else "")
        )
    return _render(
        x,
        None if w is None else w[pick].tolist(),
        None if b is None else b[pick].tolist(),
        float(bn.eps),
        args.format,
        out,
        running=None if rm is None else (rm[pick].clone(), rv[pick].clone()),
        momentum=momentum,
    )


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


    torch.manual_seed(seed)
    return _render(torch.rand(shape), gamma, beta, eps, fmt, out)


def _render(
    x: Any,
    gamma: list[float] | None,
    beta: list[float] | None,
    eps: float,
    fmt: str,
    out: Path | None,
    running: tuple[Any, Any] | None = None,
    momentum: float = 0.1,
) -> int:
    """Explain ``x`` step by step and write it in ``fmt``, with the checks against torch."""
    from ..explain import examples, html, text
    from ..explain.trace import explain

    extra = {} if running is None else {"running_mean": running[0], "running_var": running[1]}
    trace = explain(x, gamma, beta, eps, momentum=momentum, **extra)
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
