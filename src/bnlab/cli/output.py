"""Writing a command's result: to standard output, or to a file whose folders are made."""

from __future__ import annotations

import sys
from pathlib import Path

from .values import UsageError


def write(data: str | bytes, out: Path | None) -> None:
    """``data`` to ``out`` (folders made as needed), or to standard output when ``out`` is None.

    A file that cannot be written (no permission, a full disk) is one line, not a traceback.
    """
    if out is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            out.write_bytes(data)
        else:
            out.write_text(data, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--out: cannot write {out} ({e.strerror or e})") from None
    print(f"wrote {out}", file=sys.stderr)
