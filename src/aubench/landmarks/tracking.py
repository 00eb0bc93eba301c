"""Key-frame detection with landmark tracking in between (the `landmarks` stage).

Face detection is the expensive part of landmarking and grows with the frame size (dlib's HOG scan, one
core: about 4.5 ms at 256², 17 ms at 512², 90 ms at 1024²); fitting the 68 points inside a known box
costs about 1 ms whatever the frame size. So the detector runs only on key frames, every `key_interval`
frames, and there only on a region around the tracked face (`roi_margin`; the whole frame when that finds
nothing); on the frames in between, the landmark model is fitted in the previous frame's box moved and
scaled with the image motion of the face (`follow_box`).

Why the box follows the *image* (sparse Lucas–Kanade flow of the eye and nose landmarks) and not the
fitted landmarks: the fitted shape follows its box more than the face, so a box placed from the previous
fit feeds the fit's own bias back into the next box and drifts (several pixels per frame on some faces,
up to 0.3 eye distances within a key interval). The flow measures how the face moved between the two
frames, independently of the fit, so the box only accumulates the flow's small error until the next key
frame re-anchors it to the detector.

A tracked frame is accepted only when it looks like the same face as the frame before:
- its landmarks moved by at most `max_motion` inter-ocular distances (the landmark model cannot follow a
  face that jumps by more than about a third of the box, and then moves far less than the face did);
- its *tracking confidence* is at least `min_confidence`: the normalised cross-correlation between small
  grey patches of the two frames, each cut out by its own landmarks and warped so that the eyes land on the
  same spot (`face_patch`). A tracked face gives a patch that barely changes (above 0.95 at 25 fps, also
  with sensor noise and a few degrees of roll); a face the box lost gives a patch of whatever is now in
  the box (below 0.5).
Otherwise the detector runs on that frame at once, on the whole frame (re-detection), and a frame without
a face ends the track until a detection finds one again.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

LEFT_EYE = slice(36, 42)   # subject's right eye, on the image's left (iBUG 68-point order)
RIGHT_EYE = slice(42, 48)
#: Landmarks whose image motion moves the box: nose (27–35) and eyes (36–47), which AUs barely move
#: (brows, mouth and jaw do), and which are textured enough for optical flow.
RIGID = np.r_[27:36, 36:48]

#: Per-frame landmark source codes stored with the landmarks.
NO_FACE, DETECTED, TRACKED = 0, 1, 2

PATCH_SIZE = 32                  # side of the grey patch compared between frames
PATCH_EYES = ((0.3, 0.35), (0.7, 0.35))  # where the eye centres land in the patch, as fractions of its side

ROI_MARGIN = 0.25       # key-frame detection region: the tracked box grown by this fraction of its size per side
FLOW_MARGIN = 0.25      # optical-flow region: the same, for the previous box
FLOW_EYE_DISTANCE = 32  # the flow region is shrunk by an integer factor to about this eye distance (pixels)
FLOW_MIN_POINTS = 8     # fewer rigid points followed by the flow than this: tracking fails
FLOW_SETTINGS = dict(winSize=(15, 15), maxLevel=2,
                     criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


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


def _centre_size(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (box[:2] + box[2:]) / 2, box[2:] - box[:2]


def grown_region(box: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) of `box` grown by `margin` of its size on each side, clipped to the image."""
    centre, size = _centre_size(np.asarray(box, dtype=np.float64))
    half = size * (0.5 + margin)
    x0, y0 = np.maximum(np.floor(centre - half).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(centre + half).astype(int), (shape[1], shape[0]))
    return int(x0), int(y0), int(max(x1, x0)), int(max(y1, y0))


def eye_distance(points: np.ndarray) -> float:
    """Inter-ocular distance (between the eye centres) of one frame's 68 points."""
    return float(np.linalg.norm(points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)))


def _green(region: np.ndarray) -> np.ndarray:
    """One channel of an RGB region (green: grey enough, and free), or a grey region, contiguous."""
    return np.ascontiguousarray(region[..., 1] if region.ndim == 3 else region)


@dataclass(frozen=True)
class FlowReference:
    """The previous frame's part that the flow starts from: a shrunk grey region and the rigid points in it."""

    region: tuple[int, int, int, int]  # (x0, y0, x1, y1) in frame pixels
    shrink: int
    grey: np.ndarray
    points: np.ndarray  # (len(RIGID), 2) float32 rigid landmarks in the shrunk region's pixels

    @classmethod
    def from_frame(cls, image: np.ndarray, box: np.ndarray, points: np.ndarray) -> "FlowReference":
        region = grown_region(box, FLOW_MARGIN, image.shape)
        shrink = max(1, int(round(eye_distance(points) / FLOW_EYE_DISTANCE)))
        return cls(region, shrink, _shrunk_grey(image, region, shrink), cls._local(points[RIGID], region, shrink))

    @staticmethod
    def _local(points: np.ndarray, region: tuple[int, int, int, int], shrink: int) -> np.ndarray:
        # pixel-centre convention of the area filter: pixel i of the shrunk image covers [i·s, (i+1)·s)
        return (((points - region[:2]) + 0.5) / shrink - 0.5).astype(np.float32)

    def to_frame(self, local: np.ndarray) -> np.ndarray:
        return (local.astype(np.float64) + 0.5) * self.shrink - 0.5 + self.region[:2]


def _shrunk_grey(image: np.ndarray, region: tuple[int, int, int, int], shrink: int) -> np.ndarray:
    x0, y0, x1, y1 = region
    grey = _green(image[y0:y1, x0:x1])
    if shrink > 1:
        height, width = grey.shape[0] // shrink, grey.shape[1] // shrink
        if height >= 2 and width >= 2:
            grey = cv2.resize(grey[:height * shrink, :width * shrink], (width, height), interpolation=cv2.INTER_AREA)
    return grey


