"""Synthetic subjects: distinct identities made from two photos by mirroring, reshaping and recolouring.

Some traits deliberately mimic AUs (high or low brows, down-turned mouth corners, deep nasolabial folds),
so a single frame is ambiguous and only the change over time tells an AU from a face's resting shape.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from aubench.data.synthau.faces import PHOTOS, Face, canonical, mirror, photo_face
from aubench.data.synthau.rig import CUES, SIDE
from aubench.data.synthau.warp import MeshWarp, warp_exact
from aubench.seeding import rng

_INNER_UPPER, _INNER_LOWER = (61, 62, 63), (67, 66, 65)
_OUTER_UPPER, _OUTER_LOWER = (49, 50, 51, 52, 53), (59, 58, 57, 56, 55)


@dataclass(frozen=True)
class IdentityTraits:
    """What makes a subject: source photo, mirroring, proportions (IOD units) and colour."""

    photo: str
    mirrored: bool
    eye_spacing: float
    face_width: float
    brow_height: float
    mouth_width: float
    corner_droop: float
    nose_length: float
    chin_length: float
    fold_depth: float
    skin_gain: tuple[float, float, float]
    camera_gain: tuple[float, float, float]
    side_light: float


@dataclass(frozen=True)
class Identity:
    """A subject's neutral canvas (float32 RGB), landmarks, warp mesh and appearance-cue maps."""

    subject: str
    traits: IdentityTraits
    face: Face
    mesh: MeshWarp
    cue_maps: dict[str, np.ndarray]

    @property
    def iod(self) -> float:
        return self.face.iod

    @functools.cached_property
    def cue_stack(self) -> np.ndarray:
        """(n_cues, h, w) cue maps in `rig.CUES` order, cropped to the mesh's moving box (where cues lie)."""
        return np.stack([self.cue_maps[name][self.mesh.box] for name in CUES])


def subject_name(index: int, layout: str) -> str:
    """BP4D-style F001, M001, F002, … or DISFA-style SN001, SN002, …"""
    if layout == "disfa":
        return f"SN{index + 1:03d}"
    return f"{'FM'[index % 2]}{index // 2 + 1:03d}"


#: Half-range (IOD) of each shape trait: eye spacing, face width, brow height, mouth width, corner droop,
#: nose length, chin length. Brow height and corner droop mimic AU1/2/4 and AU15/12 at rest.
SHAPE_RANGE = np.array([0.07, 0.12, 0.08, 0.10, 0.035, 0.07, 0.09])
_COMBINATIONS = 2 * len(PHOTOS)  # photo x mirrored


