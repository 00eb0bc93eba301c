"""dlib backend: HOG face detector + the 68-point shape predictor from `face-recognition-models`.

Works offline: the predictor file ships inside the `face_recognition_models` wheel. We locate it through
the import system without importing the package, whose `__init__` needs `pkg_resources`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from aubench.errors import ConfigError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """Path of dlib's 68-point model shipped by the `face-recognition-models` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("landmarks.backend=dlib needs the 'face-recognition-models' package "
                          "(pip install -r requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: dlib 68-point model is missing from face-recognition-models")
    return path


class DlibLandmarker:
    """Detects the largest face and fits 68 landmarks; `upsample` doubles the image per step for small faces."""

    def __init__(self, upsample: int = 0) -> None:
        import dlib

        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path()))
        self._rectangle = dlib.rectangle

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """Largest face box (x0, y0, x1, y1) in an RGB image, or None when no face is found."""
        return max(self.detect_all(image), key=lambda box: (box[2] - box[0]) * (box[3] - box[1]), default=None)

    def detect_all(self, image: np.ndarray) -> list[np.ndarray]:
        """Every face box (x0, y0, x1, y1) in an RGB image."""
        # dlib's detector silently finds nothing in strided views (crops, channel flips): pass it a copy
        boxes = self.detector(np.ascontiguousarray(image), self.upsample)
        return [np.array([box.left(), box.top(), box.right(), box.bottom()], dtype=np.float32) for box in boxes]

    def fit(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 (x, y) landmarks inside a face box."""
        x0, y0, x1, y1 = (int(round(value)) for value in box)
        shape = self.predictor(image, self._rectangle(x0, y0, x1, y1))
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float32)
