"""Cosine classifier with one learnable prototype per class (STF eq. 5 / ACM; ME-GraphAU's head)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CosineClassifier(nn.Module):
    """ŷ_i = ⟨ReLU(f_i), ReLU(s_i)⟩ / (‖ReLU(f_i)‖ ‖ReLU(s_i)‖), one score per class in [0, 1].

    `prototypes` is s ∈ R^{num_classes×dim}, initialised with `xavier_uniform_`. Features come per
    class: (..., num_classes, dim) → scores (..., num_classes). Both vectors are non-negative after the
    ReLU, so the score lies in [0, 1] and is used directly as a probability (no sigmoid). An all-zero
    vector (e.g. an all-negative feature) scores 0 and gives no NaN, thanks to `F.normalize`'s `eps`.
    The score is invariant to scaling the features by any c > 0. Rounding above 1 is clamped.
    """

    def __init__(self, num_classes: int, dim: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_uniform_(self.prototypes)
        self.eps = eps

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = F.normalize(F.relu(features), p=2, dim=-1, eps=self.eps)
        prototypes = F.normalize(F.relu(self.prototypes), p=2, dim=-1, eps=self.eps)
        # Rounding can push a perfect match a hair above 1; keep the score a valid probability.
        return (features * prototypes).sum(-1).clamp(max=1.0)


class PerClassLinear(nn.Module):
    """One linear score per class from that class's own feature: (..., num_classes, dim) → (..., num_classes)
    logits, w_i·f_i + b_i (the usual alternative to the cosine classifier; weights Xavier-uniform, biases 0)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        self.bias = nn.Parameter(torch.zeros(num_classes))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features * self.weight).sum(-1) + self.bias
