"""Writers of the official BP4D and DISFA on-disk layouts (README, "Data"), plus SynthAU's ground-truth extras.

BP4D: `Sequences/{subject}/{task}/{frame:04d}.jpg` (frames numbered from 1) and
`AUCoding/AU_OCC/{subject}_{task}.csv` (header "0" + AU numbers; values 0/1/9). DISFA:
`Videos_LeftCamera/LeftVideo{subject}_comp.avi` and `ActionUnit_Labels/{subject}/{subject}_au{N}.txt`
(`frame,intensity` lines, 1-based). Both: `SynthAU_Landmarks/{key}.npy` (T, 68, 2) float32 in frame pixels
and `SynthAU_Intensity/{key}.npy` (T, 15) float32 in ALL_AUS order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aubench.data.aus import ALL_AUS, DISFA_AUS
from aubench.data.video import write_image, write_video

#: Extra AU columns real BP4D files carry; SynthAU never animates them, so they are all 0.
EXTRA_BP4D_COLUMNS: tuple[int, ...] = (3, 5, 8, 11, 13, 16, 18, 19, 20, 22, 27, 28)
LANDMARK_DIR, INTENSITY_DIR = "SynthAU_Landmarks", "SynthAU_Intensity"


def write_bp4d_sequence(root: Path, subject: str, task: str, images: list[np.ndarray], coded: np.ndarray,
                        intensity: np.ndarray, landmarks: np.ndarray, jpeg_quality: int) -> None:
    """One BP4D subject/task: JPEG frames, the AU_OCC CSV and the ground-truth arrays."""
    for number, image in enumerate(images, start=1):
        write_image(root / "Sequences" / subject / task / f"{number:04d}.jpg", image, jpeg_quality)
    write_bp4d_labels(root / "AUCoding" / "AU_OCC" / f"{subject}_{task}.csv", coded)
    _write_ground_truth(root, f"{subject}_{task}", intensity, landmarks)


def write_bp4d_labels(path: Path, coded: np.ndarray) -> None:
    """AU_OCC CSV: columns sorted by AU number, first column the 1-based frame number."""
    columns = sorted(ALL_AUS + EXTRA_BP4D_COLUMNS)
    table = np.zeros((len(coded), len(columns) + 1), dtype=np.int64)
    table[:, 0] = np.arange(1, len(coded) + 1)
    for i, au in enumerate(ALL_AUS):
        table[:, 1 + columns.index(au)] = coded[:, i]
    header = ",".join(["0"] + [str(au) for au in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")


def write_disfa_subject(root: Path, subject: str, images: list[np.ndarray], intensity: np.ndarray,
                        landmarks: np.ndarray, fps: float) -> None:
    """One DISFA subject: the left-camera video, per-AU intensity files (rounded 0–5) and ground truth."""
    write_video(root / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi", images, fps)
    folder = root / "ActionUnit_Labels" / subject
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.arange(1, len(intensity) + 1)
    for au in DISFA_AUS:
        levels = np.clip(np.rint(intensity[:, ALL_AUS.index(au)]), 0, 5).astype(np.int64)
        np.savetxt(folder / f"{subject}_au{au}.txt", np.stack([frames, levels], axis=1), fmt="%d", delimiter=",")
    _write_ground_truth(root, f"{subject}_video", intensity, landmarks)


def _write_ground_truth(root: Path, key: str, intensity: np.ndarray, landmarks: np.ndarray) -> None:
    for folder, array in ((LANDMARK_DIR, landmarks), (INTENSITY_DIR, intensity)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        np.save(root / folder / f"{key}.npy", array.astype(np.float32))
