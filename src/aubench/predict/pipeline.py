"""Predict, streamed: decoded frames → landmarks (detect on key frames, track in between) → similarity
alignment → the network, a chunk of frames at a time, so memory stays flat for videos of any length.

Every step is the training data's own: the landmark tracker of the `landmarks` stage with the model file's
settings, `align_frame` with its alignment template, and the network scored by `predict_subjects`, the
function that writes the evaluation's predictions, over a chunk of aligned crops presented as a small store.
So a frame gets the probabilities the evaluation would give it.

One row per decoded frame and face: `success` 0 (empty cells) where no face was found. By default the
largest face is followed (`face_id` 0); with `all_faces` every face gets its own tracker and `face_id`,
new faces being picked up on key frames.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aubench.align.store import StoredSequence
from aubench.align.transform import align_frame, alignment_matrix, transform_points
from aubench.data.aus import UNKNOWN
from aubench.landmarks.pipeline import make_landmarker, make_tracker
from aubench.landmarks.tracking import DETECTED, FrameLandmarks, KeyFrameTracker
from aubench.predict.model_file import DeployedModel
from aubench.predict.sources import Frame, Source
from aubench.train.distributed import resolve_device
from aubench.train.predict import predict_subjects

CHUNK_KEY, CHUNK_SUBJECT = "chunk", "face"
#: IoU above which a detected box is the same face as a tracked one (--all-faces).
SAME_FACE_IOU = 0.3


@dataclass(frozen=True)
class PredictOptions:
    """How predict runs (the console command's options)."""

    device: str = "auto"
    batch_size: int = 64      # frames per network batch
    chunk: int = 256          # decoded frames held at once
    landmarks: bool = False   # the 68 landmarks in the table
    all_faces: bool = False   # every face, each with its own face_id (else the largest face only)


class ChunkStore:
    """One chunk of one face's aligned crops behind the aligned store's interface (`predict_subjects` reads it)."""

    def __init__(self, crops: np.ndarray, points: np.ndarray, aus: tuple[int, ...], crop_size: int) -> None:
        self.sequences = (StoredSequence(CHUNK_KEY, CHUNK_SUBJECT, "predict", len(crops)),)
        self.aus, self.crop_size = aus, crop_size
        self._crops, self._points = crops, points

    def images(self, key: str) -> np.ndarray:
        return self._crops

    def landmarks(self, key: str) -> np.ndarray:
        return self._points

    def labels(self, key: str) -> np.ndarray:
        return np.full((len(self._crops), len(self.aus)), UNKNOWN, dtype=np.int8)


@dataclass
class FaceTrack:
    """One followed face: its tracker, id and last box (x0, y0, x1, y1)."""

    face_id: int
    tracker: KeyFrameTracker
    box: np.ndarray | None = None
    missing: int = 0


@dataclass
class FaceFrame:
    """One face in one frame: its landmarks (None: not found) and tracking confidence."""

    frame: Frame
    face_id: int
    points: np.ndarray | None
    confidence: float
    probabilities: np.ndarray | None = field(default=None)


class Predictor:
    """A loaded model, its landmarker and its network on a device; `run(source)` yields chunks of results."""

    def __init__(self, deployed: DeployedModel, options: PredictOptions = PredictOptions()) -> None:
        self.deployed, self.options = deployed, options
        self.device = resolve_device(options.device)
        self.model = deployed.build(self.device)
        self.sampling = deployed.method.sampling(deployed.config)
        self.landmarker = make_landmarker(deployed.landmarks)

    def run(self, source: Source) -> Iterator[list[FaceFrame]]:
        """The faces of each chunk of `source`'s frames, with their AU probabilities."""
        faces = FaceFinder(self.landmarker, self.deployed, self.options.all_faces)
        chunk: list[Frame] = []
        for frame in source.frames():
            chunk.append(frame)
            if len(chunk) == self.options.chunk:
                yield self._score(faces.find(chunk))
                chunk = []
        if chunk:
            yield self._score(faces.find(chunk))

    def _score(self, found: list[FaceFrame]) -> list[FaceFrame]:
        for face_id in sorted({face.face_id for face in found if face.points is not None}):
            faces = [face for face in found if face.face_id == face_id and face.points is not None]
            for face, row in zip(faces, self.probabilities(faces)):
                face.probabilities = row
        return found

    @torch.no_grad()
    def probabilities(self, faces: Sequence[FaceFrame]) -> np.ndarray:
        """(faces, AUs) probabilities of one face's frames, in order, as the evaluation computes them."""
        align = self.deployed.align
        crops = np.stack([align_frame(face.frame.image, face.points, align) for face in faces])
        points = np.stack([transform_points(face.points, alignment_matrix(face.points, align)) for face in faces])
        store = ChunkStore(crops, points.astype(np.float32), self.deployed.aus, align.crop_size)
        result = predict_subjects(self.model, self.deployed.method, self.sampling, store, (CHUNK_SUBJECT,),
                                  self.deployed.input_size, self.options.batch_size, self.device,
                                  test_crop=self.deployed.test_crop)
        return result["probabilities"]


class FaceFinder:
    """Landmarks of the followed face(s), frame by frame, carried across chunks."""

    def __init__(self, landmarker: Any, deployed: DeployedModel, all_faces: bool) -> None:
        self.landmarker, self.config, self.all_faces = landmarker, deployed.landmarks, all_faces
        self.tracks: list[FaceTrack] = [] if all_faces else [FaceTrack(0, make_tracker(landmarker, self.config))]
        self.next_id = 0 if all_faces else 1

    def find(self, frames: Sequence[Frame]) -> list[FaceFrame]:
        """The faces found in each frame; a frame without any gets one `FaceFrame` without points (face
        id 0 when one face is followed, -1 with --all-faces: no face to name)."""
        found = []
        for frame in frames:
            if self.all_faces and frame.index % max(self.config.key_interval, 1) == 0:
                self._add_new_faces(frame.image)
            faces = [self._face(frame, track, track.tracker.step(frame.image)) for track in self.tracks]
            self._drop_lost()
            faces = [face for face in faces if face.points is not None]
            found += faces or [FaceFrame(frame, -1 if self.all_faces else 0, None, float("nan"))]
        return found

    def _face(self, frame: Frame, track: FaceTrack, result: FrameLandmarks) -> FaceFrame:
        if result.points is None:
            track.missing += 1
            return FaceFrame(frame, track.face_id, None, float("nan"))
        track.box, track.missing = landmark_box(result.points), 0
        confidence = 1.0 if result.source == DETECTED else result.confidence
        return FaceFrame(frame, track.face_id, result.points, confidence)

    def _add_new_faces(self, image: np.ndarray) -> None:
        """Start a track for every detected face that no track follows yet (--all-faces)."""
        for box in detect_all(self.landmarker, image):
            if all(track.box is None or iou(box, track.box) < SAME_FACE_IOU for track in self.tracks):
                landmarker = AnchoredLandmarker(self.landmarker, box)
                track = FaceTrack(self.next_id, make_tracker(landmarker, self.config), box)
                landmarker.track = track
                self.tracks.append(track)
                self.next_id += 1

    def _drop_lost(self) -> None:
        """Forget faces not found for three key intervals (a face that comes back gets a new id)."""
        if self.all_faces:
            limit = 3 * max(self.config.key_interval, 1)
            self.tracks = [track for track in self.tracks if track.missing < limit]


class AnchoredLandmarker:
    """A landmarker whose `detect` returns the detected face that overlaps its track's last box, so that each
    tracker of --all-faces keeps to its own face."""

    def __init__(self, landmarker: Any, box: np.ndarray) -> None:
        self.landmarker, self.anchor = landmarker, box
        self.track: FaceTrack | None = None

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        anchor = self.track.box if self.track is not None and self.track.box is not None else self.anchor
        best = max(detect_all(self.landmarker, image), key=lambda box: iou(box, anchor), default=None)
        return best if best is not None and iou(best, anchor) >= SAME_FACE_IOU else None

    def fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        return self.landmarker.fit(image, box)


def detect_all(landmarker: Any, image: np.ndarray) -> list[np.ndarray]:
    """Every face box in `image` (the backend's `detect_all`; a backend without it gives its one face)."""
    if hasattr(landmarker, "detect_all"):
        return list(landmarker.detect_all(image))
    box = landmarker.detect(image)
    return [] if box is None else [box]


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) around 68 landmarks."""
    return np.concatenate([points.min(0), points.max(0)]).astype(np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))
