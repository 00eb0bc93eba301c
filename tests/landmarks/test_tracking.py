"""Key-frame detection + tracking (README, the `landmarks` stage: detect on key frames, track in between)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from aubench.landmarks.pipeline import LandmarkConfig, make_landmarker, make_tracker, normalised_error
from aubench.landmarks.tracking import (DETECTED, NO_FACE, TRACKED, FlowReference, KeyFrameTracker, face_patch,
                                        follow_box, landmark_motion)

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")

CROP = (120, 30, 200)  # x0, y0, side of a window around the astronaut's face (a ~87 px face)


def astronaut_frame(dx: float = 0.0, dy: float = 0.0, angle: float = 0.0, noise: float = 0.0,
                    seed: int = 0) -> np.ndarray:
    """A CROP window of scikit-image's astronaut photo, with the scene moved by (dx, dy) and rolled by `angle`°."""
    x0, y0, side = CROP
    matrix = cv2.getRotationMatrix2D((220.0, 130.0), angle, 1.0)
    matrix[:, 2] += (dx - x0, dy - y0)
    image = cv2.warpAffine(skimage_data.astronaut(), matrix, (side, side), borderMode=cv2.BORDER_REFLECT)
    if noise:
        image = np.clip(image + np.random.default_rng(seed).normal(0, noise, image.shape), 0, 255).astype(np.uint8)
    return image


class CountingLandmarker:
    """Wraps a backend and counts its detector and fitting calls (and the image shapes the detector saw)."""

    def __init__(self, inner):
        self.inner = inner
        self.detect_calls = 0
        self.fit_calls = 0
        self.detect_shapes = []

    def detect(self, image):
        self.detect_calls += 1
        self.detect_shapes.append(image.shape[:2])
        return self.inner.detect(image)

    def fit(self, image, box):
        self.fit_calls += 1
        return self.inner.fit(image, box)


@pytest.fixture(scope="module")
def dlib_landmarker():
    return make_landmarker(LandmarkConfig(backend="dlib"))


def run(frames, landmarker, **settings):
    counting = CountingLandmarker(landmarker)
    tracker = make_tracker(counting, LandmarkConfig(**settings))
    return list(tracker.run(frames)), counting


def test_tracking_matches_detection_on_every_frame_with_far_fewer_detector_calls(dlib_landmarker):
    """A face drifting 2 px right, 1 px down and 0.4° per frame, with sensor noise: 20 frames."""
    frames = [astronaut_frame(2 * t, t, angle=0.4 * t, noise=3, seed=t) for t in range(20)]
    every, every_calls = run(frames, dlib_landmarker, mode="detect_every_frame")
    tracked, tracked_calls = run(frames, dlib_landmarker, mode="track", key_interval=10)

    assert every_calls.detect_calls == 20 and [result.source for result in every] == [DETECTED] * 20
    assert tracked_calls.detect_calls == 2  # key frames 0 and 10
    # frame 0 has no track: the whole frame; key frame 10 scans only the tracked box grown by 25% per side
    assert tracked_calls.detect_shapes[0] == (200, 200) and max(tracked_calls.detect_shapes[1]) < 200
    assert [result.source for result in tracked] == ([DETECTED] + [TRACKED] * 9) * 2
    assert tracked_calls.fit_calls == 20
    reference = np.stack([result.points for result in every])
    points = np.stack([result.points for result in tracked])
    error = normalised_error(points, reference)  # per frame, in inter-ocular distances
    assert error.mean() < 0.02 and error.max() < 0.04
    confidences = np.array([result.confidence for result in tracked if result.source == TRACKED])
    assert (confidences > 0.9).all()


def test_a_jumping_face_is_redetected_at_once(dlib_landmarker):
    """The face jumps 45 px (about a box half-width) at frame 6: tracking cannot follow, so it re-detects."""
    frames = [astronaut_frame(0 if t < 6 else 45, 0) for t in range(10)]
    tracked, calls = run(frames, dlib_landmarker, mode="track", key_interval=10)
    sources = [result.source for result in tracked]
    assert sources == [DETECTED] + [TRACKED] * 5 + [DETECTED] + [TRACKED] * 3
    assert calls.detect_calls == 2
    assert np.isfinite(tracked[6].confidence)  # the failed tracking attempt's confidence is kept
    every, _ = run(frames[6:], dlib_landmarker, mode="detect_every_frame")
    error = normalised_error(np.stack([r.points for r in tracked[6:]]), np.stack([r.points for r in every]))
    assert error.max() < 0.04


def test_a_vanished_face_is_not_tracked_and_is_found_again(dlib_landmarker):
    """Frames 4–5 show no face (a flat grey frame): not 'detected'; frame 6 finds the face by detection."""
    flat = np.full_like(astronaut_frame(), 128)
    frames = [astronaut_frame() if t not in (4, 5) else flat for t in range(9)]
    tracked, calls = run(frames, dlib_landmarker, mode="track", key_interval=10)
    sources = [result.source for result in tracked]
    assert sources == [DETECTED, TRACKED, TRACKED, TRACKED, NO_FACE, NO_FACE, DETECTED, TRACKED, TRACKED]
    assert tracked[4].points is None and tracked[4].confidence < 0.5
    assert calls.detect_calls == 4  # frame 0, the failed re-detections on 4 and 5, and frame 6


