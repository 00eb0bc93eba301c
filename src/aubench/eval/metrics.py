"""Per-AU F1 and accuracy on pooled test frames, and their aggregation over folds.

F1 = 2TP / (2TP + FP + FN) = 2PR / (P + R) on the positive class. When an AU has no positive label and
no positive prediction in a fold, F1 is undefined: it is reported as null and left out of that fold's
mean over AUs (never silently counted as 0 or 1). Unknown labels (-1) are excluded per AU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aubench.data.aus import UNKNOWN, au_names


@dataclass(frozen=True)
class FoldScores:
    """Per-AU scores of one fold (NaN where undefined) and the frame counts behind them."""

    f1: np.ndarray
    accuracy: np.ndarray
    positives: np.ndarray
    frames: np.ndarray

    @property
    def mean_f1(self) -> float:
        return float(np.nanmean(self.f1)) if np.isfinite(self.f1).any() else float("nan")

    @property
    def mean_accuracy(self) -> float:
        return float(np.nanmean(self.accuracy))


def confusion_counts(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(AUs, 4): TP, FP, FN and frames with a known label, per AU; predictions are probability >= threshold
    and frames whose label is UNKNOWN are skipped."""
    known = labels != UNKNOWN
    predicted, truth = (probabilities >= threshold) & known, (labels == 1) & known
    return np.stack([(predicted & truth).sum(0), (predicted & ~truth).sum(0), (~predicted & truth).sum(0),
                     known.sum(0)], axis=-1)


def score_fold(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> FoldScores:
    """Per-AU F1/accuracy of one fold's pooled frames.

    Counted directly: the same numbers as scikit-learn's `f1_score` (zero_division=nan) and
    `accuracy_score`, which the tests use as the reference, without importing scikit-learn into every
    training and evaluation process (about 1.3 s each on 2 cores).
    """
    tp, fp, fn, frames = confusion_counts(probabilities, labels, threshold).T
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        accuracy = np.where(frames > 0, (frames - fp - fn) / frames, np.nan)
    return FoldScores(f1.astype(float), accuracy.astype(float), (tp + fn).astype(int), frames.astype(int))


def summarise(fold_scores: dict[int, FoldScores], aus: tuple[int, ...]) -> dict:
    """Per-fold and mean ± std (population std over folds, as the papers report) of F1 and accuracy."""
    names = au_names(aus)
    folds = {}
    for number, scores in sorted(fold_scores.items()):
        folds[f"fold{number}"] = {
            "mean_f1": _number(scores.mean_f1), "mean_accuracy": _number(scores.mean_accuracy),
            "f1": dict(zip(names, map(_number, scores.f1))),
            "accuracy": dict(zip(names, map(_number, scores.accuracy))),
            "positives": dict(zip(names, scores.positives.tolist())),
            "frames": dict(zip(names, scores.frames.tolist())),
        }
    f1_table = np.array([scores.f1 for scores in fold_scores.values()])
    fold_f1 = np.array([scores.mean_f1 for scores in fold_scores.values()])
    fold_accuracy = np.array([scores.mean_accuracy for scores in fold_scores.values()])
    return {
        "mean_f1": _number(np.nanmean(fold_f1)), "std_f1": _number(np.nanstd(fold_f1)),
        "mean_accuracy": _number(np.nanmean(fold_accuracy)), "std_accuracy": _number(np.nanstd(fold_accuracy)),
        "per_au_f1": {name: _number(_nanmean(column)) for name, column in zip(names, f1_table.T)},
        "folds": folds,
    }


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _number(value: float) -> float | None:
    """JSON-friendly: NaN (undefined) becomes null; values are rounded to 4 decimals."""
    return None if not np.isfinite(value) else round(float(value), 4)


def f1_threshold_curve(folds: list[tuple[np.ndarray, np.ndarray]], thresholds: np.ndarray) -> list[dict]:
    """Mean-over-folds of the per-fold mean F1 at each threshold: rows {threshold, mean_f1} for DVC plots.

    For inspection only: the reported scores always use the fixed threshold (no tuning on test folds).
    """
    rows = []
    for threshold in thresholds:
        means = [score_fold(probabilities, labels, float(threshold)).mean_f1 for probabilities, labels in folds]
        rows.append({"threshold": round(float(threshold), 4), "mean_f1": _number(_nanmean(np.array(means)))})
    return rows
