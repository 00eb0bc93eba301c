"""Source faces: real photographs shipped by installed packages, with dlib's landmarks, on a canonical canvas.

Real photos (not drawings) are used so that a real face detector and landmark model work on every
synthetic frame. Each photo is fitted by dlib once per process, then placed on a square canvas with the
eyes level, a fixed inter-ocular distance and a fixed eye-midpoint position.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from aubench.data.synthau.rig import MIRROR
from aubench.errors import DataError

log = logging.getLogger(__name__)

#: Photos in a fixed order (identity i starts from photo i % 2).
PHOTOS: tuple[str, ...] = ("astronaut", "grace_hopper")


@dataclass(frozen=True)
class Face:
    """An RGB canvas and its 68 landmarks (x, y)."""

    image: np.ndarray
    landmarks: np.ndarray

    @property
    def iod(self) -> float:
        """Inter-ocular distance: between the eye centres (means of points 36-41 and 42-47)."""
        return float(np.linalg.norm(eye_centres(self.landmarks)[1] - eye_centres(self.landmarks)[0]))


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the image-left (36-41) and image-right (42-47) eyes."""
    return landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)


def load_photo(name: str) -> np.ndarray:
    """One of `PHOTOS` as RGB uint8, from the package that ships it."""
    if name == "astronaut":
        from skimage import data

        return np.ascontiguousarray(data.astronaut()[..., :3])
    if name == "grace_hopper":
        from matplotlib import cbook

        path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"{path}: matplotlib's sample photo cannot be read")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise DataError(f"unknown SynthAU source photo {name!r}; known: {', '.join(PHOTOS)}")


@functools.lru_cache(maxsize=1)
def _landmarker():  # loading dlib's predictor takes most of a second: once per process
    from aubench.landmarks.dlib_backend import DlibLandmarker

    return DlibLandmarker(upsample=1)


@functools.lru_cache(maxsize=None)
def photo_face(name: str) -> Face:
    """The photo with dlib's 68 landmarks, detected at full resolution (fitted once per process)."""
    image = load_photo(name)
    landmarker = _landmarker()
    box = landmarker.detect(image)
    if box is None:
        raise DataError(f"SynthAU source photo {name!r}: dlib finds no face (check the dlib install)")
    landmarks = landmarker.fit(image, box).astype(np.float64)
    log.debug("photo %s: face box %s, IOD %.1f px", name, box, Face(image, landmarks).iod)
    return Face(image, landmarks)


def mirror(face: Face) -> Face:
    """Left-right flip; landmark indices are remapped so point 36 stays the image-left outer eye corner."""
    width = face.image.shape[1]
    flipped = face.landmarks.copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    return Face(np.ascontiguousarray(face.image[:, ::-1]), flipped[MIRROR])


def canonical(face: Face, size: int, iod: float, eye_midpoint: tuple[float, float]) -> Face:
    """Similarity-warp onto a `size` square canvas: eyes level, `iod` apart, midpoint at `eye_midpoint`."""
    left, right = eye_centres(face.landmarks)
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    scale = iod / np.linalg.norm(right - left)
    cos, sin = scale * np.cos(-angle), scale * np.sin(-angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    offset = np.asarray(eye_midpoint) - rotation @ ((left + right) / 2)
    matrix = np.hstack([rotation, offset[:, None]])
    source = face.image
    if scale < 0.8:  # low-pass before shrinking, or the photo aliases
        source = cv2.GaussianBlur(source, (0, 0), 0.4 / scale)
    image = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    return Face(image, face.landmarks @ rotation.T + offset)
