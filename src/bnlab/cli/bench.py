"""``bnlab bench``: time bnlab's batch norm against torch's (see :mod:`bnlab.bench`)."""

from __future__ import annotations

import argparse
import json
import sys

from . import output, values


def add(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` command and its options."""
    p = sub.add_parser(
        "bench",
        help="time bnlab's batch norm against torch's, the textbook's and a copy",
        description="Training-mode batch norm, forward and forward+backward, warm and "
        "cache-cold: bnlab's fused kernels and portable path, torch's kernel, the textbook "
        "layer and the memory floor (a copy), interleaved in one process; medians.",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--rounds", metavar="N", help="interleaved rounds per measurement (25)")
    p.add_argument("--threads", metavar="N", help="torch.set_num_threads (default: torch's)")
    p.add_argument("--warm-only", action="store_true", help="skip the cache-cold runs")
    p.add_argument(
        "--quick", action="store_true", help="tiny shapes, 3 rounds: checks the harness itself"
    )
    p.add_argument(
        "--crossover",
        action="store_true",
        help="instead: where the fused kernels' second thread starts to pay",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from .. import bench
    from ..bench import report

    out = values.out_file("--json", args.json, "bench.json") if args.json is not None else None
    rounds = values.count("--rounds", args.rounds) if args.rounds is not None else None
    if args.threads is not None:
        torch.set_num_threads(values.count("--threads", args.threads))
    if args.crossover:
        from ..bench import crossover

        rows = crossover.measure(rounds or 25)
        print(crossover.table(rows))
        if out is not None:
            output.write(json.dumps({"crossover": rows}, indent=2) + "\n", out)
        return 0
    cases = bench.QUICK_CASES if args.quick else bench.CASES
    rounds = rounds or (3 if args.quick else 25)

    def progress(text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    results = bench.run(cases, rounds=rounds, cold=not args.warm_only, progress=progress)
    print(report.table(results, markdown=args.markdown))
    print()
    print(report.summary(results))
    if out is not None:
        results["targets"] = report.targets(results)
        output.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n", out)
    return 0
