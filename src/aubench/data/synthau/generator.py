"""SynthAU generation: configuration, label-only sampling and the writer of whole datasets.

The dataset is written in the official BP4D (or DISFA) on-disk layout so that the real adapters in
`aubench.data.datasets` are the code that reads it. Output goes to a temporary folder
next to `root` that is renamed into place at the end, so an interrupted run never looks complete
(`write_atomically`, shared with the unlabeled pool in `pool.py`).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from aubench.config import to_dict
from aubench.data.aus import ALL_AUS, aus_for_layout
from aubench.data.synthau.identity import Identity, build_identity, sample_traits, subject_name
from aubench.data.synthau.labels import NOT_CODED, mark_not_coded, occurrence, sample_intensities
from aubench.data.synthau.render import Nuisance, render_frame, sample_pose_track
from aubench.data.synthau.writers import LANDMARK_DIR, write_bp4d_sequence, write_disfa_subject
from aubench.errors import ConfigError, DataError
from aubench.parallel import progress_map
from aubench.seeding import rng

log = logging.getLogger(__name__)

MANIFEST = "synthau.json"
EYE_HEIGHT = 0.38  # eye midpoint height as a fraction of the frame (the face fills the centre)
MIN_DLIB_IOD = 40.0  # below this dlib's HOG detector (faces >= ~80 px) starts to miss faces
#: Settings of the unlabeled pool only (`pool.py`): the labelled dataset does not depend on them.
POOL_FIELDS = ("unlabeled_subjects", "unlabeled_clips", "unlabeled_frames", "unlabeled_root")
T = TypeVar("T")


@dataclass(frozen=True)
class SynthConfig:
    """The `synthesize` params section: size, layout and difficulty of the generated dataset."""

    seed: int = 0
    root: str = "data/raw/synthau"
    layout: Literal["bp4d", "disfa"] = "bp4d"
    subjects: int = 6
    tasks: int = 2  # sequences per subject (BP4D); DISFA concatenates them into one video
    frames: int = 120  # per sequence
    frame_size: int = 256
    fps: float = 25.0
    iod: float = 56.0  # inter-ocular distance of the neutral face, pixels
    jpeg_quality: int = 90
    head_motion: float = 1.0  # scales translation, scale, roll, yaw and pitch
    lighting: float = 1.0  # scales brightness drift and lighting gradients
    noise: float = 0.015  # sensor noise std as a fraction of 255
    blur: float = 0.6  # Gaussian blur sigma, pixels
    au_strength: float = 1.0  # scales AU displacements and cues (labels are unchanged)
    identity_variation: float = 1.0  # scales the spread of identity shape and colour traits
    trace_fraction: float = 0.15  # share of AU episodes that stay below the occurrence cut-off
    not_coded: float = 0.005  # share of BP4D label cells written as 9 (not coded)
    workers: int = 1  # processes rendering subjects in parallel (the output does not depend on it)
    unlabeled_subjects: int = 6  # pool identities (indices after the labelled subjects': in no fold)
    unlabeled_clips: int = 2  # videos per pool identity
    unlabeled_frames: int = 50  # frames per pool video
    unlabeled_root: str = "data/raw/synthau_pool"

    def __post_init__(self) -> None:
        rules = {
            "subjects": (self.subjects >= 1, ">= 1"), "tasks": (self.tasks >= 1, ">= 1"),
            "frames": (self.frames >= 1, ">= 1"), "fps": (self.fps > 0, "> 0"),
            "frame_size": (self.frame_size >= 64, ">= 64"), "jpeg_quality": (1 <= self.jpeg_quality <= 100, "1-100"),
            "iod": (0 < self.iod <= 0.3 * self.frame_size, "> 0 and <= 0.3 x frame_size, so the face fits"),
            "noise": (self.noise >= 0, ">= 0"), "blur": (self.blur >= 0, ">= 0"),
            "trace_fraction": (0 <= self.trace_fraction <= 1, "0-1"), "not_coded": (0 <= self.not_coded < 1, "0-1"),
            "workers": (self.workers >= 1, ">= 1"), "unlabeled_subjects": (self.unlabeled_subjects >= 1, ">= 1"),
            "unlabeled_clips": (self.unlabeled_clips >= 1, ">= 1"),
            "unlabeled_frames": (self.unlabeled_frames >= 1, ">= 1"),
            "unlabeled_root": (Path(self.unlabeled_root) != Path(self.root), "a folder other than synthesize.root"),
        }
        for key, (ok, requirement) in rules.items():
            if not ok:
                raise ConfigError(f"synthesize.{key}: {getattr(self, key)!r} is out of range (must be {requirement})")
        if self.iod < MIN_DLIB_IOD:
            log.warning("synthesize.iod=%.0f: faces this small are often missed by dlib's detector", self.iod)

    @property
    def nuisance(self) -> Nuisance:
        return Nuisance(self.head_motion, self.lighting, self.noise, self.blur, self.au_strength)


def tiny_config(root: str | Path, **overrides: object) -> SynthConfig:
    """A dataset small enough for tests: 3 subjects x 1 task x 12 frames (a second or two), and a pool of
    2 identities x 1 clip x 6 frames in `<root>_pool`."""
    values = {"root": str(root), "subjects": 3, "tasks": 1, "frames": 12, "unlabeled_subjects": 2,
              "unlabeled_clips": 1, "unlabeled_frames": 6, "unlabeled_root": f"{root}_pool", **overrides}
    return SynthConfig(**values)


@dataclass(frozen=True)
class SequenceLabels:
    """One sequence's ground truth: intensities (T, 15) and occurrence (T, 15) with 9 = not coded."""

    subject: str
    task: str
    intensity: np.ndarray
    coded: np.ndarray


