"""bnlab's modules: drop-in ``BatchNorm1d/2d/3d``, ``SyncBatchNorm``, the textbook layer, and
model conversion."""

from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .convert import convert, to_torch
from .d2l import D2LBatchNorm, book_batch_norm
from .sync import SyncBatchNorm

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "D2LBatchNorm",
    "SyncBatchNorm",
    "book_batch_norm",
    "convert",
    "to_torch",
]
