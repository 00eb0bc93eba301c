"""Subject-level bootstrap intervals and paired tests (aubench.eval.statistics) on cases with known answers."""
import numpy as np
import pytest

from aubench.eval.metrics import score_fold, summarise
from aubench.eval.statistics import (FoldCounts, bootstrap_interval, counts_by_fold, mean_f1, paired_comparison,
                                     subject_counts)


def _fold(seed: int, subjects: int = 4, frames: int = 60, aus: int = 3, skill: float = 0.7):
    """Labels with per-subject base rates, and predictions right with probability `skill`."""
    rng = np.random.default_rng(seed)
    names = np.repeat([f"S{seed}{index}" for index in range(subjects)], frames)
    rates = np.repeat(rng.uniform(0.2, 0.6, (subjects, aus)), frames, axis=0)
    labels = (rng.random(rates.shape) < rates).astype(np.int8)
    labels[rng.random(labels.shape) < 0.02] = -1
    right = rng.random(labels.shape) < skill
    probabilities = np.where(right, labels == 1, labels != 1).astype(float)
    return probabilities, labels, names


def test_counts_hand_worked_and_unknown_labels_skipped():
    # Subject A: truth 1 0 1, predicted 1 1 0 → TP 1, FP 1, FN 1. Subject B: truth 1 −1, predicted 1 1 → TP 1.
    probabilities = np.array([[0.9], [0.6], [0.1], [0.5], [0.8]])
    labels = np.array([[1], [0], [1], [1], [-1]])
    fold = subject_counts(probabilities, labels, ["A", "A", "A", "B", "B"])
    assert fold.subjects == ("A", "B")
    assert fold.counts[:, 0].tolist() == [[1, 1, 1], [1, 0, 0]]
    # pooled: TP 2, FP 1, FN 1 → F1 = 4 / 6
    assert mean_f1([fold])[0] == pytest.approx(4 / 6)


def test_estimate_is_the_reported_mean_f1():
    folds = [_fold(seed) for seed in (1, 2, 3)]
    reported = summarise({index: score_fold(p, y) for index, (p, y, _) in enumerate(folds)}, (1, 2, 4))
    counts = [subject_counts(p, y, names) for p, y, names in folds]
    assert mean_f1(counts)[0] == pytest.approx(reported["mean_f1"], abs=5e-5)


def test_one_subject_per_fold_gives_a_zero_width_interval():
    counts = [FoldCounts(("A",), np.array([[[3, 1, 2], [0, 4, 1]]]))]
    interval = bootstrap_interval(counts, replicates=200)
    assert interval.low == interval.high == interval.estimate == pytest.approx((6 / 9 + 0) / 2)


def test_interval_contains_the_estimate_and_is_reproducible():
    counts = [subject_counts(*_fold(seed)) for seed in (4, 5, 6)]
    first, again = bootstrap_interval(counts, 2000, seed=1), bootstrap_interval(counts, 2000, seed=1)
    assert first == again
    assert first.low < first.estimate < first.high


def test_identical_predictions_give_p_one_and_a_zero_width_difference():
    counts = [subject_counts(*_fold(seed)) for seed in (1, 2, 3)]
    comparison = paired_comparison(counts, counts, replicates=2000)
    assert comparison.p_value == 1.0
    assert comparison.difference.estimate == comparison.difference.low == comparison.difference.high == 0.0


def test_a_better_method_gives_an_interval_excluding_zero_and_a_small_p():
    strong = [subject_counts(*_fold(seed, skill=0.95)) for seed in (1, 2, 3)]
    weak = [subject_counts(*_fold(seed, skill=0.6)) for seed in (1, 2, 3)]
    comparison = paired_comparison(strong, weak, replicates=4000)
    assert comparison.difference.low > 0
    assert comparison.p_value < 0.01
    reverse = paired_comparison(weak, strong, replicates=4000)
    assert reverse.difference.high < 0 and reverse.p_value < 0.01


def test_two_subjects_cannot_give_a_p_below_one_half():
    """With two exchangeable subjects only 4 swap patterns exist; 2 are as extreme as the observed one."""
    probabilities, labels, names = _fold(7, subjects=2, skill=1.0)
    perfect = subject_counts(probabilities, labels, names)
    inverted = subject_counts(1 - probabilities, labels, names)
    comparison = paired_comparison([perfect], [inverted], replicates=4000, seed=2)
    assert comparison.p_value == pytest.approx(0.5, abs=0.03)


def test_paired_comparison_needs_the_same_subjects():
    a = [FoldCounts(("A",), np.zeros((1, 2, 3)))]
    b = [FoldCounts(("B",), np.zeros((1, 2, 3)))]
    with pytest.raises(Exception, match="same folds, subjects"):
        paired_comparison(a, b)


def test_counts_by_fold_maps_sequences_to_subjects_and_names_unknown_ones():
    probabilities, labels, _ = _fold(8, subjects=2, frames=5)
    keys = np.array(["F1_T1"] * 5 + ["F2_T1"] * 5)
    data = {1: {"probabilities": probabilities, "labels": labels, "keys": keys}}
    (fold,) = counts_by_fold(data, {"F1_T1": "F1", "F2_T1": "F2"})
    assert fold.subjects == ("F1", "F2")
    with pytest.raises(Exception, match="F2_T1"):
        counts_by_fold(data, {"F1_T1": "F1"})
