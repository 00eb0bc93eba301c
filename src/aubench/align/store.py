"""The aligned store: one memory-mappable uint8 array per sequence plus a JSON index.

Layout under the store folder:
- `index.json`: dataset name, layout, AU list, crop size, and one entry per sequence
  (key, subject, task, frame count);
- `<key>.npy`: (T, S, S, 3) uint8 aligned crops, opened with `mmap_mode="r"` for fast random access;
- `<key>.npz`: `frame_numbers` (T,), `labels` (T, C) int8 with UNKNOWN for unknown or faceless frames.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from aubench.align.transform import AlignConfig, align_frame
from aubench.data.aus import UNKNOWN, aus_for_layout
from aubench.data.datasets import DatasetConfig, SequenceRecord
from aubench.errors import DataError
from aubench.io import read_json, write_json
from aubench.landmarks.pipeline import SequenceLandmarks
from aubench.parallel import progress_map

log = logging.getLogger(__name__)


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
        index_path = Path(root) / "index.json"
        if not index_path.is_file():
            raise DataError(f"{index_path}: aligned store index is missing (run the align stage)")
        index = read_json(index_path)
        sequences = tuple(StoredSequence(**entry) for entry in index["sequences"])
        return cls(Path(root), index["dataset"], index["layout"], tuple(index["aus"]), index["crop_size"], sequences)

    def images(self, key: str) -> np.ndarray:
        """(T, S, S, 3) uint8 crops of a sequence, memory-mapped."""
        return np.load(self.root / f"{key}.npy", mmap_mode="r")

    def labels(self, key: str) -> np.ndarray:
        with np.load(self.root / f"{key}.npz") as data:
            return data["labels"]

    def frame_numbers(self, key: str) -> np.ndarray:
        with np.load(self.root / f"{key}.npz") as data:
            return data["frame_numbers"]

    def subjects(self) -> list[str]:
        return sorted({sequence.subject for sequence in self.sequences})


def align_sequence(record: SequenceRecord, landmarks_path: Path, config: AlignConfig, out_dir: Path) -> StoredSequence:
    """Align every frame of one sequence into the store; faceless frames get all labels UNKNOWN."""
    landmarks = SequenceLandmarks.load(landmarks_path)
    if len(landmarks.valid) != len(record.frames):
        raise DataError(f"{landmarks_path}: has {len(landmarks.valid)} frames but {record.key} has "
                        f"{len(record.frames)}; re-run the landmarks stage")
    size = config.crop_size
    partial = out_dir / f"{record.key}.partial.npy"
    crops = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(record.frames), size, size, 3))
    for index, image in enumerate(record.frames):
        crops[index] = align_frame(image, landmarks.points[index], config)
    crops.flush()
    del crops
    labels = np.where(landmarks.valid[:, None], record.labels, UNKNOWN).astype(np.int8)
    np.savez(out_dir / f"{record.key}.npz", frame_numbers=record.frame_numbers, labels=labels)
    partial.replace(out_dir / f"{record.key}.npy")
    return StoredSequence(record.key, record.subject, record.task, len(record.frames))


def build_store(records: list[SequenceRecord], landmarks_dir: Path, dataset: DatasetConfig,
                config: AlignConfig, out_dir: Path) -> AlignedStore:
    """Align all sequences (in `config.workers` processes) and write the index last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [landmarks_dir / f"{record.key}.npz" for record in records]
    stored = progress_map(align_sequence, records, paths, repeat(config), repeat(out_dir), total=len(records),
                          desc="align", workers=config.workers)
    index = {"dataset": dataset.name, "layout": dataset.layout, "aus": list(aus_for_layout(dataset.layout)),
             "crop_size": config.crop_size, "sequences": [vars(sequence) for sequence in stored]}
    write_json(out_dir / "index.json", index)
    return AlignedStore.open(out_dir)