def follow_box(reference: FlowReference, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """`box` moved and scaled as the image around the rigid landmarks moved from `reference` to `image`.

    The rigid points are followed by pyramidal Lucas–Kanade flow inside the reference's region of both
    frames; the box moves with their median displacement and scales with the median ratio of their spreads
    (distances to their median). None when fewer than FLOW_MIN_POINTS points were followed.
    """
    current = _shrunk_grey(image, reference.region, reference.shrink)
    if current.shape != reference.grey.shape or min(current.shape) < 8:
        return None
    start = reference.points.reshape(-1, 1, 2)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(reference.grey, current, start, None, **FLOW_SETTINGS)
    found = status.ravel() == 1
    if found.sum() < FLOW_MIN_POINTS:
        return None
    before, after = reference.to_frame(start.reshape(-1, 2)[found]), reference.to_frame(moved.reshape(-1, 2)[found])
    centre_before, centre_after = np.median(before, 0), np.median(after, 0)
    spread = np.median(np.linalg.norm(before - centre_before, axis=1))
    scale = np.median(np.linalg.norm(after - centre_after, axis=1)) / spread if spread > 1e-6 else 1.0
    centre, size = _centre_size(np.asarray(box, dtype=np.float64))
    centre = centre_after + scale * (centre - centre_before)
    return np.concatenate([centre - scale * size / 2, centre + scale * size / 2])


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
    region = _green(image[y0:y1, x0:x1])
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

    `key_interval=1` detects on every frame, on the whole frame (the `detect_every_frame` mode), with no
    tracking overhead. `roi_margin`: on scheduled key frames the detector scans only the tracked box grown
    by this fraction of its size on each side (the whole frame when it finds nothing there); None scans the
    whole frame on every key frame. `detector_calls`, `roi_detector_calls` (the part of them on a region)
    and `fit_calls` count the backend calls, for reports and benchmarks.
    """

    def __init__(self, landmarker: Landmarker, key_interval: int = 10, min_confidence: float = 0.75,
                 max_motion: float = 0.25, roi_margin: float | None = ROI_MARGIN) -> None:
        if key_interval < 1:
            raise ValueError(f"key_interval must be at least 1, got {key_interval}")
        if roi_margin is not None and roi_margin < 0:
            raise ValueError(f"roi_margin must be at least 0 (or None), got {roi_margin}")
        self.landmarker = landmarker
        self.key_interval = key_interval
        self.min_confidence = min_confidence
        self.max_motion = max_motion
        self.roi_margin = roi_margin
        self.detector_calls = 0
        self.roi_detector_calls = 0
        self.fit_calls = 0
        self._points: np.ndarray | None = None   # last accepted landmarks (None: no track)
        self._patch: np.ndarray | None = None
        self._box: np.ndarray | None = None      # the box they were fitted in
        self._flow: FlowReference | None = None
        self._since_detection = 0

    @property
    def tracking(self) -> bool:
        return self.key_interval > 1

    def step(self, image: np.ndarray) -> FrameLandmarks:
        """Landmarks of the next frame of the sequence."""
        if self._points is None:
            return self._detect(image, float("nan"))
        if self._since_detection + 1 < self.key_interval:
            tracked = self._track(image)
            if tracked.points is not None:
                return tracked
            return self._detect(image, tracked.confidence)  # re-detection, on the whole frame
        return self._detect(image, float("nan"), near=self._box)  # scheduled key frame

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[FrameLandmarks]:
        for image in frames:
            yield self.step(image)

    def _track(self, image: np.ndarray) -> FrameLandmarks:
        box = follow_box(self._flow, image, self._box)
        if box is None:
            return FrameLandmarks(None, NO_FACE, float("nan"))
        points = self._fit(image, box)
        patch = face_patch(image, points)
        confidence = float(patch @ self._patch)
        if confidence < self.min_confidence or landmark_motion(self._points, points) > self.max_motion:
            return FrameLandmarks(None, NO_FACE, confidence)
        self._accept(image, box, points, patch)
        self._since_detection += 1
        return FrameLandmarks(points, TRACKED, confidence)

    def _detect(self, image: np.ndarray, confidence: float, near: np.ndarray | None = None) -> FrameLandmarks:
        box = None
        if near is not None and self.roi_margin is not None:
            box = self._detect_in_region(image, grown_region(near, self.roi_margin, image.shape))
        if box is None:
            self.detector_calls += 1
            box = self.landmarker.detect(image)
        if box is None:
            self._points = self._patch = self._box = self._flow = None
            return FrameLandmarks(None, NO_FACE, confidence)
        points = self._fit(image, box)
        if self.tracking:
            self._accept(image, np.asarray(box, dtype=np.float64), points, face_patch(image, points))
            self._since_detection = 0
        return FrameLandmarks(points, DETECTED, confidence)

    def _detect_in_region(self, image: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray | None:
        x0, y0, x1, y1 = region
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        self.detector_calls += 1
        self.roi_detector_calls += 1
        box = self.landmarker.detect(image[y0:y1, x0:x1])
        return None if box is None else np.asarray(box, dtype=np.float64) + (x0, y0, x0, y0)

    def _fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        self.fit_calls += 1
        return np.asarray(self.landmarker.fit(image, box), dtype=np.float32)

    def _accept(self, image: np.ndarray, box: np.ndarray, points: np.ndarray, patch: np.ndarray) -> None:
        self._points, self._patch, self._box = points, patch, box
        self._flow = FlowReference.from_frame(image, box, points)
