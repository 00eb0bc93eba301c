"""What SynthAU looks like and what its labels say: a contact sheet and label statistics (README, "SynthAU").

`contact_sheet` renders every identity of a config at rest and at the apex (intensity 5) of each of the 15
AUs through the generator's own `make_identity` and `render_frame`, with a still head and no lighting drift,
blur or noise, so each column shows one rig and its appearance cues. `label_statistics` summarises the
occurrence labels exactly as written (9 = not coded): base rates, AU co-occurrence and episode lengths;
`cooccurrence_figure` draws its co-occurrence matrix. Figures use matplotlib's Agg canvas (no pyplot state).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aubench.data.aus import ALL_AUS
from aubench.data.synthau.generator import (
    MIN_DLIB_IOD,
    SequenceLabels,
    SynthConfig,
    make_identity,
    sequence_plan,
)
from aubench.data.synthau.labels import NOT_CODED
from aubench.data.synthau.render import Nuisance, PoseTrack, render_frame
from aubench.data.synthau.rig import MAX_INTENSITY, RIG
from aubench.errors import DataError
from aubench.seeding import rng

log = logging.getLogger(__name__)

#: Contact-sheet layout in pixels: square cells, and margins for the title, column and row labels.
CELL = 112
SHEET_TOP, SHEET_LEFT, SHEET_RIGHT, SHEET_BOTTOM = 56, 52, 4, 4
_DPI = 100
#: Face crop of a cell around the neutral landmarks, in IOD: above the brows (forehead wrinkles), below the
#: chin (a full AU26 jaw drop) and beside the widest landmark.
_CROP_ABOVE, _CROP_BELOW, _CROP_SIDE = 0.55, 0.45, 0.2
_THUMBNAIL_OVERSAMPLE = 1.15  # the face crop is rendered a little larger than a cell, then shrunk

DEFINITIONS = {
    "base_rates": "frames with the AU present / frames where the AU is coded (9 = not coded is left out)",
    "cooccurrence": "conditional[i][j] = P(AU j present | AU i present) over frames where AU i is present and "
                    "AU j is coded (null when AU i is never present); joint_counts[i][j] = frames with both "
                    "present (the diagonal is each AU's positives)",
    "episodes": "a maximal run of present frames within one sequence; not-coded frames between two present "
                "frames count as part of it; 'censored' runs touch a sequence end or a not-coded frame at "
                "their edge, so their true length may be longer (they are included in the length statistics)",
}


# --- contact sheet --------------------------------------------------------------------------------------

def contact_sheet(config: SynthConfig, path: Path, cell: int = CELL) -> np.ndarray:
    """Write a PNG grid: one row per identity, columns neutral + each AU at apex; returns the image grid.

    The returned grid is (subjects x cell, 16 x cell, 3) RGB uint8 without labels; the PNG adds a title,
    AU numbers and names above the columns and subject IDs beside the rows, and is exactly
    (SHEET_LEFT + 16 x cell + SHEET_RIGHT) x (SHEET_TOP + subjects x cell + SHEET_BOTTOM) pixels.
    Faces are rendered at about the cell's resolution (`_thumbnail_config`), which keeps this a few seconds.
    """
    subjects = dict.fromkeys((subject, index) for index, subject, _, _ in sequence_plan(config))
    config = _thumbnail_config(config, cell)
    still = Nuisance(head_motion=0.0, lighting=0.0, noise=0.0, blur=0.0, au_strength=config.au_strength)
    track = PoseTrack(yaw=np.zeros(1), pitch=np.zeros(1), roll=np.zeros(1), scale=np.ones(1),
                      shift=np.zeros((1, 2)), brightness=np.zeros(1), gradient=np.zeros((1, 2)))
    unused_noise = rng(config.seed, "contact-sheet")  # render_frame's noise stream (noise is off)
    rows = []
    for subject, index in subjects:
        identity = make_identity(config, index, subject)
        row, crop = [], None
        for column in range(len(ALL_AUS) + 1):
            intensity = np.zeros(len(ALL_AUS), np.float32)
            if column:
                intensity[column - 1] = MAX_INTENSITY
            image, landmarks = render_frame(identity, intensity, track, 0, config.frame_size, still, unused_noise)
            if crop is None:  # the neutral face fixes the crop, so AU motion shows against the frame
                crop = _face_crop(landmarks, identity.iod, config.frame_size)
            rows_slice, cols_slice = crop
            row.append(cv2.resize(image[rows_slice, cols_slice], (cell, cell), interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(row))
    grid = np.vstack(rows)
    _write_sheet(grid, [subject for subject, _ in subjects], cell, Path(path))
    return grid


def _thumbnail_config(config: SynthConfig, cell: int) -> SynthConfig:
    """`config` scaled down (never up) so a face crop is about one cell: same identities, fewer pixels.

    Building an identity (its mesh and exact reshaping warp) costs time in proportion to the canvas area, and
    the crop is shrunk to `cell` anyway. Identity traits, cues and the rig are in IOD units, so a smaller
    frame with the same frame-to-IOD ratio shows the same faces; the IOD stays >= the generator's floor.
    """
    crop_iod = _CROP_ABOVE + _CROP_BELOW + 2.35  # the face crop's height in IOD (brows to chin ~2.35 IOD)
    target_iod = max(_THUMBNAIL_OVERSAMPLE * cell / crop_iod, MIN_DLIB_IOD)
    if target_iod >= config.iod:
        return config
    frame_size = max(math.ceil(config.frame_size * target_iod / config.iod), 64)  # up: the IOD stays >= the floor
    return replace(config, frame_size=frame_size, iod=config.iod * frame_size / config.frame_size)


def _face_crop(landmarks: np.ndarray, iod: float, size: int) -> tuple[slice, slice]:
    """A square crop of the frame around the face (forehead to below a dropped jaw), kept inside the frame."""
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    top, bottom = low[1] - _CROP_ABOVE * iod, high[1] + _CROP_BELOW * iod
    side = int(round(min(max(bottom - top, high[0] - low[0] + 2 * _CROP_SIDE * iod), size)))
    x0 = int(round((low[0] + high[0]) / 2 - side / 2))
    y0 = int(round((top + bottom) / 2 - side / 2))
    x0, y0 = min(max(x0, 0), size - side), min(max(y0, 0), size - side)
    return slice(y0, y0 + side), slice(x0, x0 + side)


def _write_sheet(grid: np.ndarray, subjects: list[str], cell: int, path: Path) -> None:
    """The grid at 1:1 pixels inside fixed margins, labelled with AUs (columns) and subjects (rows)."""
    height, width = grid.shape[:2]
    full_width, full_height = SHEET_LEFT + width + SHEET_RIGHT, SHEET_TOP + height + SHEET_BOTTOM
    figure = Figure(figsize=(full_width / _DPI, full_height / _DPI), dpi=_DPI)
    axes = figure.add_axes((SHEET_LEFT / full_width, SHEET_BOTTOM / full_height, width / full_width,
                            height / full_height))
    axes.imshow(grid, interpolation="nearest", aspect="auto")
    names = ["neutral\n"] + [f"AU{au}\n{RIG[au].name}" for au in ALL_AUS]
    axes.set_xticks(cell * np.arange(len(names)) + cell / 2 - 0.5, names, fontsize=6.5)
    axes.set_yticks(cell * np.arange(len(subjects)) + cell / 2 - 0.5, subjects, fontsize=8)
    axes.xaxis.tick_top()
    axes.tick_params(length=0, pad=2)
    for edge in range(1, len(names)):
        axes.axvline(edge * cell - 0.5, color="white", linewidth=0.6)
    for edge in range(1, len(subjects)):
        axes.axhline(edge * cell - 0.5, color="white", linewidth=0.6)
    figure.suptitle("SynthAU identities: neutral and each AU at apex (intensity 5); still head, no noise",
                    x=SHEET_LEFT / full_width, y=1.0 - 3 / full_height, ha="left", va="top", fontsize=8)
    _save(figure, path, dpi=_DPI)


# --- label statistics -----------------------------------------------------------------------------------

def label_statistics(labels: Sequence[SequenceLabels], fps: float,
                     aus: Sequence[int] = ALL_AUS) -> dict[str, Any]:
    """Base rates, co-occurrence and episode lengths of occurrence labels (0/1, 9 = not coded), JSON-ready.

    `labels[k].coded` is (T, len(aus)) with columns in `aus` order (ALL_AUS for SynthAU). Keys are 'AU1', …;
    see DEFINITIONS (also written into the result) for what each number counts.
    """
    names = [f"AU{au}" for au in aus]
    for item in labels:
        if item.coded.ndim != 2 or item.coded.shape[1] != len(aus):
            raise DataError(f"labels of {item.subject}/{item.task}: shape {item.coded.shape}, expected "
                            f"(frames, {len(aus)}) for AUs {names}")
        if not np.isin(item.coded, (0, 1, NOT_CODED)).all():
            raise DataError(f"labels of {item.subject}/{item.task}: values other than 0, 1 and {NOT_CODED}")
    stacked = np.concatenate([item.coded for item in labels]) if labels else np.zeros((0, len(aus)), np.int8)
    present = (stacked == 1).astype(np.int64)
    known = (stacked != NOT_CODED).astype(np.int64)
    positives, coded = present.sum(axis=0), known.sum(axis=0)
    joint = present.T @ present  # [i, j]: frames with AU i and AU j present
    given = present.T @ known  # [i, j]: frames with AU i present and AU j coded
    episodes = [[run for item in labels for run in _episodes(item.coded[:, column])] for column in range(len(aus))]
    return {
        "fps": fps, "sequences": len(labels), "frames": int(stacked.shape[0]), "aus": names,
        "definitions": DEFINITIONS,
        "base_rates": {name: _ratio(positives[i], coded[i]) for i, name in enumerate(names)},
        "positives": {name: int(positives[i]) for i, name in enumerate(names)},
        "coded": {name: int(coded[i]) for i, name in enumerate(names)},
        "cooccurrence": {
            "conditional": {row: {column: _ratio(joint[i, j], given[i, j]) for j, column in enumerate(names)}
                            for i, row in enumerate(names)},
            "joint_counts": {row: {column: int(joint[i, j]) for j, column in enumerate(names)}
                             for i, row in enumerate(names)},
        },
        "episodes": {name: _episode_summary(episodes[i], fps) for i, name in enumerate(names)},
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(float(numerator) / float(denominator), 4) if denominator else None


def _episodes(column: np.ndarray) -> list[tuple[int, bool]]:
    """(length in frames, censored) of every episode in one AU's labels of one sequence."""
    frames = len(column)
    if frames == 0:
        return []
    coded = column != NOT_CODED
    index = np.arange(frames)
    previous = np.maximum.accumulate(np.where(coded, index, -1))  # last coded frame at or before each frame
    following = np.minimum.accumulate(np.where(coded, index, frames)[::-1])[::-1]  # first at or after
    padded = np.append(column, 0)  # a sentinel so both look-ups stay in range
    bridged = ~coded & (padded[previous] == 1) & (previous >= 0) & (padded[following] == 1) & (following < frames)
    active = np.concatenate([[0], ((column == 1) | bridged).astype(np.int8), [0]])
    edges = np.diff(active)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # run = [start, end)
    episodes = []
    for start, end in zip(starts, ends):
        censored = start == 0 or end == frames or not coded[start - 1] or not coded[end]
        episodes.append((int(end - start), bool(censored)))
    return episodes