def sample_traits(seed: int, index: int, variation: float = 1.0) -> IdentityTraits:
    """Traits of identity `index`: the first four cover photo x mirroring, the rest vary shape and colour.

    An identity that reuses the photo and mirroring of the one `_COMBINATIONS` earlier takes the opposite
    side of every shape trait, so the two cannot come out as near twins.
    """
    generator = rng(seed, "identity", index)
    shape = _shape_draw(seed, index)
    if (index // _COMBINATIONS) % 2 == 1:
        shape = -np.sign(_shape_draw(seed, index - _COMBINATIONS)) * (0.5 + 0.5 * np.abs(shape))
    eye, width, brow, mouth, droop, nose, chin = shape * SHAPE_RANGE * variation
    luminance = 1.0 + float(generator.uniform(-0.28, 0.12)) * variation
    warmth = float(generator.uniform(-0.06, 0.06)) * variation
    return IdentityTraits(
        photo=PHOTOS[index % len(PHOTOS)], mirrored=bool((index // len(PHOTOS)) % 2),
        eye_spacing=eye, face_width=width, brow_height=brow, mouth_width=mouth, corner_droop=droop + 0.01,
        nose_length=nose, chin_length=chin, fold_depth=float(generator.uniform(0.0, 0.3)) * variation,
        skin_gain=(luminance * (1 + warmth), luminance, luminance * (1 - warmth)),
        camera_gain=tuple(1.0 + float(generator.uniform(-0.05, 0.05)) * variation for _ in range(3)),
        side_light=float(generator.uniform(-0.25, 0.25)) * variation,
    )


def _shape_draw(seed: int, index: int) -> np.ndarray:
    return rng(seed, "identity-shape", index).uniform(-1.0, 1.0, size=len(SHAPE_RANGE))


def trait_displacement(traits: IdentityTraits) -> np.ndarray:
    """(68, 2) reshaping of the neutral face by the traits, in IOD (image axes)."""
    out, up = np.zeros(68), np.zeros(68)
    out[36:48] += traits.eye_spacing / 2
    out[0:17] += traits.face_width * np.abs(np.linspace(-1, 1, 17))
    up[17:27] += traits.brow_height
    out[[48, 54, 60, 64]] += traits.mouth_width
    out[[49, 53, 55, 59, 61, 63, 65, 67]] += traits.mouth_width / 2
    up[[48, 54, 60, 64]] -= traits.corner_droop
    up[[30, 31, 32, 33, 34, 35]] -= traits.nose_length * np.array([0.5, 1, 1, 1, 1, 1])
    up[5:12] -= traits.chin_length * np.array([0.3, 0.6, 0.9, 1.0, 0.9, 0.6, 0.3])
    return np.stack([out * SIDE, -up], axis=1)


def close_mouth(landmarks: np.ndarray, iod: float, gap: float = 0.02) -> np.ndarray:
    """Landmarks with parted lips brought together (a smiling photo shows teeth), leaving a `gap` IOD slit.

    A tiny gap is always kept so the inner-lip points stay distinct vertices of the mesh.
    """
    result = landmarks.copy()
    upper, lower = list(_INNER_UPPER), list(_INNER_LOWER)
    opening = result[lower, 1] - result[upper, 1]
    middle = (result[lower, 1] + result[upper, 1]) / 2
    target_upper, target_lower = middle - gap * iod / 2, middle + gap * iod / 2
    shift_upper = np.where(opening > gap * iod, target_upper - result[upper, 1], 0.0)
    shift_lower = np.where(opening > gap * iod, target_lower - result[lower, 1], 0.0)
    shift_lower = np.where(opening < gap * iod, target_lower - result[lower, 1], shift_lower)
    result[upper, 1] += shift_upper
    result[lower, 1] += shift_lower
    result[list(_OUTER_UPPER), 1] += np.interp(range(5), [0, 2, 4], shift_upper[[0, 1, 2]])
    result[list(_OUTER_LOWER), 1] += np.interp(range(5), [0, 2, 4], shift_lower[[0, 1, 2]])
    return result


def build_identity(subject: str, traits: IdentityTraits, size: int, iod: float,
                   eye_midpoint: tuple[float, float], seed: int = 0) -> Identity:
    """Render a subject's neutral canvas from its photo and traits, and precompute its mesh and cues."""
    face = photo_face(traits.photo)
    if traits.mirrored:
        face = mirror(face)
    face = canonical(face, size, iod, eye_midpoint)
    target = close_mouth(face.landmarks, iod) + trait_displacement(traits) * iod
    shaped = Face(warp_exact(face.image, face.landmarks, target), target)
    cues = cue_maps(shaped.landmarks, shaped.iod, size, rng(seed, "cues", subject))
    image = _recolour(shaped, traits, cues["nasolabial"])
    return Identity(subject, traits, Face(image, shaped.landmarks), MeshWarp(shaped.landmarks, size), cues)


def _recolour(face: Face, traits: IdentityTraits, fold: np.ndarray) -> np.ndarray:
    """Skin tone on the face, white balance and a side light everywhere, and the static nasolabial fold."""
    image = face.image.astype(np.float32)
    size = image.shape[0]
    mask = _skin_mask(face.landmarks, face.iod, size)[..., None]
    skin = np.asarray(traits.skin_gain, dtype=np.float32)
    image *= 1.0 + mask * (skin - 1.0)
    image *= np.asarray(traits.camera_gain, dtype=np.float32)
    centre = face.landmarks[:, 0].mean()
    light = 1.0 + traits.side_light * (np.arange(size, dtype=np.float32) - centre) / (2.5 * face.iod)
    image *= np.clip(light, 0.6, 1.4)[None, :, None]
    image *= (1.0 - traits.fold_depth * fold)[..., None]
    return np.clip(image, 0, 255)


def _skin_mask(landmarks: np.ndarray, iod: float, size: int) -> np.ndarray:
    """Soft mask of the face and forehead (the convex hull of jaw and raised brows)."""
    forehead = landmarks[17:27] - np.array([0.0, 0.6 * iod])
    hull = cv2.convexHull(np.vstack([landmarks[0:17], forehead]).astype(np.float32))
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1.0)
    return cv2.GaussianBlur(mask, (0, 0), 0.15 * iod)


def cue_maps(landmarks: np.ndarray, iod: float, size: int, generator: np.random.Generator) -> dict[str, np.ndarray]:
    """Darkening maps (0–1) of the FACS appearance cues, drawn on the neutral face (see rig.CUES)."""
    strokes = _CueStrokes(landmarks, iod)
    maps = {}
    for name in ("forehead_inner", "forehead_outer", "glabella", "crows_feet", "infraorbital", "nose_wrinkle",
                 "nasolabial", "dimple", "lip_line"):
        maps[name] = _draw(getattr(strokes, name)(), size, iod)
    maps["chin"] = _draw(strokes.chin(generator), size, iod)
    return maps


def _draw(shapes: list[np.ndarray], size: int, iod: float) -> np.ndarray:
    """Anti-aliased polylines (or dots, for 1-point shapes), softened and scaled to peak 1."""
    canvas = np.zeros((size, size), np.float32)
    for shape in shapes:
        points = np.round(shape * 16).astype(np.int32)
        if len(shape) == 1:
            cv2.circle(canvas, tuple(points[0]), int(0.025 * iod * 16), 1.0, -1, cv2.LINE_AA, shift=4)
        else:
            cv2.polylines(canvas, [points], False, 1.0, 1, cv2.LINE_AA, shift=4)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 0.035 * iod)
    return canvas / max(float(canvas.max()), 1e-6)


class _CueStrokes:
    """Where FACS puts each cue's lines, from the neutral landmarks (image axes, IOD-scaled)."""

    def __init__(self, landmarks: np.ndarray, iod: float) -> None:
        self.p, self.iod = landmarks, iod
        self.mid_x = landmarks[27:31, 0].mean()

    def _offset(self, point: int, out: float, down: float) -> np.ndarray:
        side = np.sign(self.p[point, 0] - self.mid_x)
        return self.p[point] + np.array([side * out, down]) * self.iod

    def _curve(self, start: np.ndarray, end: np.ndarray, bulge: np.ndarray, count: int = 12) -> np.ndarray:
        t = np.linspace(0, 1, count)[:, None]
        return (1 - t) ** 2 * start + 2 * t * (1 - t) * bulge + t**2 * end

    def forehead_inner(self) -> list[np.ndarray]:
        left, right = self.p[20], self.p[23]
        return [self._curve(left - [0, h * self.iod], right - [0, h * self.iod],
                            (left + right) / 2 - [0, (h + 0.04) * self.iod]) for h in (0.25, 0.37, 0.49)]

    def forehead_outer(self) -> list[np.ndarray]:
        lines = []
        for outer, inner in ((17, 19), (26, 24)):
            for h in (0.22, 0.34):
                a, b = self.p[outer] - [0, h * self.iod], self.p[inner] - [0, (h + 0.05) * self.iod]
                lines.append(self._curve(a, b, (a + b) / 2 - [0, 0.05 * self.iod]))
        return lines

    def glabella(self) -> list[np.ndarray]:
        top = (self.p[21, 1] + self.p[22, 1]) / 2
        return [np.array([[self.mid_x + dx * self.iod, top - 0.05 * self.iod],
                          [self.mid_x + dx * 1.2 * self.iod, top + 0.2 * self.iod]]) for dx in (-0.08, 0.08)]

    def crows_feet(self) -> list[np.ndarray]:
        lines = []
        for corner in (36, 45):
            start = self._offset(corner, 0.06, 0.0)
            side = np.sign(self.p[corner, 0] - self.mid_x)
            for angle in (-0.45, 0.0, 0.45):
                direction = np.array([side * np.cos(angle), np.sin(angle)])
                lines.append(np.array([start, start + 0.16 * self.iod * direction]))
        return lines

    def infraorbital(self) -> list[np.ndarray]:
        return [np.array([self._offset(i, 0.0, 0.12) for i in points]) for points in ((36, 41, 40, 39),
                                                                                       (45, 46, 47, 42))]

    def nose_wrinkle(self) -> list[np.ndarray]:
        top, bottom = self.p[27], self.p[29]
        return [np.array([top + f * (bottom - top) - [0.13 * self.iod, 0], top + f * (bottom - top)
                          + [0.13 * self.iod, 0]]) for f in (0.25, 0.45, 0.65)]

    def nasolabial(self) -> list[np.ndarray]:
        lines = []
        for wing, corner in ((31, 48), (35, 54)):
            start, end = self._offset(wing, 0.1, -0.04), self._offset(corner, 0.1, 0.12)
            lines.append(self._curve(start, end, (start + end) / 2 + [np.sign(start[0] - self.mid_x)
                                                                      * 0.06 * self.iod, 0]))
        return lines

    def dimple(self) -> list[np.ndarray]:
        return [self._offset(corner, 0.08, 0.0)[None] for corner in (48, 54)]

    def lip_line(self) -> list[np.ndarray]:
        return [self.p[[48, 61, 62, 63, 54]], self.p[[48, 67, 66, 65, 54]]]

    def chin(self, generator: np.random.Generator) -> list[np.ndarray]:
        top, bottom = self.p[57], self.p[8]
        fractions = generator.uniform(0.25, 0.8, size=16)
        across = generator.uniform(-0.25, 0.25, size=16) * self.iod
        return [(top + f * (bottom - top) + [dx, 0])[None] for f, dx in zip(fractions, across)]
