"""The aligned store (README, the `align` stage: one memory-mapped uint8 array per sequence plus an index)."""
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
    """(T, S, S, 3) uint8 memory-mapped crops, labels masked where landmarks are invalid, an index."""
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
        "F001_T1.npy", "F001_T1.npz", "M002_T2.npy", "M002_T2.npz", "frames.npz", "index.json"]


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


# ------------------------------------------------------------------------------- resume, indexes, landmarks


@pytest.fixture
def counted_align(monkeypatch):
    """Count align_sequence calls (build_store looks the function up at call time)."""
    import aubench.align.store as store_module

    calls: list[str] = []
    original = store_module.align_sequence

    def counting(record, *args, **kwargs):
        calls.append(record.key)
        return original(record, *args, **kwargs)

    monkeypatch.setattr(store_module, "align_sequence", counting)
    return calls


def test_build_store_resumes_and_redoes_only_changed_sequences(tmp_path, counted_align):
    """Issue #4: a sequence already aligned is not redone; changed labels, landmarks or params redo it."""
    first = make_sequence(tmp_path, "F001", "T1", 3)
    second = make_sequence(tmp_path, "M002", "T2", 2)
    dataset = DatasetConfig(name="tiny", layout="bp4d")
    landmarks, out = tmp_path / "landmarks", tmp_path / "store"
    store = build_store([first, second], landmarks, dataset, CONFIG, out)
    assert counted_align == ["F001_T1", "M002_T2"]

    assert build_store([first, second], landmarks, dataset, CONFIG, out) == store
    assert counted_align == ["F001_T1", "M002_T2"]  # nothing redone
    build_store([first, second], landmarks, dataset, AlignConfig(**{**vars(CONFIG), "workers": 4}), out)
    assert len(counted_align) == 2  # the worker count is not part of the key

    relabelled = SequenceRecord(first.subject, first.task, first.frame_numbers, first.frames, 1 - first.labels)
    store = build_store([relabelled, second], landmarks, dataset, CONFIG, out)
    assert counted_align[2:] == ["F001_T1"]
    np.testing.assert_array_equal(store.labels("F001_T1"), 1 - first.labels)

    saved = SequenceLandmarks.load(landmarks / "M002_T2.npz")  # new landmarks for M002_T2
    SequenceLandmarks(saved.points + 1, saved.detected, saved.valid).save(landmarks / "M002_T2.npz")
    build_store([relabelled, second], landmarks, dataset, CONFIG, out)
    assert counted_align[3:] == ["M002_T2"]

    bigger = AlignConfig(crop_size=CROP + 8, eye_distance=0.4, eye_height=0.4)  # an align param: all redone
    assert build_store([relabelled, second], landmarks, dataset, bigger, out).images("F001_T1").shape[1] == CROP + 8
    assert counted_align[4:] == ["F001_T1", "M002_T2"]


def test_sequences_no_longer_in_the_dataset_are_removed(tmp_path):
    first = make_sequence(tmp_path, "F001", "T1", 2)
    second = make_sequence(tmp_path, "M002", "T2", 2)
    dataset = DatasetConfig(name="tiny", layout="bp4d")
    build_store([first, second], tmp_path / "landmarks", dataset, CONFIG, tmp_path / "store")
    (tmp_path / "store" / "F001_T1.partial.npy").write_bytes(b"interrupted")
    store = build_store([second], tmp_path / "landmarks", dataset, CONFIG, tmp_path / "store")
    assert [sequence.key for sequence in store.sequences] == ["M002_T2"]
    assert sorted(path.name for path in (tmp_path / "store").iterdir()) == [
        "M002_T2.npy", "M002_T2.npz", "frames.npz", "index.json"]
    assert set(store.frame_index()["key"]) == {"M002_T2"}


