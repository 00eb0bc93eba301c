"""Predict's inputs: frame counts from decoding, container timestamps, rotation metadata, natural order of
image folders, and a DataError naming the path for every input that cannot be read."""
import logging
import re
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from aubench.errors import DataError
from aubench.predict import sources
from aubench.predict.sources import ImageSequence, VideoSource, expand_inputs, open_source

FRAMES, FPS, SIZE = 40, 25.0, (64, 48)


def write_clip(path: Path, fourcc: str = "MJPG", frames: int = FRAMES) -> Path:
    """A clip whose frame n is the gray level 6 n (read back within codec error)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for index in range(frames):
        writer.write(np.full((SIZE[1], SIZE[0], 3), 6 * index, np.uint8))
    writer.release()
    return path


def write_png(path: Path, level: int) -> Path:
    cv2.imwrite(str(path), np.full((8, 8, 3), level, np.uint8))
    return path


def cut_avi(path: Path, keep: int) -> Path:
    """Truncate an MJPG AVI just before its frame `keep` (its index at the end is lost too)."""
    data = path.read_bytes()
    chunks = [match.start() for match in re.finditer(b"00dc", data)]   # [0] is the stream header
    path.write_bytes(data[:chunks[keep + 1]])
    return path


def all_frames(path: Path) -> list[sources.Frame]:
    return list(open_source(path).frames())


def names_path(path: Path):
    return pytest.raises(DataError, match=f"^{re.escape(str(path))}: ")


@pytest.mark.parametrize("name, fourcc", [("clip.mp4", "mp4v"), ("clip.avi", "MJPG")])
def test_video_frames_count_timestamps_and_content(tmp_path, name, fourcc):
    source = open_source(write_clip(tmp_path / name, fourcc))
    assert isinstance(source, VideoSource) and source.fps_hint == FPS
    frames = all_frames(source.path)
    assert [frame.index for frame in frames] == list(range(FRAMES))
    times = np.array([frame.timestamp for frame in frames])
    np.testing.assert_allclose(times, np.arange(FRAMES) / FPS, atol=1e-3)   # frame n's own time, not n + 1's
    assert frames[10].image.shape == (SIZE[1], SIZE[0], 3) and frames[10].image.dtype == np.uint8
    assert abs(int(frames[10].image.mean()) - 60) <= 4


def test_timestamps_come_from_the_container(tmp_path):
    """A variable-rate MP4 (frames 20-39 at twice the rate of 0-19): the times are the container's."""
    path = write_clip(tmp_path / "vfr.mp4", "mp4v")
    data = bytearray(path.read_bytes())
    at = data.find(b"stts") - 4
    (delta,) = struct.unpack(">I", data[at + 20:at + 24])   # one entry: FRAMES samples of `delta` ticks
    data[at:at + 24] = struct.pack(">I4s6I", 32, b"stts", 0, 2, 20, delta, 20, delta // 2)
    for box in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):   # parents grow by the 8 bytes added
        start = data.find(box) - 4
        data[start:start + 4] = struct.pack(">I", struct.unpack(">I", data[start:start + 4])[0] + 8)
    path.write_bytes(bytes(data))
    times = np.array([frame.timestamp for frame in all_frames(path)])
    expected = np.r_[np.arange(20) / FPS, 20 / FPS + np.arange(20) / (2 * FPS)]
    np.testing.assert_allclose(times, expected, atol=1e-3)


def test_index_timestamps_when_the_container_has_none(tmp_path, monkeypatch):
    opened = cv2.VideoCapture

    class NoTimes:   # a proxy: subclassing cv2.VideoCapture crashes the interpreter at exit
        def __init__(self, path):
            self.capture = opened(path)

        def get(self, prop):
            return 0.0 if prop == cv2.CAP_PROP_POS_MSEC else self.capture.get(prop)

        def __getattr__(self, name):
            return getattr(self.capture, name)

    path = write_clip(tmp_path / "clip.avi", frames=5)
    monkeypatch.setattr(sources.cv2, "VideoCapture", NoTimes)
    assert [frame.timestamp for frame in all_frames(path)] == [index / FPS for index in range(5)]


