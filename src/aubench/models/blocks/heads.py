"""Small MLP heads: the BYOL-style projector/predictor and the two-layer heads of self-supervised methods."""
from __future__ import annotations

from torch import nn


def mlp_head(in_features: int, hidden: int, out_features: int, batchnorm: bool = False) -> nn.Sequential:
    """Linear → (BatchNorm1d) → ReLU → Linear."""
    layers: list[nn.Module] = [nn.Linear(in_features, hidden)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, out_features)]
    return nn.Sequential(*layers)
