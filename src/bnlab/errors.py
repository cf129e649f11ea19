"""bnlab's error types.

Every error bnlab raises on bad input is a :class:`BNLabError` and a ``ValueError`` (shapes and
values) or ``TypeError`` (dtypes).  Where ``torch`` raises another builtin type for the same
mistake (``RuntimeError`` for a per-channel tensor of the wrong length, ``NotImplementedError``
for an integer input, ``IndexError`` or ``RuntimeError`` for a 1-D input), bnlab's error is that
type too, so code written against torch keeps catching what it caught before.
"""

from __future__ import annotations


class BNLabError(Exception):
    """Base class of every error bnlab raises on purpose."""


class BNValueError(BNLabError, ValueError):
    """A shape, size or value that batch normalization cannot use."""


class BNTypeError(BNLabError, TypeError):
    """A dtype or object type that batch normalization cannot use."""


class BNRuntimeValueError(BNValueError, RuntimeError):
    """A size or state mistake for which torch raises RuntimeError (e.g. weight of wrong length)."""


class BNRuntimeTypeError(BNTypeError, RuntimeError):
    """A dtype mix for which torch raises RuntimeError (e.g. float64 weight, float32 input)."""


class BNUnsupportedDTypeError(BNTypeError, NotImplementedError):
    """An input dtype batch norm is not defined for (torch: NotImplementedError)."""


class BNRankError(BNValueError, IndexError, RuntimeError):
    """An input without a channel axis (torch: IndexError, or RuntimeError with running stats)."""


def shape_str(shape: tuple[int, ...] | object) -> str:
    """``(4, 3, 5)`` for a shape, so messages read the same for every rank."""
    dims = tuple(shape)  # type: ignore[arg-type]
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(str(d) for d in dims) + ")"
