"""Weighted asymmetric loss on probabilities (MDHR eq. 10, after ME-GraphAU's `WeightedAsymmetricLoss`)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aubench.losses.weighted_bce import as_entries, probability_bce


def normalised_inverse_rates(au_rates: np.ndarray) -> torch.Tensor:
    """w_n = (1/r_n) / Σ_j (1/r_j) · N, with r_n AU n's positive rate in the training fold: the weights sum
    to N and a rare AU weighs more (MDHR §3.3, "computed from the training set"). Rates are clamped to
    [1e-3, 1] so that an AU with no positive example gets a finite weight."""
    inverse = 1.0 / torch.as_tensor(np.asarray(au_rates), dtype=torch.float32).clamp(1e-3, 1.0)
    return inverse / inverse.sum() * len(inverse)


class WeightedAsymmetricLoss(nn.Module):
    """L = −mean over labelled (frame, AU) entries of w_n [y log p + p̃ (1 − y) log(1 − p)].

    p is a probability (MDHR's cosine score, no sigmoid) and p̃ the same value with its gradient stopped:
    a negative entry weighs by how confidently it is predicted positive, and its gradient is
    w·p̃/(1 − p)·∂p, not that of p·log(1 − p) (`detach_factor=False`: that of p·log(1 − p)). Both logs are
    clamped at `eps`. `asymmetric=False` drops the p̃ factor (weighted BCE); unit weights give plain BCE. Entries with `mask == 0` count nothing.
    Works for frames (B, N) and clips (B, T, N).
    """

    def __init__(self, au_weights: torch.Tensor, asymmetric: bool = True, eps: float = 1e-8,
                 detach_factor: bool = True) -> None:
        super().__init__()
        self.register_buffer("au_weights", au_weights.float())
        self.asymmetric, self.eps, self.detach_factor = asymmetric, eps, detach_factor

    def forward(self, probabilities: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        p, y, known = as_entries(probabilities, targets, mask)
        factor = (p.detach() if self.detach_factor else p) if self.asymmetric else 1.0
        per_entry = probability_bce(p, y, self.eps, factor)
        return (per_entry * self.au_weights * known).sum() / known.sum().clamp(min=1)