@dataclass(frozen=True)
class SynthSummary:
    """What was generated: counts per AU (ALL_AUS order) over coded frames."""

    root: str
    layout: str
    subjects: tuple[str, ...]
    sequences: int
    frames: int
    positives: dict[int, int]
    coded: dict[int, int]

    @property
    def base_rates(self) -> dict[int, float]:
        """Positive fraction among coded frames, per AU."""
        return {au: self.positives[au] / max(self.coded[au], 1) for au in self.positives}

    def to_dict(self) -> dict[str, object]:
        """JSON-ready statistics keyed 'AU1', 'AU2', … (the stage's metrics file)."""
        return {
            "dataset": "SynthAU (synthetic)", "layout": self.layout, "subjects": len(self.subjects),
            "sequences": self.sequences, "frames": self.frames,
            "layout_aus": [f"AU{au}" for au in aus_for_layout(self.layout)],
            "base_rates": {f"AU{au}": round(rate, 4) for au, rate in self.base_rates.items()},
            "positives": {f"AU{au}": count for au, count in self.positives.items()},
            "coded": {f"AU{au}": count for au, count in self.coded.items()},
        }


def sequence_plan(config: SynthConfig) -> list[tuple[int, str, str, int]]:
    """(subject index, subject, task, frames) of every sequence, in writing order."""
    if config.layout == "disfa":
        return [(index, subject_name(index, "disfa"), "video", config.frames * config.tasks)
                for index in range(config.subjects)]
    return [(index, subject_name(index, "bp4d"), f"T{task + 1}", config.frames)
            for index in range(config.subjects) for task in range(config.tasks)]


def sequence_labels(config: SynthConfig, subject: str, task: str, frames: int) -> SequenceLabels:
    """Labels of one sequence, without rendering (random streams keyed by subject and task)."""
    intensity = sample_intensities(rng(config.seed, "labels", subject, task), frames, config.fps,
                                   config.trace_fraction)
    if config.layout == "disfa":  # DISFA stores integer levels; its readers threshold the rounded value
        coded = occurrence(np.rint(intensity))
    else:
        coded = mark_not_coded(occurrence(intensity), rng(config.seed, "not-coded", subject, task), config.not_coded)
    return SequenceLabels(subject, task, intensity, coded)


def generate_labels(config: SynthConfig) -> list[SequenceLabels]:
    """Every sequence's labels for `config`, exactly as `generate` would write them (fast: no images)."""
    return [sequence_labels(config, subject, task, frames) for _, subject, task, frames in sequence_plan(config)]


def summarize(config: SynthConfig, labels: list[SequenceLabels]) -> SynthSummary:
    """Per-AU positive and coded-frame counts over all sequences."""
    stacked = np.concatenate([item.coded for item in labels])
    known = stacked != NOT_CODED
    return SynthSummary(
        root=config.root, layout=config.layout, subjects=tuple(dict.fromkeys(item.subject for item in labels)),
        sequences=len(labels), frames=int(stacked.shape[0]),
        positives={au: int((stacked[:, i] == 1).sum()) for i, au in enumerate(ALL_AUS)},
        coded={au: int(known[:, i].sum()) for i, au in enumerate(ALL_AUS)},
    )


