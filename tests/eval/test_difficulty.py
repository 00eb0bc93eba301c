"""Reference predictors: always-positive is exact, the context probe resolves what one frame cannot, and the
pixel probe reads what only the image shows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aubench.align.store import AlignedStore
from aubench.data.aus import BP4D_AUS
from aubench.data.folds import Fold
from aubench.eval.difficulty import (DifficultyConfig, difficulty_report, landmark_features, pixel_features,
                                     reference_scores)
from tests.conftest import write_index, write_sequence

CROP = 64
FRAMES = 80


def _episodes(draws: np.random.Generator) -> np.ndarray:
    """0/1 track with a few 10-frame episodes, active about 30 % of the time."""
    track = np.zeros(FRAMES, dtype=np.int8)
    for start in draws.choice(np.arange(0, FRAMES - 10, 10), size=2, replace=False):
        track[start:start + 12] = 1
    return track


def _confounded_store(root: Path, subjects: int = 8, seed: int = 0) -> Path:
    """AU1 lifts landmark 19 by 2 px; each subject's resting brow sits up to ±4 px off (identity confound).
    AU2 brightens the top-left 16-px square of the image and moves no landmark."""
    draws = np.random.default_rng(seed)
    root.mkdir(parents=True)
    neutral = draws.uniform(10, CROP - 10, size=(68, 2))
    resting = np.linspace(-4.0, 4.0, subjects)[draws.permutation(subjects)]
    sequences = []
    for number in range(subjects):
        subject = f"F{number + 1:03d}"
        labels = (draws.random((FRAMES, len(BP4D_AUS))) < 0.3).astype(np.int8)
        labels[:, 0] = _episodes(draws)
        points = np.repeat(neutral[None], FRAMES, axis=0) + draws.normal(0, 0.05, size=(FRAMES, 68, 2))
        points[:, 19, 1] += resting[number] - 2.0 * labels[:, 0]
        images = np.zeros((FRAMES, CROP, CROP, 3), np.uint8)
        images[labels[:, 1] == 1, :16, :16] = 200
        sequences.append(write_sequence(root, subject, images, labels=labels,
                                        points=points.astype(np.float32), valid=np.ones(FRAMES, bool)))
    return write_index(root, sequences, CROP)


@pytest.fixture
def store(tmp_path: Path) -> AlignedStore:
    return AlignedStore.open(_confounded_store(tmp_path / "aligned"))


FOLD = Fold(1, ("F001", "F002", "F003", "F004", "F005", "F006"), ("F007", "F008"))


def test_context_features_are_relative_to_the_sequence_median(store: AlignedStore) -> None:
    single = landmark_features(store, "F001_T1", context=False)
    context = landmark_features(store, "F001_T1", context=True)
    assert single.shape == context.shape == (FRAMES, 136)
    np.testing.assert_allclose(np.median(context, axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(single - context, np.broadcast_to(np.median(single, axis=0), single.shape), atol=1e-12)


def test_pixel_features_are_grey_levels_averaged_over_each_cell(store: AlignedStore) -> None:
    features = pixel_features(store, "F001_T1", side=8)  # 64 px → cells of 8 px
    active = store.labels("F001_T1")[:, 1] == 1
    grid = features.reshape(FRAMES, 8, 8)
    np.testing.assert_allclose(grid[active][:, :2, :2], 200 / 255, rtol=1e-6)  # the 16-px square: 2 × 2 cells
    assert np.all(grid[active][:, 2:, :] == 0) and np.all(grid[~active] == 0)


def test_always_positive_f1_is_two_r_over_one_plus_r(store: AlignedStore) -> None:
    scores = reference_scores(store, FOLD, DifficultyConfig())["always_positive"]
    labels = np.concatenate([store.labels(f"{subject}_T1") for subject in FOLD.test_subjects])
    for au in range(labels.shape[1]):
        rate = (labels[:, au] == 1).sum() / (labels[:, au] != -1).sum()
        assert scores.f1[au] == pytest.approx(2 * rate / (1 + rate))


def test_context_resolves_an_au_that_identity_confounds_in_single_frames(store: AlignedStore) -> None:
    scores = reference_scores(store, FOLD, DifficultyConfig())
    assert scores["context"].f1[0] > 0.95
    assert scores["single_frame"].f1[0] < 0.8
    # AUs with no landmark signal stay near chance for both probes
    assert np.nanmean(scores["context"].f1[1:]) < 0.55


def test_the_pixel_probe_reads_an_au_that_moves_no_landmark(store: AlignedStore) -> None:
    scores = reference_scores(store, FOLD, DifficultyConfig(pixel_side=8))
    assert scores["pixels"].f1[1] > 0.95
    assert scores["single_frame"].f1[1] < 0.6 and scores["context"].f1[1] < 0.6


def test_report_has_every_reference_and_the_gain_per_au(store: AlignedStore) -> None:
    folds = [FOLD, Fold(2, FOLD.test_subjects + FOLD.train_subjects[2:], FOLD.train_subjects[:2])]
    report = difficulty_report(store, folds, DifficultyConfig(), "SynthAU (BP4D layout, synthetic)")
    assert report["dataset"] == "SynthAU (BP4D layout, synthetic)"
    assert set(report["single_frame"]["folds"]) == set(report["pixels"]["folds"]) == {"fold1", "fold2"}
    gain = report["context_gain"]["AU1"]
    assert gain == pytest.approx(report["context"]["per_au_f1"]["AU1"] - report["single_frame"]["per_au_f1"]["AU1"],
                                 abs=1e-3)
    assert gain > 0.2
