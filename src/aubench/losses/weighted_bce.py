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


def inverse_frequency(au_rates: np.ndarray) -> torch.Tensor:
    """Positive weights (1 − r_i) / r_i: positives and negatives of each AU weigh the same in total."""
    rates = torch.as_tensor(np.asarray(au_rates), dtype=torch.float32).clamp(1e-3, 1 - 1e-3)
    return (1 - rates) / rates


def as_entries(scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores, targets and mask of frames (B, N) or clips (B, T, N) as float (entries, N) tensors."""
    scores = scores.reshape(-1, scores.shape[-1]).float()
    return scores, targets.reshape(scores.shape).float(), mask.reshape(scores.shape).float()


def probability_bce(p: torch.Tensor, y: torch.Tensor, eps: float, negative_factor: torch.Tensor | float = 1.0
                    ) -> torch.Tensor:
    """Per entry −[y log p + f (1 − y) log(1 − p)] on probabilities, both logs clamped at `eps` (f = 1: BCE)."""
    return -(y * p.clamp(min=eps).log() + negative_factor * (1 - y) * (1 - p).clamp(min=eps).log())


class WeightedBCELoss(nn.Module):
    """−Σ_i w_i [p_i y log ŷ + (1−y) log(1−ŷ)], summed over AUs and averaged over labelled frames.

    `positive_weights` p_i (default 1) weigh the positive term, as BCEWithLogits' `pos_weight` (logits only).

    `inputs="logits"` takes raw scores (ŷ = σ(z), computed stably); `inputs="probabilities"` takes ŷ
    directly (e.g. STF's cosine classifier) with the logs clamped at `eps`. Entries with `mask == 0`
    (unknown labels) contribute nothing; a frame with no known AU is not counted in the average.
    Works for frames (B, N) and clips (B, T, N) alike.
    """

    def __init__(self, au_weights: torch.Tensor, inputs: str = "logits", eps: float = 1e-8,
                 positive_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        if inputs not in ("logits", "probabilities"):
            raise ValueError(f"inputs must be 'logits' or 'probabilities', got {inputs!r}")
        if positive_weights is not None and inputs != "logits":
            raise ValueError("positive_weights need inputs='logits'")
        self.register_buffer("au_weights", au_weights.float())
        self.register_buffer("positive_weights", None if positive_weights is None else positive_weights.float())
        self.inputs = inputs
        self.eps = eps

    def forward(self, scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores, targets, mask = as_entries(scores, targets, mask)
        if self.inputs == "logits":
            per_entry = F.binary_cross_entropy_with_logits(scores, targets, reduction="none",
                                                           pos_weight=self.positive_weights)
        else:
            per_entry = probability_bce(scores, targets, self.eps)
        per_frame = (per_entry * mask * self.au_weights).sum(-1)
        frames = (mask.sum(-1) > 0).sum().clamp(min=1)
        return per_frame.sum() / frames
