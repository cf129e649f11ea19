"""Kernels for moves 1 and 3, one interface, chosen by name.

Each backend module provides ``forward_reduce``, ``forward_apply``, ``normalized``,
``backward_reduce`` and ``backward_apply`` (see :mod:`bnlab.backends.torch_ref`).  ``'auto'``
picks the fastest backend that supports the input; today that is the portable ``'torch'`` one.
"""

from __future__ import annotations

from types import ModuleType

from torch import Tensor

from ..errors import BNValueError
from . import torch_ref

_BACKENDS: dict[str, ModuleType] = {"torch": torch_ref}

BACKEND_NAMES: tuple[str, ...] = ("auto", *_BACKENDS)


def select(name: str, x: Tensor) -> ModuleType:
    """The backend module called ``name``, or the best one for ``x`` when ``name == 'auto'``."""
    if name == "auto":
        return torch_ref
    try:
        return _BACKENDS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in BACKEND_NAMES)
        raise BNValueError(f"backend must be one of {known} (got {name!r})") from None
