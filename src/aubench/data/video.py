"""Frame sources: image sequences (BP4D) and video files (DISFA), decoded with OpenCV as RGB uint8."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from aubench.errors import DataError


def read_image(path: Path) -> np.ndarray:
    """Read one image file as an RGB uint8 array, or fail naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: frame file is missing")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: frame file cannot be decoded (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: Path, image: np.ndarray, jpeg_quality: int = 90) -> None:
    """Write an RGB uint8 image (JPEG or PNG by suffix), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok = cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), options)
    if not ok:
        raise DataError(f"{path}: could not write image")


@dataclass(frozen=True)
class ImageFrames:
    """A sequence stored as one image file per frame."""

    paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            yield read_image(path)

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def fingerprint(self) -> list[tuple[str, str]]:
        """(file name, content hash) of every frame file, in frame order: changes exactly when a frame's
        content, name or order changes (see `_file_fingerprint`)."""
        return [_file_fingerprint(path) for path in self.paths]


@dataclass(frozen=True)
class VideoFrames:
    """A sequence stored as one video file; `count` frames are expected (from the label files)."""

    path: Path
    count: int

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        capture = open_video(self.path)
        try:
            for index in range(self.count):
                ok, frame = capture.read()
                if not ok:
                    raise DataError(f"{self.path}: video ends or cannot be decoded at frame {index} "
                                    f"(expected {self.count} frames)")
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def describe(self, index: int) -> str:
        return f"{self.path} frame {index}"

    def fingerprint(self) -> list:
        """(file name, content hash) of the video file and the number of frames read from it."""
        return [_file_fingerprint(self.path), self.count]


def _file_fingerprint(path: Path) -> tuple[str, str]:
    """A frame source's identity in resume keys: its file name (no folder) and the SHA-256 of its bytes.

    Content, never modification times or absolute paths: the keys are stored in the stages' outputs, so a
    fresh clone (new times, another folder) must compute the same keys to write byte-identical outputs,
    which DVC caches and remotes can then share. Hashing reads every frame once per run (DVC hashes the
    dataset too).
    """
    try:
        with path.open("rb") as handle:
            content = hashlib.file_digest(handle, "sha256").hexdigest()  # streamed in chunks
    except FileNotFoundError:
        raise DataError(f"{path}: frame source is missing") from None
    return path.name, content


def open_video(path: Path) -> cv2.VideoCapture:
    """Open a video for reading, or fail naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: video file is missing")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"{path}: video cannot be opened (corrupt or unsupported codec)")
    return capture


def video_frame_count(path: Path) -> int:
    """Number of frames the container reports."""
    capture = open_video(path)
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Write RGB frames to an MJPG AVI (the codec every OpenCV build can read back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise DataError(f"{path}: cannot open a video writer")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
