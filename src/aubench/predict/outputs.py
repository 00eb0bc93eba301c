"""What `aubench predict` writes: the per-frame CSV (OpenFace-style AU columns), a timeline figure of each
AU's probability and an overlay video.

The CSV and the video are written as frames come, so memory stays flat however long the input is. Every CSV
row names the dataset the model was trained on (`model_dataset`): a model trained on SynthAU knows only
synthetic faces, and a CSV read on its own must say so.
"""
from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aubench.errors import DataError

_LANDMARKS = 68
# The columns a row keeps when no face was found (success 0): the detector's outputs are meaningless there.
_FAILED_ROW_COLUMNS = frozenset({"frame", "timestamp", "face_id", "success", "model_dataset"})


def au_column(au: int, kind: str) -> str:
    """OpenFace's name for an AU column: kind 'p' (probability) or 'c' (occurrence 0/1); AU01_p."""
    if kind not in ("p", "c"):
        raise ValueError(f"AU column kind must be 'p' or 'c', got {kind!r}")
    return f"AU{au:02d}_{kind}"


def columns(aus: Sequence[int], landmarks: bool) -> list[str]:
    """The CSV header: frame identity, detection, optional 68 landmarks, AU pairs, the model's dataset."""
    names = ["frame", "timestamp", "face_id", "success", "confidence", "box_x", "box_y", "box_w", "box_h"]
    if landmarks:
        names += [f"x_{i}" for i in range(_LANDMARKS)] + [f"y_{i}" for i in range(_LANDMARKS)]
    names += [au_column(au, kind) for au in aus for kind in ("p", "c")]
    return names + ["model_dataset"]


class _Closing:
    """`with writer:` closes the writer (its file) on leaving the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class CsvWriter(_Closing):
    """The per-frame table, one row per frame and face, written and flushed as rows come.

    Missing keys and NaN values give empty cells; so do all detection, landmark and AU cells of a row with
    success 0. A key that is not a column raises ValueError.
    """

    def __init__(self, path: Path, aus: Sequence[int], landmarks: bool):
        self.path = Path(path)
        self.columns = columns(aus, landmarks)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, self.columns, restval="")
        self._writer.writeheader()
        self._file.flush()

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            unknown = row.keys() - set(self.columns)
            if unknown:
                raise ValueError(f"{self.path}: rows hold keys that are not columns: {sorted(unknown)}")
            failed = row.get("success") == 0
            self._writer.writerow({key: _cell(value) for key, value in row.items()
                                   if not failed or key in _FAILED_ROW_COLUMNS})
        self._file.flush()   # a long video's CSV can be read (and followed) while predict runs

    def close(self) -> None:
        self._file.close()


def _cell(value: Any) -> Any:
    """A CSV cell: None and NaN empty, booleans and numpy integers as 0/1 and plain ints, floats to 6 decimals."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else round(float(value), 6)
    return value


def write_timeline(path: Path, timestamps: np.ndarray, probabilities: np.ndarray, aus: Sequence[int],
                   threshold: float, title: str, note: str | None) -> Path:
    """PNG: one stacked panel per AU of its probability over time (gaps where no face, NaN), the threshold
    as a dashed line; `note` (e.g. the SynthAU warning) printed above the panels."""
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.shape != (len(timestamps), len(aus)):
        raise ValueError(f"probabilities of shape {probabilities.shape} do not match "
                         f"{len(timestamps)} timestamps × {len(aus)} AUs")
    figure = Figure(figsize=(10.0, 1.2 + 0.7 * len(aus)), layout="constrained")
    panels = figure.subplots(len(aus), 1, sharex=True, squeeze=False)[:, 0]
    for panel, au, series in zip(panels, aus, probabilities.T):
        panel.plot(timestamps, series, linewidth=1.0)
        panel.axhline(threshold, linestyle="--", linewidth=0.8, color="gray")
        panel.set_ylim(-0.05, 1.05)
        panel.set_yticks([0, 1])
        panel.set_ylabel(f"AU{au:02d}", rotation=0, horizontalalignment="right", verticalalignment="center")
    panels[-1].set_xlabel("time (s)")
    figure.suptitle(title)
    if note:
        panels[0].set_title(textwrap.fill(note, 140), fontsize="small", color="darkred", loc="left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)
    return path


class OverlayWriter(_Closing):
    """Video with the face box, the 68 landmarks and the names of active AUs drawn on each frame (cv2), written
    as MJPG .avi (the codec every OpenCV build reads back) at the source's fps."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        self.path, self.size = Path(path), tuple(size)   # size: (width, height)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"MJPG"), fps, self.size)
        if not self._writer.isOpened():
            raise DataError(f"{self.path}: cannot open an MJPG video writer")

    def write(self, image: np.ndarray, faces: Sequence[dict[str, Any]]) -> None:
        """Draw `faces` (box (x, y, w, h), points (68, 2) or None, active list of AU names) on a copy of the RGB
        `image` and append it."""
        height, width = image.shape[:2]
        if (width, height) != self.size:   # OpenCV would drop the frame silently
            raise ValueError(f"{self.path}: frame of {width}x{height} in a video of {self.size[0]}x{self.size[1]}")
        canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        scale = max(1, round(min(width, height) / 240))   # strokes and text grow with the frame
        for face in faces:
            _draw_face(canvas, face, scale)
        self._writer.write(canvas)

    def close(self) -> None:
        self._writer.release()


def _draw_face(canvas: np.ndarray, face: dict[str, Any], scale: int) -> None:
    """Box in green, landmarks in cyan, active AU names below the box, four per line (BGR canvas)."""
    x, y, w, h = (int(round(value)) for value in face["box"])
    cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 255, 0), scale)
    if face["points"] is not None:
        for px, py in np.rint(face["points"]).astype(int):
            cv2.circle(canvas, (int(px), int(py)), scale, (255, 255, 0), -1)
    names = list(face["active"])
    font_scale = 0.4 * scale
    line = cv2.getTextSize("AU", cv2.FONT_HERSHEY_SIMPLEX, font_scale, scale)[0][1] + 4 * scale
    for number, start in enumerate(range(0, len(names), 4), start=1):
        origin = (x, y + h + number * line)
        text = " ".join(names[start:start + 4])
        # A dark outline under the yellow text keeps it legible on any background.
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 3 * scale, cv2.LINE_AA)
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 255, 255), scale, cv2.LINE_AA)