def render_sequence(config: SynthConfig, identity: Identity,
                    labels: SequenceLabels) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (RGB uint8) and (T, 68, 2) float32 ground-truth landmarks of one sequence."""
    frames = labels.intensity.shape[0]
    track = sample_pose_track(rng(config.seed, "pose", labels.subject, labels.task), frames, config.fps,
                              config.frame_size, config.nuisance)
    noise = rng(config.seed, "noise", labels.subject, labels.task)
    images, landmarks = [], np.zeros((frames, 68, 2), np.float32)
    for index in range(frames):
        image, landmarks[index] = render_frame(identity, labels.intensity[index], track, index,
                                               config.frame_size, config.nuisance, noise)
        images.append(image)
    return images, landmarks


def make_identity(config: SynthConfig, index: int, subject: str) -> Identity:
    """Subject `index`'s identity on a canvas with a margin around the output frame (room for head motion)."""
    canvas = config.frame_size + 2 * (config.frame_size // 8)
    eye_midpoint = (canvas / 2, (canvas - config.frame_size) / 2 + EYE_HEIGHT * config.frame_size)
    traits = sample_traits(config.seed, index, config.identity_variation)
    return build_identity(subject, traits, canvas, config.iod, eye_midpoint, config.seed)


def render_subject(config: SynthConfig, folder: Path,
                   plan: list[tuple[int, str, str, int]]) -> list[SequenceLabels]:
    """Render and write every sequence of one subject (one identity); one task of a worker process."""
    index, subject = plan[0][:2]
    identity = make_identity(config, index, subject)
    written = []
    for _, _, task, frames in plan:
        labels = sequence_labels(config, subject, task, frames)
        _write(folder, config, labels, *render_sequence(config, identity, labels))
        written.append(labels)
    return written


def generate(config: SynthConfig) -> SynthSummary:
    """Write the whole dataset under `config.root` (replacing an earlier SynthAU there) and summarise it."""
    root = Path(config.root)
    check_replaceable(root, MANIFEST, "SynthAU dataset", "synthesize.root", LANDMARK_DIR)
    started = time.perf_counter()
    summary = write_atomically(root, lambda folder: _write_dataset(config, folder))
    log.info("SynthAU: %d sequences, %d frames (%s layout) written to %s in %.1f s", summary.sequences,
             summary.frames, config.layout, root, time.perf_counter() - started)
    return summary


def _write_dataset(config: SynthConfig, folder: Path) -> SynthSummary:
    by_subject: dict[str, list[tuple[int, str, str, int]]] = {}
    for entry in sequence_plan(config):
        by_subject.setdefault(entry[1], []).append(entry)
    rendered = progress_map(render_subject, repeat(config), repeat(folder), by_subject.values(),
                            total=len(by_subject), desc="synthau", unit="subject", workers=config.workers)
    summary = summarize(config, [labels for subject in rendered for labels in subject])
    _write_manifest(folder, config, summary)
    return summary


def write_atomically(root: Path, write: Callable[[Path], T]) -> T:
    """`write(folder)` into a fresh hidden folder next to `root`, then swap it in: an interrupted run leaves
    neither a half-written `root` nor the partial folder behind."""
    partial = root.parent / f".{root.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        result = write(partial)
        _move_into_place(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return result


def _write(folder: Path, config: SynthConfig, labels: SequenceLabels, images: list[np.ndarray],
           landmarks: np.ndarray) -> None:
    if config.layout == "disfa":
        write_disfa_subject(folder, labels.subject, images, labels.intensity, landmarks, config.fps)
    else:
        write_bp4d_sequence(folder, labels.subject, labels.task, images, labels.coded, labels.intensity,
                            landmarks, config.jpeg_quality)


def check_replaceable(root: Path, manifest: str, what: str, key: str, *markers: str) -> None:
    """Refuses to overwrite a folder that is neither empty nor an earlier output (its `manifest` or `markers`)."""
    earlier = any((root / name).exists() for name in (manifest, *markers))
    if root.exists() and any(root.iterdir()) and not earlier:
        raise DataError(f"{root}: folder exists and is not a {what} (no {manifest}); "
                        f"refusing to overwrite it — choose another {key} or remove it")


def _write_manifest(folder: Path, config: SynthConfig, summary: SynthSummary) -> None:
    # What the data is, not where or how fast it was written: the files are the same for any folder and
    # worker count, and so must be the dataset's hash; nor the pool's settings, which it does not depend on.
    ignored = ("root", "workers", *POOL_FIELDS)
    settings = {name: value for name, value in to_dict(config).items() if name not in ignored}
    manifest = {"generator": "aubench.data.synthau", "config": settings, "summary": summary.to_dict()}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _move_into_place(partial: Path, root: Path) -> None:
    """Swap the finished folder in; the old one is moved aside first and removed last."""
    root.parent.mkdir(parents=True, exist_ok=True)
    old = root.parent / f".{root.name}.old-{os.getpid()}"
    if root.exists():
        root.rename(old)
    partial.rename(root)
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["SynthConfig", "SynthSummary", "SequenceLabels", "tiny_config", "generate", "generate_labels",
           "sequence_labels", "sequence_plan", "summarize", "render_sequence", "make_identity", "check_replaceable",
           "write_atomically"]
