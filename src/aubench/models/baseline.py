"""The baseline: backbone → global average pooling → per-AU linear head, trained with weighted BCE.

The plain single-frame reference every method is compared with (not STF's Table 1 row 1, which keeps
STF's per-AU projections and cosine classifier). Its choices are listed in docs/methods/baseline.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aubench.errors import ConfigError
from aubench.losses.weighted_bce import WeightedBCELoss, stf_au_weights
from aubench.models.backbones import ResNetTrunk, build_resnet
from aubench.models.registry import Method, register


@dataclass(frozen=True)
class BaselineConfig:
    """The `baseline` params section."""

    backbone: str = "resnet18"
    pretrained: bool = False
    init_from: str | None = None  # a finished run (same fold) whose backbone this one starts from

    def __post_init__(self) -> None:
        if self.pretrained and self.init_from:
            raise ConfigError(f"baseline.pretrained and baseline.init_from ({self.init_from!r}) both set the "
                              "backbone's starting weights; choose one")


class Baseline(nn.Module):
    """Images (B, 3, H, W) → AU logits (B, N)."""

    def __init__(self, num_aus: int, backbone: str = "resnet18", pretrained: bool = False) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(build_resnet(backbone, pretrained))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(self.trunk.out_channels, num_aus)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.trunk(images)).flatten(1))


def build_model(config: BaselineConfig, num_aus: int) -> Baseline:
    return Baseline(num_aus, config.backbone, config.pretrained)


def build_loss(config: BaselineConfig, au_rates: np.ndarray) -> WeightedBCELoss:
    return WeightedBCELoss(stf_au_weights(au_rates))


METHOD = register(Method("baseline", BaselineConfig, build_model, build_loss))
