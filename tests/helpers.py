"""Parity assertions: float64 to 1e-10 absolute, float32 to 1e-5 relative to the reference."""

from __future__ import annotations

import torch
from torch import Tensor


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(absolute, relative) tolerance for comparing against torch in ``dtype``."""
    if dtype == torch.float64:
        return 1e-10, 0.0
    if dtype == torch.float32:
        return 0.0, 1e-5
    return 0.0, 1e-2  # float16 / bfloat16


def assert_parity(
    ours: Tensor | None, ref: Tensor | None, what: str, dtype: torch.dtype, scale: float = 0.0
) -> None:
    """max|ours − ref| ≤ atol + rtol·max(max|ref|, scale); shapes, dtypes, None-ness agree.

    ``scale`` is the size of the terms a result was summed from, for results that cancel to
    near zero (a gradient is a difference of terms of size |dy·γ/σ|): relative to the result
    alone, rounding in either implementation would look like an error.
    """
    if ref is None or ours is None:
        assert ours is None and ref is None, f"{what}: one side is None ({ours!r} vs {ref!r})"
        return
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(ref.shape)}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} vs {ref.dtype}"
    if ref.numel() == 0:
        return
    diff = (ours.double() - ref.double()).abs().max().item()
    atol, rtol = tolerance(dtype)
    scale = max(1e-6, scale, ref.double().abs().max().item())
    assert diff <= atol + rtol * scale, f"{what}: max|Δ| = {diff:.3e} (scale {scale:.3g}, {dtype})"
    assert torch.isfinite(ours).all() == torch.isfinite(ref).all(), f"{what}: NaN/inf mismatch"


def tiny_fashion_mnist(folder, monkeypatch, n_train: int = 32, n_test: int = 16) -> None:
    """Write a tiny Fashion-MNIST look-alike (valid IDX gz files) and point BNLAB_DATA at it."""
    from bnlab.experiments import data

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = data.FILES[split]
        pixels = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        data.write_idx(folder / images, pixels)
        data.write_idx(folder / labels, torch.randint(0, 10, (n,), generator=g))
    monkeypatch.setenv("BNLAB_DATA", str(folder))
    data.clear_cache()
