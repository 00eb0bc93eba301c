"""BP4D and DISFA adapters on tiny fixture trees written in the official layouts (README, Data), and the
`videos` layout (unlabeled face videos, one folder per identity)."""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from aubench.data.aus import BP4D_AUS, DISFA_AUS, UNKNOWN, aus_for_layout
from aubench.data.datasets import (BP4DLayout, DatasetConfig, DISFALayout, dataset_config, load_sequences,
                                   read_bp4d_labels, read_disfa_intensities)
from aubench.data.video import ImageFrames, VideoFrames, write_image, write_video
from aubench.errors import ConfigError, DataError

# The official AU_OCC header style: frame column "0", then AU numbers, including AUs we do not use.
HEADER_AUS = (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27)
DEFAULT_PATTERN = BP4DLayout().frame_pattern


def flat_image(value: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def write_bp4d_csv(path: Path, frame_numbers, labels: np.ndarray, header_aus=HEADER_AUS,
                   extra_values: np.ndarray | None = None) -> None:
    """One AU_OCC CSV: `labels` (T, 12) go to the BP4D AU columns, other AU columns get `extra_values`."""
    rng = np.random.default_rng(0)
    rows = [",".join(["0", *map(str, header_aus)])]
    for row, number in enumerate(frame_numbers):
        cells = [str(number)]
        for au in header_aus:
            if au in BP4D_AUS:
                cells.append(str(labels[row, BP4D_AUS.index(au)]))
            elif extra_values is not None:
                cells.append(str(extra_values[row]))
            else:
                cells.append(str(rng.choice([0, 1, 9])))
        rows.append(",".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def make_bp4d(root: Path, sequences: dict[tuple[str, str], tuple[list[int], np.ndarray]],
              pattern: str = DEFAULT_PATTERN, label_dir: str = "AUCoding/AU_OCC") -> None:
    """Frames (flat 32×32 JPEGs) and AU_OCC CSVs for each (subject, task)."""
    for (subject, task), (numbers, labels) in sequences.items():
        for number in numbers:
            write_image(root / pattern.format(subject=subject, task=task, frame=number), flat_image(number * 10 % 250))
        write_bp4d_csv(root / label_dir / f"{subject}_{task}.csv", numbers, labels)


def random_labels(count: int, seed: int, values=(0, 1, 9)) -> np.ndarray:
    return np.random.default_rng(seed).choice(values, size=(count, len(BP4D_AUS)))


def bp4d_config(root: Path, **layout) -> DatasetConfig:
    return DatasetConfig(name="test", layout="bp4d", root=str(root), bp4d=BP4DLayout(**layout))


# ---------------------------------------------------------------------------------------------- BP4D


def test_bp4d_frame_numbers_labels_and_sorted_keys(tmp_path):
    """BP4D: frame number = first CSV column, labels in BP4D AU order, 9 (not coded) masked as UNKNOWN."""
    labels_a = random_labels(4, seed=1)
    labels_b = random_labels(3, seed=2)
    labels_c = random_labels(2, seed=3)
    # Written in an unsorted order: the result must be sorted by key.
    make_bp4d(tmp_path, {("M001", "T2"): ([7, 8, 9, 10], labels_a),
                         ("F002", "T1"): ([1, 2, 3], labels_b),
                         ("M001", "T1"): ([20, 21], labels_c)})
    records = load_sequences(bp4d_config(tmp_path))

    assert [record.key for record in records] == ["F002_T1", "M001_T1", "M001_T2"]
    by_key = {record.key: record for record in records}
    record = by_key["M001_T2"]
    assert (record.subject, record.task) == ("M001", "T2")
    np.testing.assert_array_equal(record.frame_numbers, [7, 8, 9, 10])
    expected = np.where(labels_a == 9, UNKNOWN, labels_a)
    np.testing.assert_array_equal(record.labels, expected)
    assert record.labels.shape == (4, 12) and record.labels.dtype == np.int8
    assert (record.labels == UNKNOWN).any() and not (record.labels == 9).any()
    np.testing.assert_array_equal(by_key["F002_T1"].labels, np.where(labels_b == 9, UNKNOWN, labels_b))
    # The frame source points at the pattern's files, in CSV order.
    assert isinstance(record.frames, ImageFrames)
    assert [path.name for path in record.frames.paths] == ["0007.jpg", "0008.jpg", "0009.jpg", "0010.jpg"]
    assert all(path.parent == tmp_path / "Sequences" / "M001" / "T2" for path in record.frames.paths)
    images = list(record.frames)
    assert len(images) == 4 and images[0].shape == (32, 32, 3) and images[0].dtype == np.uint8
    assert abs(int(images[0].mean()) - 70) <= 2  # frame 7 was written flat at 70


def test_bp4d_columns_found_by_au_number_not_position(tmp_path):
    """BP4D: one column per AU number, so a shuffled header with extra AUs still yields the 12 AUs in order."""
    labels = random_labels(6, seed=4, values=(0, 1))
    header = tuple(reversed(HEADER_AUS))
    path = tmp_path / "F001_T1.csv"
    write_bp4d_csv(path, range(1, 7), labels, header_aus=header, extra_values=np.full(6, 9))
    numbers, read = read_bp4d_labels(path)
    np.testing.assert_array_equal(numbers, np.arange(1, 7))
    np.testing.assert_array_equal(read, labels)


def test_bp4d_brief_header_style_with_extra_column(tmp_path):
    """Header '0,1,2,4,...,24,25': AU25 is not a BP4D occurrence AU and is ignored."""
    path = tmp_path / "F001_T1.csv"
    path.write_text("0,1,2,4,6,7,10,12,14,15,17,23,24,25\n"
                    "3,1,0,0,0,0,0,0,0,0,0,0,1,1\n"
                    "4,9,1,0,0,0,0,0,0,0,0,0,0,0\n")
    numbers, labels = read_bp4d_labels(path)
    np.testing.assert_array_equal(numbers, [3, 4])
    np.testing.assert_array_equal(labels, [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                                           [UNKNOWN, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])


def test_bp4d_task_folder_without_label_csv_is_ignored(tmp_path):
    make_bp4d(tmp_path, {("F001", "T1"): ([1, 2], random_labels(2, seed=5))})
    for number in (1, 2):  # frames of an uncoded task
        write_image(tmp_path / DEFAULT_PATTERN.format(subject="F001", task="T9", frame=number), flat_image(0))
    records = load_sequences(bp4d_config(tmp_path))
    assert [record.key for record in records] == ["F001_T1"]


def test_bp4d_custom_frame_pattern(tmp_path):
    """The BP4D frame-file pattern is a param (copies differ in zero padding and nesting)."""
    pattern = "2D/{subject}-{task}/img_{frame:06d}.jpg"
    labels = random_labels(3, seed=6)
    make_bp4d(tmp_path, {("F003", "T4"): ([98, 99, 100], labels)}, pattern=pattern, label_dir="labels/occ")
    [record] = load_sequences(bp4d_config(tmp_path, frame_pattern=pattern, label_dir="labels/occ"))
    assert record.frames.paths[-1] == tmp_path / "2D" / "F003-T4" / "img_000100.jpg"
    np.testing.assert_array_equal(record.frame_numbers, [98, 99, 100])
    assert len(list(record.frames)) == 3
    # The default pattern does not find these frames.
    with pytest.raises(DataError, match="0098.jpg"):
        load_sequences(bp4d_config(tmp_path, label_dir="labels/occ"))


def test_bp4d_missing_au_column_names_csv_and_au(tmp_path):
    path = tmp_path / "F001_T1.csv"
    write_bp4d_csv(path, [1, 2], random_labels(2, seed=7), header_aus=tuple(au for au in HEADER_AUS if au != 14))
    with pytest.raises(DataError) as raised:
        read_bp4d_labels(path)
    message = str(raised.value)
    assert str(path) in message and "AU14" in message and "missing" in message


def test_bp4d_unknown_label_value_names_value_au_and_frame(tmp_path):
    labels = random_labels(4, seed=8, values=(0, 1))
    labels[2, BP4D_AUS.index(12)] = 5
    path = tmp_path / "F001_T1.csv"
    write_bp4d_csv(path, [10, 11, 12, 13], labels)
    with pytest.raises(DataError) as raised:
        read_bp4d_labels(path)
    message = str(raised.value)
    assert str(path) in message
    assert "value 5" in message and "AU12" in message and "frame 12" in message


def test_bp4d_label_file_without_rows_or_with_text(tmp_path):
    empty = tmp_path / "F001_T1.csv"
    empty.write_text("0,1,2,4,6,7,10,12,14,15,17,23,24\n")
    with pytest.raises(DataError, match="no data rows"):
        read_bp4d_labels(empty)
    text = tmp_path / "F001_T2.csv"
    text.write_text("0,1,2,4,6,7,10,12,14,15,17,23,24\n1,0,0,0,x,0,0,0,0,0,0,0,0\n")
    with pytest.raises(DataError, match="F001_T2.csv"):
        read_bp4d_labels(text)


def test_bp4d_frame_listed_in_csv_but_missing_on_disk(tmp_path):
    """A missing BP4D frame stops the adapter with a message naming it."""
    make_bp4d(tmp_path, {("F001", "T1"): ([1, 2, 3], random_labels(3, seed=9))})
    missing = tmp_path / "Sequences" / "F001" / "T1" / "0002.jpg"
    missing.unlink()
    with pytest.raises(DataError) as raised:
        load_sequences(bp4d_config(tmp_path))
    message = str(raised.value)
    assert str(missing) in message and "frame file is missing" in message and "F001_T1.csv" in message


def test_bp4d_missing_frame_folder(tmp_path):
    """A BP4D subject/task folder that is absent is named as such."""
    make_bp4d(tmp_path, {("F001", "T1"): ([1], random_labels(1, seed=10))})
    write_bp4d_csv(tmp_path / "AUCoding" / "AU_OCC" / "M002_T3.csv", [1, 2], random_labels(2, seed=11))
    with pytest.raises(DataError) as raised:
        load_sequences(bp4d_config(tmp_path))
    message = str(raised.value)
    assert str(tmp_path / "Sequences" / "M002" / "T3") in message and "frame folder is missing" in message


def test_bp4d_missing_label_dir_and_missing_root(tmp_path):
    (tmp_path / "Sequences").mkdir()
    with pytest.raises(DataError) as raised:
        load_sequences(bp4d_config(tmp_path))
    assert str(tmp_path / "AUCoding" / "AU_OCC") in str(raised.value) and "label folder" in str(raised.value)

    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as raised:
        load_sequences(bp4d_config(root))
    assert str(root) in str(raised.value) and "root" in str(raised.value)


def test_empty_label_dir_and_unknown_layout(tmp_path):
    (tmp_path / "AUCoding" / "AU_OCC").mkdir(parents=True)
    with pytest.raises(DataError, match="no labelled sequences"):
        load_sequences(bp4d_config(tmp_path))
    with pytest.raises(ConfigError, match="bp4d"):
        load_sequences(DatasetConfig(layout="ck+", root=str(tmp_path)))


def test_bp4d_corrupt_jpeg_fails_when_iterated_naming_the_file(tmp_path):
    make_bp4d(tmp_path, {("F001", "T1"): ([1, 2, 3], random_labels(3, seed=12))})
    corrupt = tmp_path / "Sequences" / "F001" / "T1" / "0002.jpg"
    corrupt.write_bytes(b"this is not a jpeg" * 10)
    [record] = load_sequences(bp4d_config(tmp_path))  # existence is all loading checks
    frames = iter(record.frames)
    assert next(frames).shape == (32, 32, 3)
    with pytest.raises(DataError) as raised:
        next(frames)
    assert str(corrupt) in str(raised.value) and "decoded" in str(raised.value)


# --------------------------------------------------------------------------------------------- DISFA


def write_disfa_labels(root: Path, subject: str, intensities: dict[int, list[int]], first_frame: int = 1) -> None:
    for au in DISFA_AUS:
        values = intensities[au]
        path = root / "ActionUnit_Labels" / subject / f"{subject}_au{au}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{first_frame + index},{value}\n" for index, value in enumerate(values)))


def write_disfa_video(root: Path, subject: str, count: int) -> Path:
    path = root / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi"
    write_video(path, [flat_image(30 * index) for index in range(count)], fps=10)
    return path


def make_disfa(root: Path, subject: str, count: int, seed: int, video_frames: int | None = None) -> dict:
    rng = np.random.default_rng(seed)
    intensities = {au: rng.integers(0, 6, size=count).tolist() for au in DISFA_AUS}
    write_disfa_labels(root, subject, intensities)
    write_disfa_video(root, subject, count if video_frames is None else video_frames)
    return intensities


def disfa_config(root: Path, **layout) -> DatasetConfig:
    return DatasetConfig(name="test", layout="disfa", root=str(root), disfa=DISFALayout(**layout))


def test_disfa_occurrence_is_intensity_at_least_two(tmp_path):
    """DISFA: occurrence = intensity ≥ 2, AUs in DISFA order (1, 2, 4, 6, 9, 12, 25, 26)."""
    intensities = make_disfa(tmp_path, "SN002", count=6, seed=0)
    intensities_other = make_disfa(tmp_path, "SN001", count=5, seed=1)
    records = load_sequences(disfa_config(tmp_path))
    assert [record.key for record in records] == ["SN001_video", "SN002_video"]
    record = records[1]
    table = np.array([intensities[au] for au in DISFA_AUS]).T
    np.testing.assert_array_equal(record.labels, (table >= 2).astype(np.int8))
    assert record.labels.shape == (6, 8) and record.labels.dtype == np.int8
    assert len(records[0].frames) == 5
    np.testing.assert_array_equal(records[0].labels, (np.array([intensities_other[au] for au in DISFA_AUS]).T >= 2))
    assert isinstance(record.frames, VideoFrames)
    images = list(record.frames)
    assert len(images) == 6 and images[0].shape == (32, 32, 3)
    assert [abs(int(image.mean()) - 30 * index) <= 4 for index, image in enumerate(images)] == [True] * 6


def test_disfa_hand_worked_thresholds(tmp_path):
    """Intensities 0..5 give occurrence [0,0,1,1,1,1] at threshold 2 and [0,0,0,1,1,1] at threshold 3."""
    write_disfa_labels(tmp_path, "SN001", {au: [0, 1, 2, 3, 4, 5] for au in DISFA_AUS})
    write_disfa_video(tmp_path, "SN001", 6)
    [default] = load_sequences(disfa_config(tmp_path))
    np.testing.assert_array_equal(default.labels[:, 0], [0, 0, 1, 1, 1, 1])
    assert (default.labels == default.labels[:, :1]).all()
    [strict] = load_sequences(disfa_config(tmp_path, intensity_threshold=3))
    np.testing.assert_array_equal(strict.labels[:, 0], [0, 0, 0, 1, 1, 1])


def test_disfa_frame_numbers_are_the_label_files_numbers(tmp_path):
    """SequenceRecord.frame_numbers: 'the numbers the label files use' — DISFA label files are 1-based."""
    make_disfa(tmp_path, "SN001", count=4, seed=2)
    [record] = load_sequences(disfa_config(tmp_path))
    np.testing.assert_array_equal(record.frame_numbers, [1, 2, 3, 4])


def test_disfa_label_file_not_starting_at_frame_one_is_rejected(tmp_path):
    """Frames must run 1, 2, … so that DISFA label k is video frame k−1."""
    make_disfa(tmp_path, "SN001", count=4, seed=2)
    label = tmp_path / "ActionUnit_Labels" / "SN001" / "SN001_au4.txt"
    label.write_text("".join(f"{frame},0\n" for frame in range(2, 6)))
    with pytest.raises(DataError, match=r"SN001_au4\.txt.*frame number 2 at line 1"):
        load_sequences(disfa_config(tmp_path))


def test_disfa_shorter_label_file_truncates_sequence_to_shortest(tmp_path, caplog):
    """A label file shorter than the others: the shortest length is used (and a warning names the subject)."""
    intensities = {au: [3, 3, 0, 0, 2, 1] for au in DISFA_AUS}
    intensities[9] = [3, 3, 0, 0]
    write_disfa_labels(tmp_path, "SN003", intensities)
    write_disfa_video(tmp_path, "SN003", 6)
    with caplog.at_level(logging.WARNING, logger="aubench.data.datasets"):
        [record] = load_sequences(disfa_config(tmp_path))
    assert len(record.frames) == 4 and record.labels.shape == (4, 8) and len(record.frame_numbers) == 4
    np.testing.assert_array_equal(record.labels[:, DISFA_AUS.index(9)], [1, 1, 0, 0])
    assert "SN003" in caplog.text and "4" in caplog.text
    assert len(list(record.frames)) == 4


def test_disfa_video_shorter_than_labels_fails_naming_video(tmp_path):
    make_disfa(tmp_path, "SN004", count=6, seed=3, video_frames=4)
    [record] = load_sequences(disfa_config(tmp_path))
    video = tmp_path / "Videos_LeftCamera" / "LeftVideoSN004_comp.avi"
    frames = iter(record.frames)
    for _ in range(4):
        next(frames)
    with pytest.raises(DataError) as raised:
        next(frames)
    assert str(video) in str(raised.value) and "frame 4" in str(raised.value)


def test_disfa_missing_video_fails_naming_it(tmp_path):
    make_disfa(tmp_path, "SN005", count=3, seed=4)
    video = tmp_path / "Videos_LeftCamera" / "LeftVideoSN005_comp.avi"
    video.unlink()
    with pytest.raises(DataError) as raised:
        for record in load_sequences(disfa_config(tmp_path)):
            list(record.frames)
    assert str(video) in str(raised.value) and "missing" in str(raised.value)


def test_disfa_label_problems(tmp_path):
    """Non-contiguous frames, out-of-range intensity, a missing AU file and a missing label folder."""
    gap = tmp_path / "gap.txt"
    gap.write_text("1,0\n2,0\n4,1\n")
    with pytest.raises(DataError) as raised:
        read_disfa_intensities(gap)
    assert str(gap) in str(raised.value) and "frame number 4 at line 3" in str(raised.value)

    high = tmp_path / "high.txt"
    high.write_text("1,0\n2,6\n")
    with pytest.raises(DataError, match="0–5"):
        read_disfa_intensities(high)

    three = tmp_path / "three.txt"
    three.write_text("1,0,0\n")
    with pytest.raises(DataError, match="2 columns"):
        read_disfa_intensities(three)

    np.testing.assert_array_equal(read_disfa_intensities(_write(tmp_path / "ok.txt", "1,0\n2,5\n3,2\n"))[:, 1], [0, 5, 2])

    with pytest.raises(DataError, match="ActionUnit_Labels"):
        load_sequences(disfa_config(tmp_path))

    make_disfa(tmp_path, "SN006", count=3, seed=5)
    au26 = tmp_path / "ActionUnit_Labels" / "SN006" / "SN006_au26.txt"
    au26.unlink()
    with pytest.raises(DataError) as raised:
        load_sequences(disfa_config(tmp_path))
    assert str(au26) in str(raised.value)


def test_disfa_non_contiguous_label_file_stops_loading(tmp_path):
    make_disfa(tmp_path, "SN007", count=4, seed=6)
    au4 = tmp_path / "ActionUnit_Labels" / "SN007" / "SN007_au4.txt"
    au4.write_text("1,0\n2,0\n3,3\n5,3\n")
    with pytest.raises(DataError) as raised:
        load_sequences(disfa_config(tmp_path))
    assert str(au4) in str(raised.value) and "contiguous" in str(raised.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_disfa_label_files_shorter_than_the_video_use_the_labelled_frames(tmp_path, caplog):
    """Issue #4: a DISFA label file shorter than its video works as documented: only labelled frames are read."""
    intensities = make_disfa(tmp_path, "SN008", count=5, seed=7, video_frames=9)
    with caplog.at_level(logging.INFO, logger="aubench.data.datasets"):
        [record] = load_sequences(disfa_config(tmp_path))
    assert len(record.frames) == 5 and record.labels.shape == (5, 8)
    np.testing.assert_array_equal(record.frame_numbers, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(record.labels, (np.array([intensities[au] for au in DISFA_AUS]).T >= 2))
    images = list(record.frames)
    assert len(images) == 5 and abs(int(images[4].mean()) - 120) <= 4  # video frame 4 ↔ label frame 5
    assert "LeftVideoSN008_comp.avi" in caplog.text and "9 video frames, 5 labelled" in caplog.text


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_disfa_video_that_cannot_be_decoded_fails_at_load_naming_it(tmp_path, damage):
    """Issue #4: an undecodable video fails (before any landmarking) with a message naming the file."""
    make_disfa(tmp_path, "SN009", count=4, seed=8)
    video = tmp_path / "Videos_LeftCamera" / "LeftVideoSN009_comp.avi"
    content = video.read_bytes()
    video.write_bytes(b"not a video at all" * 50 if damage == "garbage" else content[: len(content) // 2])
    with pytest.raises(DataError) as raised:
        load_sequences(disfa_config(tmp_path))
    assert str(video) in str(raised.value) and "cannot be opened" in str(raised.value)


def test_disfa_missing_video_fails_at_load(tmp_path):
    make_disfa(tmp_path, "SN010", count=3, seed=9)
    video = tmp_path / "Videos_LeftCamera" / "LeftVideoSN010_comp.avi"
    video.unlink()
    with pytest.raises(DataError) as raised:
        load_sequences(disfa_config(tmp_path))
    assert str(video) in str(raised.value) and "missing" in str(raised.value)


def test_frame_fingerprints_follow_content_not_times_or_folders(tmp_path):
    """The resume keys of the landmarks and align stages rest on these (issue #16): file names and content
    hashes, so a fresh clone (new modification times, another folder) gets the same keys."""
    make_bp4d(tmp_path / "a", {("F001", "T1"): ([1, 2], random_labels(2, seed=13))})
    [record] = load_sequences(bp4d_config(tmp_path / "a"))
    before = record.frames.fingerprint()
    assert [name for name, _ in before] == ["0001.jpg", "0002.jpg"] and before[0][1] != before[1][1]
    assert str(tmp_path) not in repr(before)
    path = record.frames.paths[1]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touched only: same content
    assert record.frames.fingerprint() == before
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copyfile)  # new folder, new times
    [copy] = load_sequences(bp4d_config(tmp_path / "b"))
    assert copy.frames.fingerprint() == before
    write_image(path, flat_image(77))  # an edited frame
    after = record.frames.fingerprint()
    assert after[0] == before[0] and after[1] != before[1]
    path.unlink()
    with pytest.raises(DataError, match=re.escape(f"{path}: frame source is missing")):
        record.frames.fingerprint()
    make_disfa(tmp_path / "disfa", "SN011", count=3, seed=10)
    [video] = load_sequences(disfa_config(tmp_path / "disfa"))
    name, content = video.frames.fingerprint()[0]
    assert name == "LeftVideoSN011_comp.avi" and len(content) == 64 and video.frames.fingerprint()[1] == 3


# -------------------------------------------------------------------------------- videos (unlabeled)


def write_face_video(path: Path, count: int) -> Path:
    """A tiny MJPG video of `count` flat frames (any decodable video is a sequence of this layout)."""
    write_video(path, [flat_image(20 * index) for index in range(count)], fps=10)
    return path


def videos_config(root: Path) -> DatasetConfig:
    return DatasetConfig(name="pool", layout="videos", root=str(root))


def test_videos_layout_reads_every_video_as_an_unlabeled_sequence(tmp_path):
    """VoxCeleb2-style `<identity>/<youtube id>/<n>.mp4` and flat `<identity>/<clip>.avi`: subject = the identity
    folder, task = the rest of the path with `-` for `/`; frames 1..T; labels (T, 0); no label files needed."""
    write_face_video(tmp_path / "id00012" / "abc_XY" / "00001.avi", 4)
    write_face_video(tmp_path / "id00012" / "abc_XY" / "00002.AVI", 3)  # suffixes are case-insensitive
    write_face_video(tmp_path / "id00003" / "clip01.avi", 2)
    (tmp_path / "id00003" / "notes.txt").write_text("not a video")
    write_face_video(tmp_path / "id00003" / "._clip01.avi", 2)  # a macOS resource-fork copy: hidden, skipped
    records = load_sequences(videos_config(tmp_path))
    assert [(record.subject, record.task) for record in records] == [
        ("id00003", "clip01"), ("id00012", "abc_XY-00001"), ("id00012", "abc_XY-00002")]
    assert [record.key for record in records] == ["id00003_clip01", "id00012_abc_XY-00001", "id00012_abc_XY-00002"]
    record = records[1]
    np.testing.assert_array_equal(record.frame_numbers, [1, 2, 3, 4])
    assert record.labels.shape == (4, 0) and record.labels.dtype == np.int8
    assert isinstance(record.frames, VideoFrames) and len(record.frames) == 4
    images = list(record.frames)
    assert len(images) == 4 and abs(int(images[3].mean()) - 60) <= 4
    assert aus_for_layout("videos") == ()


def test_videos_layout_errors_name_the_file_or_folder(tmp_path):
    """A video directly in the root, a root without videos and an undecodable video stop loading."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=re.escape(f"{empty}: no face videos found")):
        load_sequences(videos_config(empty))
    (empty / "id00001").mkdir()
    (empty / "id00001" / "readme.txt").write_text("no videos here")
    with pytest.raises(DataError, match=re.escape(f"{empty}: no face videos found")):
        load_sequences(videos_config(empty))

    loose = write_face_video(tmp_path / "loose" / "clip.mp4", 2)
    with pytest.raises(DataError, match=re.escape(f"{loose}: video directly in the dataset root") + ".*folder named"):
        load_sequences(videos_config(tmp_path / "loose"))

    corrupt = write_face_video(tmp_path / "corrupt" / "id00001" / "clip01.avi", 3)
    corrupt.write_bytes(b"not a video at all" * 50)
    with pytest.raises(DataError, match=re.escape(f"{corrupt}: video cannot be opened")):
        load_sequences(videos_config(tmp_path / "corrupt"))


def test_videos_layout_rejects_two_videos_with_one_key(tmp_path):
    """`clip.avi` and `clip.mp4` of one identity would share a key and overwrite each other's landmarks."""
    write_face_video(tmp_path / "id00001" / "clip.avi", 2)
    write_face_video(tmp_path / "id00001" / "clip.mkv", 2)
    with pytest.raises(DataError, match="same sequence key 'id00001_clip'"):
        load_sequences(videos_config(tmp_path))


def test_dataset_config_requires_the_named_section():
    """`--dataset unlabeld` (a typo) must fail, not read the default dataset."""
    params = {"dataset": {"root": "a"}, "unlabeled": {"layout": "videos", "root": "pool"}}
    assert dataset_config(params, "unlabeled") == DatasetConfig(layout="videos", root="pool")
    assert dataset_config(params).root == "a"
    with pytest.raises(ConfigError, match="unlabeld"):
        dataset_config(params, "unlabeld")
