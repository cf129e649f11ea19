"""Inspect batch norm inside a live model."""

from .recalibrate import bn_modules, recalibrate

__all__ = ["bn_modules", "recalibrate"]
