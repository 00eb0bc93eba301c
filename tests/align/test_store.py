"""The aligned store (pipeline.md §2 align: one memory-mapped uint8 array per sequence plus an index)."""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from aubench.align.store import AlignedStore, align_sequence, build_store
from aubench.align.transform import AlignConfig, eye_template
from aubench.data.aus import BP4D_AUS, UNKNOWN
from aubench.data.datasets import DatasetConfig, SequenceRecord
from aubench.data.video import ImageFrames, read_image, write_image
from aubench.errors import DataError
from aubench.landmarks.pipeline import SequenceLandmarks

CROP = 24
CONFIG = AlignConfig(crop_size=CROP, eye_distance=0.4, eye_height=0.4)
EYE_RING = np.array([[-2, 0], [-1, -1], [1, -1], [2, 0], [1, 1], [-1, 1]], dtype=np.float64)


def identity_points() -> np.ndarray:
    """68 points whose eye centres sit exactly on the crop's template (so alignment is the identity)."""
    template = eye_template(CONFIG)
    points = np.zeros((68, 2), dtype=np.float32)
    points[36:42] = template[0] + EYE_RING
    points[42:48] = template[1] + EYE_RING
    return points


def make_sequence(root: Path, subject: str, task: str, count: int, valid: np.ndarray | None = None,
                  landmark_count: int | None = None) -> SequenceRecord:
    """Random CROP×CROP PNG frames, random 0/1/UNKNOWN labels and a landmarks file `<key>.npz`."""
    rng = np.random.default_rng(zlib.crc32(f"{subject}_{task}".encode()))
    paths = []
    for index in range(count):
        path = root / "frames" / subject / task / f"{index + 1:04d}.png"
        write_image(path, rng.integers(0, 256, size=(CROP, CROP, 3), dtype=np.uint8))
        paths.append(path)
    labels = rng.choice([0, 1, UNKNOWN], size=(count, len(BP4D_AUS))).astype(np.int8)
    record = SequenceRecord(subject, task, np.arange(10, 10 + count), ImageFrames(tuple(paths)), labels)
    frames = count if landmark_count is None else landmark_count
    valid = np.ones(frames, dtype=bool) if valid is None else valid
    points = np.repeat(identity_points()[None], frames, axis=0)
    landmarks_dir = root / "landmarks"
    landmarks_dir.mkdir(parents=True, exist_ok=True)
    SequenceLandmarks(points, valid.copy(), valid).save(landmarks_dir / f"{record.key}.npz")
    return record


def test_build_store_round_trip(tmp_path):
    """§2 align: (T, S, S, 3) uint8 memory-mapped crops, labels masked where landmarks are invalid, an index."""
    valid = np.array([True, False, True, True, False])
    first = make_sequence(tmp_path, "F001", "T1", 5, valid=valid)
    second = make_sequence(tmp_path, "M002", "T2", 3)
    dataset = DatasetConfig(name="tiny", layout="bp4d")
    store = build_store([first, second], tmp_path / "landmarks", dataset, CONFIG, tmp_path / "store")

    assert isinstance(store, AlignedStore)
    index = json.loads((tmp_path / "store" / "index.json").read_text())
    assert index["dataset"] == "tiny" and index["layout"] == "bp4d"
    assert index["aus"] == list(BP4D_AUS) and index["crop_size"] == CROP
    assert index["sequences"] == [{"key": "F001_T1", "subject": "F001", "task": "T1", "length": 5},
                                  {"key": "M002_T2", "subject": "M002", "task": "T2", "length": 3}]

    reopened = AlignedStore.open(tmp_path / "store")
    assert reopened == store
    assert reopened.aus == BP4D_AUS and reopened.subjects() == ["F001", "M002"]

    images = reopened.images("F001_T1")
    assert isinstance(images, np.memmap)
    assert images.shape == (5, CROP, CROP, 3) and images.dtype == np.uint8
    # Eyes already on the template: alignment is the identity, so the crops are the frames themselves.
    for index, path in enumerate(first.frames.paths):
        np.testing.assert_array_equal(images[index], read_image(path))
    assert reopened.images("M002_T2").shape == (3, CROP, CROP, 3)

    labels = reopened.labels("F001_T1")
    assert labels.dtype == np.int8
    np.testing.assert_array_equal(labels[valid], first.labels[valid])
    assert (labels[~valid] == UNKNOWN).all()
    np.testing.assert_array_equal(reopened.labels("M002_T2"), second.labels)
    np.testing.assert_array_equal(reopened.frame_numbers("F001_T1"), [10, 11, 12, 13, 14])

    assert not list((tmp_path / "store").glob("*partial*"))
    assert sorted(path.name for path in (tmp_path / "store").iterdir()) == [
        "F001_T1.npy", "F001_T1.npz", "M002_T2.npy", "M002_T2.npz", "index.json"]


def test_align_sequence_aligns_off_template_faces(tmp_path):
    """Crops are warped, not copied: a frame whose eyes are off the template changes."""
    record = make_sequence(tmp_path, "F001", "T1", 2)
    landmarks_path = tmp_path / "landmarks" / "F001_T1.npz"
    landmarks = SequenceLandmarks.load(landmarks_path)
    points = landmarks.points.copy()
    points[1] = points[1] * 0.5 + 3  # frame 1: a smaller, shifted face
    SequenceLandmarks(points, landmarks.detected, landmarks.valid).save(landmarks_path)
    out = tmp_path / "store"
    out.mkdir()
    stored = align_sequence(record, landmarks_path, CONFIG, out)
    assert (stored.key, stored.length) == ("F001_T1", 2)
    crops = np.load(out / "F001_T1.npy")
    np.testing.assert_array_equal(crops[0], read_image(record.frames.paths[0]))
    assert not np.array_equal(crops[1], read_image(record.frames.paths[1]))


def test_landmark_frame_count_mismatch_names_the_file(tmp_path):
    record = make_sequence(tmp_path, "F001", "T1", 4, landmark_count=3)
    with pytest.raises(DataError) as raised:
        build_store([record], tmp_path / "landmarks", DatasetConfig(layout="bp4d"), CONFIG, tmp_path / "store")
    message = str(raised.value)
    assert str(tmp_path / "landmarks" / "F001_T1.npz") in message and "3 frames" in message and "4" in message
    assert not (tmp_path / "store" / "index.json").exists()


def test_missing_landmarks_or_index_fail_naming_the_file(tmp_path):
    record = make_sequence(tmp_path, "F001", "T1", 2)
    (tmp_path / "landmarks" / "F001_T1.npz").unlink()
    with pytest.raises(DataError, match="F001_T1.npz"):
        build_store([record], tmp_path / "landmarks", DatasetConfig(layout="bp4d"), CONFIG, tmp_path / "store")
    with pytest.raises(DataError, match="index.json"):
        AlignedStore.open(tmp_path / "empty")
