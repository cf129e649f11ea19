"""Kernels for moves 1 and 3, one interface, chosen by name.

Each backend module provides ``forward`` and ``backward`` (a whole direction) and the step
functions a recorder walks through: ``forward_reduce``, ``forward_apply``, ``normalized``,
``backward_reduce`` and ``backward_apply`` (see :mod:`bnlab.backends.torch_ref`).

* ``'torch'``: the portable backend, vectorized torch ops, any device;
* ``'cpu-fused'``: compiled CPU kernels, one call per direction (:mod:`bnlab.backends.fused`);
* ``'auto'``: ``'cpu-fused'`` for the CPU tensors it takes, when it can be built here, else
  ``'torch'`` (CUDA tensors included).  :func:`prefer` makes ``'auto'`` mean one backend for a
  block of code: a test, a benchmark, a comparison.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from types import ModuleType

from torch import Tensor

from ..errors import BNRuntimeValueError, BNValueError
from . import fused, torch_ref

_BACKENDS: dict[str, ModuleType] = {"torch": torch_ref, "cpu-fused": fused}

BACKEND_NAMES: tuple[str, ...] = ("auto", *_BACKENDS)

_preferred: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bnlab_backend", default=None
)


def _fused_enabled() -> bool:
    """Whether 'auto' may use the fused kernels: ``BNLAB_FUSED=0`` turns them off."""
    return os.environ.get("BNLAB_FUSED", "1") != "0" and fused.available()


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in BACKEND_NAMES:
        known = ", ".join(repr(n) for n in BACKEND_NAMES)
        raise BNValueError(f"backend must be one of {known} (got {name!r})")
    return name


def select(name: str, x: Tensor) -> ModuleType:
    """The backend module called ``name``, or the best one for ``x`` when ``name == 'auto'``."""
    if name == "auto":
        name = _preferred.get() or "auto"
        if name == "auto":
            return fused if fused.supports(x) and _fused_enabled() else torch_ref
    kernel = _BACKENDS.get(_check_name(name))
    if kernel is fused:
        try:
            fused.library()
        except fused.KernelsUnavailable as e:
            raise BNRuntimeValueError(f"backend 'cpu-fused' is not available here: {e}") from None
    return kernel  # type: ignore[return-value]


@contextlib.contextmanager
def prefer(name: str) -> Iterator[None]:
    """Within the block, ``backend='auto'`` means ``name`` (explicit names are unchanged)."""
    token = _preferred.set(_check_name(name))
    try:
        yield
    finally:
        _preferred.reset(token)
