"""The aligned store: one memory-mappable uint8 array per sequence plus an index.

Layout under the store folder:
- `<key>.npy`: (T, S, S, 3) uint8 aligned crops, opened with `mmap_mode="r"` for fast random access;
- `<key>.npz`: `frame_numbers` (T,), `labels` (T, C) int8 with UNKNOWN for unknown or faceless frames,
  `valid` (T,) landmark validity, `points` (T, 68, 2) the landmarks in crop coordinates, and the
  sequence's resume key (written after the `.npy`, so it marks the sequence complete);
- `frames.npz`: the flat frame index, one row per frame of the store: `key`, `subject`, `position`
  (row in the sequence's arrays), `frame` (the label files' frame number), `labels` (N, C) and
  `mask` (N, C, True where the label is known);
- `index.json`: dataset name, layout, AU list, crop size, and one entry per sequence (key, subject, task,
  frame count). Written last: a store without it is incomplete (`AlignedStore.open` refuses it).

Building is resumable (see `aubench.landmarks.resume`): a sequence whose `.npz` carries the current key
(align params, landmarks, frame files, labels, code) is not redone, and the files of sequences no longer in
the dataset are deleted.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from aubench.align.transform import AlignConfig, align_frame, alignment_matrix, transform_points
from aubench.data.aus import UNKNOWN, aus_for_layout
from aubench.data.datasets import DatasetConfig, SequenceRecord
from aubench.errors import DataError
from aubench.io import read_json, write_json
from aubench.landmarks.pipeline import SequenceLandmarks
from aubench.landmarks.resume import (KEY_FIELD, array_digest, digest, package_versions, remove_stale,
                                      source_digest, stored_key)
from aubench.parallel import progress_map

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
FRAME_INDEX_FILE = "frames.npz"


@dataclass(frozen=True)
class StoredSequence:
    key: str
    subject: str
    task: str
    length: int


@dataclass(frozen=True)
class AlignedStore:
    """Read access to an aligned store folder."""

    root: Path
    dataset: str
    layout: str
    aus: tuple[int, ...]
    crop_size: int
    sequences: tuple[StoredSequence, ...]

    @classmethod
    def open(cls, root: Path) -> "AlignedStore":
        index_path = Path(root) / INDEX_FILE
        if not index_path.is_file():
            raise DataError(f"{index_path}: aligned store index is missing (run the align stage; a store "
                            "without its index was not finished)")
        index = read_json(index_path)
        sequences = tuple(StoredSequence(**entry) for entry in index["sequences"])
        return cls(Path(root), index["dataset"], index["layout"], tuple(index["aus"]), index["crop_size"], sequences)

    def images(self, key: str) -> np.ndarray:
        """(T, S, S, 3) uint8 crops of a sequence, memory-mapped."""
        return np.load(self.root / f"{key}.npy", mmap_mode="r")

    def labels(self, key: str) -> np.ndarray:
        return self._array(key, "labels")

    def frame_numbers(self, key: str) -> np.ndarray:
        return self._array(key, "frame_numbers")

    def landmarks(self, key: str) -> np.ndarray:
        """(T, 68, 2) float32 landmarks in crop coordinates (held from the nearest valid frame where invalid)."""
        return self._array(key, "points")

    def valid(self, key: str) -> np.ndarray:
        """(T,) bool: the frame's landmarks were found or interpolated (its labels are masked otherwise)."""
        return self._array(key, "valid")

    def frame_index(self) -> dict[str, np.ndarray]:
        """The flat frame index (`key`, `subject`, `position`, `frame`, `labels`, `mask`), one row per frame."""
        with np.load(self.root / FRAME_INDEX_FILE) as data:
            return {name: data[name] for name in data.files}

    def subjects(self) -> list[str]:
        return sorted({sequence.subject for sequence in self.sequences})

    def signature(self) -> str:
        """What the store holds, as a digest of its index and of each sequence's resume key (which covers the
        align params, landmarks, frame files, labels and code that made it): cheap, and equal on any machine."""
        keys = [stored_key(self.root / f"{sequence.key}.npz") or self._content_digest(sequence.key)
                for sequence in self.sequences]
        return digest([read_json(self.root / INDEX_FILE), keys])

    def _content_digest(self, key: str) -> str:
        """A sequence written without a resume key (by hand, or by tests) is identified by its bytes."""
        hasher = hashlib.sha256()
        for suffix in (".npy", ".npz"):
            hasher.update((self.root / f"{key}{suffix}").read_bytes())
        return hasher.hexdigest()

    def _array(self, key: str, name: str) -> np.ndarray:
        with np.load(self.root / f"{key}.npz") as data:
            return data[name]


def crop_points(landmarks: SequenceLandmarks) -> np.ndarray:
    """Landmarks to crop every frame with: invalid frames take the nearest valid frame's (their labels are masked)."""
    valid = np.flatnonzero(landmarks.valid)
    if valid.size == 0 or valid.size == len(landmarks.valid):
        return landmarks.points
    frames = np.arange(len(landmarks.valid))
    after = valid[np.clip(np.searchsorted(valid, frames), 0, valid.size - 1)]
    before = valid[np.clip(np.searchsorted(valid, frames) - 1, 0, valid.size - 1)]
    return landmarks.points[np.where(np.abs(frames - before) <= np.abs(after - frames), before, after)]


