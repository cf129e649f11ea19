"""Move 4: an optional observer that sees every intermediate of the real computation.

A recorder is any callable ``recorder(step, value)``.  The kernels call it, when one is given,
with the tensors they actually computed — nothing is recomputed for show — so what an observer
records is exactly what the modules compute.  A value may be overwritten in place by the next
step, so a recorder copies what it keeps.  Step names, in order:

``input``, ``mean``, ``var``, ``running_mean``, ``running_var`` (after the update, training only),
``x_minus_mean``, ``invstd``, ``xhat``, ``output``.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class Recorder(Protocol):
    """Receives one named intermediate tensor of batch normalization."""

    def __call__(self, step: str, value: Tensor, /) -> None: ...
