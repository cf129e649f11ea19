"""The networks of the book's chapters and of the BN paper, with a choice of batch norm.

``bn`` picks the batch-norm implementation: ``"bnlab"`` (bnlab.nn.BatchNorm*d), ``"torch"``
(torch.nn.BatchNorm*d), ``"d2l"`` (the textbook layer, bnlab.nn.D2LBatchNorm) or ``None``.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from ..errors import BNValueError
from ..nn import BatchNorm1d, BatchNorm2d, D2LBatchNorm

BNKind = Literal["bnlab", "torch", "d2l"]


def batch_norm_layer(kind: BNKind, features: int, spatial: bool) -> nn.Module:
    """A BN layer over ``features`` channels (conv: ``spatial``) of the chosen implementation."""
    if kind == "bnlab":
        return BatchNorm2d(features) if spatial else BatchNorm1d(features)
    if kind == "torch":
        return nn.BatchNorm2d(features) if spatial else nn.BatchNorm1d(features)
    if kind == "d2l":
        return D2LBatchNorm(features, num_dims=4 if spatial else 2)
    raise BNValueError(f"bn must be one of 'bnlab', 'torch', 'd2l' (got {kind!r})")


def lenet_bn(bn: BNKind = "bnlab") -> nn.Sequential:
    """The book's LeNet with BN after every conv and hidden linear layer (§8.5, flatten 16·4·4)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5),
        batch_norm_layer(bn, 6, True),
        nn.Sigmoid(),  # 6×24×24
        nn.AvgPool2d(kernel_size=2, stride=2),  # 6×12×12
        nn.Conv2d(6, 16, kernel_size=5),
        batch_norm_layer(bn, 16, True),
        nn.Sigmoid(),  # 16×8×8
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),  # 256
        nn.Linear(256, 120),
        batch_norm_layer(bn, 120, False),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        batch_norm_layer(bn, 84, False),
        nn.Sigmoid(),
        nn.Linear(84, 10),
    )


def lenet() -> nn.Sequential:
    """The book's plain LeNet (§7.6): padding 2 on the first conv, flatten 16·5·5, no BN."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.Sigmoid(),  # 6×28×28
        nn.AvgPool2d(kernel_size=2, stride=2),  # 6×14×14
        nn.Conv2d(6, 16, kernel_size=5),
        nn.Sigmoid(),  # 16×10×10
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),  # 400
        nn.Linear(16 * 5 * 5, 120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.Sigmoid(),
        nn.Linear(84, 10),
    )


def mlp_fig1(bn: BNKind | None = None, hidden: int = 100, layers: int = 3) -> nn.Sequential:
    """The BN paper's §4.1 network: 3 fully connected layers of 100 sigmoid units, 10-way out."""
    mods: list[nn.Module] = [nn.Flatten()]
    width = 28 * 28
    for _ in range(layers):
        mods.append(nn.Linear(width, hidden))
        if bn is not None:
            mods.append(batch_norm_layer(bn, hidden, False))
        mods.append(nn.Sigmoid())
        width = hidden
    mods.append(nn.Linear(width, 10))
    return nn.Sequential(*mods)


def init_xavier(model: nn.Module) -> None:
    """The book's initialization: Xavier-uniform weights for every Linear and Conv2d."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)


def init_gaussian(model: nn.Module, std: float = 0.1) -> None:
    """The BN paper's Figure 1 set-up: small random Gaussian weights, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
