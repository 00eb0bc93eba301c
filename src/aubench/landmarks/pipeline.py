"""The landmarks stage: 68 points per frame for every sequence, with success flags, gap filling and QA.

Landmarks come from key-frame detection with tracking in between (`mode: track`, see `tracking.py`) or
from detection on every frame (`mode: detect_every_frame`, the reference the benchmark compares with).
Frames where no face is found are named in the log; gaps up to `max_gap` frames are filled by linear
interpolation between found frames, longer gaps stay invalid (their labels are masked later). A sequence
with too many invalid frames stops the stage with a message naming it.

The stage is resumable: each sequence's file is written atomically and carries a key of its params,
input files and code (`resume.py`); a sequence whose file has the current key is not redone, and files
of sequences no longer in the dataset are removed.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from aubench.errors import ConfigError, DataError
from aubench.landmarks.resume import KEY_FIELD, digest, package_versions, remove_stale, source_digest, stored_key
from aubench.landmarks.tracking import (DETECTED, LEFT_EYE, NO_FACE, RIGHT_EYE, TRACKED,  # noqa: F401 (re-exported)
                                        KeyFrameTracker)
from aubench.parallel import progress_map


class SequenceRecord(Protocol):
    """What this stage reads of a dataset sequence (`aubench.data.datasets.SequenceRecord`; the data
    package sits above this one, since SynthAU fits its source photos with the dlib backend)."""

    key: str
    frames: Any
    frame_numbers: np.ndarray

log = logging.getLogger(__name__)

BACKENDS = ("dlib", "face_alignment")
MODES = ("track", "detect_every_frame")
#: Params that do not change the landmarks (left out of the resume key).
NOT_IN_KEY = ("workers", "ground_truth_dir")
#: Facts of one run rather than of the data (how much was resumed, how fast it went): `run_landmarks`
#: returns them with the QA report, and the stage logs them instead of writing them to the metrics file,
#: which must come out byte-identical in a fresh clone.
RUN_FIELDS = ("sequences_computed", "sequences_reused", "seconds", "frames_per_second")
#: Distributions whose versions are part of the resume key, per backend.
BACKEND_DISTRIBUTIONS = {"dlib": ("dlib", "face_recognition_models"), "face_alignment": ("face-alignment", "torch")}


@dataclass(frozen=True)
class LandmarkConfig:
    """The `landmarks` params section.

    - backend: `dlib` (offline default) or `face_alignment` (needs its weights in the torch hub cache);
    - mode: `track` (detect on key frames, track in between) or `detect_every_frame`;
    - key_interval: a key frame (detector run) every this many frames in `track` mode;
    - track_min_confidence: re-detect when the face patch of a tracked frame correlates less than this
      with the previous frame's (normalised cross-correlation, 1 = identical);
    - track_max_motion: re-detect when tracked landmarks move more than this many inter-ocular distances
      from the previous frame;
    - track_roi_margin: on scheduled key frames, run the detector only on the tracked face's box grown by
      this fraction of its size on each side (the whole frame when it finds no face there); null: always
      the whole frame. Re-detections after a rejected frame and `detect_every_frame` use the whole frame;
    - device: torch device for `face_alignment` (`auto`: CUDA when available); dlib runs on the CPU.
    """

    backend: str = "dlib"
    upsample: int = 0
    mode: str = "track"
    key_interval: int = 10
    track_min_confidence: float = 0.75
    track_max_motion: float = 0.25
    track_roi_margin: float | None = 0.25
    max_gap: int = 5
    max_invalid_fraction: float = 0.2
    workers: int = 1
    device: str = "auto"
    ground_truth_dir: str = "SynthAU_Landmarks"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"landmarks.mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if self.key_interval < 1:
            raise ConfigError(f"landmarks.key_interval: must be at least 1, got {self.key_interval}")
        if not 0.0 <= self.max_invalid_fraction <= 1.0:
            raise ConfigError(f"landmarks.max_invalid_fraction: must be in [0, 1], got {self.max_invalid_fraction}")
        if self.max_gap < 0:
            raise ConfigError(f"landmarks.max_gap: must be at least 0, got {self.max_gap}")
        if self.track_roi_margin is not None and self.track_roi_margin < 0:
            raise ConfigError(f"landmarks.track_roi_margin: must be at least 0 (or null), got {self.track_roi_margin}")


@dataclass(frozen=True)
class SequenceLandmarks:
    """Landmarks of one sequence: `points` (T, 68, 2), `detected` and `valid` (T,) flags.

    `detected`: a face was found on the frame (by the detector or by tracking); `valid`: detected or
    filled by interpolation. `source` (T,) int8 says how (NO_FACE, DETECTED, TRACKED) and `confidence`
    (T,) float32 holds the tracking confidence (NaN where no tracking was tried).
    """

    points: np.ndarray
    detected: np.ndarray
    valid: np.ndarray
    source: np.ndarray | None = None
    confidence: np.ndarray | None = None
    resume_key: str = ""

    def __post_init__(self) -> None:
        if self.source is None:  # files and callers from before tracking: every found face was detected
            object.__setattr__(self, "source", np.where(self.detected, DETECTED, NO_FACE).astype(np.int8))
        if self.confidence is None:
            object.__setattr__(self, "confidence", np.full(len(self.detected), np.nan, dtype=np.float32))

    def save(self, path: Path) -> None:
        """Write atomically, so an interrupted stage never leaves a truncated file behind."""
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, points=self.points, detected=self.detected, valid=self.valid, source=self.source,
                 confidence=self.confidence, **{KEY_FIELD: np.array(self.resume_key)})
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> "SequenceLandmarks":
        if not path.is_file():
            raise DataError(f"{path}: landmark file is missing (run the landmarks stage)")
        with np.load(path) as data:
            optional = {name: data[name] for name in ("source", "confidence") if name in data.files}
            key = str(data[KEY_FIELD]) if KEY_FIELD in data.files else ""
            return cls(data["points"], data["detected"], data["valid"], resume_key=key, **optional)


@functools.lru_cache(maxsize=2)
def make_landmarker(config: LandmarkConfig):
    """The configured backend (loaded once per process); `detect(rgb) -> box | None`, `fit(rgb, box) -> (68, 2)`."""
    if config.backend == "dlib":
        from aubench.landmarks.dlib_backend import DlibLandmarker

        return DlibLandmarker(upsample=config.upsample)
    if config.backend == "face_alignment":
        from aubench.landmarks.face_alignment_backend import FaceAlignmentLandmarker

        return FaceAlignmentLandmarker(device=config.device)
    raise ConfigError(f"landmarks.backend: unknown backend {config.backend!r}; use one of {', '.join(BACKENDS)}")


def check_backend(config: LandmarkConfig) -> None:
    """Fail before any work (and before worker processes start) when the backend cannot run as configured."""
    if config.backend == "dlib":
        from aubench.landmarks.dlib_backend import predictor_path

        predictor_path()
    elif config.backend == "face_alignment":
        from aubench.landmarks.face_alignment_backend import check_weights

        check_weights()
    else:
        raise ConfigError(f"landmarks.backend: unknown backend {config.backend!r}; use one of {', '.join(BACKENDS)}")


def make_tracker(landmarker, config: LandmarkConfig) -> KeyFrameTracker:
    """The frame-by-frame landmarker for `config.mode` (key_interval 1 = detect on every frame)."""
    interval = config.key_interval if config.mode == "track" else 1
    return KeyFrameTracker(landmarker, key_interval=interval, min_confidence=config.track_min_confidence,
                           max_motion=config.track_max_motion, roi_margin=config.track_roi_margin)


def detect_sequence(record: SequenceRecord, config: LandmarkConfig) -> SequenceLandmarks:
    """Landmark every frame (key frames + tracking, or detection everywhere), then fill short gaps.

    Raises DataError naming the sequence and its first invalid frame when too many frames have no face.
    """
    tracker = make_tracker(make_landmarker(config), config)
    count = len(record.frames)
    points = np.zeros((count, 68, 2), dtype=np.float32)
    source = np.zeros(count, dtype=np.int8)
    confidence = np.full(count, np.nan, dtype=np.float32)
    for index, result in enumerate(tracker.run(record.frames)):
        source[index], confidence[index] = result.source, result.confidence
        if result.points is None:
            log.warning("%s: no face found (frame %d)", record.frames.describe(index), record.frame_numbers[index])
            continue
        points[index] = result.points
    detected = source != NO_FACE
    points, valid = fill_gaps(points, detected, config.max_gap)
    invalid = int((~valid).sum())
    if invalid > config.max_invalid_fraction * count:
        first = int(np.flatnonzero(~valid)[0])
        raise DataError(f"{record.frames.describe(first)}: no usable face in {invalid} of {count} frames of "
                        f"sequence {record.key} (limit landmarks.max_invalid_fraction="
                        f"{config.max_invalid_fraction}); check the video or the face detector")
    return SequenceLandmarks(points, detected, valid, source, confidence)


def resume_key(record: SequenceRecord, config: LandmarkConfig) -> str:
    """Key of a sequence's landmarks: params (but the worker count), input files, code and library versions."""
    settings = {name: value for name, value in asdict(config).items() if name not in NOT_IN_KEY}
    return digest({"stage": "landmarks", "config": settings, "frames": record.frames.fingerprint(),
                   "code": source_digest("aubench.landmarks", "aubench.data.video"),
                   "versions": package_versions("numpy", "opencv-python", "opencv-python-headless",
                                                *BACKEND_DISTRIBUTIONS.get(config.backend, ()))})


