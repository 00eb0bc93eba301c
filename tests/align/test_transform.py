"""Similarity alignment (README, the `align` stage): eye centres level, at a fixed distance and position."""
from __future__ import annotations

import numpy as np
import pytest

from aubench.align.transform import AlignConfig, align_frame, eye_centres, eye_template, similarity_matrix

# Six offsets summing to zero: a hexagon around an eye centre.
EYE_RING = np.array([[-3, 0], [-1.5, -1], [1.5, -1], [3, 0], [1.5, 1], [-1.5, 1]], dtype=np.float64)


def face_points(left_eye, right_eye, seed: int = 0) -> np.ndarray:
    """68 points (iBUG 68-point order) whose 36–41 mean is `left_eye` and 42–47 mean is `right_eye`."""
    points = np.random.default_rng(seed).uniform(0, 50, size=(68, 2))
    points[36:42] = np.asarray(left_eye, dtype=np.float64) + EYE_RING
    points[42:48] = np.asarray(right_eye, dtype=np.float64) + 0.7 * EYE_RING[::-1]
    return points


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_eye_template_hand_worked():
    np.testing.assert_allclose(eye_template(AlignConfig(crop_size=128, eye_distance=0.32, eye_height=0.38)),
                               [[43.52, 48.64], [84.48, 48.64]])
    np.testing.assert_allclose(eye_template(AlignConfig(crop_size=256, eye_distance=0.25, eye_height=0.5)),
                               [[96, 128], [160, 128]])


def test_eye_centres_are_the_means_of_points_36_41_and_42_47():
    """The eyes are iBUG points 36–47; 36–41 is the image-left eye."""
    np.testing.assert_allclose(eye_centres(face_points((12.5, 30), (40, 31.5))), [[12.5, 30], [40, 31.5]])


def test_similarity_matrix_hand_worked():
    """(0,0)->(0,0), (1,0)->(0,2): a 90° rotation with scale 2."""
    matrix = similarity_matrix(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(matrix, [[0, -2, 0], [2, 0, 0]], atol=1e-12)
    shift = similarity_matrix(np.array([[1.0, 1.0], [3.0, 1.0]]), np.array([[11.0, -4.0], [13.0, -4.0]]))
    np.testing.assert_allclose(shift, [[1, 0, 10], [0, 1, -5]], atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_similarity_matrix_maps_both_points_and_is_a_similarity(seed):
    rng = np.random.default_rng(seed)
    source, target = rng.uniform(-100, 300, size=(2, 2, 2))
    matrix = similarity_matrix(source, target)
    assert matrix.shape == (2, 3)
    np.testing.assert_allclose(apply(matrix, source), target, atol=1e-9)
    linear = matrix[:, :2]
    scale = np.linalg.norm(target[1] - target[0]) / np.linalg.norm(source[1] - source[0])
    np.testing.assert_allclose(linear.T @ linear, scale**2 * np.eye(2), rtol=1e-9, atol=1e-9)
    assert np.linalg.det(linear) > 0  # no reflection
    # A third point keeps its distances' ratio (it is a similarity, not just any map of two points).
    other = rng.uniform(-100, 300, size=2)
    assert np.linalg.norm(apply(matrix, other[None])[0] - target[0]) == pytest.approx(
        scale * np.linalg.norm(other - source[0]))


def blob_image(size: int, centres: dict[int, tuple[float, float]], sigma: float) -> np.ndarray:
    """A dark RGB image with one bright Gaussian dot per channel at the given (x, y)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    image = np.zeros((size, size, 3), dtype=np.float64)
    for channel, (x, y) in centres.items():
        image[..., channel] += 255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def centroid(channel: np.ndarray) -> np.ndarray:
    weights = channel.astype(np.float64)
    weights[weights < 8] = 0  # ignore faint edge pixels
    ys, xs = np.mgrid[0:channel.shape[0], 0:channel.shape[1]]
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


@pytest.mark.parametrize("size, left, right, sigma", [
    (160, (60.0, 70.0), (100.0, 70.0), 1.5),        # level, almost the template's scale
    (160, (55.3, 92.1), (101.7, 66.4), 1.5),        # rolled by about 29°: must come out level
    (160, (104.0, 60.0), (58.0, 82.0), 1.5),        # upside-down-ish roll (> 90°)
    (400, (120.0, 230.0), (290.0, 190.0), 5.0),     # large face: shrinks about 4×
])
def test_align_frame_puts_eye_centres_on_the_template(size, left, right, sigma):
    """Eye centres level, at the template's distance and position (left eye in red, right in green)."""
    config = AlignConfig(crop_size=128)
    image = blob_image(size, {0: left, 1: right}, sigma)
    crop = align_frame(image, face_points(left, right), config)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    template = eye_template(config)
    np.testing.assert_allclose(centroid(crop[..., 0]), template[0], atol=1.0)
    np.testing.assert_allclose(centroid(crop[..., 1]), template[1], atol=1.0)
    assert abs(centroid(crop[..., 0])[1] - centroid(crop[..., 1])[1]) < 1.0  # level


def test_align_frame_is_identity_when_eyes_already_on_the_template():
    config = AlignConfig(crop_size=48, eye_distance=0.4, eye_height=0.4)
    template = eye_template(config)
    image = np.random.default_rng(0).integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    crop = align_frame(image, face_points(template[0], template[1]), config)
    np.testing.assert_array_equal(crop, image)


def test_align_frame_with_other_crop_size():
    config = AlignConfig(crop_size=64, eye_distance=0.4, eye_height=0.45)
    left, right = (30.0, 40.0), (70.0, 50.0)
    crop = align_frame(blob_image(100, {0: left, 2: right}, 1.5), face_points(left, right), config)
    assert crop.shape == (64, 64, 3)
    template = eye_template(config)
    np.testing.assert_allclose(centroid(crop[..., 0]), template[0], atol=1.0)
    np.testing.assert_allclose(centroid(crop[..., 2]), template[1], atol=1.0)
