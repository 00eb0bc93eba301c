"""Piecewise-affine warps of a face canvas driven by its 68 landmarks.

`MeshWarp` is built once per identity: a Delaunay triangulation of the landmarks plus fixed anchor points
and every pixel's barycentric weights as a sparse matrix, so a frame's dense displacement field is one
sparse product. The image is then resampled with the inverse map, refined by a couple of fixed-point steps
(exact enough for AU-sized motion). `warp_exact` is the slower exact inverse used once per identity for
large reshaping (identity geometry, closing a smiling mouth).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import Delaunay

from aubench.errors import DataError


def anchor_points(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Fixed points that pin the warp: canvas corners and edge midpoints, and a ring around the face.

    The ring keeps deformation local to the face; it sits far enough below the chin for a full jaw drop.
    """
    low, high = -1.0, float(size)
    mid = (low + high) / 2
    frame = [(low, low), (mid, low), (high, low), (high, mid), (high, high), (mid, high), (low, high), (low, mid)]
    centre = (landmarks.min(axis=0) + landmarks.max(axis=0)) / 2
    half = (landmarks.max(axis=0) - landmarks.min(axis=0)) / 2
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + np.stack([1.5 * half[0] * np.cos(angles), 1.9 * half[1] * np.sin(angles)], axis=1)
    ring = np.clip(ring, low + 1, high - 1)
    return np.vstack([np.array(frame), ring])


def _pixel_grid(size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def _barycentric(triangulation: Delaunay, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the 3 vertex indices of its triangle and the barycentric weights."""
    simplex = triangulation.find_simplex(pixels)
    if (simplex < 0).any():
        raise DataError("SynthAU mesh does not cover the canvas (anchor points misplaced)")
    transform = triangulation.transform[simplex]
    partial = np.einsum("nij,nj->ni", transform[:, :2], pixels - transform[:, 2])
    weights = np.concatenate([partial, 1.0 - partial.sum(axis=1, keepdims=True)], axis=1)
    return triangulation.simplices[simplex], weights


def _triangulate(points: np.ndarray) -> Delaunay:
    triangulation = Delaunay(points)
    if len(triangulation.coplanar):
        raise DataError(f"SynthAU mesh: {len(triangulation.coplanar)} landmarks coincide; cannot triangulate")
    return triangulation


class MeshWarp:
    """Fast warp of one identity's neutral canvas by small landmark displacements.

    Only pixels in triangles touching a landmark can move; the warp works on their bounding box (about
    a third of the canvas) and leaves the rest of the canvas as it is.
    """

    def __init__(self, landmarks: np.ndarray, size: int) -> None:
        control = np.vstack([landmarks, anchor_points(landmarks, size)])
        vertices, weights = _barycentric(_triangulate(control), _pixel_grid(size))
        weights[vertices >= len(landmarks)] = 0.0  # anchors never move
        vertices = np.minimum(vertices, len(landmarks) - 1)  # (their zero weights may sit in any column)
        moving = (weights > 0).any(axis=1).reshape(size, size)
        rows, cols = np.flatnonzero(moving.any(axis=1)), np.flatnonzero(moving.any(axis=0))
        self.box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        self.shape = (rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])
        inside = np.zeros((size, size), bool)
        inside[self.box] = True
        vertices, weights = vertices[inside.ravel()], weights[inside.ravel()]
        pixels = np.repeat(np.arange(len(vertices)), 3)
        self.weights = csr_matrix((weights.ravel().astype(np.float32), (pixels, vertices.ravel())),
                                  shape=(len(vertices), len(landmarks)))
        ys, xs = np.mgrid[self.box]
        self.grid_x, self.grid_y = xs.astype(np.float32), ys.astype(np.float32)

    def field(self, displacement: np.ndarray) -> np.ndarray:
        """Forward displacement (h, w, 2) of every pixel in `box`."""
        return (self.weights @ displacement.astype(np.float32)).reshape(*self.shape, 2)

    def inverse_maps(self, displacement: np.ndarray, iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Source coordinates of every output pixel in `box`: solves x = y - d(x) by fixed-point steps."""
        field = self.field(displacement)
        map_x, map_y = self.grid_x - field[..., 0], self.grid_y - field[..., 1]
        top, left = np.float32(self.box[0].start), np.float32(self.box[1].start)
        for _ in range(iterations):
            sampled = cv2.remap(field, map_x - left, map_y - top, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            map_x, map_y = self.grid_x - sampled[..., 0], self.grid_y - sampled[..., 1]
        return map_x, map_y

    def warp(self, image: np.ndarray, displacement: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The canvas with its landmarks moved by `displacement` (68, 2) pixels (into `out`, may be `image`)."""
        map_x, map_y = self.inverse_maps(displacement)
        moved = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        result = image.copy() if out is None else out
        result[self.box] = moved
        return result


def warp_exact(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Exact piecewise-affine warp of a square canvas moving landmarks `source` to `target`."""
    size = image.shape[0]
    anchors = anchor_points(source, size)
    source_control, target_control = np.vstack([source, anchors]), np.vstack([target, anchors])
    vertices, weights = _barycentric(_triangulate(target_control), _pixel_grid(size))
    coordinates = np.einsum("nk,nkc->nc", weights, source_control[vertices]).astype(np.float32)
    coordinates = coordinates.reshape(size, size, 2)
    return cv2.remap(image, coordinates[..., 0], coordinates[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT101)
