"""Weighted binary cross-entropy with label masks (STF eq. 6, used by the baseline too)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def stf_au_weights(au_rates: np.ndarray) -> torch.Tensor:
    """STF eq. 6 weights w_i = N (1 − r_i), with r_i the AU's occurrence rate in the training fold."""
    rates = torch.as_tensor(np.asarray(au_rates), dtype=torch.float32)
    return len(rates) * (1.0 - rates)


class WeightedBCELoss(nn.Module):
    """−Σ_i w_i [y log σ(z) + (1−y) log(1−σ(z))], summed over AUs and averaged over labelled frames.

    Entries with `mask == 0` (unknown labels) contribute nothing; a frame with no known AU is not counted
    in the average.
    """

    def __init__(self, au_weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("au_weights", au_weights.float())

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = logits.reshape(-1, logits.shape[-1])
        targets = targets.reshape(logits.shape).float()
        mask = mask.reshape(logits.shape).float()
        per_entry = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        per_frame = (per_entry * mask * self.au_weights).sum(-1)
        frames = (mask.sum(-1) > 0).sum().clamp(min=1)
        return per_frame.sum() / frames
