"""Dataset adapters for the official BP4D and DISFA layouts (README, "Data") and for unlabeled face videos.

All give the same thing: a list of `SequenceRecord`s (subject, task, frame numbers, a frame source and
labels with unknown entries set to `UNKNOWN`). SynthAU is written in these layouts, so it is read by
exactly this code. The `videos` layout reads any folder of face videos (one folder per identity, e.g. a
VoxCeleb2 subset or SynthAU's pool) as sequences without labels, for self-supervised pretraining.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aubench.config import section
from aubench.data.aus import UNKNOWN, aus_for_layout
from aubench.data.video import ImageFrames, VideoFrames, video_frame_count
from aubench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Files the `videos` layout reads as face videos (suffixes compared case-insensitively).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


@dataclass(frozen=True)
class BP4DLayout:
    """Where a BP4D copy keeps its files (copies differ in padding and nesting, so these are params)."""

    frame_pattern: str = "Sequences/{subject}/{task}/{frame:04d}.jpg"
    label_dir: str = "AUCoding/AU_OCC"


@dataclass(frozen=True)
class DISFALayout:
    """Where a DISFA copy keeps its files; occurrence is intensity >= `intensity_threshold`."""

    video_pattern: str = "Videos_LeftCamera/LeftVideo{subject}_comp.avi"
    label_pattern: str = "ActionUnit_Labels/{subject}/{subject}_au{au}.txt"
    intensity_threshold: int = 2


@dataclass(frozen=True)
class DatasetConfig:
    """The `dataset` params section."""

    name: str = "synthau"
    layout: str = "bp4d"
    root: str = "data/raw/synthau"
    bp4d: BP4DLayout = BP4DLayout()
    disfa: DISFALayout = DISFALayout()


@dataclass(frozen=True)
class SequenceRecord:
    """One sequence: a BP4D subject/task, a DISFA subject (task 'video') or an unlabeled video (C = 0)."""

    subject: str
    task: str
    frame_numbers: np.ndarray  # (T,) int: the numbers the label files use
    frames: ImageFrames | VideoFrames
    labels: np.ndarray  # (T, C) int8 in {0, 1, UNKNOWN}

    @property
    def key(self) -> str:
        return f"{self.subject}_{self.task}"


def dataset_config(params: dict[str, Any], name: str = "dataset") -> DatasetConfig:
    """The params section `name` (`dataset`, or `unlabeled`: the pretraining videos) as a DatasetConfig.

    Unlike other sections a missing one is an error: a misspelt name must not silently read the defaults.
    """
    if name not in params:
        raise ConfigError(f"{name}: params have no dataset section {name!r} (e.g. dataset, unlabeled)")
    return section(DatasetConfig, params, name)


def load_sequences(config: DatasetConfig) -> list[SequenceRecord]:
    """All sequences under `config.root` (labelled, or every video for `videos`), sorted by subject and task."""
    root = Path(config.root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root folder is missing (dataset.root, or unlabeled.root for the "
                        "pretraining videos, in params.yaml)")
    if config.layout == "bp4d":
        records = _load_bp4d(root, config.bp4d)
    elif config.layout == "disfa":
        records = _load_disfa(root, config.disfa)
    elif config.layout == "videos":
        records = _load_videos(root)
    else:
        aus_for_layout(config.layout)  # raises the ConfigError naming the valid layouts
    if not records:
        raise DataError(f"{root}: no labelled sequences found for layout {config.layout!r}")
    return sorted(records, key=lambda record: record.key)


def _load_bp4d(root: Path, layout: BP4DLayout) -> list[SequenceRecord]:
    label_dir = root / layout.label_dir
    if not label_dir.is_dir():
        raise DataError(f"{label_dir}: BP4D label folder is missing")
    records = []
    for csv_path in sorted(label_dir.glob("*.csv")):
        subject, _, task = csv_path.stem.partition("_")
        if not task:
            raise DataError(f"{csv_path}: label file name must be <subject>_<task>.csv")
        frame_numbers, labels = read_bp4d_labels(csv_path)
        paths = tuple(root / layout.frame_pattern.format(subject=subject, task=task, frame=int(number))
                      for number in frame_numbers)
        _check_frames_exist(csv_path, paths)
        records.append(SequenceRecord(subject, task, frame_numbers, ImageFrames(paths), labels))
    return records


def read_bp4d_labels(csv_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frame numbers and (T, 12) labels from an AU_OCC CSV; 9 (not coded) becomes UNKNOWN."""
    aus = aus_for_layout("bp4d")
    with csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise DataError(f"{csv_path}: label file has no data rows")
    header = [cell.strip() for cell in rows[0]]
    columns = []
    for au in aus:
        if str(au) not in header[1:]:
            raise DataError(f"{csv_path}: label column for AU{au} is missing (header: {','.join(header)})")
        columns.append(header.index(str(au), 1))
    try:
        table = np.array([[int(float(cell)) for cell in row] for row in rows[1:] if row], dtype=np.int64)
    except ValueError as error:
        raise DataError(f"{csv_path}: non-numeric label cell ({error})") from None
    if table.shape[1] != len(header):
        raise DataError(f"{csv_path}: rows have {table.shape[1]} cells but the header has {len(header)}")
    labels = table[:, columns]
    bad = ~np.isin(labels, (0, 1, 9))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{csv_path}: unknown label value {labels[row, col]} for AU{aus[col]} at frame "
                        f"{table[row, 0]} (expected 0, 1 or 9)")
    labels = np.where(labels == 9, UNKNOWN, labels).astype(np.int8)
    return table[:, 0], labels


