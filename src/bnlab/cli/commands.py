"""The short commands: ``tour``, ``demo``, ``serve`` and ``compare``."""

from __future__ import annotations

import argparse
import socket

from . import values
from .values import UsageError


def tour(args: argparse.Namespace) -> int:
    from ..explain import text
    from ..explain import tour as tour_mod

    out = values.out_folder("--out", args.out, "index.html and figures/")
    try:
        tour_mod.run(out, text.make_console(), args.lang)
    except OSError as e:
        raise UsageError(f"--out: cannot write {e.filename or out} ({e.strerror or e})") from None
    return 0


def demo(_args: argparse.Namespace) -> int:
    from .. import demo as demo_mod

    return demo_mod.main()


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise UsageError(f"--port: expected a whole number from 1 to 65535 (got {text!r})")
    return port


def _check_bind(host: str, port: int) -> None:
    """Refuse a host that does not resolve or a port already taken, before starting a server."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UsageError(f"--host: cannot resolve {host!r} ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as e:
            raise UsageError(
                f"--port: cannot listen on {host}:{port} ({e.strerror}); pick another --port"
            ) from None


def serve(args: argparse.Namespace) -> int:
    port = _port(args.port)
    runs = None
    if args.runs is not None:
        runs = values.in_folder("--runs", args.runs, "training runs (bnlab train)")
    _check_bind(args.host, port)
    from ..web.app import serve as serve_app

    print(f"bnlab explorer on http://{args.host}:{port}/ (Ctrl-C stops it)")
    serve_app(args.host, port, runs, args.open)
    return 0


def compare(args: argparse.Namespace) -> int:
    from ..errors import BNLabError
    from ..experiments import compare as compare_mod

    out = values.out_folder("--out", args.out, "the plots and index.html")
    for d in args.runs:
        values.in_folder("DIR", d, "runs written by bnlab train")
    try:
        page = compare_mod.write(args.runs, out)
    except BNLabError as e:
        raise UsageError(f"DIR: {e}") from None
    except OSError as e:
        raise UsageError(f"--out: cannot write {e.filename or out} ({e.strerror or e})") from None
    print(f"wrote {page}")
    return 0
