"""The percentiles of every nonlinearity's input (the BN paper's Figure 1(b, c)), kept small.

Per channel, the 15th, 50th and 85th percentiles of one batch's pre-activations, over an evenly
spaced subsample of at most ``SAMPLE`` values: O(channels) to keep, whatever the batch size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

QUANTILES = (0.15, 0.5, 0.85)
SAMPLE = 16384  # values per channel the percentiles are taken over (an even subsample)


def pre_activations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The nonlinearities: their inputs are what the BN paper's Figure 1(b, c) tracks."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Sigmoid, nn.ReLU))]


def _even_indices(n: int, k: int) -> Tensor:
    """``k ≥ 2`` evenly spaced indices from 0 to n − 1, both ends included, exact for any n."""
    # floor(i·(n−1)/(k−1)) in int64: float32 (linspace) rounds n − 1 up to n once n > 2**24
    return torch.arange(k, dtype=torch.int64) * (n - 1) // (k - 1)


def quantiles(x: Tensor) -> dict[str, list[float]]:
    """15th/50th/85th percentile per channel of a (N, C, ...) tensor: O(channels) to keep."""
    N, C = x.shape[:2]
    flat = x.detach().reshape(N, C, -1)  # (N, C, M), M = H·W (1 after a linear layer)
    M = flat.shape[2]
    if N * M > SAMPLE:  # a fixed, evenly spaced subsample keeps quantile cheap
        j = _even_indices(N * M, SAMPLE)  # positions in a channel's (N, M) values, row-major
        per_channel = flat[j // M, :, j % M].T.float()  # (SAMPLE, C) -> (C, SAMPLE)
    else:
        per_channel = flat.transpose(0, 1).reshape(C, -1).float()  # (C, N·M)
    q = torch.quantile(per_channel, torch.tensor(QUANTILES), dim=1)  # (3, C)
    # 4 decimals: far finer than a percentile of one batch is precise, and files stay small
    return {
        k: [round(v, 4) for v in row.tolist()]
        for k, row in zip(("q15", "q50", "q85"), q, strict=True)
    }
