"""The landmarks stage: 68 points per frame for every sequence, with success flags, gap filling and QA.

Frames where no face is found are named in the log; gaps up to `max_gap` frames are filled by linear
interpolation between detected frames, longer gaps stay invalid (their labels are masked later). A
sequence with too many invalid frames stops the stage with a message naming it.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
from aubench.data.datasets import SequenceRecord
from aubench.errors import ConfigError, DataError
from aubench.parallel import progress_map

log = logging.getLogger(__name__)

LEFT_EYE = slice(36, 42)   # subject's right eye, on the image's left
RIGHT_EYE = slice(42, 48)


@dataclass(frozen=True)
class LandmarkConfig:
    """The `landmarks` params section."""

    backend: str = "dlib"
    upsample: int = 0
    max_gap: int = 5
    max_invalid_fraction: float = 0.2
    workers: int = 1
    ground_truth_dir: str = "SynthAU_Landmarks"


@dataclass(frozen=True)
class SequenceLandmarks:
    """Landmarks of one sequence: `points` (T, 68, 2), `detected` and `valid` (T,) flags."""

    points: np.ndarray
    detected: np.ndarray
    valid: np.ndarray

    def save(self, path: Path) -> None:
        """Write atomically, so an interrupted stage never leaves a truncated file behind."""
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, points=self.points, detected=self.detected, valid=self.valid)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> "SequenceLandmarks":
        if not path.is_file():
            raise DataError(f"{path}: landmark file is missing (run the landmarks stage)")
        with np.load(path) as data:
            return cls(data["points"], data["detected"], data["valid"])


@functools.lru_cache(maxsize=2)
def make_landmarker(config: LandmarkConfig):
    """The configured backend (loaded once per process); `detect(rgb) -> box | None`, `fit(rgb, box) -> (68, 2)`."""
    if config.backend == "dlib":
        from aubench.landmarks.dlib_backend import DlibLandmarker

        return DlibLandmarker(upsample=config.upsample)
    raise ConfigError(f"landmarks.backend: unknown backend {config.backend!r}; use 'dlib'")


def detect_sequence(record: SequenceRecord, config: LandmarkConfig) -> SequenceLandmarks:
    """Detect and fit on every frame, then fill short gaps; raises DataError on a mostly faceless sequence."""
    landmarker = make_landmarker(config)
    count = len(record.frames)
    points = np.zeros((count, 68, 2), dtype=np.float32)
    detected = np.zeros(count, dtype=bool)
    for index, image in enumerate(record.frames):
        box = landmarker.detect(image)
        if box is None:
            log.warning("%s: no face found (frame %d)", record.frames.describe(index), record.frame_numbers[index])
            continue
        points[index] = landmarker.fit(image, box)
        detected[index] = True
    points, valid = fill_gaps(points, detected, config.max_gap)
    invalid = int((~valid).sum())
    if invalid > config.max_invalid_fraction * count:
        first = int(np.flatnonzero(~valid)[0])
        raise DataError(f"{record.frames.describe(first)}: no usable face in {invalid} of {count} frames of "
                        f"sequence {record.key} (limit landmarks.max_invalid_fraction="
                        f"{config.max_invalid_fraction}); check the video or the face detector")
    return SequenceLandmarks(points, detected, valid)


def fill_gaps(points: np.ndarray, detected: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate runs of at most `max_gap` missing frames between detections.

    Runs at the start or end of a sequence are held at the nearest detection if short enough.
    Returns the filled points and the per-frame validity.
    """
    filled = points.copy()
    valid = detected.copy()
    known = np.flatnonzero(detected)
    if known.size == 0:
        return filled, valid
    for start, stop in _missing_runs(detected):
        if stop - start > max_gap:
            continue
        before = start - 1 if start > 0 else None
        after = stop if stop < len(detected) else None
        for index in range(start, stop):
            if before is not None and after is not None:
                weight = (index - before) / (after - before)
                filled[index] = (1 - weight) * points[before] + weight * points[after]
            else:
                filled[index] = points[before if before is not None else after]
        valid[start:stop] = True
    return filled, valid


def _missing_runs(detected: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each maximal run of undetected frames."""
    padded = np.concatenate([[True], detected, [True]]).astype(np.int8)
    edges = np.diff(padded)
    return list(zip(np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)))


def inter_ocular_distance(points: np.ndarray) -> np.ndarray:
    """Distance between the eye centres, for (..., 68, 2) landmarks."""
    return np.linalg.norm(points[..., LEFT_EYE, :].mean(-2) - points[..., RIGHT_EYE, :].mean(-2), axis=-1)


def normalised_error(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame mean point error divided by the true inter-ocular distance."""
    return np.linalg.norm(predicted - truth, axis=-1).mean(-1) / inter_ocular_distance(truth)


def run_landmarks(records: list[SequenceRecord], config: LandmarkConfig, out_dir: Path,
                  ground_truth_root: Path | None = None) -> dict:
    """Landmark every sequence into `out_dir/<key>.npz` and return the QA report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = progress_map(detect_sequence, records, repeat(config), total=len(records), desc="landmarks",
                           workers=config.workers)
    report = {"backend": config.backend, "sequences": {}}
    errors = []
    for record, landmarks in zip(records, results):
        landmarks.save(out_dir / f"{record.key}.npz")
        entry = {"frames": len(landmarks.valid), "detection_rate": float(landmarks.detected.mean()),
                 "valid_rate": float(landmarks.valid.mean())}
        truth_path = ground_truth_root / f"{record.key}.npy" if ground_truth_root else None
        if truth_path is not None and truth_path.is_file():
            error = normalised_error(landmarks.points, np.load(truth_path))[landmarks.detected]
            entry["nme"] = float(error.mean()) if error.size else None
            errors.append(error)
        report["sequences"][record.key] = entry
    frames = sum(entry["frames"] for entry in report["sequences"].values())
    detected = sum(entry["frames"] * entry["detection_rate"] for entry in report["sequences"].values())
    report["detection_rate"] = detected / frames
    report["frames"] = frames
    report["frames_per_second"] = frames / (time.perf_counter() - started)
    if errors:
        report["nme_vs_ground_truth"] = float(np.concatenate(errors).mean())
    return report
