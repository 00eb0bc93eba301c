"""The landmarks stage (README, the `landmarks` stage; iBUG 68-point order): gap filling, QA, dlib backend."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

import aubench.landmarks.pipeline as pipeline
from aubench.data.datasets import SequenceRecord
from aubench.data.video import ImageFrames, write_image
from aubench.errors import ConfigError, DataError
from aubench.landmarks.pipeline import (LandmarkConfig, SequenceLandmarks, detect_sequence, fill_gaps,
                                        inter_ocular_distance, normalised_error, run_landmarks)

# Six offsets summing to zero: a hexagon around an eye centre.
EYE_RING = np.array([[-3, 0], [-1.5, -1], [1.5, -1], [3, 0], [1.5, 1], [-1.5, 1]], dtype=np.float64)


def face_points(left_eye, right_eye, seed: int = 0) -> np.ndarray:
    """68 random points whose 36–41 mean is `left_eye` and 42–47 mean is `right_eye` (iBUG 68-point order)."""
    points = np.random.default_rng(seed).uniform(0, 100, size=(68, 2))
    points[36:42] = np.asarray(left_eye, dtype=np.float64) + EYE_RING
    points[42:48] = np.asarray(right_eye, dtype=np.float64) + 0.5 * EYE_RING
    return points


# ----------------------------------------------------------------------------------------------- fill_gaps


def track(values: list[float]) -> np.ndarray:
    """(T, 68, 2) points where every coordinate of frame t equals values[t]."""
    return np.repeat(np.asarray(values, dtype=np.float32)[:, None, None], 68, axis=1).repeat(2, axis=2)


def test_fill_gaps_two_frame_gap_is_exactly_linear():
    """Short gaps are filled by interpolation between detected frames."""
    points = track([0, 3, 99, 99, 12, 12])
    detected = np.array([True, True, False, False, True, True])
    filled, valid = fill_gaps(points, detected, max_gap=2)
    np.testing.assert_allclose(filled[:, 0, 0], [0, 3, 6, 9, 12, 12], atol=1e-5)
    np.testing.assert_allclose(filled[2], np.full((68, 2), 6.0), atol=1e-5)
    assert valid.all()
    # Inputs are not modified.
    assert points[2, 0, 0] == 99 and not detected[2]


def test_fill_gaps_interpolates_each_point_independently():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(68, 2)), rng.normal(size=(68, 2))
    points = np.stack([start, np.zeros((68, 2)), np.zeros((68, 2)), np.zeros((68, 2)), end])
    detected = np.array([True, False, False, False, True])
    filled, valid = fill_gaps(points, detected, max_gap=3)
    for index, weight in ((1, 0.25), (2, 0.5), (3, 0.75)):
        np.testing.assert_allclose(filled[index], (1 - weight) * start + weight * end)
    assert valid.all()


def test_fill_gaps_longer_than_max_gap_stays_invalid():
    points = track([1, 0, 0, 0, 5, 0, 7])
    detected = np.array([True, False, False, False, True, False, True])
    filled, valid = fill_gaps(points, detected, max_gap=2)
    np.testing.assert_array_equal(valid, [True, False, False, False, True, True, True])
    np.testing.assert_array_equal(filled[1:4], points[1:4])  # long gap untouched
    np.testing.assert_allclose(filled[5], np.full((68, 2), 6.0))  # short gap filled


def test_fill_gaps_leading_and_trailing_short_gaps_are_held():
    points = track([0, 0, 4, 5, 8, 0])
    detected = np.array([False, False, True, True, True, False])
    filled, valid = fill_gaps(points, detected, max_gap=2)
    np.testing.assert_allclose(filled[:, 0, 0], [4, 4, 4, 5, 8, 8])
    assert valid.all()
    # Too long at the start: stays invalid.
    filled, valid = fill_gaps(points, detected, max_gap=1)
    np.testing.assert_array_equal(valid, [False, False, True, True, True, True])
    np.testing.assert_allclose(filled[5], np.full((68, 2), 8.0))


def test_fill_gaps_without_detections_is_all_invalid():
    points = track([1, 2, 3])
    filled, valid = fill_gaps(points, np.zeros(3, dtype=bool), max_gap=10)
    assert not valid.any()
    np.testing.assert_array_equal(filled, points)


def test_fill_gaps_max_gap_zero_fills_nothing():
    detected = np.array([True, False, True])
    _, valid = fill_gaps(track([0, 0, 2]), detected, max_gap=0)
    np.testing.assert_array_equal(valid, detected)


# ------------------------------------------------------------------------------------ detect_sequence


def detect_every_frame_config(**settings) -> LandmarkConfig:
    """The fake landmarker's points are no face (all 68 equal), so these tests detect on every frame."""
    return LandmarkConfig(mode="detect_every_frame", **settings)


