"""bnlab: understand, implement, see and inspect batch normalization in PyTorch."""

from . import functional, nn, reference, stats
from .errors import BNLabError, BNTypeError, BNValueError

__version__ = "0.1.0"

__all__ = [
    "BNLabError",
    "BNTypeError",
    "BNValueError",
    "__version__",
    "functional",
    "nn",
    "reference",
    "stats",
]