def landmark_to_file(record: SequenceRecord, config: LandmarkConfig, path: Path, key: str) -> float:
    """Landmark one sequence and write it atomically with its resume key; returns the seconds it took."""
    started = time.perf_counter()
    landmarks = detect_sequence(record, config)
    SequenceLandmarks(landmarks.points, landmarks.detected, landmarks.valid, landmarks.source,
                      landmarks.confidence, key).save(path)
    return time.perf_counter() - started


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
    """Landmark every sequence into `out_dir/<key>.npz` (resuming) and return the QA report.

    Sequences whose file already carries the current resume key are reused, others are computed in
    `config.workers` processes, each written as soon as it is done; files of sequences that are not in
    `records` (and interrupted writes) are deleted first. The report also holds the run's `RUN_FIELDS`
    (sequences computed and reused, seconds, frames per second; not for the metrics file).
    """
    check_backend(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir, {record.key for record in records}, suffixes=(".npz",))
    paths = [out_dir / f"{record.key}.npz" for record in records]
    keys = [resume_key(record, config) for record in records]
    todo = [index for index, (path, key) in enumerate(zip(paths, keys)) if stored_key(path) != key]
    if len(todo) < len(records):
        log.info("landmarks: %d of %d sequences are already done with these params and inputs; reusing them",
                 len(records) - len(todo), len(records))
    started = time.perf_counter()
    progress_map(landmark_to_file, [records[i] for i in todo], repeat(config), [paths[i] for i in todo],
                 [keys[i] for i in todo], total=len(todo), desc="landmarks", workers=config.workers)
    elapsed = time.perf_counter() - started
    report = quality_report(records, paths, ground_truth_root)
    computed_frames = sum(len(records[i].frames) for i in todo)
    report.update({"backend": config.backend, "mode": config.mode,
                   "key_interval": config.key_interval if config.mode == "track" else 1,
                   "sequences_computed": len(todo), "sequences_reused": len(records) - len(todo),
                   "seconds": elapsed,
                   "frames_per_second": computed_frames / elapsed if todo and elapsed > 0 else None})
    return report