class FakeLandmarker:
    """Finds no face on the chosen call numbers; otherwise returns points that encode the frame index."""

    def __init__(self, faceless: set[int]):
        self.faceless = faceless
        self.calls = 0
        self.fitted: list[int] = []

    def detect(self, image):
        index = self.calls
        self.calls += 1
        if index in self.faceless:
            return None
        return np.array([0, 0, image.shape[1], image.shape[0]], dtype=np.float32)

    def fit(self, image, box):
        self.fitted.append(self.calls - 1)
        return np.full((68, 2), float(self.calls - 1), dtype=np.float32)


def make_record(root: Path, count: int, subject: str = "F001", task: str = "T1") -> SequenceRecord:
    paths = []
    for index in range(count):
        path = root / subject / task / f"{index + 1:04d}.jpg"
        write_image(path, np.full((16, 16, 3), 10 * index, dtype=np.uint8))
        paths.append(path)
    labels = np.zeros((count, 12), dtype=np.int8)
    return SequenceRecord(subject, task, np.arange(1, count + 1), ImageFrames(tuple(paths)), labels)


@pytest.fixture
def fake_landmarker(monkeypatch):
    """Install a FakeLandmarker factory; returns a function that sets the faceless frames."""
    made: list[FakeLandmarker] = []

    def install(faceless):
        def factory(config):
            landmarker = FakeLandmarker(set(faceless))
            made.append(landmarker)
            return landmarker

        monkeypatch.setattr(pipeline, "make_landmarker", factory)
        return made

    return install


