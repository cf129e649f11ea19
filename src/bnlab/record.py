"""Move 4: an optional observer that sees every intermediate of the real computation.

A recorder is any callable ``recorder(step, value)``.  The kernels call it, when one is given,
with the tensors they actually computed — nothing is recomputed for show — so what an observer
records is exactly what the modules compute.  A value may be overwritten in place by the next
step, so a recorder copies what it keeps.  Step names, in order:

``input``, ``mean``, ``var``, ``running_mean``, ``running_var`` (after the update, training only),
``x_minus_mean``, ``invstd``, ``xhat``, ``output``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from torch import Tensor


class Recorder(Protocol):
    """Receives one named intermediate tensor of batch normalization."""

    def __call__(self, step: str, value: Tensor, /) -> None: ...


_CURRENT: ContextVar[Recorder | None] = ContextVar("bnlab_recorder", default=None)


def current_recorder() -> Recorder | None:
    """The recorder of the innermost :func:`recording` block, or None (the usual case)."""
    return _CURRENT.get()


@contextmanager
def recording(recorder: Recorder | None) -> Iterator[None]:
    """Hand every intermediate of the batch norms computed inside the block to ``recorder``.

    A context variable rather than an argument: the op's signature stays tensors and numbers,
    so what :mod:`bnlab.explain` records is the very call the modules make.
    """
    token = _CURRENT.set(recorder)
    try:
        yield
    finally:
        _CURRENT.reset(token)
