"""The pre-activation percentiles: exact subsample indices at any batch size (> 2**24 a channel)."""

from __future__ import annotations

import pytest
import torch

from bnlab.experiments import percentiles


@pytest.mark.parametrize(
    "shape",
    [(2**24 + 4, 1), (30_000, 1, 24, 24)],  # 2**24 + 3 rounds up to 2**24 + 4 in float32
    ids=["2**24+4 rows", "LeNet-BN conv1 at batch 30000"],
)
def test_quantiles_of_more_than_2_to_24_values_per_channel(shape):
    n = shape[0] * (shape[2] * shape[3] if len(shape) == 4 else 1)
    x = torch.linspace(-1, 1, n).reshape(shape)  # evenly spread: percentiles at −0.7, 0, 0.7
    q = percentiles.quantiles(x)
    for key, want in (("q15", -0.7), ("q50", 0.0), ("q85", 0.7)):
        assert q[key] == pytest.approx([want], abs=1e-3), key


@pytest.mark.parametrize("n", [16_384, 16_385, 2**24 + 4, 60_000 * 784, 2**40])
def test_even_indices_are_exact_for_any_count(n):
    idx = percentiles._even_indices(n, percentiles.SAMPLE)
    assert idx.dtype == torch.int64 and len(idx) == percentiles.SAMPLE
    assert idx[0] == 0 and idx[-1] == n - 1
    assert bool((idx[1:] > idx[:-1]).all())


def test_quantiles_subsample_takes_each_channel_at_the_same_positions():
    x = torch.randn(50, 3, 20, 20, generator=torch.Generator().manual_seed(0))  # 20,000 a channel
    idx = percentiles._even_indices(20_000, percentiles.SAMPLE)
    per_channel = x.transpose(0, 1).reshape(3, -1)[:, idx]  # (C, SAMPLE)
    want = torch.quantile(per_channel, torch.tensor(percentiles.QUANTILES), dim=1)  # (3, C)
    got = percentiles.quantiles(x)
    assert [got["q15"], got["q50"], got["q85"]] == [[round(v, 4) for v in r] for r in want.tolist()]
