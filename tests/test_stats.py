"""bnlab.stats: reduce (move 1), merge/combine (move 2) and update_running, against torch."""

from __future__ import annotations

import pytest
import torch

from bnlab import stats

SHAPES = {
    2: (16, 3),
    3: (8, 4, 5),
    4: (6, 3, 4, 5),
    5: (4, 2, 3, 4, 2),
}
RANKS = [pytest.param(rank, id=f"r{rank}") for rank in SHAPES]


def sample(shape, dtype=torch.float64, seed=0):
    """Per-channel distinct mean and scale, so that a wrong reduction axis shows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    channel = (1, -1) + (1,) * (len(shape) - 2)
    scale = torch.arange(1, shape[1] + 1, dtype=torch.float64).reshape(channel)
    return (x * scale + 3.0 * scale).to(dtype)


def torch_var_mean(x, dims):
    var, mean = torch.var_mean(x, dim=dims, correction=0)
    return mean, var


def assert_close(actual, expected, atol, rtol=0.0):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)


# --- move 1: reduce --------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [2, 3, 4, 5, 6])
def test_reduce_axes(rank):
    assert stats.reduce_axes(rank) == (0, *range(2, rank))
    assert 1 not in stats.reduce_axes(rank)


@pytest.mark.parametrize("rank", RANKS)
def test_reduce_matches_torch_float64(rank):
    x = sample(SHAPES[rank])
    dims = (0, *range(2, rank))
    s = stats.reduce(x)
    mean, var = torch_var_mean(x, dims)
    assert s.count == x.numel() // x.shape[1]
    assert isinstance(s.count, int)
    assert s.mean.shape == s.var.shape == (x.shape[1],)
    assert s.mean.dtype == s.var.dtype == torch.float64
    assert_close(s.mean, mean, atol=1e-12)
    assert_close(s.var, var, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("rank", RANKS)
def test_reduce_low_precision_accumulates_in_float32(rank, dtype):
    x = sample(SHAPES[rank], dtype=dtype)
    dims = (0, *range(2, rank))
    s = stats.reduce(x)
    assert stats.accumulate_dtype(dtype) == torch.float32
    assert s.mean.dtype == s.var.dtype == torch.float32
    # the exact statistics of the 16-bit values, computed in float64
    mean, var = torch_var_mean(x.double(), dims)
    assert_close(s.mean.double(), mean, atol=0.0, rtol=1e-5)
    assert_close(s.var.double(), var, atol=0.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        pytest.param((8, 4, 5), (0,), id="batch-only"),
        pytest.param((6, 3, 4, 5), (0, 1), id="batch-and-channel"),
        pytest.param((6, 3, 4, 5), (2, 3), id="spatial-only"),
        pytest.param((6, 3, 4, 5), [0, 3], id="list-of-axes"),
        pytest.param((6, 3, 4, 5), (-1,), id="negative-axis"),
    ],
)
def test_reduce_custom_axes(shape, axes):
    x = sample(shape)
    s = stats.reduce(x, axes=axes)
    mean, var = torch_var_mean(x, tuple(axes))
    count = 1
    for a in axes:
        count *= shape[a]
    assert s.count == count
    assert s.mean.shape == mean.shape
    assert_close(s.mean, mean, atol=1e-12)
    assert_close(s.var, var, atol=1e-12)


def test_reduce_is_stable_when_mean_dwarfs_std():
    # x = 10⁴ + N(0, 1) in float32: E[x²] ≈ 10⁸, where float32 spacing is 8, so the naive
    # E[x²] − E[x]² is rounding noise (here even negative); the two-pass variance is not.
    g = torch.Generator().manual_seed(0)
    x64 = 1e4 + torch.randn(64, 3, 8, 8, generator=g, dtype=torch.float64)
    x = x64.float()
    truth = x.double().var(dim=(0, 2, 3), unbiased=False)  # exact stats of the float32 values
    s = stats.reduce(x)
    assert s.var.dtype == torch.float32
    assert ((s.var.double() - truth) / truth).abs().max().item() < 1e-3
    naive = (x * x).mean(dim=(0, 2, 3)) - x.mean(dim=(0, 2, 3)).square()
    assert ((naive.double() - truth) / truth).abs().max().item() > 0.5  # so the test can fail


# --- Stats helpers ---------------------------------------------------------------------------


def test_stats_m2_and_unbiased_var():
    x = sample((7, 3, 2))
    s = stats.reduce(x)
    mean = x.mean(dim=(0, 2), keepdim=True)
    m2 = (x - mean).square().sum(dim=(0, 2))
    assert_close(s.m2, m2, atol=1e-12)
    assert_close(s.unbiased_var(), torch.var(x, dim=(0, 2), correction=1), atol=1e-12)
    assert not torch.allclose(s.unbiased_var(), s.var)  # m/(m − 1) = 14/13 apart


# --- move 2: merge / combine (Chan's formula) ------------------------------------------------

SPLITS = [
    pytest.param((12,), id="one-shard"),
    pytest.param((6, 6), id="halves"),
    pytest.param((1, 11), id="1+11"),
    pytest.param((7, 2, 3), id="7+2+3"),
    pytest.param((1, 1, 1, 9), id="1+1+1+9"),
    pytest.param((0, 12), id="empty-first"),
    pytest.param((5, 0, 7), id="empty-middle"),
    pytest.param((12, 0), id="empty-last"),
]


def shards_of(x, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(stats.reduce(x[start : start + n]))
        start += n
    assert start == x.shape[0]
    return out


def with_tensor_count(s, dtype=torch.float64):
    """The shard as it comes out of a collective: count a 0-d tensor; an empty shard zeroed."""
    if s.count == 0:  # reduce() of an empty batch has NaN mean/var; a collective sends zeros
        return stats.Stats(
            torch.tensor(0, dtype=dtype), torch.zeros_like(s.mean), torch.zeros_like(s.var)
        )
    return stats.Stats(torch.tensor(s.count, dtype=dtype), s.mean, s.var)


@pytest.mark.parametrize("sizes", SPLITS)
@pytest.mark.parametrize("rank", RANKS)
def test_combine_int_counts_equals_reduce_of_concatenation(rank, sizes):
    x = sample((12, *SHAPES[rank][1:]), seed=rank)
    whole = stats.reduce(x)
    merged = stats.combine(shards_of(x, sizes))
    assert merged.count == whole.count
    assert isinstance(merged.count, int)
    assert_close(merged.mean, whole.mean, atol=1e-12)
    assert_close(merged.var, whole.var, atol=1e-12)


@pytest.mark.parametrize("sizes", SPLITS)
@pytest.mark.parametrize("rank", RANKS)
def test_combine_tensor_counts_equals_reduce_of_concatenation(rank, sizes):
    x = sample((12, *SHAPES[rank][1:]), seed=rank)
    whole = stats.reduce(x)
    merged = stats.combine([with_tensor_count(s) for s in shards_of(x, sizes)])
    assert isinstance(merged.count, torch.Tensor) and merged.count.dim() == 0
    assert int(merged.count) == whole.count
    assert_close(merged.mean, whole.mean, atol=1e-12)
    assert_close(merged.var, whole.var, atol=1e-12)


def test_merge_formula_on_a_small_example():
    # {1, 2} ∪ {4, 7}: μ = 3.5, σ² = (6.25 + 2.25 + 0.25 + 12.25)/4 = 5.25
    a = stats.reduce(torch.tensor([[1.0], [2.0]], dtype=torch.float64))
    b = stats.reduce(torch.tensor([[4.0], [7.0]], dtype=torch.float64))
    m = stats.merge(a, b)
    assert m.count == 4
    assert m.mean.item() == pytest.approx(3.5, abs=1e-15)
    assert m.var.item() == pytest.approx(5.25, abs=1e-15)


def test_combine_int64_tensor_counts_keeps_float64_precision():
    x = sample((10, 3, 4))
    whole = stats.reduce(x)
    shards = [with_tensor_count(s, torch.int64) for s in shards_of(x, (3, 7))]
    merged = stats.combine(shards)
    assert_close(merged.mean, whole.mean, atol=1e-12)
    assert_close(merged.var, whole.var, atol=1e-12)


def test_combine_tensor_counts_with_empty_reduce_shard():
    x = sample((10, 3, 4))
    whole = stats.reduce(x)
    empty, full = stats.reduce(x[:0]), stats.reduce(x)
    shards = [
        stats.Stats(torch.tensor(float(s.count), dtype=torch.float64), s.mean, s.var)
        for s in (empty, full)
    ]
    merged = stats.combine(shards)
    assert_close(merged.mean, whole.mean, atol=1e-12)


def test_combine_empty_list_raises():
    with pytest.raises(ValueError, match="at least one"):
        stats.combine([])


# --- move 3, record side: update_running -----------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0], ids=lambda m: f"m{m}")
@pytest.mark.parametrize("rank", RANKS)
def test_update_running_matches_torch_batch_norm(rank, momentum):
    x = sample(SHAPES[rank], seed=10 + rank)
    c = x.shape[1]
    g = torch.Generator().manual_seed(rank)
    start_mean = torch.randn(c, generator=g, dtype=torch.float64)
    start_var = torch.rand(c, generator=g, dtype=torch.float64) + 0.5
    theirs_mean, theirs_var = start_mean.clone(), start_var.clone()
    torch.nn.functional.batch_norm(x, theirs_mean, theirs_var, training=True, momentum=momentum)
    ours_mean, ours_var = start_mean.clone(), start_var.clone()
    stats.update_running(ours_mean, ours_var, stats.reduce(x), momentum)
    assert not torch.allclose(theirs_mean, start_mean)  # torch did move them
    assert_close(ours_mean, theirs_mean, atol=1e-12)
    assert_close(ours_var, theirs_var, atol=1e-12)


def test_update_running_skips_missing_buffers():
    x = sample((8, 3))
    running_var = torch.ones(3, dtype=torch.float64)
    stats.update_running(None, running_var, stats.reduce(x), 1.0)
    assert_close(running_var, torch.var(x, dim=0, correction=1), atol=1e-12)
    running_mean = torch.zeros(3, dtype=torch.float64)
    stats.update_running(running_mean, None, stats.reduce(x), 1.0)
    assert_close(running_mean, x.mean(0), atol=1e-12)
