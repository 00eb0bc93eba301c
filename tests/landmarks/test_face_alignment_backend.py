"""`face_alignment` backend (README, the `landmarks` stage): weights fetched on first use; when unavailable, stop with
a message that says so and names the dlib backend. No test here may touch the network."""
from __future__ import annotations

import numpy as np
import pytest

import aubench.landmarks.face_alignment_backend as backend
from aubench.errors import ConfigError
from aubench.landmarks.pipeline import LandmarkConfig, make_landmarker

face_alignment = pytest.importorskip("face_alignment")
torch_hub = pytest.importorskip("torch.hub")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """A torch hub cache with no weights, and any download attempt turned into a test failure."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download model weights")

    monkeypatch.setattr(torch_hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch_hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", no_download, raising=False)
    monkeypatch.setattr(face_alignment, "FaceAlignment", no_download)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_missing_weights_stop_with_a_message_saying_why_where_and_the_offline_backend(empty_torch_home):
    with pytest.raises(ConfigError) as raised:
        make_landmarker(LandmarkConfig(backend="face_alignment"))
    message = str(raised.value)
    assert "landmarks.backend=face_alignment" in message
    assert "not in the local torch hub cache" in message and "offline" in message
    assert str(empty_torch_home) in message  # where to pre-seed
    assert "2DFAN4-11f355bf06.pth.tar" in message and "s3fd-619a316812.pth" in message  # which files
    assert "https://" in message  # from where
    assert "landmarks.backend: dlib" in message
    assert not empty_torch_home.exists() or not any(empty_torch_home.iterdir())


def test_one_missing_file_is_named_alone(empty_torch_home):
    empty_torch_home.mkdir(parents=True)
    (empty_torch_home / "s3fd-619a316812.pth").write_bytes(b"cached")
    with pytest.raises(ConfigError) as raised:
        backend.check_weights()
    assert "2DFAN4-11f355bf06.pth.tar" in str(raised.value)
    assert "s3fd-619a316812.pth  (from" not in str(raised.value)


def test_required_weights_follow_the_installed_package(empty_torch_home):
    urls = set(backend.required_weights().values())
    assert face_alignment.api.models_urls["2DFAN-4"] in urls
    assert all(path.parent == empty_torch_home for path in backend.required_weights())


class FakeFaceAlignment:
    """Stands in for face_alignment.FaceAlignment: two faces, landmarks placed inside the given box."""

    made: list["FakeFaceAlignment"] = []

    def __init__(self, landmarks_type, device="cuda", face_detector="sfd", compile=True, **kwargs):
        self.settings = {"device": device, "face_detector": face_detector, "compile": compile}
        self.face_detector = self
        FakeFaceAlignment.made.append(self)

    def detect_from_image(self, image):
        return [np.array([10, 10, 50, 60, 0.7]), np.array([5, 8, 90, 95, 0.99])]

    def get_landmarks_from_image(self, image, detected_faces=None):
        x0, y0, x1, y1, _ = detected_faces[0]
        grid = np.linspace(0, 1, 68)[:, None]
        return [np.hstack([x0 + grid * (x1 - x0), y0 + grid * (y1 - y0)])]


def test_cached_weights_build_the_model_lazily_without_compiling(empty_torch_home, monkeypatch):
    empty_torch_home.mkdir(parents=True)
    for path in backend.required_weights():
        path.write_bytes(b"cached")
    monkeypatch.setattr(face_alignment, "FaceAlignment", FakeFaceAlignment)
    FakeFaceAlignment.made.clear()
    landmarker = backend.FaceAlignmentLandmarker(device="cpu")
    assert FakeFaceAlignment.made[0].settings == {"device": "cpu", "face_detector": "sfd", "compile": False}
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    box = landmarker.detect(image)
    np.testing.assert_array_equal(box, [5, 8, 90, 95])  # the most confident face
    points = landmarker.fit(image, box)
    assert points.shape == (68, 2) and points.dtype == np.float32
    np.testing.assert_allclose(points[[0, -1]], [[5, 8], [90, 95]])
