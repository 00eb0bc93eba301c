"""Dynamic Weighted Asymmetric loss (LAC §III-D, eq. 12–16; docs/methods/lac.md).

The weighted asymmetric loss of eq. 12 (`WeightedAsymmetricLoss`), whose per-AU weights are no longer the
static inverse training rates but two momentum averages updated once per epoch:

    w_diff ← β1·w_diff + (1 − β1)·norm(1 / Recall_e)       (eq. 13, difficulty)
    w_dist ← β2·w_dist + (1 − β2)·norm(1 / ClsDist_e)      (eq. 14, distribution)
    w      = δ·w_diff + (1 − δ)·w_dist                      (eq. 15)

Recall_e and ClsDist_e are counted on the training batches the loss sees during epoch e (`observe`), and
`update` turns them into the weights of epoch e + 1 (eq. 15's index); the weights stay fixed within an epoch.
`norm(v) = v / mean(v)` (`normalise`), so both targets share one scale and w keeps mean 1.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as distributed

from aubench.losses.asymmetric import WeightedAsymmetricLoss, normalised_inverse_rates
from aubench.losses.weighted_bce import as_entries


def initial_weights(au_rates: np.ndarray, literal: bool = False) -> torch.Tensor:
    """The weights of epoch 0 from the training set's AU rates r (eq. 16's "initialised with the class's
    distribution"): the normalised inverse rates (the static WA weights, mean 1), or with `literal` the rates
    themselves scaled to mean 1."""
    if not literal:
        return normalised_inverse_rates(au_rates)
    rates = torch.as_tensor(np.asarray(au_rates), dtype=torch.float32).clamp(1e-3, 1.0)
    return rates / rates.mean()


def mean_one(values: torch.Tensor) -> torch.Tensor:
    """v / mean(v): a target vector on the scale of weights with mean 1."""
    return values / values.mean()


class DynamicWeightedAsymmetricLoss(WeightedAsymmetricLoss):
    """L_DWA: eq. 12 with the momentum weights of eq. 13–15 (buffers, never optimised).

    `observe(p, y, mask)` counts, per AU, true positives and false negatives at `recall_threshold` and the
    labelled positives (ClsDist's N_i); `update()` applies one momentum step and clears the counts. Recall is
    floored at `recall_floor` (no infinite weight when an AU is never found); an AU with no labelled positive
    in the epoch missed nothing and gets recall 1; counts are floored at `count_floor`.
    """

    def __init__(self, initial: torch.Tensor, beta_difficulty: float = 0.9, beta_distribution: float = 0.9,
                 delta: float = 0.5, normalise: bool = True, recall_threshold: float = 0.5,
                 recall_floor: float = 0.01, count_floor: float = 1.0, eps: float = 1e-8,
                 detach_factor: bool = True) -> None:
        # a copy: the weights change in place every epoch, and `initial` is the caller's tensor
        super().__init__(initial.clone(), asymmetric=True, eps=eps, detach_factor=detach_factor)
        self.register_buffer("difficulty", initial.float().clone())
        self.register_buffer("distribution", initial.float().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        for name in ("true_positives", "false_negatives", "positives"):
            self.register_buffer(name, torch.zeros(len(initial)), persistent=False)
        self.beta_difficulty, self.beta_distribution, self.delta = beta_difficulty, beta_distribution, delta
        self.normalise, self.recall_threshold = normalise, recall_threshold
        self.recall_floor, self.count_floor = recall_floor, count_floor

    @torch.no_grad()
    def observe(self, probabilities: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> None:
        """Add one batch's labelled entries to this epoch's counts."""
        p, y, known = as_entries(probabilities.detach(), targets, mask)
        positive = y * known
        predicted = (p >= self.recall_threshold).float()
        self.true_positives += (predicted * positive).sum(0)
        self.false_negatives += ((1 - predicted) * positive).sum(0)
        self.positives += positive.sum(0)

    def reset_statistics(self) -> None:
        for counts in (self.true_positives, self.false_negatives, self.positives):
            counts.zero_()

    def recall(self) -> torch.Tensor:
        """Recall_e per AU, TP / (TP + FN), floored; 1 for an AU with no labelled positive."""
        found = self.true_positives + self.false_negatives
        recall = torch.where(found > 0, self.true_positives / found.clamp(min=1), torch.ones_like(found))
        return recall.clamp(min=self.recall_floor)

    def class_distribution(self) -> torch.Tensor:
        """ClsDist_e per AU: N_i / N_C, the AU's share of all labelled positives (each N_i floored)."""
        counts = self.positives.clamp(min=self.count_floor)
        return counts / counts.sum()

    @torch.no_grad()
    def update(self) -> None:
        """One momentum step (eq. 13–15) from this epoch's counts (summed over DDP ranks), then clear them."""
        if distributed.is_available() and distributed.is_initialized():
            for counts in (self.true_positives, self.false_negatives, self.positives):
                distributed.all_reduce(counts)
        difficulty, distribution = 1.0 / self.recall(), 1.0 / self.class_distribution()
        if self.normalise:
            difficulty, distribution = mean_one(difficulty), mean_one(distribution)
        self.difficulty.mul_(self.beta_difficulty).add_((1 - self.beta_difficulty) * difficulty)
        self.distribution.mul_(self.beta_distribution).add_((1 - self.beta_distribution) * distribution)
        self.au_weights.copy_(self.delta * self.difficulty + (1 - self.delta) * self.distribution)
        self.updates += 1
        self.reset_statistics()