def test_the_box_follows_the_face_not_the_previous_fit(dlib_landmarker):
    """A fit that leans towards its box (gain 0.8; real fits follow their box in part) must not steer the box.

    Boxes placed from the previous frame's fit lag a face moving v px per frame by v / (1 − gain) (7.5 px,
    0.17 eye distances here) and never catch up; boxes moved with the image flow stay on the face.
    """
    velocity, gain = 1.5, 0.8
    frames = [astronaut_frame(velocity * t, 0) for t in range(20)]
    box0 = dlib_landmarker.detect(frames[0]).astype(np.float64)
    truth0 = dlib_landmarker.fit(frames[0], box0).astype(np.float64)
    frame_index = {id(frame): t for t, frame in enumerate(frames)}

    class LeaningFit:
        def detect(self, image):
            return dlib_landmarker.detect(image)

        def fit(self, image, box):
            shift = np.array([velocity * frame_index[id(image)], 0.0])
            lean = (np.add(box[:2], box[2:]) - np.add(box0[:2], box0[2:])) / 2 - shift
            return truth0 + shift + gain * lean

    tracked = list(KeyFrameTracker(LeaningFit(), key_interval=20).run(frames))
    assert [result.source for result in tracked] == [DETECTED] + [TRACKED] * 19
    truth = np.stack([truth0 + [velocity * t, 0.0] for t in range(20)])
    error = normalised_error(np.stack([result.points for result in tracked]), truth)
    assert error.max() < 0.02


def test_key_frames_fall_back_to_the_whole_frame_when_the_region_has_no_face(dlib_landmarker):
    class WholeFrameOnly(CountingLandmarker):
        def detect(self, image):
            box = super().detect(image)
            return box if image.shape[:2] == (200, 200) else None

    frames = [astronaut_frame(t, 0) for t in range(7)]
    landmarker = WholeFrameOnly(dlib_landmarker)
    tracker = KeyFrameTracker(landmarker, key_interval=3)
    sources = [result.source for result in tracker.run(frames)]
    assert sources == [DETECTED, TRACKED, TRACKED] * 2 + [DETECTED]
    # key frames 3 and 6: the region first (finds nothing here), then the whole frame
    assert landmarker.detect_calls == 5 and tracker.detector_calls == 5 and tracker.roi_detector_calls == 2
    assert [max(shape) < 200 for shape in landmarker.detect_shapes] == [False, True, False, True, False]


def test_roi_margin_none_scans_the_whole_frame_on_key_frames(dlib_landmarker):
    frames = [astronaut_frame(t, 0) for t in range(7)]
    landmarker = CountingLandmarker(dlib_landmarker)
    tracker = KeyFrameTracker(landmarker, key_interval=3, roi_margin=None)
    assert [result.source for result in tracker.run(frames)] == [DETECTED, TRACKED, TRACKED] * 2 + [DETECTED]
    assert landmarker.detect_shapes == [(200, 200)] * 3 and tracker.roi_detector_calls == 0
    with pytest.raises(ValueError, match="roi_margin"):
        KeyFrameTracker(landmarker, roi_margin=-1)


def test_key_interval_one_never_tracks(dlib_landmarker):
    frames = [astronaut_frame(t, 0) for t in range(3)]
    results, calls = run(frames, dlib_landmarker, mode="track", key_interval=1)
    assert [result.source for result in results] == [DETECTED] * 3 and calls.detect_calls == 3
    assert all(np.isnan(result.confidence) for result in results)


# ------------------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("shift, zoom", [((6.0, -4.0), 1.0), ((2.5, 3.0), 1.06), ((0.0, 0.0), 0.95)])
def test_follow_box_moves_and_scales_the_box_with_the_image(dlib_landmarker, shift, zoom):
    """The scene moved by `shift` and zoomed by `zoom` about the face: the box follows within a pixel / 1%."""
    image = astronaut_frame()
    box = dlib_landmarker.detect(image).astype(np.float64)
    points = dlib_landmarker.fit(image, box)
    centre = points[27:48].mean(0)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0.0, zoom)
    matrix[:, 2] += shift
    moved = cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    expected = np.concatenate([box[:2] @ matrix[:, :2].T + matrix[:, 2], box[2:] @ matrix[:, :2].T + matrix[:, 2]])
    followed = follow_box(FlowReference.from_frame(image, box, points), moved, box)
    np.testing.assert_allclose(followed, expected, atol=max(1.0, 0.01 * (box[2] - box[0])))


def test_face_patch_ignores_translation_roll_and_brightness_but_not_content(dlib_landmarker):
    image = astronaut_frame()
    points = dlib_landmarker.fit(image, dlib_landmarker.detect(image))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    reference = face_patch(gray, points)
    assert reference @ face_patch(image, points) > 0.98  # RGB (its green channel) or grey input
    assert reference.shape == (32 * 32,) and np.linalg.norm(reference) == pytest.approx(1.0, abs=1e-4)
    matrix = cv2.getRotationMatrix2D((100.0, 100.0), 8.0, 1.0)
    matrix[:, 2] += (5, -4)
    moved = cv2.warpAffine(gray, matrix, gray.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    moved_points = points @ matrix[:, :2].T + matrix[:, 2]
    assert reference @ face_patch(moved, moved_points) > 0.95
    darker = (gray * 0.6 + 20).astype(np.uint8)
    assert reference @ face_patch(darker, points) > 0.98
    assert reference @ face_patch(np.full_like(gray, 90), points) == 0.0
    noise = np.random.default_rng(1).integers(0, 256, gray.shape).astype(np.uint8)
    assert reference @ face_patch(noise, points) < 0.3


def test_landmark_motion_is_in_inter_ocular_distances():
    points = np.zeros((68, 2))
    points[36:42] = [10.0, 0.0]
    points[42:48] = [30.0, 0.0]  # IOD 20
    assert landmark_motion(points, points + [3.0, 4.0]) == pytest.approx(0.25)


def test_tracker_rejects_bad_key_interval():
    with pytest.raises(ValueError, match="key_interval"):
        KeyFrameTracker(object(), key_interval=0)
