"""Batch normalization in NumPy, written to be read next to the formulas.

A second oracle for the tests, independent of torch.  For a mini-batch B of m values of one
channel (every element of that channel across batch and spatial axes):

    μ_B  = (1/m) Σ_i x_i                       batch mean
    σ²_B = (1/m) Σ_i (x_i − μ_B)²              batch variance (biased)
    x̂_i  = (x_i − μ_B) / √(σ²_B + ε)           normalize
    y_i  = γ x̂_i + β                           scale and shift

and the gradients of a loss L given ∂L/∂y:

    ∂L/∂β = Σ_i ∂L/∂y_i
    ∂L/∂γ = Σ_i ∂L/∂y_i · x̂_i
    ∂L/∂x_i = γ/√(σ²_B + ε) · (∂L/∂y_i − (1/m)·∂L/∂β − x̂_i·(1/m)·∂L/∂γ)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def _axes(x: Array) -> tuple[int, ...]:
    return (0, *range(2, x.ndim))  # every axis but the channel axis 1


def _channel(v: Array, ndim: int) -> Array:
    return np.reshape(v, (1, -1) + (1,) * (ndim - 2))  # (C,) → (1, C, 1, ...)


@dataclass
class Cache:
    """What the backward pass needs from the forward one."""

    x_hat: Array
    inv_std: Array  # 1/√(σ²_B + ε), (C,)
    gamma: Array
    m: int


def forward(
    x: Array, gamma: Array, beta: Array, eps: float = 1e-5
) -> tuple[Array, Array, Array, Cache]:
    """Training-mode batch norm of ``x`` (N, C, ...): returns y, μ_B, σ²_B and a cache."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axes(x)
    m = int(np.prod([x.shape[a] for a in axes]))
    mu_B = x.mean(axis=axes)  # μ_B, (C,)
    sigma2_B = ((x - _channel(mu_B, x.ndim)) ** 2).mean(axis=axes)  # σ²_B, (C,)
    inv_std = 1.0 / np.sqrt(sigma2_B + eps)
    x_hat = (x - _channel(mu_B, x.ndim)) * _channel(inv_std, x.ndim)  # x̂
    gamma = np.asarray(gamma, dtype=np.float64)
    y = _channel(gamma, x.ndim) * x_hat + _channel(np.asarray(beta, np.float64), x.ndim)  # y
    return y, mu_B, sigma2_B, Cache(x_hat, inv_std, gamma, m)


def backward(dy: Array, cache: Cache) -> tuple[Array, Array, Array]:
    """Gradients (dx, dγ, dβ) of training-mode batch norm given dy = ∂L/∂y."""
    dy = np.asarray(dy, dtype=np.float64)
    axes = _axes(dy)
    nd = dy.ndim
    d_beta = dy.sum(axis=axes)  # Σ ∂L/∂y
    d_gamma = (dy * cache.x_hat).sum(axis=axes)  # Σ ∂L/∂y · x̂
    dx = _channel(cache.gamma * cache.inv_std, nd) * (
        dy - _channel(d_beta / cache.m, nd) - cache.x_hat * _channel(d_gamma / cache.m, nd)
    )
    return dx, d_gamma, d_beta


def inference(
    x: Array, gamma: Array, beta: Array, running_mean: Array, running_var: Array, eps: float = 1e-5
) -> Array:
    """Prediction-time batch norm: the running statistics take the place of μ_B and σ²_B."""
    x = np.asarray(x, dtype=np.float64)
    nd = x.ndim
    x_hat = (x - _channel(running_mean, nd)) / np.sqrt(_channel(running_var, nd) + eps)
    return _channel(gamma, nd) * x_hat + _channel(beta, nd)


def update_running(
    running_mean: Array, running_var: Array, mu_B: Array, sigma2_B: Array, m: int, momentum: float
) -> tuple[Array, Array]:
    """torch's convention: new = (1 − momentum)·old + momentum·batch, with unbiased σ²_B·m/(m−1)."""
    new_mean = (1.0 - momentum) * running_mean + momentum * mu_B
    new_var = (1.0 - momentum) * running_var + momentum * sigma2_B * m / (m - 1)
    return new_mean, new_var
