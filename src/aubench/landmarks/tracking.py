"""Key-frame detection with landmark tracking in between (pipeline.md §2 landmarks).

Face detection is the expensive part of landmarking and grows with the frame size (dlib's HOG scan, one
core: about 4.5 ms at 256², 15 ms at 384², 90 ms at 1024²); fitting the 68 points inside a known box
costs 1.2–2 ms whatever the frame size. So the detector runs only on key frames, every `key_interval`
frames; on the frames in between, the landmark model is fitted in the key frame's detection box moved to
follow the previous frame's landmarks (`BoxRelation`). The ceiling of the speed-up is therefore
(detect + fit) / fit: about 3.5× on 256² frames, far more on real BP4D/DISFA frames (≥ 640 px).

A tracked frame is accepted only when it looks like the same face as the frame before:
- its landmarks moved by at most `max_motion` inter-ocular distances (the landmark model cannot follow a
  face that jumps by more than about a third of the box, and then moves far less than the face did);
- its *tracking confidence* is at least `min_confidence`: the normalised cross-correlation between small
  grey patches of the two frames, each cut out by its own landmarks and warped so that the eyes land on the
  same spot (`face_patch`). A tracked face gives a patch that barely changes (above 0.95 at 25 fps, also
  with sensor noise and a few degrees of roll); a face the box lost gives a patch of whatever is now in
  the box (below 0.5).
Otherwise the detector runs on that frame at once (re-detection), and a frame without a face ends the
track until a detection finds one again.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

LEFT_EYE = slice(36, 42)   # subject's right eye, on the image's left (iBUG order, pipeline.md §5)
RIGHT_EYE = slice(42, 48)

#: Per-frame landmark source codes stored with the landmarks.
NO_FACE, DETECTED, TRACKED = 0, 1, 2

PATCH_SIZE = 32                  # side of the grey patch compared between frames
PATCH_EYES = ((0.3, 0.35), (0.7, 0.35))  # where the eye centres land in the patch, as fractions of its side


class Landmarker(Protocol):
    """What a landmark backend provides."""

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """The largest face's box (x0, y0, x1, y1) in an RGB image, or None."""

    def fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) landmarks of the face inside `box`."""


@dataclass(frozen=True)
class FrameLandmarks:
    """One frame's result: `points` (68, 2) or None, the source code, and the tracking confidence
    (NaN when the frame was not tracked; a re-detected frame keeps the confidence that failed)."""

    points: np.ndarray | None
    source: int
    confidence: float


@dataclass(frozen=True)
class BoxRelation:
    """The detector's box at the last key frame, carried along with the landmarks' centre.

    The landmark model is trained on the detector's boxes, so a tracked frame gets a box of the key frame's
    size, at the same offset from the landmarks' mean as at detection, centred on the previous frame's
    landmarks. The size is deliberately *not* re-estimated from the fitted landmarks: the fitted shape
    follows its box's size more than the face's, so feeding its size back shrinks or grows the box a bit
    every frame (a drift of tens of percent of the eye distance within 15 frames on some faces). Faces
    change scale slowly; the next key frame's detection (or a re-detection) updates the size.
    """

    centre_offset: np.ndarray  # (2,) box centre − landmarks' mean, in pixels
    size: np.ndarray           # (2,) box width and height

    @classmethod
    def from_detection(cls, box: np.ndarray, points: np.ndarray) -> "BoxRelation":
        box_centre, box_size = _centre_size(np.asarray(box, dtype=np.float64))
        return cls(box_centre - points.mean(0), box_size)

    def box_for(self, points: np.ndarray) -> np.ndarray:
        """The key frame's box, moved to follow `points`."""
        centre = points.mean(0) + self.centre_offset
        return np.concatenate([centre - self.size / 2, centre + self.size / 2])


