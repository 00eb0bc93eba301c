"""Evaluation protocol (README, "Evaluation protocol") on hand-worked numbers."""
import math

import numpy as np
import pytest

from aubench.eval.metrics import score_fold, summarise


def test_f1_and_accuracy_hand_worked():
    # AU0: truth 1 1 0 0, predicted 1 0 1 0 → TP=1 FP=1 FN=1 → F1 = 2/(2+1+1) = 0.5, acc = 2/4
    # AU1: truth 1 1 1 0, predicted 1 1 1 1 → TP=3 FP=1 → F1 = 6/7, acc = 3/4
    labels = np.array([[1, 1], [1, 1], [0, 1], [0, 0]])
    probabilities = np.array([[0.9, 0.5], [0.2, 0.6], [0.7, 0.99], [0.1, 0.5]])
    scores = score_fold(probabilities, labels)
    assert scores.f1 == pytest.approx([0.5, 6 / 7])
    assert scores.accuracy == pytest.approx([0.5, 0.75])
    assert scores.mean_f1 == pytest.approx((0.5 + 6 / 7) / 2)


def test_threshold_is_inclusive():
    scores = score_fold(np.array([[0.5], [0.49]]), np.array([[1], [0]]))
    assert scores.f1[0] == pytest.approx(1.0)


def test_au_without_positives_is_undefined_not_zero():
    # AU1 has no positive label and no positive prediction: F1 undefined, excluded from the mean.
    # AU2 has no positive label but one false positive: F1 = 2*0/(0+1+0) = 0.
    labels = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0]])
    probabilities = np.array([[0.8, 0.1, 0.9], [0.1, 0.2, 0.1], [0.9, 0.3, 0.2]])
    scores = score_fold(probabilities, labels)
    assert scores.f1[0] == pytest.approx(1.0)
    assert math.isnan(scores.f1[1])
    assert scores.f1[2] == 0.0
    assert scores.mean_f1 == pytest.approx(0.5)
    assert scores.accuracy[1] == pytest.approx(1.0)


def test_unknown_labels_are_excluded():
    labels = np.array([[1], [-1], [0]])
    probabilities = np.array([[0.9], [0.9], [0.1]])
    scores = score_fold(probabilities, labels)
    assert scores.frames[0] == 2
    assert scores.f1[0] == pytest.approx(1.0)
    assert scores.accuracy[0] == pytest.approx(1.0)


def test_summary_mean_and_population_std_over_folds():
    perfect = score_fold(np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([[1, 0], [0, 1]]))
    half = score_fold(np.array([[0.9, 0.9], [0.9, 0.9]]), np.array([[1, 0], [0, 1]]))  # F1 2/3 each
    summary = summarise({1: perfect, 2: half}, (1, 2))
    assert summary["mean_f1"] == pytest.approx(round((1 + 2 / 3) / 2, 4), abs=1e-4)
    assert summary["std_f1"] == pytest.approx(round((1 - 2 / 3) / 2, 4), abs=1e-4)
    assert summary["folds"]["fold2"]["f1"]["AU2"] == pytest.approx(0.6667, abs=1e-4)
    assert summary["per_au_f1"]["AU1"] == pytest.approx(round((1 + 2 / 3) / 2, 4), abs=1e-4)


def test_f1_threshold_curve_matches_fixed_threshold_scores():
    from aubench.eval.metrics import f1_threshold_curve

    labels = np.array([[1], [0], [1], [0]])
    probabilities = np.array([[0.9], [0.6], [0.4], [0.1]])
    curve = f1_threshold_curve([(probabilities, labels)], np.array([0.3, 0.5, 0.7]))
    # 0.3: TP2 FP1 → 0.8 ; 0.5: TP1 FP1 FN1 → 0.5 ; 0.7: TP1 FN1 → 2/3
    assert [row["threshold"] for row in curve] == [0.3, 0.5, 0.7]
    assert [row["mean_f1"] for row in curve] == pytest.approx([0.8, 0.5, 0.6667], abs=1e-4)


def test_counts_agree_with_scikit_learn():
    """score_fold counts TP/FP/FN itself; scikit-learn's metrics are the reference."""
    from sklearn.metrics import accuracy_score, f1_score

    draws = np.random.default_rng(3)
    labels = (draws.random((300, 6)) < [0.5, 0.2, 0.05, 0.0, 0.9, 0.3]).astype(int)
    labels[draws.random(labels.shape) < 0.1] = -1
    probabilities = draws.random(labels.shape)
    probabilities[:, 3] = 0.1  # no positive label and no positive prediction: undefined
    scores = score_fold(probabilities, labels)
    for au in range(labels.shape[1]):
        known = labels[:, au] != -1
        truth, predicted = labels[known, au], (probabilities[known, au] >= 0.5).astype(int)
        expected = f1_score(truth, predicted, labels=[1], zero_division=np.nan)
        assert scores.f1[au] == pytest.approx(expected, nan_ok=True)
        assert scores.accuracy[au] == pytest.approx(accuracy_score(truth, predicted))
        assert (scores.frames[au], scores.positives[au]) == (known.sum(), truth.sum())
    assert math.isnan(scores.f1[3])
