"""A stand-in for SynthAU when its generator is not available: moving real photos in the BP4D layout.

Two real face photos that installed packages ship (scikit-image's astronaut, matplotlib's Grace Hopper),
each also mirrored (4 "subjects"), move smoothly in square frames (256² by default) (a random walk in translation, slow
roll and zoom, one sudden jump per sequence), with sensor noise and JPEG compression. The reference
landmarks (`SynthAU_Landmarks/<subject>_<task>.npy`, as SynthAU writes them) are dlib's 68 points on the
still photo moved with each frame's known transform: a *pseudo* ground truth, the same for both modes
compared by the benchmark (SynthAU's own ground truth replaces it once its generator exists).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aubench.data.aus import BP4D_AUS
from aubench.data.video import read_image, write_image

EYE_DISTANCE_FRACTION = 42 / 256  # inter-ocular distance relative to the frame side


def _photos() -> list[tuple[str, np.ndarray]]:
    import matplotlib.cbook
    from skimage import data

    hopper = read_image(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    astronaut = data.astronaut()
    return [("F001", astronaut), ("F002", hopper), ("M001", astronaut[:, ::-1].copy()), ("M002", hopper[:, ::-1].copy())]


def _still_landmarks(image: np.ndarray) -> np.ndarray:
    from aubench.landmarks.dlib_backend import DlibLandmarker

    landmarker = DlibLandmarker(upsample=1)
    box = landmarker.detect(image)
    if box is None:
        raise RuntimeError("no face found on a benchmark photo")
    return landmarker.fit(image, box).astype(np.float64)


def _motion(frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame offset (T, 2) in pixels, roll (T,) in degrees and zoom (T,)."""
    velocity = np.cumsum(rng.normal(0, 0.35, size=(frames, 2)), axis=0)
    velocity = np.clip(velocity, -2.5, 2.5)
    offset = np.cumsum(velocity, axis=0)
    offset = np.clip(offset, -40, 40)
    jump = int(rng.integers(frames // 3, 2 * frames // 3))
    offset[jump:] += rng.choice([-1, 1], size=2) * rng.uniform(25, 35, size=2)  # a sudden head movement
    time = np.arange(frames)
    roll = 6 * np.sin(2 * np.pi * time / rng.uniform(60, 120) + rng.uniform(0, 6))
    zoom = 1 + 0.08 * np.sin(2 * np.pi * time / rng.uniform(80, 160) + rng.uniform(0, 6))
    return offset, roll, zoom


def generate(root: Path, tasks: int = 2, frames: int = 120, seed: int = 0, frame_size: int = 256) -> Path:
    """Write the BP4D-layout tree (frames, AU_OCC CSVs with all-zero labels, reference landmarks) under `root`.

    Frames are `frame_size`² with the face scaled to the frame (eyes 16% of the side apart); motion in
    pixels scales with the frame too.
    """
    rng = np.random.default_rng(seed)
    zoom_to_frame = frame_size / 256
    header = ",".join(["0", *map(str, BP4D_AUS)])
    for subject, photo in _photos():
        still = _still_landmarks(photo)
        scale = EYE_DISTANCE_FRACTION * frame_size / np.linalg.norm(still[36:42].mean(0) - still[42:48].mean(0))
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        still = (still + 0.5) * scale - 0.5  # pixel-centre convention of cv2.resize
        centre = still.mean(0)
        for task_number in range(1, tasks + 1):
            task = f"T{task_number}"
            offset, roll, zoom = _motion(frames, rng)
            offset = offset * zoom_to_frame
            truth = np.zeros((frames, 68, 2), dtype=np.float32)
            for index in range(frames):
                matrix = cv2.getRotationMatrix2D(tuple(centre), roll[index], zoom[index])
                matrix[:, 2] += frame_size / 2 + offset[index] - centre
                image = cv2.warpAffine(photo, matrix, (frame_size, frame_size), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REFLECT)
                image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
                write_image(root / "Sequences" / subject / task / f"{index + 1:04d}.jpg", image, jpeg_quality=85)
                truth[index] = still @ matrix[:, :2].T + matrix[:, 2]
            (root / "SynthAU_Landmarks").mkdir(parents=True, exist_ok=True)
            np.save(root / "SynthAU_Landmarks" / f"{subject}_{task}.npy", truth)
            labels = root / "AUCoding" / "AU_OCC" / f"{subject}_{task}.csv"
            labels.parent.mkdir(parents=True, exist_ok=True)
            rows = [header] + [",".join([str(index + 1)] + ["0"] * len(BP4D_AUS)) for index in range(frames)]
            labels.write_text("\n".join(rows) + "\n")
    return root
