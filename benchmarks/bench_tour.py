"""How long ``bnlab tour`` takes to do its work (everything after imports).

Target: under 10 s on a 2-core machine.  Prints a line per run and JSON with the median.

    .venv/bin/python benchmarks/bench_tour.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

t_import = time.perf_counter()
from bnlab.explain import figures, tour  # noqa: E402  (imports timed separately)

t_import = time.perf_counter() - t_import


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    times = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = tour.run(d)
            times.append(time.perf_counter() - t0)
        print(f"run {i + 1}: {times[-1]:.2f} s ({len(res.figures)} figures)")
    doc = {
        "import_s": t_import,
        "runs_s": times,
        "median_s": statistics.median(times),
        "target_s": 10.0,
        "cjk_font": figures.cjk_font_available(),
    }
    print(json.dumps(doc))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
