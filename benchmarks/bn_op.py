"""Batch norm alone: bnlab's fused and portable paths against torch's, the textbook's, a copy.

The same as ``bnlab bench`` (see bnlab/bench/__init__.py for what is timed and how):

    .venv/bin/python benchmarks/bn_op.py --threads 2 --json docs/results/speed.json
    .venv/bin/python benchmarks/bn_op.py --quick          # the harness on tiny shapes
"""

from __future__ import annotations

import sys

from bnlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