def test_rotation_metadata_is_applied(tmp_path):
    path = tmp_path / "phone.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for _ in range(3):
        image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        image[:8, :16] = 255   # a mark in the top-left corner
        writer.write(image)
    writer.release()
    data = bytearray(path.read_bytes())
    matrix = data.find(b"tkhd") + 44   # a version-0 tkhd's display matrix; this one rotates 90° clockwise
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    image = all_frames(path)[0].image
    assert image.shape == (SIZE[0], SIZE[1], 3)   # portrait
    assert image[:16, -8:].mean() > 200 and image[:16, :8].mean() < 50   # the mark moved to the top right


def test_undecodable_files_name_the_path(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    with names_path(text):
        open_source(text)
    mp4 = write_clip(tmp_path / "half.mp4", "mp4v")
    mp4.write_bytes(mp4.read_bytes()[:mp4.stat().st_size // 2])   # OpenCV's MP4 index is at the end: lost
    with names_path(mp4):
        open_source(mp4)
    headers_only = cut_avi(write_clip(tmp_path / "empty.avi"), 0)   # opens, declares 40, decodes none
    with names_path(headers_only):
        all_frames(headers_only)


def test_truncated_video_decodes_its_prefix_then_fails(tmp_path):
    path = write_clip(tmp_path / "half.avi")
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    frames = open_source(path).frames()
    decoded = 0
    with names_path(path):
        for _ in frames:
            decoded += 1
    assert 0 < decoded < FRAMES // 2 + 1


def test_small_shortfall_against_the_header_only_warns(tmp_path, caplog):
    path = cut_avi(write_clip(tmp_path / "clip.avi"), FRAMES - 4)
    with caplog.at_level(logging.WARNING, logger="aubench.predict.sources"):
        frames = all_frames(path)
    assert len(frames) == FRAMES - 4
    assert f"decoded {FRAMES - 4} frames, the header declares {FRAMES}" in caplog.text
    cut = cut_avi(write_clip(tmp_path / "cut.avi"), FRAMES - 10)   # 10 short: more than max(5, 10 %)
    with names_path(cut):
        all_frames(cut)


def test_image_folder_is_one_sequence_in_natural_order(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for number, level in [(10, 30), (2, 20), (1, 10)]:
        write_png(folder / f"frame{number}.png", level)
    (folder / "notes.txt").write_text("ignored")
    assert expand_inputs([folder]) == [folder]
    source = open_source(folder, fps=10.0)
    assert isinstance(source, ImageSequence) and source.fps_hint is None
    frames = list(source.frames())
    assert [int(frame.image[0, 0, 0]) for frame in frames] == [10, 20, 30]
    assert [frame.timestamp for frame in frames] == [0.0, 0.1, 0.2]


def test_single_image_is_one_frame_and_a_broken_one_names_its_file(tmp_path):
    [frame] = list(open_source(write_png(tmp_path / "face.jpg", 50)).frames())
    assert frame.index == 0 and frame.timestamp == 0.0 and frame.image.shape == (8, 8, 3)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with names_path(broken):
        list(open_source(broken).frames())


def test_inputs_expand_folders_of_videos_and_keep_files(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("clip10.avi", "clip2.mp4"):
        (videos / name).write_bytes(b"")
    image = write_png(tmp_path / "face.png", 0)
    assert expand_inputs([image, videos]) == [image, videos / "clip2.mp4", videos / "clip10.avi"]


def test_unusable_inputs_name_the_path(tmp_path):
    empty, missing, unknown = tmp_path / "empty", tmp_path / "missing.mp4", tmp_path / "notes.txt"
    empty.mkdir()
    unknown.write_text("text")
    for path in (empty, missing, unknown):
        with names_path(path):
            expand_inputs([path])
    for path in (empty, missing, unknown):
        with names_path(path):
            open_source(path)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write_png(mixed / "face.png", 0)
    (mixed / "clip.mp4").write_bytes(b"")
    with names_path(mixed):
        expand_inputs([mixed])