def _episode_summary(episodes: list[tuple[int, bool]], fps: float) -> dict[str, Any]:
    lengths = np.array([length for length, _ in episodes], dtype=np.float64)
    summary: dict[str, Any] = {"count": len(episodes), "censored": sum(censored for _, censored in episodes)}
    for statistic, function in (("mean", np.mean), ("median", np.median), ("min", np.min), ("max", np.max)):
        value = float(function(lengths)) if len(lengths) else None
        summary[f"{statistic}_frames"] = None if value is None else round(value, 2)
        summary[f"{statistic}_s"] = None if value is None else round(value / fps, 3)
    return summary


# --- co-occurrence figure -------------------------------------------------------------------------------

def cooccurrence_figure(statistics: dict[str, Any], path: Path) -> Path:
    """Heatmap of P(AU j | AU i) from `label_statistics` output (rows: given AU i), base rates beside rows."""
    names = statistics["aus"]
    conditional = statistics["cooccurrence"]["conditional"]
    matrix = np.array([[np.nan if conditional[row][column] is None else conditional[row][column]
                        for column in names] for row in names], dtype=np.float64)
    figure = Figure(figsize=(0.5 * len(names) + 2.5, 0.5 * len(names) + 1.5))
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0.0, vmax=1.0)
    for i in range(len(names)):
        for j in range(len(names)):
            if np.isfinite(matrix[i, j]):
                axes.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                          color="black" if matrix[i, j] > 0.6 else "white")
    rates = statistics["base_rates"]
    axes.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    axes.set_yticks(range(len(names)),
                    [f"{name} ({'n/a' if rates[name] is None else f'{rates[name]:.2f}'})" for name in names],
                    fontsize=8)
    axes.set_xlabel("AU j")
    axes.set_ylabel("given AU i present (base rate)")
    axes.set_title(f"SynthAU label co-occurrence P(AU j | AU i)\n{statistics['frames']} frames, "
                   f"{statistics['sequences']} sequences; not-coded frames left out", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    return _save(figure, Path(path), dpi=120, tight=True)


def _save(figure: Figure, path: Path, dpi: int, tight: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    return path


__all__ = ["CELL", "DEFINITIONS", "contact_sheet", "cooccurrence_figure", "label_statistics"]
