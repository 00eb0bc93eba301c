"""ME-GraphAU list export (the list files of its codebase: file names, path and label line formats, class weights)."""
from __future__ import annotations

import numpy as np
import pytest

from aubench.align.export import class_weights, export_megraphau_lists, image_path, relation_labels
from aubench.align.store import build_store
from aubench.align.transform import AlignConfig, eye_template
from aubench.data.aus import BP4D_AUS, UNKNOWN
from aubench.data.datasets import DatasetConfig, SequenceRecord
from aubench.data.folds import build_fold_table
from aubench.data.video import ImageFrames, read_image, write_image
from aubench.errors import DataError
from aubench.landmarks.pipeline import SequenceLandmarks

SUBJECTS = ("F001", "F002", "M001", "M002")
CROP = 24
CONFIG = AlignConfig(crop_size=CROP, eye_distance=0.4, eye_height=0.4)


def make_sequence(root, subject: str, labels: np.ndarray) -> SequenceRecord:
    """Random CROP² PNG frames numbered from 10, and landmarks whose eyes sit on the crop's template."""
    rng = np.random.default_rng(len(subject) + sum(map(ord, subject)))
    paths = []
    for index in range(len(labels)):
        path = root / "frames" / subject / "T1" / f"{index + 10}.png"
        write_image(path, rng.integers(0, 256, size=(CROP, CROP, 3), dtype=np.uint8))
        paths.append(path)
    points = np.zeros((len(labels), 68, 2), dtype=np.float32)
    template = eye_template(CONFIG)
    points[:, 36:42], points[:, 42:48] = template[0] + [[-2, 0], [2, 0]] * 3, template[1] + [[-2, 0], [2, 0]] * 3
    valid = np.ones(len(labels), dtype=bool)
    (root / "landmarks").mkdir(parents=True, exist_ok=True)
    SequenceLandmarks(points, valid, valid).save(root / "landmarks" / f"{subject}_T1.npz")
    return SequenceRecord(subject, "T1", np.arange(10, 10 + len(labels)), ImageFrames(tuple(paths)), labels)


@pytest.fixture
def tiny_store(tmp_path):
    """Four subjects with one 4-frame sequence each; every AU occurs in every subject; F001 frame 2 has a 9."""
    records = []
    for number, subject in enumerate(SUBJECTS):
        labels = np.zeros((4, len(BP4D_AUS)), dtype=np.int8)
        labels[number % 4] = 1
        labels[(number + 1) % 4, : number + 1] = 1
        if subject == "F001":
            labels[2, 5] = UNKNOWN
        records.append(make_sequence(tmp_path, subject, labels))
    store = build_store(records, tmp_path / "landmarks", DatasetConfig(name="tiny", layout="bp4d"), CONFIG,
                        tmp_path / "store")
    labels_by_subject = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    return store, build_fold_table("tiny", store.aus, labels_by_subject, seed=0)


def test_list_files_names_and_formats(tiny_store, tmp_path):
    store, table = tiny_store
    out = tmp_path / "lists"
    summary = export_megraphau_lists(store, table, out, relations=True)
    names = {path.name for path in out.iterdir()}
    for fold in (1, 2, 3):
        assert {f"BP4D_train_img_path_fold{fold}.txt", f"BP4D_test_img_path_fold{fold}.txt",
                f"BP4D_train_label_fold{fold}.txt", f"BP4D_test_label_fold{fold}.txt",
                f"BP4D_train_weight_fold{fold}.txt", f"BP4D_weight_fold{fold}.txt",
                f"BP4D_train_AU_relation_fold{fold}.txt"} <= names
    for entry in table["folds"]:
        fold = entry["fold"]
        for split in ("train", "test"):
            paths = (out / f"BP4D_{split}_img_path_fold{fold}.txt").read_text().splitlines()
            label_lines = (out / f"BP4D_{split}_label_fold{fold}.txt").read_text().splitlines()
            subjects = sorted(entry[f"{split}_subjects"])
            # subject/task/frame-number.jpg, frames 10..13; F001's frame 12 has an unknown label: left out.
            expected = [f"{subject}/T1/{number}.jpg" for subject in subjects for number in range(10, 14)
                        if (subject, number) != ("F001", 12)]
            assert paths == expected
            assert len(label_lines) == len(paths)
            assert all(len(line.split(" ")) == 12 and set(line.split(" ")) <= {"0", "1"} for line in label_lines)
            for path, line in zip(paths, label_lines):
                subject, _, name = path.split("/")
                key_labels = store.labels(f"{subject}_T1")[int(name[:-4]) - 10]
                assert line == " ".join(str(int(value)) for value in key_labels)
            assert summary["folds"][fold][split]["frames"] == len(paths)
        train_labels = np.loadtxt(out / f"BP4D_train_label_fold{fold}.txt", dtype=int, ndmin=2)
        weight_line = (out / f"BP4D_train_weight_fold{fold}.txt").read_text()
        assert weight_line.count("\n") == 1 and len(weight_line.split("\t")) == 12
        weights = np.array(weight_line.split("\t"), dtype=float)
        rates = train_labels.mean(0)
        np.testing.assert_allclose(weights, (1 / rates) / (1 / rates).sum() * 12, rtol=1e-6)
        assert weights.sum() == pytest.approx(12.0, abs=1e-5)
        assert (out / f"BP4D_weight_fold{fold}.txt").read_text() == weight_line
        relations = np.loadtxt(out / f"BP4D_train_AU_relation_fold{fold}.txt", dtype=int, ndmin=2)
        assert relations.shape == (len(train_labels), 144)


def test_class_weights_and_relations_hand_worked():
    labels = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 1, 0]])  # rates 1/4, 1, 1/4
    np.testing.assert_allclose(class_weights(labels), np.array([4, 1, 4]) * 3 / 9)
    relation = relation_labels(np.array([[1, 0, 1]])).reshape(3, 3)
    np.testing.assert_array_equal(relation, [[3, 2, 3], [1, 0, 1], [3, 2, 3]])  # 2·a_j + a_k


def test_image_paths_follow_megraphau():
    assert image_path("bp4d", "F001", "T1", 2440) == "F001/T1/2440.jpg"
    assert image_path("disfa", "SN001", "video", 1) == "SN001/0.png"  # label frame 1 is video frame 0


def test_images_are_written_under_the_listed_paths(tiny_store, tmp_path):
    store, table = tiny_store
    export_megraphau_lists(store, table, tmp_path / "lists", image_dir=tmp_path / "img")
    first = (tmp_path / "lists" / "BP4D_test_img_path_fold1.txt").read_text().splitlines()[0]
    image = read_image(tmp_path / "img" / first)
    subject, _, name = first.split("/")
    crop = store.images(f"{subject}_T1")[int(name[:-4]) - 10]
    write_image(tmp_path / "expected.jpg", np.asarray(crop), jpeg_quality=95)  # the crop as a JPEG
    np.testing.assert_array_equal(image, read_image(tmp_path / "expected.jpg"))


def test_an_au_absent_from_training_frames_is_named(tiny_store, tmp_path):
    store, table = tiny_store
    for sequence in store.sequences:  # AU24 never occurs anywhere
        path = store.root / f"{sequence.key}.npz"
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        arrays["labels"][:, -1] = np.minimum(arrays["labels"][:, -1], 0)
        np.savez(path, **arrays)
    with pytest.raises(DataError, match="AU24"):
        export_megraphau_lists(store, table, tmp_path / "lists")
    assert not (tmp_path / "lists").exists()  # checked before anything is written