def _centre_size(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (box[:2] + box[2:]) / 2, box[2:] - box[:2]


def eye_distance(points: np.ndarray) -> float:
    """Inter-ocular distance (between the eye centres) of one frame's 68 points."""
    return float(np.linalg.norm(points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)))


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2×3 rotation+scale+translation taking the two `source` points onto the two `target` points."""
    rotation_scale = complex(*(target[1] - target[0])) / complex(*(source[1] - source[0]))
    linear = np.array([[rotation_scale.real, -rotation_scale.imag], [rotation_scale.imag, rotation_scale.real]])
    return np.hstack([linear, (target[0] - linear @ source[0])[:, None]])


_PATCH_TARGET = np.array(PATCH_EYES, dtype=np.float64) * PATCH_SIZE
_PATCH_CORNERS = np.array([[0, 0, 1], [PATCH_SIZE, 0, 1], [0, PATCH_SIZE, 1], [PATCH_SIZE, PATCH_SIZE, 1]], float)


def face_patch(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A PATCH_SIZE² grey patch with the eye centres at PATCH_EYES, zero-mean and unit-norm (flattened).

    Only the region the patch covers is touched: it is cut out, reduced to one channel (green), shrunk by
    an integer factor with an area filter (so that large faces do not alias) and warped with the
    similarity that puts the eyes in place (which removes roll, scale and translation). `image` is RGB
    or grey.
    """
    empty = np.zeros(PATCH_SIZE * PATCH_SIZE, dtype=np.float32)
    eyes = np.stack([points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)]).astype(np.float64)
    distance = float(np.linalg.norm(eyes[1] - eyes[0]))
    if not distance > 1e-3:  # degenerate landmarks: nothing to compare
        return empty
    to_image = _similarity(_PATCH_TARGET, eyes)  # patch → image coordinates
    corners = _PATCH_CORNERS @ to_image.T
    height, width = image.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (width, height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return empty
    region = image[y0:y1, x0:x1]
    if region.ndim == 3:
        region = np.ascontiguousarray(region[..., 1])  # the green channel: grey enough, and free
    # Shrink by an integer factor (area filter, its fast path) so the warp reduces by at most 2×.
    target_distance = float(np.linalg.norm(_PATCH_TARGET[1] - _PATCH_TARGET[0]))
    shrink = max(1, int(distance / (2 * target_distance)))
    if shrink > 1 and min(region.shape[:2]) >= 2 * shrink:
        height, width = region.shape[0] // shrink, region.shape[1] // shrink
        region = cv2.resize(region[:height * shrink, :width * shrink], (width, height), interpolation=cv2.INTER_AREA)
    else:
        shrink = 1
    local_eyes = ((eyes - (x0, y0)) + 0.5) / shrink - 0.5  # pixel-centre convention of the area filter
    patch = cv2.warpAffine(region, _similarity(local_eyes, _PATCH_TARGET), (PATCH_SIZE, PATCH_SIZE),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32).ravel()
    patch -= patch.mean()
    norm = float(np.linalg.norm(patch))
    return patch / norm if norm > 1e-6 else empty


def landmark_motion(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean point displacement between two frames, in inter-ocular distances of the earlier one."""
    return float(np.linalg.norm(current - previous, axis=-1).mean() / max(eye_distance(previous), 1e-6))


class KeyFrameTracker:
    """Landmarks frame by frame: detect on key frames (every `key_interval`), track in between.

    `key_interval=1` detects on every frame (the `detect_every_frame` mode), with no tracking overhead.
    `detector_calls` and `fit_calls` count the backend calls, for reports and benchmarks.
    """

    def __init__(self, landmarker: Landmarker, key_interval: int = 10, min_confidence: float = 0.75,
                 max_motion: float = 0.25) -> None:
        if key_interval < 1:
            raise ValueError(f"key_interval must be at least 1, got {key_interval}")
        self.landmarker = landmarker
        self.key_interval = key_interval
        self.min_confidence = min_confidence
        self.max_motion = max_motion
        self.detector_calls = 0
        self.fit_calls = 0
        self._points: np.ndarray | None = None   # last accepted landmarks (None: no track)
        self._patch: np.ndarray | None = None
        self._relation: BoxRelation | None = None
        self._since_detection = 0

    @property
    def tracking(self) -> bool:
        return self.key_interval > 1

    def step(self, image: np.ndarray) -> FrameLandmarks:
        """Landmarks of the next frame of the sequence."""
        confidence = float("nan")
        if self._points is not None and self._since_detection + 1 < self.key_interval:
            tracked = self._track(image)
            if tracked.points is not None:
                return tracked
            confidence = tracked.confidence
        return self._detect(image, confidence)

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[FrameLandmarks]:
        for image in frames:
            yield self.step(image)

    def _track(self, image: np.ndarray) -> FrameLandmarks:
        box = self._relation.box_for(self._points)
        points = self._fit(image, box)
        patch = face_patch(image, points)
        confidence = float(patch @ self._patch)
        if confidence < self.min_confidence or landmark_motion(self._points, points) > self.max_motion:
            return FrameLandmarks(None, NO_FACE, confidence)
        self._accept(points, patch)
        self._since_detection += 1
        return FrameLandmarks(points, TRACKED, confidence)

    def _detect(self, image: np.ndarray, confidence: float) -> FrameLandmarks:
        self.detector_calls += 1
        box = self.landmarker.detect(image)
        if box is None:
            self._points = self._patch = self._relation = None
            return FrameLandmarks(None, NO_FACE, confidence)
        points = self._fit(image, box)
        if self.tracking:
            self._relation = BoxRelation.from_detection(box, points)
            self._accept(points, face_patch(image, points))
            self._since_detection = 0
        return FrameLandmarks(points, DETECTED, confidence)

    def _fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        self.fit_calls += 1
        return np.asarray(self.landmarker.fit(image, box), dtype=np.float32)

    def _accept(self, points: np.ndarray, patch: np.ndarray) -> None:
        self._points, self._patch = points, patch
