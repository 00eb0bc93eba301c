"""What `aubench predict` reads: video files, single images and folders of images, as streams of RGB frames.

Real recordings break the assumptions the dataset readers can make, so a `VideoSource` counts frames by
decoding (headers are estimates), takes each frame's timestamp from the container (phones record at a
variable rate), lets OpenCV apply the rotation that phone videos store as metadata, and tells a truncated
file apart from a header that merely over-counts.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from aubench.data.video import read_image
from aubench.errors import DataError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# A decoded stream may fall short of the header's frame count by this much without being called truncated
# (a phone clip may declare 98 frames and decode 95): the larger of 5 frames and 10 % of the declared count.
SHORTFALL_FRAMES = 5
SHORTFALL_FRACTION = 0.10
_UNDECODABLE = "cannot be decoded as a video (corrupt, truncated or not a video)"


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    index: int          # 0-based decoded frame number
    timestamp: float    # seconds
    image: np.ndarray   # RGB uint8 (H, W, 3), rotation metadata already applied


class Source(Protocol):
    """A video, an image or an image sequence, read frame by frame."""

    @property
    def path(self) -> Path: ...

    @property
    def fps_hint(self) -> float | None:
        """The container's nominal frame rate (for writing an overlay video); None where there is none."""

    @property
    def length_hint(self) -> int | None:
        """How many frames to expect, for progress bars only (a video's header may be wrong); None if unknown."""

    def frames(self) -> Iterator[Frame]:
        """The frames in order, decoded one at a time (never the whole video in memory)."""


@dataclass(frozen=True)
class ImageSequence:
    """Image files read as consecutive frames at `fps` (timestamps index / fps); one file for a single image."""

    path: Path
    files: tuple[Path, ...]
    fps: float

    @property
    def fps_hint(self) -> None:
        return None   # images carry no rate; `fps` is only the caller's assumption

    @property
    def length_hint(self) -> int:
        return len(self.files)

    def frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            yield Frame(index, index / self.fps, read_image(file))


@dataclass(frozen=True)
class VideoSource:
    """A video file decoded with OpenCV.

    The frame count is what decodes, read until `read()` fails; the header's count (`declared`) only serves
    to recognise truncation: after yielding the frames it did decode, `frames` raises a DataError when
    decoding stopped short of the declared length by more than max(5 frames, 10 %), both in frames and in
    time (where the last decoded frame ends, against declared / nominal fps: a variable-rate clip whose
    header estimates its count from duration × nominal rate decodes fewer frames but reaches its end).
    A smaller shortfall is only logged as a warning. A truncated file that OpenCV cannot even open (an MP4
    whose index sits at its end) fails in `open_source`.
    """

    path: Path
    fps_hint: float | None   # the container's nominal rate, None when it reports none
    declared: int            # frame count in the header; 0 when unknown
    fps: float               # rate for index timestamps when the container has none

    @property
    def length_hint(self) -> int | None:
        return self.declared or None

    def frames(self) -> Iterator[Frame]:
        capture = _capture(self.path)
        rate = self.fps_hint or self.fps
        index, end = 0, 0.0
        container_times = True
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                # Measured with OpenCV 5.0 (FFmpeg backend): right after read() returns frame n,
                # POS_MSEC is that frame's own presentation time (0, 40, 80 ms … at 25 fps, the real
                # times of a variable-rate MP4), while POS_FRAMES is already n + 1.
                msec = capture.get(cv2.CAP_PROP_POS_MSEC)
                if index == 1 and msec <= 0:
                    container_times = False   # still 0 after the first frame: the container has no times
                timestamp = msec / 1000 if container_times else index / rate
                yield Frame(index, timestamp, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                index, end = index + 1, timestamp + 1 / rate
        finally:
            capture.release()
        self._check_complete(index, end)

    def _check_complete(self, decoded: int, end: float) -> None:
        """Fail for a file that decodes nothing or stops well before its declared end; warn for a small gap."""
        if decoded == 0:
            raise DataError(f"{self.path}: {_UNDECODABLE}")
        shortfall = self.declared - decoded
        if shortfall <= 0:
            return
        tolerance = max(SHORTFALL_FRAMES, SHORTFALL_FRACTION * self.declared)
        declared_end = (self.declared - tolerance) / self.fps_hint if self.fps_hint else float("inf")
        if shortfall > tolerance and end < declared_end:
            raise DataError(f"{self.path}: {_UNDECODABLE}: decoding stopped after {decoded} frames ({end:.2f} s) "
                            f"of the {self.declared} its header declares")
        log.warning("%s: decoded %d frames, the header declares %d", self.path, decoded, self.declared)


def expand_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Each input as given: a video file, an image file, or a folder.

    A folder holding images is ONE image sequence (its images in natural order of file names, like
    OpenFace's -fdir) and stays as it is; a folder holding videos expands to its videos (natural order).
    A folder holding neither, or both, and a missing path or unknown file type raise a DataError.
    """
    expanded: list[Path] = []
    for path in map(Path, inputs):
        if _kind(path) != "folder":
            expanded.append(path)
            continue
        images, videos = _listing(path, IMAGE_SUFFIXES), _listing(path, VIDEO_SUFFIXES)
        if images and videos:
            raise DataError(f"{path}: folder holds both images and videos; pass the videos, or a folder of "
                            "images only (it is read as one image sequence)")
        if not images and not videos:
            raise DataError(f"{path}: folder holds no images or videos")
        expanded += [path] if images else videos
    return expanded


def open_source(path: Path, fps: float = 30.0) -> Source:
    """The source for one input of `expand_inputs`.

    A VideoSource for a video file (by suffix), an ImageSequence for a folder of images or, of one frame,
    for a single image file. Image sequences get timestamps index / fps, and so do videos whose container
    has none (at the container's rate where it reports one). A missing path, an unknown suffix, a folder
    without images or a video OpenCV cannot open raise a DataError naming the path.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    kind = _kind(path)
    if kind == "image":
        return ImageSequence(path, (path,), fps)
    if kind == "folder":
        files = _listing(path, IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: folder holds no images (a folder is read as one image sequence)")
        return ImageSequence(path, tuple(files), fps)
    capture = _capture(path)
    try:
        nominal = capture.get(cv2.CAP_PROP_FPS)
        declared = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        capture.release()
    fps_hint = nominal if np.isfinite(nominal) and nominal > 0 else None
    return VideoSource(path, fps_hint, max(0, int(declared)) if np.isfinite(declared) else 0, fps)


def _kind(path: Path) -> str:
    """'video', 'image' or 'folder', or a DataError for a missing path or an unknown suffix."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise DataError(f"{path}: unknown file type '{suffix}' (expected a video: {' '.join(sorted(VIDEO_SUFFIXES))}; "
                    f"an image: {' '.join(sorted(IMAGE_SUFFIXES))}; or a folder of images)")


def _listing(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    """The folder's files with these suffixes, in natural order; hidden files (e.g. macOS `._x.jpg`
    companions, which are not images) are skipped."""
    files = [path for path in folder.iterdir()
             if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith(".")]
    return sorted(files, key=_natural_key)


def _natural_key(path: Path) -> tuple[list[str | int], str]:
    """Sort key with digit runs compared as numbers: frame2 before frame10."""
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(part) if index % 2 else part for index, part in enumerate(parts)], path.name


def _capture(path: Path) -> cv2.VideoCapture:
    """An opened capture with rotation metadata applied, or a DataError."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"{path}: {_UNDECODABLE}")
    # Phone videos store their rotation as metadata; OpenCV 5 applies it by default, set it anyway.
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture
