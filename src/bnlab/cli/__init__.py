"""The ``bnlab`` command line: one entry point, one subcommand per job.

A user's mistake is never a traceback: it prints one line naming the option, the value and
what is expected (``bnlab explain: error: --gamma: expected finite numbers …``) and exits with
status 2, before any work is done.  Ctrl-C exits with status 130 and says what was kept.

Modules: ``parser`` (the commands and their help), ``values`` (parsing and checking option
values), ``output`` (writing results), ``explain``, ``train`` and ``commands`` (the rest).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from .values import UsageError

__all__ = ["UsageError", "main"]


def _commands() -> dict[str, Callable[..., int]]:
    from . import bench, commands, explain, inspect, train

    return {
        "tour": commands.tour,
        "explain": explain.run,
        "demo": commands.demo,
        "train": train.run,
        "serve": commands.serve,
        "compare": commands.compare,
        "bench": bench.run,
        "inspect": inspect.run,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bnlab`` with ``argv`` (default: the process's arguments); returns the exit status."""
    from ..errors import BNLabError
    from .parser import parse

    parser, args = parse(argv)
    if args.command is None:  # bare `bnlab`: what it can do
        parser.print_help(sys.stderr)
        return 2
    try:
        return _commands()[args.command](args)
    except UsageError as e:
        print(f"bnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BNLabError as e:  # bad input found deeper down: still the user's, still one line
        print(f"bnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bnlab {args.command}: interrupted", file=sys.stderr)
        return 130
