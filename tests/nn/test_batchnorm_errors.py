"""Bad input to bnlab.nn.BatchNorm*d: torch's exception types and messages, and no state change.

torch counts a batch (num_batches_tracked += 1) before it finds the input bad; bnlab checks
everything first, so a failed call leaves every buffer as it was.
"""

from __future__ import annotations

import pytest
import torch

import bnlab.nn as bnn
from bnlab import BNLabError

pytestmark = pytest.mark.usefixtures("every_backend")

CASES = [
    (
        "1d gets 4D",
        bnn.BatchNorm1d,
        torch.randn(2, 3, 4, 5),
        ValueError,
        r"^expected 2D or 3D input \(got 4D input\)$",
    ),
    (
        "1d gets 1D",
        bnn.BatchNorm1d,
        torch.randn(3),
        ValueError,
        r"^expected 2D or 3D input \(got 1D input\)$",
    ),
    (
        "2d gets 3D",
        bnn.BatchNorm2d,
        torch.randn(2, 3, 4),
        ValueError,
        r"^expected 4D input \(got 3D input\)$",
    ),
    (
        "3d gets 4D",
        bnn.BatchNorm3d,
        torch.randn(2, 3, 4, 4),
        ValueError,
        r"^expected 5D input \(got 4D input\)$",
    ),
    (
        "single value per channel",
        bnn.BatchNorm1d,
        torch.randn(1, 3),
        ValueError,
        r"^Expected more than 1 value per channel when training, got input size "
        r"torch.Size\(\[1, 3\]\)$",
    ),
    (
        "single value per channel 2d",
        bnn.BatchNorm2d,
        torch.randn(1, 3, 1, 1),
        ValueError,
        r"got input size torch.Size\(\[1, 3, 1, 1\]\)$",
    ),
    (
        "channel mismatch",
        bnn.BatchNorm1d,
        torch.randn(4, 5),
        RuntimeError,  # torch's type and words first, then the module's sentence
        r"^running_mean should contain 5 elements not 3: BatchNorm1d expected input with 3 "
        r"channels \(num_features\) at dim 1 \(got 5 channels in input of shape \(4, 5\)\)$",
    ),
    (
        "channel mismatch 2d",
        bnn.BatchNorm2d,
        torch.randn(4, 2, 3, 3),
        RuntimeError,
        r"expected input with 3 channels .* \(got 2 channels in input of shape \(4, 2, 3, 3\)\)",
    ),
    (
        "integer input",
        bnn.BatchNorm1d,
        torch.ones(4, 3, dtype=torch.int64),
        TypeError,
        r"expected a floating-point input .* \(got torch.int64\)",
    ),
    (
        "boolean input",
        bnn.BatchNorm2d,
        torch.ones(4, 3, 2, 2, dtype=torch.bool),
        TypeError,
        r"\(got torch.bool\)",
    ),
    (
        "float64 input to float32 module",
        bnn.BatchNorm1d,
        torch.randn(4, 3, dtype=torch.float64),
        TypeError,
        r"expected running_mean of dtype torch.float64 .*\(got torch.float32\)",
    ),
    (
        "not a tensor",
        bnn.BatchNorm1d,
        [[1.0, 2.0, 3.0]],
        TypeError,
        r"expected a torch.Tensor \(got list\)",
    ),
]


def _snapshot(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize(("case", "cls", "x", "exc", "message"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["m0.1", "mNone"])
def test_bad_input_leaves_state_untouched(case, cls, x, exc, message, momentum):
    m = cls(3, momentum=momentum)
    good = torch.randn(
        (4, 3) + (2,) * {bnn.BatchNorm1d: 0, bnn.BatchNorm2d: 2, bnn.BatchNorm3d: 3}[cls]
    )
    m(good)  # a real batch first, so the buffers hold non-initial values
    before = _snapshot(m)
    with pytest.raises(exc, match=message) as info:
        m(x)
    assert isinstance(info.value, BNLabError), "bnlab errors share one base class"
    after = _snapshot(m)
    for k, v in before.items():
        assert torch.equal(after[k], v), f"{case}: {k} changed by a failed call"
    assert after["num_batches_tracked"].item() == 1


def test_torch_counts_the_failed_batch_bnlab_does_not():
    theirs, ours = torch.nn.BatchNorm1d(3), bnn.BatchNorm1d(3)
    for m in (theirs, ours):
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            m(torch.randn(1, 3))
    assert theirs.num_batches_tracked.item() == 1  # torch's behaviour, which bnlab improves on
    assert ours.num_batches_tracked.item() == 0


def test_eval_accepts_a_single_sample():
    m = bnn.BatchNorm1d(3).eval()
    assert m(torch.randn(1, 3)).shape == (1, 3)


@pytest.mark.parametrize("bad", [-2, 2.5, True, "3"], ids=repr)
def test_bad_num_features(bad):
    with pytest.raises(ValueError, match=r"expected num_features to be a non-negative int"):
        bnn.BatchNorm2d(bad)


def test_num_features_as_torch_takes_them():
    """Any integer, NumPy's too, and 0 (torch builds an empty layer)."""
    import numpy as np

    for n in (np.int64(3), 0):
        assert repr(bnn.BatchNorm2d(n)) == repr(torch.nn.BatchNorm2d(n))