def test_interrupted_build_leaves_no_index_and_resumes(tmp_path, monkeypatch):
    """The index is written last and removed first: an interrupted store never looks complete."""
    import aubench.align.store as store_module

    first = make_sequence(tmp_path, "F001", "T1", 2)
    second = make_sequence(tmp_path, "M002", "T2", 2)
    dataset = DatasetConfig(name="tiny", layout="bp4d")
    out = tmp_path / "store"
    build_store([first, second], tmp_path / "landmarks", dataset, CONFIG, out)  # a previous, complete store
    original = store_module.align_sequence
    calls = []

    def failing(record, *args, **kwargs):
        calls.append(record.key)
        if record.key == "M002_T2":
            raise KeyboardInterrupt
        return original(record, *args, **kwargs)

    monkeypatch.setattr(store_module, "align_sequence", failing)
    relabelled = [SequenceRecord(r.subject, r.task, r.frame_numbers, r.frames, 1 - r.labels) for r in (first, second)]
    with pytest.raises(KeyboardInterrupt):
        build_store(relabelled, tmp_path / "landmarks", dataset, CONFIG, out)
    assert not (out / "index.json").exists() and not (out / "frames.npz").exists()
    with pytest.raises(DataError, match="index.json"):
        AlignedStore.open(out)
    assert not list(out.glob("*partial*"))

    calls.clear()
    monkeypatch.setattr(store_module, "align_sequence", lambda record, *a, **k: calls.append(record.key) or
                        original(record, *a, **k))
    store = build_store(relabelled, tmp_path / "landmarks", dataset, CONFIG, out)
    assert calls == ["M002_T2"]  # F001_T1 was finished before the interruption
    np.testing.assert_array_equal(store.labels("M002_T2"), 1 - second.labels)


def test_frame_index_and_aligned_landmarks(tmp_path):
    """The flat index (subject / sequence / frame / labels / mask) and the landmarks in crop coordinates."""
    valid = np.array([True, False, True])
    first = make_sequence(tmp_path, "F001", "T1", 3, valid=valid)
    second = make_sequence(tmp_path, "M002", "T2", 2)
    store = build_store([first, second], tmp_path / "landmarks", DatasetConfig(name="tiny", layout="bp4d"), CONFIG,
                        tmp_path / "store")
    index = store.frame_index()
    assert list(index["key"]) == ["F001_T1"] * 3 + ["M002_T2"] * 2
    assert list(index["subject"]) == ["F001"] * 3 + ["M002"] * 2
    np.testing.assert_array_equal(index["position"], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(index["frame"], [10, 11, 12, 10, 11])
    labels = np.concatenate([store.labels("F001_T1"), store.labels("M002_T2")])
    np.testing.assert_array_equal(index["labels"], labels)
    np.testing.assert_array_equal(index["mask"], labels != UNKNOWN)
    assert not index["mask"][1].any()  # the invalid frame
    np.testing.assert_array_equal(store.valid("F001_T1"), valid)
    aligned = store.landmarks("F001_T1")  # identity alignment: the points themselves, eyes on the template
    assert aligned.shape == (3, 68, 2)
    np.testing.assert_allclose(aligned[0], identity_points(), atol=1e-4)
    np.testing.assert_allclose([aligned[0, 36:42].mean(0), aligned[0, 42:48].mean(0)], eye_template(CONFIG),
                               atol=1e-4)


def test_invalid_frames_without_points_are_cropped_with_the_nearest_valid_landmarks(tmp_path):
    """A long gap leaves frames with no landmarks (all zeros): cropping must not fail, labels are masked."""
    record = make_sequence(tmp_path, "F001", "T1", 4)
    path = tmp_path / "landmarks" / "F001_T1.npz"
    saved = SequenceLandmarks.load(path)
    points = saved.points.copy()
    points[1:3] = 0.0
    points[3] = points[0] * 0.5 + 3
    valid = np.array([True, False, False, True])
    SequenceLandmarks(points, valid, valid).save(path)
    store = build_store([record], tmp_path / "landmarks", DatasetConfig(layout="bp4d"), CONFIG, tmp_path / "store")
    crops = store.images("F001_T1")
    expected = [record.frames.paths[1], record.frames.paths[2]]
    np.testing.assert_array_equal(crops[1], read_image(expected[0]))  # frame 1: nearest valid is frame 0 (identity)
    assert not np.array_equal(crops[2], read_image(expected[1]))  # frame 2: frame 3's (non-identity) landmarks
    assert (store.labels("F001_T1")[1:3] == UNKNOWN).all()
