"""The Dynamic Weighted Asymmetric loss (LAC eq. 12–16): the asymmetric form on hand numbers, the weights'
start, one momentum update worked by hand, its geometric convergence, and the epoch statistics' floors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import recall_score

from aubench.losses.asymmetric import normalised_inverse_rates
from aubench.losses.dynamic_asymmetric import DynamicWeightedAsymmetricLoss, initial_weights, mean_one

RATES = np.array([0.1, 0.2, 0.5])


def test_eq12_on_hand_numbers_with_a_detached_negative_factor():
    """−mean w [y log p + sg(p)(1 − y) log(1 − p)]: entries (p=0.8, y=1, w=w0) and (p=0.4, y=0, w=w1)."""
    weights = torch.tensor([2.0, 0.5])
    loss = DynamicWeightedAsymmetricLoss(weights)
    p = torch.tensor([[0.8, 0.4]], requires_grad=True)
    value = loss(p, torch.tensor([[1, 0]]), torch.ones(1, 2))
    expected = -(2.0 * math.log(0.8) + 0.5 * 0.4 * math.log(0.6)) / 2
    assert value.item() == pytest.approx(expected, rel=1e-6) and value.item() >= 0
    value.backward()
    # d/dp of −0.5·sg(p)·log(1 − p)/2 = 0.5·0.4/(0.6·2): the factor p itself carries no gradient
    assert p.grad[0, 1].item() == pytest.approx(0.5 * 0.4 / 0.6 / 2, rel=1e-6)


def test_weights_start_from_the_training_distribution():
    start = initial_weights(RATES)
    torch.testing.assert_close(start, normalised_inverse_rates(RATES))
    assert start.mean().item() == pytest.approx(1.0) and torch.equal(start.argsort(), torch.tensor([2, 1, 0]))
    literal = initial_weights(RATES, literal=True)
    torch.testing.assert_close(literal, torch.tensor([0.375, 0.75, 1.875]))
    loss = DynamicWeightedAsymmetricLoss(start)
    assert torch.equal(loss.difficulty, start) and torch.equal(loss.distribution, start)
    assert torch.equal(loss.au_weights, start) and int(loss.updates) == 0
    assert not list(loss.parameters())  # buffers, never optimised


def observe_counts(loss: DynamicWeightedAsymmetricLoss) -> None:
    """AU0: 4 positives, 1 found (recall 0.25); AU1: 2 positives, both found (1.0); AU2: 1 positive, missed
    (recall 0 → floor 0.01); a masked positive of AU0 counts nothing."""
    p = torch.tensor([[0.9, 0.9, 0.1], [0.1, 0.6, 0.2], [0.2, 0.1, 0.9], [0.3, 0.1, 0.1], [0.9, 0.1, 0.1]])
    y = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]])
    mask = torch.ones(5, 3)
    mask[4, 0] = 0
    loss.observe(p, y, mask)


def test_one_update_is_eq13_to_15_worked_by_hand():
    start = initial_weights(RATES)
    loss = DynamicWeightedAsymmetricLoss(start, recall_floor=0.01)
    observe_counts(loss)
    recall, distribution = torch.tensor([0.25, 1.0, 0.01]), torch.tensor([4.0, 2.0, 1.0]) / 7
    torch.testing.assert_close(loss.recall(), recall)
    torch.testing.assert_close(loss.class_distribution(), distribution)
    loss.update()
    difficulty = 0.9 * start + 0.1 * mean_one(1 / recall)
    spread = 0.9 * start + 0.1 * mean_one(1 / distribution)
    torch.testing.assert_close(loss.difficulty, difficulty, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss.distribution, spread, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss.au_weights, 0.5 * difficulty + 0.5 * spread, rtol=0, atol=1e-6)
    assert int(loss.updates) == 1 and not loss.positives.any()  # the counts start again for the next epoch
    assert loss.au_weights.mean().item() == pytest.approx(1.0, abs=1e-6)


def test_literal_targets_and_the_floors():
    loss = DynamicWeightedAsymmetricLoss(torch.ones(3), beta_difficulty=0.0, beta_distribution=0.0,
                                         normalise=False, count_floor=1.0)
    loss.observe(torch.tensor([[0.9, 0.1, 0.1]]), torch.tensor([[1, 1, 0]]), torch.ones(1, 3))
    # AU2 has no positive: recall 1 (nothing missed), its count floored at 1 → ClsDist = (1, 1, 1) / 3
    torch.testing.assert_close(loss.recall(), torch.tensor([1.0, 0.01, 1.0]))
    loss.update()
    torch.testing.assert_close(loss.difficulty, torch.tensor([1.0, 100.0, 1.0]))
    torch.testing.assert_close(loss.distribution, torch.tensor([3.0, 3.0, 3.0]))
    assert torch.isfinite(loss.au_weights).all()


def test_geometric_convergence_to_constant_targets():
    start = initial_weights(RATES)
    loss = DynamicWeightedAsymmetricLoss(start)
    for _ in range(5):
        observe_counts(loss)
        loss.update()
    target = mean_one(1 / torch.tensor([0.25, 1.0, 0.01]))
    torch.testing.assert_close(loss.difficulty, 0.9 ** 5 * start + (1 - 0.9 ** 5) * target, rtol=1e-6, atol=1e-6)


def test_recall_matches_sklearn_on_random_predictions():
    generator = torch.Generator().manual_seed(0)
    p, y = torch.rand(200, 3, generator=generator), (torch.rand(200, 3, generator=generator) < 0.3).long()
    loss = DynamicWeightedAsymmetricLoss(torch.ones(3))
    loss.observe(p, y, torch.ones(200, 3))
    expected = [recall_score(y[:, au].numpy(), (p[:, au] >= 0.5).numpy()) for au in range(3)]
    torch.testing.assert_close(loss.recall(), torch.tensor(expected, dtype=torch.float32))