def quality_report(records: list[SequenceRecord], paths: list[Path], ground_truth_root: Path | None) -> dict:
    """Per-sequence and overall detection rate, detector use and (where ground truth exists) NME."""
    report: dict = {"sequences": {}}
    errors = []
    for record, path in zip(records, paths):
        landmarks = SequenceLandmarks.load(path)
        frames = len(landmarks.valid)
        source = landmarks.source
        detector_runs = int((source != TRACKED).sum())
        redetections = int(((source != TRACKED) & np.isfinite(landmarks.confidence)).sum())
        entry = {"frames": frames, "detection_rate": float(landmarks.detected.mean()),
                 "valid_rate": float(landmarks.valid.mean()), "detector_rate": detector_runs / frames,
                 "tracked_rate": float((source == TRACKED).mean()), "redetections": redetections}
        truth_path = ground_truth_root / f"{record.key}.npy" if ground_truth_root else None
        if truth_path is not None and truth_path.is_file():
            truth = np.load(truth_path)
            if truth.shape != landmarks.points.shape:
                raise DataError(f"{truth_path}: ground-truth landmarks have shape {truth.shape}, expected "
                                f"{landmarks.points.shape} for sequence {record.key}")
            error = normalised_error(landmarks.points, truth)[landmarks.detected]
            entry["nme"] = float(error.mean()) if error.size else None
            errors.append(error)
        report["sequences"][record.key] = entry
    entries = report["sequences"].values()
    frames = sum(entry["frames"] for entry in entries)
    report["frames"] = frames
    report["detection_rate"] = sum(entry["frames"] * entry["detection_rate"] for entry in entries) / max(frames, 1)
    report["valid_rate"] = sum(entry["frames"] * entry["valid_rate"] for entry in entries) / max(frames, 1)
    report["detector_rate"] = sum(entry["frames"] * entry["detector_rate"] for entry in entries) / max(frames, 1)
    if errors:
        report["nme_vs_ground_truth"] = float(np.concatenate(errors).mean())
    return report
