"""bnlab's error types.

Every error bnlab raises on bad input is a :class:`BNLabError`, and also the builtin type that
``torch.nn`` raises for the same mistake (``ValueError`` for shapes and values, ``TypeError`` for
dtypes), so code written against torch keeps catching what it caught before.
"""

from __future__ import annotations


class BNLabError(Exception):
    """Base class of every error bnlab raises on purpose."""


class BNValueError(BNLabError, ValueError):
    """A shape, size or value that batch normalization cannot use."""


class BNTypeError(BNLabError, TypeError):
    """A dtype or object type that batch normalization cannot use."""


def shape_str(shape: tuple[int, ...] | object) -> str:
    """``(4, 3, 5)`` for a shape, so messages read the same for every rank."""
    dims = tuple(shape)  # type: ignore[arg-type]
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(str(d) for d in dims) + ")"
