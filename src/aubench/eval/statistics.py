"""How sure a mean F1 is, and whether two methods differ: resampling over test subjects, not frames.

The unit that is sampled from the world is the subject: frames of one subject are strongly correlated (same
face, same recording, long AU episodes), so resampling frames treats thousands of near-copies as
independent evidence and gives intervals far too narrow. Every statistic here resamples *subjects within
each fold* and recomputes the pipeline's own score from pooled counts: per fold, per AU,
F1 = 2TP / (2TP + FP + FN) over the frames of the drawn subjects (undefined, left out, when the AU has
no positive label or prediction), the unweighted mean over AUs, then the mean over folds — exactly
`aubench.eval.metrics`, so the point estimate equals the reported mean F1.

- `bootstrap_interval`: percentile bootstrap interval of one method's mean F1.
- `paired_comparison`: the difference of two methods scored on the same frames — a paired bootstrap
  interval (both methods on the same drawn subjects) and a two-sided paired permutation test that swaps
  the two methods' predictions per subject (p = 1 when they predict identically).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aubench.errors import DataError
from aubench.eval.metrics import confusion_counts


@dataclass(frozen=True)
class FoldCounts:
    """TP, FP and FN per test subject and AU of one fold: `counts` has shape (subjects, AUs, 3)."""

    subjects: tuple[str, ...]
    counts: np.ndarray


def subject_counts(probabilities: np.ndarray, labels: np.ndarray, subjects: Sequence[str],
                   threshold: float = 0.5) -> FoldCounts:
    """Per-subject confusion counts of one fold's frames; `subjects` names each frame's subject and
    unknown labels are skipped, as in `aubench.eval.metrics.score_fold`."""
    subjects = np.asarray(subjects)
    if not len(subjects) == len(probabilities) == len(labels):
        raise DataError(f"{len(probabilities)} predictions, {len(labels)} label rows and {len(subjects)} "
                        "subject names: one of each per frame is needed")
    names = tuple(sorted(set(subjects.tolist())))
    counts = [confusion_counts(probabilities[subjects == name], labels[subjects == name], threshold)[:, :3]
              for name in names]
    return FoldCounts(names, np.stack(counts).astype(np.int64))


def mean_f1(folds: Sequence[FoldCounts], weights: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Mean over folds of the mean over AUs of pooled F1. `weights[f]` (replicates × subjects) says how many
    times each subject of fold f is drawn; without weights, every subject once (one replicate)."""
    if weights is None:
        weights = [np.ones((1, len(fold.subjects))) for fold in folds]
    return pooled_mean_f1([np.einsum("rs,sac->rac", draw, fold.counts) for fold, draw in zip(folds, weights)])


def pooled_mean_f1(pooled: Sequence[np.ndarray]) -> np.ndarray:
    """The score from pooled counts, one (replicates × AUs × 3) array per fold: per replicate, the mean
    over folds of the mean over AUs of F1 (AUs with 2TP + FP + FN = 0 are undefined and left out)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate with every AU undefined is NaN
        fold_means = [np.nanmean(2 * c[..., 0] / (2 * c[..., 0] + c[..., 1] + c[..., 2]), axis=1) for c in pooled]
        return np.nanmean(np.stack(fold_means), axis=0)


def _subject_draws(folds: Sequence[FoldCounts], replicates: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Bootstrap weights: per fold, how often each of its subjects is drawn (with replacement)."""
    return [rng.multinomial(len(fold.subjects), np.full(len(fold.subjects), 1 / len(fold.subjects)),
                            size=replicates).astype(float) for fold in folds]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval at `level`."""

    estimate: float
    low: float
    high: float
    level: float


@dataclass(frozen=True)
class Comparison:
    """Method A minus method B on the same frames: the difference, its paired bootstrap interval and the
    two-sided permutation p-value."""

    difference: Interval
    p_value: float
    subjects: int

    @property
    def smallest_p(self) -> float:
        """The smallest p the test can give: 2 of the 2^subjects swap patterns are as extreme as any outcome."""
        return 2.0 ** (1 - self.subjects)


def bootstrap_interval(folds: Sequence[FoldCounts], replicates: int = 10_000, level: float = 0.95,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean F1, resampling subjects within each fold."""
    replicated = mean_f1(folds, _subject_draws(folds, replicates, np.random.default_rng(seed)))
    return _interval(float(mean_f1(folds)[0]), replicated, level)


def paired_comparison(a: Sequence[FoldCounts], b: Sequence[FoldCounts], replicates: int = 10_000,
                      level: float = 0.95, seed: int = 0) -> Comparison:
    """Mean F1 of `a` minus that of `b`, both scored on the same subjects of the same folds."""
    _check_paired(a, b)
    rng = np.random.default_rng(seed)
    observed = float(mean_f1(a)[0] - mean_f1(b)[0])
    draws = _subject_draws(a, replicates, rng)
    interval = _interval(observed, mean_f1(a, draws) - mean_f1(b, draws), level)
    # Permutation null: each subject's two prediction sets are exchangeable when the methods are equal.
    pooled_a, pooled_b = [], []
    for fold_a, fold_b in zip(a, b):
        swap = (rng.random((replicates, len(fold_a.subjects))) < 0.5).astype(float)
        from_a = np.einsum("rs,sac->rac", 1 - swap, fold_a.counts)
        from_b = np.einsum("rs,sac->rac", swap, fold_b.counts)
        pooled_a.append(from_a + from_b)
        pooled_b.append(fold_a.counts.sum(0) + fold_b.counts.sum(0) - pooled_a[-1])
    null = pooled_mean_f1(pooled_a) - pooled_mean_f1(pooled_b)
    extreme = np.count_nonzero(np.abs(null) >= abs(observed) - 1e-12)
    subjects = sum(len(fold.subjects) for fold in a)
    return Comparison(interval, float((1 + extreme) / (1 + replicates)), subjects)


def _check_paired(a: Sequence[FoldCounts], b: Sequence[FoldCounts]) -> None:
    if len(a) != len(b) or any(x.subjects != y.subjects or x.counts.shape != y.counts.shape for x, y in zip(a, b)):
        raise DataError("a paired comparison needs both methods scored on the same folds, subjects and AUs")


def _interval(estimate: float, replicated: np.ndarray, level: float) -> Interval:
    finite = replicated[np.isfinite(replicated)]
    if not finite.size:
        return Interval(estimate, float("nan"), float("nan"), level)
    low, high = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return Interval(estimate, float(low), float(high), level)


def counts_by_fold(predictions: Mapping[int, Mapping[str, np.ndarray]], subject_of: Mapping[str, str],
                   threshold: float = 0.5) -> list[FoldCounts]:
    """`FoldCounts` of every fold from saved prediction files (`probabilities`, `labels`, `keys` = each
    frame's sequence key); `subject_of` maps a sequence key to its subject."""
    folds = []
    for fold, data in sorted(predictions.items()):
        unknown = sorted(set(data["keys"].tolist()) - set(subject_of))
        if unknown:
            raise DataError(f"fold {fold}: predictions name sequences the store does not hold: {unknown[:3]}")
        subjects = [subject_of[key] for key in data["keys"].tolist()]
        folds.append(subject_counts(data["probabilities"], data["labels"], subjects, threshold))
    return folds
