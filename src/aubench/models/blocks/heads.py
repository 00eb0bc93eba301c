"""Small heads: the BYOL-style projector/predictor and the two-layer heads of self-supervised methods, and the
token-wise Linear + BN + ReLU block of ME-GraphAU-style AU feature extractors."""
from __future__ import annotations

import torch
from torch import nn


def mlp_head(in_features: int, hidden: int, out_features: int, batchnorm: bool = False) -> nn.Sequential:
    """Linear → (BatchNorm1d) → ReLU → Linear."""
    layers: list[nn.Module] = [nn.Linear(in_features, hidden)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, out_features)]
    return nn.Sequential(*layers)


class TokenLinearBlock(nn.Module):
    """Linear → BatchNorm over the output channels → ReLU, on each token: (B, tokens, in) → (B, tokens, out).

    ME-GraphAU's `LinearBlock`, which MDHR uses for its static projection, region transforms and AU
    feature extractors; the linear weights start N(0, √(2/out)) and BatchNorm at weight 1, bias 0.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.BatchNorm1d(out_features)
        nn.init.normal_(self.linear.weight, 0.0, (2.0 / out_features) ** 0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.linear(tokens).transpose(1, 2)).transpose(1, 2))
