"""Explain: the source document's walkthrough, computed live and drawn (move 4)."""

from .trace import Step, Trace, explain

__all__ = ["Step", "Trace", "explain"]
