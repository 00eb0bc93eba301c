"""Shared fixtures: a tiny aligned store whose labels are visible in the pixels, so training can learn."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aubench.data.aus import BP4D_AUS
from aubench.io import write_json


def make_store(root: Path, subjects: int = 4, frames: int = 24, crop: int = 40, seed: int = 0) -> Path:
    """Write an aligned store: each AU i brightens its own horizontal band of the crop when present; every
    frame has 68 landmarks (their own random generator, so the pixels and labels do not depend on them)."""
    draws = np.random.default_rng(seed)
    point_draws = np.random.default_rng([seed, 68])
    root.mkdir(parents=True, exist_ok=True)
    sequences = []
    bands = np.array_split(np.arange(crop), len(BP4D_AUS))
    for number in range(1, subjects + 1):
        subject = f"F{number:03d}"
        labels = (draws.random((frames, len(BP4D_AUS))) < 0.4).astype(np.int8)
        labels[draws.random(labels.shape) < 0.03] = -1
        images = draws.integers(0, 80, (frames, crop, crop, 3), dtype=np.uint8)
        for au, rows in enumerate(bands):
            images[:, rows] += (120 * (labels[:, au] == 1)).astype(np.uint8)[:, None, None, None]
        points = point_draws.uniform(0, crop - 1, (frames, 68, 2)).astype(np.float32)
        sequences.append(write_sequence(root, subject, images, labels=labels, points=points))
    return write_index(root, sequences, crop)


def write_sequence(root: Path, subject: str, images: np.ndarray, **arrays: np.ndarray) -> dict:
    """One aligned sequence `<subject>_T1` (crops + frame numbers and `arrays`); returns its index entry."""
    key = f"{subject}_T1"
    np.save(root / f"{key}.npy", images)
    np.savez(root / f"{key}.npz", frame_numbers=np.arange(1, len(images) + 1), **arrays)
    return {"key": key, "subject": subject, "task": "T1", "length": len(images)}


def write_index(root: Path, sequences: list[dict], crop: int) -> Path:
    """The store index over `sequences` (BP4D AUs, SynthAU dataset); returns the store folder."""
    write_json(root / "index.json", {"dataset": "synthau", "layout": "bp4d", "aus": list(BP4D_AUS),
                                     "crop_size": crop, "sequences": sequences})
    return root


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "data" / "aligned")
