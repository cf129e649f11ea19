"""The experiments as configurations: one commented dataclass per run, looked up by name."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from torch import nn

from ..errors import BNValueError
from . import models


@dataclass
class Recipe:
    """One training run. Every field is written to the run's config.json."""

    name: str
    model: str  # "lenet-bn", "lenet" or "mlp-fig1" (see build_model)
    bn: str | None = "bnlab"  # "bnlab", "torch", "d2l", or None for no batch norm
    epochs: int = 10  # passes over the 60,000 training images
    lr: float = 1.0  # SGD learning rate (the book: 1.0 with BN, 0.9 without)
    batch_size: int = 256  # the book's batch size
    seed: int = 0  # torch.manual_seed for the initialization and the data order
    init: str = "xavier"  # "xavier" (the book) or "gaussian" (the BN paper's small N(0, 0.1²))
    limit: int | None = None  # batches per epoch (None: all); for quick looks and tests
    record_every: int = 50  # steps between records of the pre-activation percentiles
    precise_last: int = 1  # epochs at the end whose test acc is also measured after
    # recalibrating BN on the whole training set (precise BN); it costs ~4 forward passes
    note: str = ""  # what the run shows, for plots and the results table

    def build_model(self) -> nn.Module:
        if self.model == "lenet-bn":
            net = models.lenet_bn(self.bn or "bnlab")  # type: ignore[arg-type]
        elif self.model == "lenet":
            net = models.lenet()
        elif self.model == "mlp-fig1":
            net = models.mlp_fig1(self.bn)  # type: ignore[arg-type]
        else:
            raise BNValueError(f"unknown model {self.model!r}")
        if self.init == "gaussian":
            models.init_gaussian(net)
        else:
            models.init_xavier(net)
        return net


@dataclass
class Suite:
    """Several runs shown together (each in its own sub-folder): Figure 1, the lr sweep."""

    name: str
    runs: list[Recipe] = field(default_factory=list)
    note: str = ""


LENET_BN = Recipe("lenet-bn", "lenet-bn", "bnlab", note="LeNet-BN, bnlab's from-scratch BN")

RECIPES: dict[str, Recipe] = {
    "lenet-bn": LENET_BN,
    "lenet-bn-torch": replace(
        LENET_BN, name="lenet-bn-torch", bn="torch", note="LeNet-BN, torch.nn.BatchNorm2d/1d"
    ),
    "lenet-bn-d2l": replace(
        LENET_BN,
        name="lenet-bn-d2l",
        bn="d2l",
        note="LeNet-BN, the textbook's layer (bnlab.nn.D2LBatchNorm)",
    ),
    "lenet": Recipe("lenet", "lenet", None, lr=0.9, note="plain LeNet (no BN), lr 0.9"),
    "lenet-lr1": Recipe("lenet-lr1", "lenet", None, lr=1.0, note="plain LeNet (no BN), lr 1.0"),
}

# The BN paper's §4.1: 50,000 steps of batch 60 = 50 epochs of 1,000 steps.
_FIG1 = Recipe(
    "bn-paper-fig1",
    "mlp-fig1",
    None,
    epochs=50,
    lr=0.5,
    batch_size=60,
    init="gaussian",
    record_every=200,
    precise_last=1,
)
LR_SWEEP_RATES = tuple(round(0.03 * (10 / 0.03) ** (i / 7), 4) for i in range(8))  # 0.03 … 10


def suites() -> dict[str, Suite]:
    fig1 = Suite(
        "bn-paper-fig1",
        [
            replace(_FIG1, name="with-bn", bn="bnlab", note="with BN (bnlab)"),
            replace(_FIG1, name="without-bn", bn=None, note="without BN"),
        ],
        note="the BN paper's Figure 1 network, on Fashion-MNIST (the paper used MNIST)",
    )
    sweep = Suite(
        "lr-sweep",
        [
            replace(r, name=f"{r.name}-lr{lr:g}", lr=lr, epochs=3, precise_last=0)
            for lr in LR_SWEEP_RATES
            for r in (RECIPES["lenet-bn"], RECIPES["lenet"])
        ],
        note="final test accuracy against learning rate, LeNet with and without BN, 3 epochs",
    )
    return {"bn-paper-fig1": fig1, "lr-sweep": sweep}


NAMES = (*RECIPES, "bn-paper-fig1", "lr-sweep")


def lookup(name: str) -> Recipe | Suite:
    if name in RECIPES:
        return RECIPES[name]
    s = suites()
    if name in s:
        return s[name]
    raise BNValueError(f"unknown recipe {name!r} (known: {', '.join(NAMES)})")
