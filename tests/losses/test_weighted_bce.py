"""STF eq. 6 weighted BCE on hand-worked numbers."""
import math

import numpy as np
import pytest
import torch

from aubench.losses.weighted_bce import WeightedBCELoss, stf_au_weights


def test_weights_are_n_times_one_minus_rate():
    weights = stf_au_weights(np.array([0.2, 0.5, 0.0]))
    assert weights.tolist() == pytest.approx([3 * 0.8, 3 * 0.5, 3.0])


def test_loss_sums_over_aus_and_averages_over_frames():
    weights = torch.tensor([2.0, 1.0])
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # σ = 0.5, 0.75 ; 0.5, 0.5
    targets = torch.tensor([[1, 0], [0, 1]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    frame1 = 2 * -math.log(0.5) + 1 * -math.log(0.25)
    frame2 = 2 * -math.log(0.5) + 1 * -math.log(0.5)
    loss = WeightedBCELoss(weights)(logits, targets, mask)
    assert loss.item() == pytest.approx((frame1 + frame2) / 2, rel=1e-6)


def test_masked_entries_do_not_count():
    weights = torch.tensor([1.0, 1.0])
    logits = torch.tensor([[0.0, 5.0], [9.0, 9.0]])
    targets = torch.tensor([[1, 0], [0, 0]])
    mask = torch.tensor([[True, False], [False, False]])  # frame 2 entirely unknown
    loss = WeightedBCELoss(weights)(logits, targets, mask)
    assert loss.item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_probability_inputs_match_logit_inputs_and_clamp_at_eps():
    weights = torch.tensor([1.5, 0.5])
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.1]])
    targets = torch.tensor([[1, 0], [0, 1]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    from_logits = WeightedBCELoss(weights)(logits, targets, mask)
    from_probabilities = WeightedBCELoss(weights, inputs="probabilities")(torch.sigmoid(logits), targets, mask)
    assert from_probabilities.item() == pytest.approx(from_logits.item(), rel=1e-5)
    # ŷ = 0 for a positive label: −log(eps) instead of inf
    extreme = WeightedBCELoss(torch.tensor([1.0]), inputs="probabilities", eps=1e-8)
    value = extreme(torch.tensor([[0.0]]), torch.tensor([[1]]), torch.tensor([[True]]))
    assert value.item() == pytest.approx(-math.log(1e-8), rel=1e-6)