def align_sequence(record: SequenceRecord, landmarks_path: Path, config: AlignConfig, out_dir: Path,
                   resume_key: str = "") -> StoredSequence:
    """Align every frame of one sequence into the store; faceless frames get all labels UNKNOWN.

    The crops are written to a temporary file and renamed, then the `.npz` with labels and the resume key
    is written (also atomically): a sequence is complete exactly when its `.npz` exists.
    """
    landmarks = SequenceLandmarks.load(landmarks_path)
    if len(landmarks.valid) != len(record.frames):
        raise DataError(f"{landmarks_path}: has {len(landmarks.valid)} frames but {record.key} has "
                        f"{len(record.frames)}; re-run the landmarks stage")
    size = config.crop_size
    count = len(record.frames)
    points = crop_points(landmarks)
    aligned_points = np.zeros((count, 68, 2), dtype=np.float32)
    partial = out_dir / f"{record.key}.partial.npy"
    crops = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
    try:
        if landmarks.valid.any():
            for index, image in enumerate(record.frames):
                crops[index] = align_frame(image, points[index], config)
                aligned_points[index] = transform_points(points[index], alignment_matrix(points[index], config))
        else:
            log.warning("%s: no valid landmarks in any of its %d frames; its crops are blank and its labels "
                        "masked", record.key, count)
        crops.flush()
    except BaseException:
        del crops
        partial.unlink(missing_ok=True)
        raise
    del crops
    labels = np.where(landmarks.valid[:, None], record.labels, UNKNOWN).astype(np.int8)
    partial.replace(out_dir / f"{record.key}.npy")
    meta_partial = out_dir / f"{record.key}.partial.npz"
    np.savez(meta_partial, frame_numbers=record.frame_numbers, labels=labels, valid=landmarks.valid,
             points=aligned_points, **{KEY_FIELD: np.array(resume_key)})
    meta_partial.replace(out_dir / f"{record.key}.npz")
    return StoredSequence(record.key, record.subject, record.task, count)


def resume_key(record: SequenceRecord, landmarks_path: Path, layout: str, config: AlignConfig) -> str:
    """Key of a sequence's aligned output: align params (but workers), landmarks, frames, labels, code."""
    landmarks = SequenceLandmarks.load(landmarks_path)
    settings = {name: value for name, value in asdict(config).items() if name != "workers"}
    return digest({"stage": "align", "config": settings, "layout": layout,
                   "landmarks": array_digest(landmarks.points, landmarks.valid),
                   "frames": record.frames.fingerprint(),
                   "labels": array_digest(record.frame_numbers, record.labels),
                   "code": source_digest("aubench.align", "aubench.data.video"),
                   "versions": package_versions("numpy", "opencv-python", "opencv-python-headless")})


def _is_done(out_dir: Path, record: SequenceRecord, key: str, crop_size: int) -> bool:
    crops = out_dir / f"{record.key}.npy"
    if stored_key(out_dir / f"{record.key}.npz") != key or not crops.is_file():
        return False
    try:
        shape = np.load(crops, mmap_mode="r").shape
    except (OSError, ValueError):
        return False
    return shape == (len(record.frames), crop_size, crop_size, 3)


def build_store(records: list[SequenceRecord], landmarks_dir: Path, dataset: DatasetConfig,
                config: AlignConfig, out_dir: Path) -> AlignedStore:
    """Align all sequences (in `config.workers` processes, resuming) and write the indexes last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (INDEX_FILE, FRAME_INDEX_FILE):  # the store is incomplete until both are rewritten
        (out_dir / name).unlink(missing_ok=True)
    remove_stale(out_dir, {record.key for record in records}, suffixes=(".npy", ".npz"))
    paths = [landmarks_dir / f"{record.key}.npz" for record in records]
    keys = [resume_key(record, path, dataset.layout, config) for record, path in zip(records, paths)]
    todo = [index for index, record in enumerate(records) if not _is_done(out_dir, record, keys[index],
                                                                            config.crop_size)]
    if len(todo) < len(records):
        log.info("align: %d of %d sequences are already aligned with these params and inputs; reusing them",
                 len(records) - len(todo), len(records))
    progress_map(align_sequence, [records[i] for i in todo], [paths[i] for i in todo], repeat(config),
                 repeat(out_dir), [keys[i] for i in todo], total=len(todo), desc="align", workers=config.workers)
    stored = [StoredSequence(record.key, record.subject, record.task, len(record.frames)) for record in records]
    write_frame_index(out_dir, stored)
    index = {"dataset": dataset.name, "layout": dataset.layout, "aus": list(aus_for_layout(dataset.layout)),
             "crop_size": config.crop_size, "sequences": [vars(sequence) for sequence in stored]}
    write_json(out_dir / INDEX_FILE, index)
    return AlignedStore.open(out_dir)


def write_frame_index(out_dir: Path, sequences: list[StoredSequence]) -> None:
    """The flat frame index `frames.npz` (see the module docstring), written atomically."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in ("key", "subject", "position", "frame", "labels")}
    for sequence in sequences:
        with np.load(out_dir / f"{sequence.key}.npz") as data:
            labels, numbers = data["labels"], data["frame_numbers"]
        columns["key"].append(np.full(sequence.length, sequence.key))
        columns["subject"].append(np.full(sequence.length, sequence.subject))
        columns["position"].append(np.arange(sequence.length, dtype=np.int32))
        columns["frame"].append(np.asarray(numbers, dtype=np.int64))
        columns["labels"].append(labels)
    arrays = {name: np.concatenate(parts) for name, parts in columns.items()}
    arrays["mask"] = arrays["labels"] != UNKNOWN
    partial = out_dir / "frames.partial.npz"
    np.savez(partial, **arrays)
    partial.replace(out_dir / FRAME_INDEX_FILE)