def _check_frames_exist(csv_path: Path, paths: tuple[Path, ...]) -> None:
    missing = [path for path in paths if not path.is_file()]
    if missing:
        folder = missing[0].parent
        what = "frame folder is missing" if not folder.is_dir() else "frame file is missing"
        raise DataError(f"{missing[0]}: {what} ({len(missing)} of {len(paths)} frames listed in {csv_path} "
                        "are absent; check dataset.bp4d.frame_pattern)")


def _load_disfa(root: Path, layout: DISFALayout) -> list[SequenceRecord]:
    aus = aus_for_layout("disfa")
    label_root = root / layout.label_pattern.split("{subject}")[0]
    if not label_root.is_dir():
        raise DataError(f"{label_root}: DISFA label folder is missing")
    records = []
    for subject in sorted(path.name for path in label_root.iterdir() if path.is_dir()):
        tables = [read_disfa_intensities(root / layout.label_pattern.format(subject=subject, au=au)) for au in aus]
        intensities = [table[:, 1] for table in tables]
        count = min(len(values) for values in intensities)
        if any(len(values) != count for values in intensities):
            log.warning("%s: AU label files differ in length; using the first %d frames", subject, count)
        stacked = np.stack([values[:count] for values in intensities], axis=1)
        labels = (stacked >= layout.intensity_threshold).astype(np.int8)
        video = VideoFrames(root / layout.video_pattern.format(subject=subject), count)
        _check_video(video)
        records.append(SequenceRecord(subject, "video", tables[0][:count, 0], video, labels))
    return records


def _check_video(video: VideoFrames) -> None:
    """Fail early (naming the file) on a missing or undecodable video; warn when it looks shorter than its labels.

    A video longer than its label files is fine: only the labelled frames (the first `count`) are read.
    The container's frame count can be approximate, so a shorter count only warns; reading the frames
    fails naming the frame when the video really runs out.
    """
    reported = video_frame_count(video.path)  # raises DataError when the file is missing or cannot be opened
    if 0 < reported < video.count:
        log.warning("%s: the video reports %d frames but its label files cover %d; reading will fail at the "
                    "first missing frame", video.path, reported, video.count)
    elif reported > video.count:
        log.info("%s: %d video frames, %d labelled; the unlabelled tail is not used", video.path, reported,
                 video.count)


def _load_videos(root: Path) -> list[SequenceRecord]:
    """One unlabeled sequence per video file under `root`; hidden files and folders (macOS `._*` copies,
    unfinished `.partial` folders) are not videos of the dataset."""
    paths = sorted(path for path in root.rglob("*") if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file()
                   and not any(part.startswith(".") for part in path.relative_to(root).parts))
    if not paths:
        raise DataError(f"{root}: no face videos found (files ending in {', '.join(VIDEO_SUFFIXES)} in one folder "
                        "per identity); check the root in params.yaml")
    records, sources = [], {}
    for path in paths:
        record = _video_record(root, path)
        if record.key in sources:
            raise DataError(f"{path}: gives the same sequence key {record.key!r} as {sources[record.key]}; "
                            "rename one of them")
        sources[record.key] = path
        records.append(record)
    return records


def _video_record(root: Path, path: Path) -> SequenceRecord:
    """`<root>/<subject>/<folders…>/<name>.<suffix>` (VoxCeleb2: `id00012/<youtube id>/00001.mp4`): subject is
    the identity folder, task the rest of the path with `-` for `/` (keys name files, so no separators)."""
    relative = path.relative_to(root).with_suffix("")
    if len(relative.parts) < 2:
        raise DataError(f"{path}: video directly in the dataset root; put each identity's videos in a folder "
                        "named after it")
    count = video_frame_count(path)  # raises DataError naming the file when it is missing or cannot be opened
    if count < 1:
        raise DataError(f"{path}: video reports no frames (corrupt, or a container without a frame count)")
    subject, task = relative.parts[0], "-".join(relative.parts[1:])
    return SequenceRecord(subject, task, np.arange(1, count + 1), VideoFrames(path, count),
                          np.zeros((count, 0), dtype=np.int8))


def read_disfa_intensities(path: Path) -> np.ndarray:
    """(T, 2) `frame, intensity` rows of a DISFA label file: frames 1, 2, … (frame k is video frame k−1)."""
    if not path.is_file():
        raise DataError(f"{path}: DISFA label file is missing")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise DataError(f"{path}: cannot parse 'frame,intensity' lines ({error})") from None
    if table.shape[1] != 2:
        raise DataError(f"{path}: expected 2 columns 'frame,intensity', found {table.shape[1]}")
    expected = np.arange(1, len(table) + 1)
    if not np.array_equal(table[:, 0], expected):
        line = int(np.flatnonzero(table[:, 0] != expected)[0])
        raise DataError(f"{path}: frame number {table[line, 0]} at line {line + 1}, expected {line + 1} "
                        "(frames are not contiguous: they must run 1, 2, … to match the video)")
    if ((table[:, 1] < 0) | (table[:, 1] > 5)).any():
        raise DataError(f"{path}: intensity outside 0–5")
    return table
