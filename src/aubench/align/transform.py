"""Similarity alignment (the `align` stage): eyes level, fixed inter-ocular distance and position."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from aubench.landmarks.pipeline import LEFT_EYE, RIGHT_EYE


@dataclass(frozen=True)
class AlignConfig:
    """The `align` params section: crop size and where the eye centres land, as fractions of the crop."""

    crop_size: int = 128
    eye_distance: float = 0.32
    eye_height: float = 0.38
    workers: int = 1


def eye_template(config: AlignConfig) -> np.ndarray:
    """Target (x, y) of the image-left and image-right eye centres in the crop."""
    size = config.crop_size
    half = config.eye_distance * size / 2
    return np.array([[size / 2 - half, config.eye_height * size],
                     [size / 2 + half, config.eye_height * size]], dtype=np.float64)


def eye_centres(points: np.ndarray) -> np.ndarray:
    """Image-left and image-right eye centres (2, 2) of 68-point landmarks."""
    return np.stack([points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)]).astype(np.float64)


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2×3 rotation+scale+translation mapping two source points exactly onto two target points."""
    source_vector = source[1] - source[0]
    target_vector = target[1] - target[0]
    # As complex numbers, the similarity is z -> a z + b with a = target_vector / source_vector.
    a = complex(*target_vector) / complex(*source_vector)
    rotation_scale = np.array([[a.real, -a.imag], [a.imag, a.real]])
    translation = target[0] - rotation_scale @ source[0]
    return np.hstack([rotation_scale, translation[:, None]])


def alignment_matrix(points: np.ndarray, config: AlignConfig) -> np.ndarray:
    """The 2×3 similarity from frame coordinates to crop coordinates for one frame's 68 landmarks."""
    return similarity_matrix(eye_centres(points), eye_template(config))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine matrix to (..., 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def align_frame(image: np.ndarray, points: np.ndarray, config: AlignConfig) -> np.ndarray:
    """Warp one RGB frame so its eye centres land on the template; returns crop_size² RGB uint8.

    warpAffine has no area filter, so a strong reduction (large DISFA frames into a small crop) first
    shrinks the frame with INTER_AREA to avoid aliasing, then warps at a scale near 1.
    """
    matrix = alignment_matrix(points, config)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        factor = 2 * scale
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        offset = 0.5 / factor - 0.5  # pixel-centre convention of cv2.resize
        matrix = matrix @ np.array([[1 / factor, 0, offset], [0, 1 / factor, offset], [0, 0, 1]])
    size = config.crop_size
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