def test_detect_sequence_logs_faceless_frames_and_fills_them(tmp_path, fake_landmarker, caplog):
    """Per-frame success is recorded, the faceless frame is named in the log, and the short gap filled."""
    record = make_record(tmp_path, 6)
    fake_landmarker({2})
    with caplog.at_level(logging.WARNING, logger="aubench.landmarks.pipeline"):
        result = detect_sequence(record, detect_every_frame_config(max_gap=2))
    np.testing.assert_array_equal(result.detected, [True, True, False, True, True, True])
    assert result.valid.all()
    assert result.points.shape == (6, 68, 2)
    np.testing.assert_allclose(result.points[:, 0, 0], [0, 1, 2, 3, 4, 5])  # frame 2 interpolated from 1 and 3
    warnings = [entry.getMessage() for entry in caplog.records if entry.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "0003.jpg" in warnings[0] and "no face" in warnings[0] and "frame 3" in warnings[0]


def test_detect_sequence_at_the_invalid_limit_passes(tmp_path, fake_landmarker):
    record = make_record(tmp_path, 10)
    fake_landmarker({0, 5})
    result = detect_sequence(record, detect_every_frame_config(max_gap=0, max_invalid_fraction=0.2))
    assert int((~result.valid).sum()) == 2


def test_detect_sequence_too_many_invalid_frames_raises_naming_sequence_and_frame(tmp_path, fake_landmarker):
    """A sequence with too many invalid frames stops the stage with a message naming it."""
    record = make_record(tmp_path, 10, subject="M007", task="T3")
    fake_landmarker({4, 5, 6})
    with pytest.raises(DataError) as raised:
        detect_sequence(record, detect_every_frame_config(max_gap=2, max_invalid_fraction=0.2))
    message = str(raised.value)
    assert "M007_T3" in message and "0005.jpg" in message and "3 of 10" in message


def test_make_landmarker_rejects_unknown_backend():
    with pytest.raises(ConfigError, match="'openface'"):
        pipeline.make_landmarker(LandmarkConfig(backend="openface"))


def test_sequence_landmarks_save_load_round_trip(tmp_path):
    landmarks = SequenceLandmarks(np.random.default_rng(0).normal(size=(3, 68, 2)).astype(np.float32),
                                  np.array([True, False, True]), np.array([True, True, True]))
    path = tmp_path / "F001_T1.npz"
    landmarks.save(path)
    assert sorted(item.name for item in tmp_path.iterdir()) == ["F001_T1.npz"]
    loaded = SequenceLandmarks.load(path)
    np.testing.assert_array_equal(loaded.points, landmarks.points)
    np.testing.assert_array_equal(loaded.detected, landmarks.detected)
    with pytest.raises(DataError, match="missing.npz"):
        SequenceLandmarks.load(tmp_path / "missing.npz")


def test_run_landmarks_writes_files_and_reports(tmp_path, fake_landmarker):
    """Report detection rate and landmark error normalised by inter-ocular distance."""
    first = make_record(tmp_path / "frames", 4, "F001", "T1")
    second = make_record(tmp_path / "frames", 2, "F002", "T1")
    fake_landmarker({1})  # each sequence gets its own landmarker: frame 1 of each is faceless
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    # Fake points for frame t are all equal to t; the truth equals them except the image-right eye (42–47),
    # 10 px to the right: inter-ocular distance 10, error 10 px on 6 of 68 points → NME 6/68 per frame.
    truth = np.repeat(np.arange(4, dtype=np.float64)[:, None, None], 68, axis=1).repeat(2, axis=2)
    truth[:, 42:48, 0] += 10
    truth[1] *= 50  # frame 1 is faceless: its (interpolated) points must not count
    np.save(truth_dir / "F001_T1.npy", truth)

    report = run_landmarks([first, second], detect_every_frame_config(max_gap=1, max_invalid_fraction=0.5), tmp_path / "out",
                           ground_truth_root=truth_dir)
    saved = SequenceLandmarks.load(tmp_path / "out" / "F001_T1.npz")
    np.testing.assert_array_equal(saved.detected, [True, False, True, True])
    assert (tmp_path / "out" / "F002_T1.npz").is_file()
    assert report["frames"] == 6
    assert report["detection_rate"] == pytest.approx(4 / 6)
    assert report["sequences"]["F002_T1"]["detection_rate"] == pytest.approx(0.5)
    assert "nme" not in report["sequences"]["F002_T1"]
    expected = 6 / 68  # frame 1 (interpolated, not detected) is left out of the error
    assert report["sequences"]["F001_T1"]["nme"] == pytest.approx(expected)
    assert report["nme_vs_ground_truth"] == pytest.approx(expected)


# ------------------------------------------------------------------------------------ normalised error


def test_inter_ocular_distance_uses_eye_centres():
    """iBUG order: the eyes are points 36–41 (image-left) and 42–47 (image-right)."""
    points = face_points((20, 30), (26, 38))  # 6-8-10 triangle
    assert inter_ocular_distance(points) == pytest.approx(10.0)
    batch = np.stack([points, face_points((0, 0), (0, 4), seed=1)])
    np.testing.assert_allclose(inter_ocular_distance(batch), [10.0, 4.0])


def test_normalised_error_hand_worked():
    truth = face_points((40, 50), (50, 50))
    assert normalised_error(truth + [1.0, 0.0], truth) == pytest.approx(0.1)
    assert normalised_error(truth + [0.0, -1.0], truth) == pytest.approx(0.1)
    # Half the points off by 3-4-5 = 5 px, the rest exact: mean 2.5 px over IOD 10 → 0.25.
    predicted = truth.copy()
    predicted[:34] += [3.0, 4.0]
    assert normalised_error(predicted, truth) == pytest.approx(0.25)
    # Normalised by the *true* IOD, not the predicted one; per frame over a batch.
    shrunk = truth.copy()
    shrunk[42:48] -= [5.0, 0.0]
    errors = normalised_error(np.stack([truth, shrunk]), np.stack([truth, truth]))
    np.testing.assert_allclose(errors, [0.0, 6 * 5.0 / 68 / 10.0])


# --------------------------------------------------------------------------------------- real dlib run


def test_dlib_finds_68_landmarks_on_a_real_photo():
    """The offline dlib backend on a real photo (scikit-image's astronaut)."""
    pytest.importorskip("dlib")
    data = pytest.importorskip("skimage.data")
    from aubench.landmarks.dlib_backend import DlibLandmarker

    image = data.astronaut()
    landmarker = pipeline.make_landmarker(LandmarkConfig(backend="dlib"))
    assert isinstance(landmarker, DlibLandmarker)
    box = landmarker.detect(image)
    assert box is not None and box.shape == (4,)
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
    points = landmarker.fit(image, box)
    assert points.shape == (68, 2)
    left, right = points[36:42].mean(0), points[42:48].mean(0)
    assert left[0] < right[0]
    assert 30 <= inter_ocular_distance(points) <= 60
    assert abs(left[1] - right[1]) < 15  # roughly level
    # Eyes inside the box, above the mouth (48–67), which is above the chin (8).
    assert x0 <= left[0] and right[0] <= x1 and y0 <= left[1] <= y1
    assert max(left[1], right[1]) < points[48:68, 1].mean() < points[8, 1]
    # A flat image has no face.
    assert landmarker.detect(np.full((120, 120, 3), 128, dtype=np.uint8)) is None
    # Strided views (a crop, a channel flip) are found too: dlib's detector silently misreads them.
    padded = np.zeros((image.shape[0] + 40, image.shape[1] + 60, 3), np.uint8)
    padded[20:-20, 30:-30] = image
    np.testing.assert_allclose(landmarker.detect(padded[20:-20, 30:-30]), box)
    assert landmarker.detect(image[..., ::-1]) is not None


# ------------------------------------------------------------------------------------------ config, resume


def test_config_rejects_unknown_mode_and_bad_values():
    with pytest.raises(ConfigError, match="landmarks.mode"):
        LandmarkConfig(mode="sometimes")
    with pytest.raises(ConfigError, match="landmarks.key_interval"):
        LandmarkConfig(key_interval=0)
    with pytest.raises(ConfigError, match="landmarks.max_invalid_fraction"):
        LandmarkConfig(max_invalid_fraction=1.5)
    with pytest.raises(ConfigError, match="landmarks.track_roi_margin"):
        LandmarkConfig(track_roi_margin=-0.1)
    assert LandmarkConfig(track_roi_margin=None).track_roi_margin is None


def test_old_landmark_files_without_tracking_fields_still_load(tmp_path):
    path = tmp_path / "F001_T1.npz"
    np.savez(path, points=np.zeros((2, 68, 2), np.float32), detected=np.array([True, False]),
             valid=np.array([True, True]))
    loaded = SequenceLandmarks.load(path)
    np.testing.assert_array_equal(loaded.source, [pipeline.DETECTED, pipeline.NO_FACE])
    assert np.isnan(loaded.confidence).all() and loaded.resume_key == ""


def detector_calls(made) -> int:
    return sum(landmarker.calls for landmarker in made)


def test_run_landmarks_resumes_and_redoes_only_changed_sequences(tmp_path, fake_landmarker):
    """Issue #4: a sequence already done is not redone; one whose frames changed is."""
    first = make_record(tmp_path / "frames", 4, "F001", "T1")
    second = make_record(tmp_path / "frames", 3, "F002", "T1")
    out = tmp_path / "out"
    config = detect_every_frame_config(max_gap=1)
    made = fake_landmarker(set())
    report = run_landmarks([first, second], config, out)
    assert detector_calls(made) == 7 and report["sequences_computed"] == 2
    key = SequenceLandmarks.load(out / "F001_T1.npz").resume_key
    assert len(key) == 64

    report = run_landmarks([first, second], config, out)  # nothing changed: nothing redone
    assert detector_calls(made) == 7
    assert report["sequences_computed"] == 0 and report["sequences_reused"] == 2
    assert report["frames"] == 7 and report["frames_per_second"] is None
    run_landmarks([first, second], detect_every_frame_config(max_gap=1, workers=3), out)  # workers: not in key
    assert detector_calls(made) == 7

    frame = first.frames.paths[2]  # a touched frame file (new modification time, same content): not redone
    stat = frame.stat()
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    report = run_landmarks([first, second], config, out)
    assert detector_calls(made) == 7 and report["sequences_computed"] == 0
    assert SequenceLandmarks.load(out / "F001_T1.npz").resume_key == key

    write_image(frame, np.full((16, 16, 3), 200, dtype=np.uint8))  # an edited frame: F001_T1 is redone, F002_T1 not
    report = run_landmarks([first, second], config, out)
    assert detector_calls(made) == 7 + 4 and report["sequences_computed"] == 1
    assert SequenceLandmarks.load(out / "F001_T1.npz").resume_key != key

    run_landmarks([first, second], detect_every_frame_config(max_gap=2), out)  # a landmark param: all redone
    assert detector_calls(made) == 11 + 7


def test_run_landmarks_removes_stale_and_partial_files(tmp_path, fake_landmarker):
    """Outputs of sequences no longer in the dataset, and interrupted writes, do not survive a run."""
    record = make_record(tmp_path / "frames", 2)
    out = tmp_path / "out"
    out.mkdir()
    SequenceLandmarks(np.zeros((5, 68, 2), np.float32), np.ones(5, bool), np.ones(5, bool)).save(out / "M009_T4.npz")
    (out / "F001_T1.partial.npz").write_bytes(b"half a file")
    fake_landmarker(set())
    report = run_landmarks([record], detect_every_frame_config(), out)
    assert sorted(path.name for path in out.iterdir()) == ["F001_T1.npz"]
    assert list(report["sequences"]) == ["F001_T1"]


def test_interrupted_run_keeps_finished_sequences_and_resumes(tmp_path, monkeypatch):
    """A failing sequence stops the stage; finished ones are complete files, the failed one has none."""
    good = make_record(tmp_path / "frames", 3, "F001", "T1")
    bad = make_record(tmp_path / "frames", 3, "F002", "T1")
    made: list[FakeLandmarker] = []
    faceless_everywhere = {"on": True}

    def factory(config):
        landmarker = FakeLandmarker(set(range(100)) if faceless_everywhere["on"] and len(made) == 1 else set())
        made.append(landmarker)
        return landmarker

    monkeypatch.setattr(pipeline, "make_landmarker", factory)
    out = tmp_path / "out"
    with pytest.raises(DataError, match="F002_T1"):
        run_landmarks([good, bad], detect_every_frame_config(), out)
    assert sorted(path.name for path in out.iterdir()) == ["F001_T1.npz"]
    faceless_everywhere["on"] = False
    report = run_landmarks([good, bad], detect_every_frame_config(), out)
    assert report["sequences_computed"] == 1 and report["sequences_reused"] == 1
    assert len(made) == 3  # F001_T1, the failed F002_T1, then only F002_T1 again


def test_report_counts_detector_use_and_checks_ground_truth_shape(tmp_path, fake_landmarker):
    record = make_record(tmp_path / "frames", 3)
    fake_landmarker(set())
    truth = tmp_path / "truth"
    truth.mkdir()
    np.save(truth / "F001_T1.npy", np.zeros((2, 68, 2)))
    with pytest.raises(DataError, match=r"F001_T1\.npy.*shape"):
        run_landmarks([record], detect_every_frame_config(), tmp_path / "out", ground_truth_root=truth)
    (truth / "F001_T1.npy").unlink()
    report = run_landmarks([record], detect_every_frame_config(), tmp_path / "out", ground_truth_root=truth)
    entry = report["sequences"]["F001_T1"]
    assert entry["detector_rate"] == 1.0 and entry["tracked_rate"] == 0.0 and entry["redetections"] == 0
    assert report["mode"] == "detect_every_frame" and report["key_interval"] == 1
