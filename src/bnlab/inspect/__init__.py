"""Inspect batch norm inside a live model."""

from .check import check
from .fold import Folded, FoldResult, Skipped, fold
from .freeze import FreezeState, freeze, frozen_layers, is_frozen, unfreeze
from .monitor import LayerSummary, Monitor, monitor
from .recalibrate import bn_modules, recalibrate
from .report import Finding, Report

__all__ = [
    "Finding",
    "FoldResult",
    "Folded",
    "FreezeState",
    "LayerSummary",
    "Monitor",
    "Report",
    "Skipped",
    "bn_modules",
    "check",
    "fold",
    "freeze",
    "frozen_layers",
    "is_frozen",
    "monitor",
    "recalibrate",
    "unfreeze",
]
