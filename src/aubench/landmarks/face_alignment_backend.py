"""`face_alignment` backend (Bulat & Tzimiropoulos's FAN, the design card's library): S3FD faces + 2D-FAN points.

The library downloads its weights into the torch hub cache on first use, which fails on an offline
machine (and would make a pipeline stage depend on a web server). aubench never triggers that download:
the backend is built lazily, after checking that the weight files are already in the cache, and stops
with a `ConfigError` that says which files to put where, or to use the offline `dlib` backend.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from aubench.errors import ConfigError

#: Fallback URLs (face_alignment 1.5.0) in case the installed package does not expose its own table.
DEFAULT_WEIGHT_URLS = {
    "2DFAN-4": "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
    "s3fd": "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
}


def hub_checkpoint_dir() -> Path:
    """Where torch hub (and face_alignment) keep downloaded weights: `$TORCH_HOME/hub/checkpoints`."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_urls() -> dict[str, str]:
    """The URLs the installed face_alignment downloads its 2D landmark and S3FD detector weights from."""
    urls = dict(DEFAULT_WEIGHT_URLS)
    try:
        from face_alignment import api
        from face_alignment.detection.sfd import sfd_detector

        urls["2DFAN-4"] = api.models_urls["2DFAN-4"]
        urls["s3fd"] = sfd_detector.models_urls["s3fd"]
    except (ImportError, AttributeError, KeyError):
        pass
    return urls


def required_weights() -> dict[Path, str]:
    """Cache path → download URL of every weight file the backend needs."""
    directory = hub_checkpoint_dir()
    return {directory / os.path.basename(urlparse(url).path): url for url in weight_urls().values()}


def check_weights() -> None:
    """Raise ConfigError (why, what to pre-seed where, the offline alternative) unless all weights are cached."""
    missing = {path: url for path, url in required_weights().items() if not path.is_file()}
    if not missing:
        return
    directory = hub_checkpoint_dir()
    files = "\n".join(f"  {path}  (from {url})" for path, url in missing.items())
    raise ConfigError(
        "landmarks.backend=face_alignment: its model weights are not in the local torch hub cache, and "
        "face_alignment would download them on first use, which aubench does not do at run time (this "
        f"machine may be offline). Missing:\n{files}\n"
        f"To pre-seed them, download these files on a machine with internet access and copy them into {directory} "
        "(that folder is $TORCH_HOME/hub/checkpoints; set TORCH_HOME to use another cache). "
        "Or set `landmarks.backend: dlib` in params.yaml, which works offline.")


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' when a GPU is visible, else 'cpu'; anything else is passed to torch as is."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class FaceAlignmentLandmarker:
    """S3FD face detection and 2D-FAN 68-point landmarks, through the `face_alignment` package."""

    def __init__(self, device: str = "auto") -> None:
        try:
            import face_alignment
        except ImportError:
            raise ConfigError("landmarks.backend=face_alignment needs the 'face-alignment' package "
                              "(pip install face-alignment), or set `landmarks.backend: dlib`") from None
        check_weights()
        self.model = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=resolve_device(device),
                                                  face_detector="sfd", compile=False)

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """Most confident face box (x0, y0, x1, y1) in an RGB image, or None when no face is found."""
        boxes = self.model.face_detector.detect_from_image(image.copy())
        if len(boxes) == 0:
            return None
        best = max(boxes, key=lambda box: float(box[4]))
        return np.asarray(best[:4], dtype=np.float32)

    def fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 (x, y) landmarks inside a face box."""
        face = np.append(np.asarray(box, dtype=np.float32), np.float32(1.0))
        landmarks = self.model.get_landmarks_from_image(image, detected_faces=[face])
        return np.asarray(landmarks[0][:, :2], dtype=np.float32)
