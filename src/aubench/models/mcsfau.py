"""MC-SFAU (seed 001, §4.2): a linear probe on the frozen online backbone of an MC-SFAU pretraining run.

The backbone (the `mcsfau_pretrain` run named by `init_from`; null = random weights, the reference a
pretraining must beat) is frozen with its BatchNorm statistics, the frames are not augmented, and one
linear layer maps its globally pooled features to the AUs, trained with binary cross-entropy
(`pos_weight: inverse_frequency` weighs positives by the training fold's negative/positive ratio).
`feature_norm` standardises the pooled features with a BatchNorm without affine parameters first (MAE's
linear probe): at test time a fixed affine map, so the probe stays linear.
Choices where the paper is silent: docs/methods/mcsfau.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aubench.data.samples import FrameSampling
from aubench.errors import ConfigError
from aubench.losses.weighted_bce import WeightedBCELoss, inverse_frequency
from aubench.models.backbones import ResNetTrunk, build_resnet
from aubench.models.registry import Method, register


@dataclass(frozen=True)
class MCSFAUConfig:
    """The `mcsfau` params section (its `optim` subsection is read separately)."""

    backbone: str = "resnet50"
    init_from: str | None = "pretrain"  # the pretraining run whose online backbone is probed
    pos_weight: str = "none"  # none | inverse_frequency
    feature_norm: bool = False  # BatchNorm1d(affine=False) on the pooled features before the Linear
    frame_stride: int = 1  # training frames: every n-th of each sequence (features of neighbours are alike)

    def __post_init__(self) -> None:
        if self.pos_weight not in ("none", "inverse_frequency"):
            raise ConfigError(f"mcsfau.pos_weight: {self.pos_weight!r} is not one of none, inverse_frequency")


class LinearProbe(nn.Module):
    """Images (B, 3, H, W) → AU logits (B, N): frozen trunk → global average pooling → one Linear."""

    def __init__(self, num_aus: int, backbone: str, feature_norm: bool = False) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(build_resnet(backbone), frozen=True)
        channels = self.trunk.out_channels
        self.norm = nn.BatchNorm1d(channels, affine=False) if feature_norm else nn.Identity()
        self.head = nn.Linear(channels, num_aus)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.trunk(images).mean((2, 3))))


def build_model(config: MCSFAUConfig, num_aus: int) -> LinearProbe:
    return LinearProbe(num_aus, config.backbone, config.feature_norm)


def build_loss(config: MCSFAUConfig, au_rates: np.ndarray) -> WeightedBCELoss:
    positives = inverse_frequency(au_rates) if config.pos_weight == "inverse_frequency" else None
    return WeightedBCELoss(torch.ones(len(au_rates)), positive_weights=positives)


METHOD = register(Method("mcsfau", MCSFAUConfig, build_model, build_loss,
                         sampling=lambda config: FrameSampling(stride=config.frame_stride)))
