"""How hard each AU is, measured with cheap reference predictors on the same folds as the methods.

Four references per AU, scored like any method (pooled test frames, threshold 0.5, unknowns skipped):
- `always_positive`: predicts every frame positive, the floor a learned model must clearly beat;
- `single_frame`: logistic regression on one frame's aligned landmarks (shape only, no context);
- `context`: the same probe on landmarks minus the sequence's median shape (the person's resting
  face estimated from the clip, i.e. what only motion or context reveals);
- `pixels`: the same probe on one frame's aligned face, grey and area-downsampled to `pixel_side`²: how much
  of each AU a linear map of the pixels reads, the bar for a frozen backbone's linear probe (MC-SFAU).

An AU whose `context` F1 is far above its `single_frame` F1 is one that a single frame cannot resolve:
identities whose resting face mimics the AU (high brows, down-turned mouth corners) are confused with it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aubench.align.store import AlignedStore
from aubench.data.aus import UNKNOWN, au_names
from aubench.data.folds import Fold
from aubench.eval.metrics import FoldScores, score_fold, summarise

REFERENCES = ("always_positive", "single_frame", "context", "pixels")


@dataclass(frozen=True)
class DifficultyConfig:
    """The `difficulty` params section."""

    regularisation: float = 0.1  # inverse L2 strength C of the logistic-regression probes
    max_iter: int = 500
    pixel_side: int = 12  # the pixel probe's grey image side (px)


def landmark_features(store: AlignedStore, key: str, context: bool) -> np.ndarray:
    """(T, 136) landmarks in crop units; with `context`, relative to the sequence's median shape."""
    points = store.landmarks(key).astype(np.float64) / store.crop_size
    if context:
        points = points - np.median(points, axis=0, keepdims=True)
    return points.reshape(len(points), -1)


def pixel_features(store: AlignedStore, key: str, side: int) -> np.ndarray:
    """(T, side²) grey levels in [0, 1] of the aligned faces, area-downsampled (OpenCV's INTER_AREA)."""
    import cv2  # only this stage reads pixels; the reports that import REFERENCES need not load OpenCV

    grey = np.asarray(store.images(key), dtype=np.float32).mean(axis=-1) / 255.0
    return np.stack([cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA).ravel() for frame in grey])


FEATURES: dict[str, Callable[[AlignedStore, str, DifficultyConfig], np.ndarray]] = {
    "single_frame": lambda store, key, config: landmark_features(store, key, context=False),
    "context": lambda store, key, config: landmark_features(store, key, context=True),
    "pixels": lambda store, key, config: pixel_features(store, key, config.pixel_side),
}


def _keys(store: AlignedStore, subjects: tuple[str, ...]) -> list[str]:
    return [sequence.key for sequence in store.sequences if sequence.subject in subjects]


def _fold_data(store: AlignedStore, subjects: tuple[str, ...], reference: str,
               config: DifficultyConfig) -> tuple[np.ndarray, np.ndarray]:
    keys = _keys(store, subjects)
    features = np.concatenate([FEATURES[reference](store, key, config) for key in keys])
    labels = np.concatenate([store.labels(key) for key in keys])
    return features, labels


def probe_probabilities(train: tuple[np.ndarray, np.ndarray], test_features: np.ndarray,
                        config: DifficultyConfig) -> np.ndarray:
    """(frames, N) test probabilities of per-AU class-balanced logistic regressions fit on `train`."""
    # Imported here: only this stage fits probes, and the reports that read REFERENCES need not load
    # scikit-learn (over a second per process on 2 cores).
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = train
    probabilities = np.zeros((len(test_features), labels.shape[1]))
    for au in range(labels.shape[1]):
        known = labels[:, au] != UNKNOWN
        truth = labels[known, au]
        if truth.min(initial=1) == truth.max(initial=0):  # one class only: predict it
            probabilities[:, au] = float(truth.max(initial=0))
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(
            C=config.regularisation, class_weight="balanced", max_iter=config.max_iter))
        probe.fit(features[known], truth)
        probabilities[:, au] = probe.predict_proba(test_features)[:, 1]
    return probabilities


def reference_scores(store: AlignedStore, fold: Fold, config: DifficultyConfig) -> dict[str, FoldScores]:
    """Scores of the references on one fold's test subjects."""
    test_labels = np.concatenate([store.labels(key) for key in _keys(store, fold.test_subjects)])
    scores = {"always_positive": score_fold(np.ones(test_labels.shape), test_labels)}
    for reference in FEATURES:
        test_features, _ = _fold_data(store, fold.test_subjects, reference, config)
        train = _fold_data(store, fold.train_subjects, reference, config)
        scores[reference] = score_fold(probe_probabilities(train, test_features, config), test_labels)
    return scores


def difficulty_report(store: AlignedStore, folds: list[Fold], config: DifficultyConfig, dataset: str) -> dict:
    """Per-reference summaries over folds plus, per AU, how much context adds to a single frame."""
    per_fold = {fold.number: reference_scores(store, fold, config) for fold in folds}
    report = {"dataset": dataset, "aus": list(store.aus)}
    for reference in REFERENCES:
        report[reference] = summarise({number: scores[reference] for number, scores in per_fold.items()}, store.aus)
    single, context = report["single_frame"]["per_au_f1"], report["context"]["per_au_f1"]
    report["context_gain"] = {name: _gain(context[name], single[name]) for name in au_names(store.aus)}
    return report


def _gain(context: float | None, single: float | None) -> float | None:
    return None if context is None or single is None else round(context - single, 4)
