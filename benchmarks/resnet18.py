"""A ResNet-18-shaped CNN with a choice of batch-norm class, for the benchmarks.

torchvision's ``resnet18`` rebuilt in a page (torchvision is not a dependency of bnlab):
BasicBlocks ×[2, 2, 2, 2] of widths 64/128/256/512, convolutions without bias, each followed by
a ``norm_layer(channels)``, a projection shortcut (1×1 conv + BN) where a stage halves the grid.

The stem is ImageNet's, 7×7 stride 2 and a 3×3 max-pool stride 2, by default: that is what
"ResNet-18" means, and what Tiny-ImageNet-sized inputs (3×64×64) usually get.  A 64×64 image is
16×16 after it, and 16, 8, 4, 2 in the four stages, so BN sees the layer shapes of torchvision's
model on small images.  ``stem="cifar"`` (one 3×3 stride-1 conv, no pool) keeps the full grid
(64, 32, 16, 8): 16× the activations per image, for a heavier, conv-bound step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

NormLayer = Callable[[int], nn.Module]


class BasicBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm_layer(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = norm_layer(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:  # N, cin, H, W -> N, cout, H/stride, W/stride
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), norm_layer(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18: stem, four stages of two BasicBlocks, global average pool, linear classifier."""

    def __init__(
        self,
        norm_layer: NormLayer = nn.BatchNorm2d,
        num_classes: int = 10,
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        if stem == "imagenet":  # N, 3, H, W -> N, 64, H/4, W/4
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
                norm_layer(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        elif stem == "cifar":  # N, 3, H, W -> N, 64, H, W
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 3, padding=1, bias=False), norm_layer(64), nn.ReLU(inplace=True)
            )
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar' (got {stem!r})")
        blocks: list[nn.Module] = []
        cin = 64
        for i, width in enumerate((64, 128, 256, 512)):  # each stage after the first halves H, W
            stride = 1 if i == 0 else 2
            blocks.append(BasicBlock(cin, width, stride, norm_layer))
            blocks.append(BasicBlock(width, width, 1, norm_layer))
            cin = width
        self.layers = nn.Sequential(*blocks)  # N, 64, h, w -> N, 512, h/8, w/8
        self.pool = nn.AdaptiveAvgPool2d(1)  # -> N, 512, 1, 1
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):  # bnlab's BatchNorm2d is one too
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def resnet18(
    norm_layer: NormLayer = nn.BatchNorm2d, num_classes: int = 10, stem: str = "imagenet"
) -> ResNet18:
    return ResNet18(norm_layer, num_classes, stem)
