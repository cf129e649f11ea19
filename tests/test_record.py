"""Move 4: ``recording`` hands every intermediate to an observer, only inside its block."""

from __future__ import annotations

import pytest
import torch

from bnlab.functional import batch_norm
from bnlab.record import current_recorder, recording

pytestmark = pytest.mark.usefixtures("every_backend")


def test_recording_is_scoped_nested_and_restored_on_error():
    seen: list[str] = []
    inner: list[str] = []
    x = torch.randn(4, 3)
    assert current_recorder() is None
    with recording(lambda step, _t: seen.append(step)):
        batch_norm(x, None, None, training=True)
        with recording(lambda step, _t: inner.append(step)):
            batch_norm(x, None, None, training=True)
        with pytest.raises(ValueError), recording(lambda *_: None):
            batch_norm(torch.randn(1, 3), None, None, training=True)
        assert current_recorder() is not None
    assert current_recorder() is None
    assert seen == inner == ["input", "mean", "var", "x_minus_mean", "invstd", "xhat", "output"]
    batch_norm(x, None, None, training=True)  # outside: nothing recorded
    assert len(seen) == 7
