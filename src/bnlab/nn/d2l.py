"""The textbook's from-scratch batch norm (*Dive into Deep Learning*, §8.5 / 7.5), made safe.

``book_batch_norm`` is the book's function as printed, kept verbatim in spirit so it can be read
next to the chapter.  ``D2LBatchNorm`` is the book's layer with two repairs; it still follows the
book's conventions, which differ from ``torch.nn.BatchNorm*d`` in three places:

1. **momentum means "keep"**: the book writes
   ``moving = momentum·moving + (1 − momentum)·batch`` with ``momentum = 0.9``; torch writes
   ``running = (1 − momentum)·running + momentum·batch`` with ``momentum = 0.1``.  Same numbers,
   opposite meaning of the word.
2. **biased moving variance**: the book averages σ²_B = Σ(x − μ)²/m; torch averages the unbiased
   Σ(x − μ)²/(m − 1).  After training, ``moving_var`` is smaller by m/(m − 1) in every update.
3. **the no_grad trap**: the book picks prediction mode by ``torch.is_grad_enabled()``, so a
   training-mode forward under ``torch.no_grad()`` silently uses the moving statistics, and an
   eval-mode forward with gradients on silently trains them.  ``D2LBatchNorm`` decides by
   ``module.training``, as torch does.

The second repair: the book keeps ``moving_mean``/``moving_var`` as plain attributes, so
``model.to(device)`` and ``state_dict()`` miss them; here they are registered buffers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import BNValueError


def book_batch_norm(
    X: Tensor,
    gamma: Tensor,
    beta: Tensor,
    moving_mean: Tensor,
    moving_var: Tensor,
    eps: float,
    momentum: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """The book's ``batch_norm`` function, as printed (mode chosen by ``is_grad_enabled``)."""
    if not torch.is_grad_enabled():
        # prediction mode: the moving statistics normalize
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        if len(X.shape) not in (2, 4):
            raise BNValueError(f"expected 2D or 4D input (got {X.dim()}D input)")
        if len(X.shape) == 2:
            # fully connected: per feature, over the batch
            mean = X.mean(dim=0)
            var = ((X - mean) ** 2).mean(dim=0)
        else:
            # convolutional: per channel, over batch, height and width; keepdim to broadcast
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta  # scale and shift
    return Y, moving_mean.data, moving_var.data


class D2LBatchNorm(nn.Module):
    """The book's ``BatchNorm`` layer: ``num_dims`` 2 (fully connected) or 4 (convolutional).

    Parameters ``gamma``/``beta`` and buffers ``moving_mean``/``moving_var`` have shape
    (1, C) or (1, C, 1, 1) as in the book.  Train/eval follows ``module.training``.
    """

    moving_mean: Tensor
    moving_var: Tensor

    def __init__(
        self, num_features: int, num_dims: int, eps: float = 1e-5, momentum: float = 0.9
    ) -> None:
        super().__init__()
        if num_dims not in (2, 4):
            raise BNValueError(f"D2LBatchNorm: expected num_dims 2 or 4 (got {num_dims!r})")
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise BNValueError(
                f"D2LBatchNorm: expected num_features to be a positive int (got {num_features!r})"
            )
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.num_features = num_features
        self.num_dims = num_dims
        self.eps = eps
        self.momentum = momentum
        self.gamma = nn.Parameter(torch.ones(shape))  # scale, initialised to 1
        self.beta = nn.Parameter(torch.zeros(shape))  # shift, initialised to 0
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, "
            f"momentum={self.momentum}"
        )

    def forward(self, X: Tensor) -> Tensor:
        if X.dim() != self.num_dims:
            raise BNValueError(
                f"D2LBatchNorm: expected {self.num_dims}D input (got {X.dim()}D input)"
            )
        if X.shape[1] != self.num_features:
            raise BNValueError(
                f"D2LBatchNorm: expected {self.num_features} channels at dim 1 (got {X.shape[1]})"
            )
        axes = (0,) if self.num_dims == 2 else (0, 2, 3)
        if not self.training:
            X_hat = (X - self.moving_mean) / torch.sqrt(self.moving_var + self.eps)
        else:
            if X.numel() // X.shape[1] < 2:
                raise BNValueError(
                    "Expected more than 1 value per channel when training, "
                    f"got input size {X.size()}"
                )
            mean = X.mean(dim=axes, keepdim=True)  # μ_B, (1, C) or (1, C, 1, 1)
            var = ((X - mean) ** 2).mean(dim=axes, keepdim=True)  # biased σ²_B
            X_hat = (X - mean) / torch.sqrt(var + self.eps)
            with torch.no_grad():
                # the book's convention: momentum is the share of the OLD value that is kept
                self.moving_mean.mul_(self.momentum).add_((1.0 - self.momentum) * mean)
                self.moving_var.mul_(self.momentum).add_((1.0 - self.momentum) * var)
        return self.gamma * X_hat + self.beta
