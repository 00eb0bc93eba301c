"""The AU rig: how each action unit moves the 68 iBUG landmarks, read like a FACS table.

Each AU lists `Move`s at intensity 5 in units of inter-ocular distance (IOD), in the face's own frame
(eyes level, image axes): `up` towards the forehead, `out` away from the facial midline. Points are named
on the image-left half or on the midline; the image-right partner gets the mirrored move, so every rig
is symmetric and valid for mirrored identities too (their landmark indices are remapped, see `MIRROR`).
Displacement grows linearly with intensity 0–5. The rig also carries the appearance cues (wrinkles,
furrows) that FACS lists for an AU and a pseudo-3D depth template for small yaw/pitch of the head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aubench.data.aus import ALL_AUS

N_LANDMARKS = 68
MAX_INTENSITY = 5.0


def _mirror_permutation() -> np.ndarray:
    """iBUG index of each point's left/right partner (midline points map to themselves)."""
    pairs = [(j, 16 - j) for j in range(8)]  # jaw
    pairs += [(17 + k, 26 - k) for k in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    permutation = np.arange(N_LANDMARKS)
    for left, right in pairs:
        permutation[left], permutation[right] = right, left
    return permutation


#: MIRROR[i] is the landmark that point i becomes when the image is flipped left-right.
MIRROR = _mirror_permutation()

_IMAGE_LEFT = set(range(0, 8)) | set(range(17, 22)) | {31, 32} | set(range(36, 42)) | {48, 49, 50, 58, 59, 60, 61, 67}
#: -1 for points on the image-left half of the face, +1 on the right, 0 on the midline.
SIDE = np.array([0 if MIRROR[i] == i else (-1 if i in _IMAGE_LEFT else 1) for i in range(N_LANDMARKS)])


@dataclass(frozen=True)
class Move:
    """Landmarks (image-left or midline) and their displacement at intensity 5, in IOD."""

    points: tuple[int, ...]
    up: float = 0.0
    out: float = 0.0


@dataclass(frozen=True)
class AURig:
    """One action unit: FACS name, landmark moves, and whether it is subtle by nature."""

    au: int
    name: str
    moves: tuple[Move, ...]
    subtle: bool = False

    @property
    def points(self) -> frozenset[int]:
        """Every landmark this AU moves (both halves of the face)."""
        named = {point for move in self.moves for point in move.points}
        return frozenset(named | {int(MIRROR[point]) for point in named})


def _au(au: int, name: str, *moves: Move, subtle: bool = False) -> AURig:
    return AURig(au, name, tuple(moves), subtle)


M = Move
#: Landmark moves per AU (intensity 5, IOD units). Brows 17-21, eyes 36-41, nose 27-35, lips 48-67, jaw 0-16.
RIG: dict[int, AURig] = {rig.au: rig for rig in (
    _au(1, "inner brow raiser", M((21,), up=0.10), M((20,), up=0.08), M((19,), up=0.04), subtle=True),
    _au(2, "outer brow raiser", M((17,), up=0.10), M((18,), up=0.09), M((19,), up=0.04), subtle=True),
    _au(4, "brow lowerer", M((21,), up=-0.09, out=-0.07), M((20,), up=-0.08, out=-0.05),
        M((19,), up=-0.06, out=-0.02), M((18,), up=-0.04), M((17,), up=-0.02)),
    _au(6, "cheek raiser", M((40, 41), up=0.05), M((36,), up=0.02), M((37,), up=-0.01), M((17,), up=-0.03)),
    _au(7, "lid tightener", M((40, 41), up=0.06), M((37, 38), up=-0.03), M((39,), out=0.01)),
    _au(9, "nose wrinkler", M((31,), up=0.06), M((32,), up=0.05), M((33,), up=0.04), M((30,), up=0.02),
        M((50,), up=0.02), M((51,), up=0.02), M((21,), up=-0.04), M((20,), up=-0.02)),
    _au(10, "upper lip raiser", M((50,), up=0.08), M((51,), up=0.07), M((49,), up=0.06), M((61,), up=0.07),
        M((62,), up=0.065), M((48,), up=0.015), M((31,), up=0.02)),
    _au(12, "lip corner puller", M((48,), up=0.09, out=0.10), M((60,), up=0.08, out=0.09),
        M((49,), up=0.04, out=0.04), M((59,), up=0.05, out=0.04), M((61, 67), up=0.03, out=0.02),
        M((58,), up=0.02, out=0.01)),
    _au(14, "dimpler", M((48,), up=0.01, out=-0.06), M((60,), out=-0.05), M((49, 59), out=-0.02)),
    _au(15, "lip corner depressor", M((48,), up=-0.07, out=0.01), M((60,), up=-0.06), M((59,), up=-0.03),
        M((49, 67), up=-0.015), subtle=True),
    _au(17, "chin raiser", M((8,), up=0.07), M((7,), up=0.06), M((6,), up=0.03), M((57,), up=0.07),
        M((58,), up=0.06), M((59,), up=0.04), M((66,), up=0.04), M((67,), up=0.03)),
    _au(23, "lip tightener", M((48,), out=-0.05), M((60,), out=-0.04), M((49,), up=-0.01, out=-0.02),
        M((59,), up=0.01, out=-0.02), M((51,), up=-0.015), M((57,), up=0.015), subtle=True),
    _au(24, "lip pressor", M((50, 51), up=-0.025), M((49,), up=-0.02), M((57, 58), up=0.03), M((59,), up=0.02),
        M((48,), out=-0.02), subtle=True),
    _au(25, "lips part", M((57,), up=-0.12), M((58,), up=-0.11), M((59,), up=-0.08), M((66,), up=-0.13),
        M((67,), up=-0.11), M((62,), up=0.03), M((61,), up=0.025), M((50, 51), up=0.02)),
    _au(26, "jaw drop", M((8,), up=-0.32), M((7,), up=-0.30), M((6,), up=-0.24), M((5,), up=-0.16),
        M((4,), up=-0.08), M((57,), up=-0.26), M((58,), up=-0.25), M((59,), up=-0.20), M((66,), up=-0.22),
        M((67,), up=-0.20), M((48,), up=-0.06), M((60,), up=-0.06)),
)}
del M

#: Appearance cues: map name -> (AU, darkening at intensity 5) pairs. Maps are drawn per identity.
CUES: dict[str, tuple[tuple[int, float], ...]] = {
    "forehead_inner": ((1, 0.18),),  # horizontal wrinkles above the inner brows
    "forehead_outer": ((2, 0.18),),  # ... above the outer brows
    "glabella": ((4, 0.30),),  # vertical furrows between the brows
    "crows_feet": ((6, 0.25),),  # lines fanning out from the outer eye corners
    "infraorbital": ((6, 0.15), (7, 0.10)),  # lower-lid bulge
    "nose_wrinkle": ((9, 0.30),),  # horizontal lines across the nose bridge
    "nasolabial": ((6, 0.06), (9, 0.06), (10, 0.14), (12, 0.18)),  # deepened nose-to-mouth fold
    "dimple": ((14, 0.30),),  # pits beside the lip corners
    "chin": ((17, 0.25),),  # chin boss wrinkling ("orange peel")
    "lip_line": ((23, 0.18), (24, 0.25)),  # narrowed, pressed red of the lips
}


def rig_matrix() -> np.ndarray:
    """(15, 68, 2) displacement per unit intensity, in IOD, image axes (x right, y down), ALL_AUS order."""
    matrix = np.zeros((len(ALL_AUS), N_LANDMARKS, 2))
    for row, au in enumerate(ALL_AUS):
        for move in RIG[au].moves:
            for point in move.points:
                for target in {point, int(MIRROR[point])}:
                    matrix[row, target, 0] += move.out * SIDE[target]
                    matrix[row, target, 1] -= move.up
    return matrix / MAX_INTENSITY


def cue_matrix() -> tuple[tuple[str, ...], np.ndarray]:
    """Cue names and their (n_cues, 15) darkening per unit intensity, ALL_AUS order."""
    names = tuple(CUES)
    matrix = np.zeros((len(names), len(ALL_AUS)))
    for row, name in enumerate(names):
        for au, darkening in CUES[name]:
            matrix[row, ALL_AUS.index(au)] = darkening / MAX_INTENSITY
    return names, matrix


def au_displacement(au: int, intensity: float) -> np.ndarray:
    """(68, 2) landmark displacement of one AU at `intensity`, in IOD (for tests and plots)."""
    return rig_matrix()[ALL_AUS.index(au)] * intensity


# Depth of each landmark towards the camera, in IOD, relative to the outer eye corners (a generic face).
_JAW_DEPTH = (-0.8, -0.6, -0.4, -0.2, -0.05, 0.1, 0.22, 0.3, 0.35)
_DEPTH_LEFT = {
    **{j: _JAW_DEPTH[j] for j in range(9)},
    17: -0.05, 18: 0.1, 19: 0.18, 20: 0.2, 21: 0.2,
    27: 0.25, 28: 0.4, 29: 0.55, 30: 0.75, 31: 0.45, 32: 0.55, 33: 0.6,
    36: 0.0, 37: 0.1, 38: 0.1, 39: 0.1, 40: 0.08, 41: 0.05,
    48: 0.25, 49: 0.4, 50: 0.48, 51: 0.5, 57: 0.45, 58: 0.45, 59: 0.38,
    60: 0.3, 61: 0.42, 62: 0.44, 66: 0.42, 67: 0.4,
}
DEPTH = np.array([_DEPTH_LEFT.get(i, _DEPTH_LEFT.get(int(MIRROR[i]), 0.0)) for i in range(N_LANDMARKS)])


def pose_displacement(landmarks: np.ndarray, iod: float, yaw: float, pitch: float) -> np.ndarray:
    """(68, 2) pixel displacement that fakes a small out-of-plane head rotation (radians).

    Points nearer the camera (nose tip) shift more than the face contour, and the face foreshortens,
    which is what a small yaw/pitch looks like in the image; in-plane motion is applied separately.
    """
    depth = DEPTH - DEPTH.mean()
    centre = landmarks.mean(axis=0)
    dx = depth * np.sin(yaw) * iod + (landmarks[:, 0] - centre[0]) * (np.cos(yaw) - 1.0)
    dy = depth * np.sin(pitch) * iod + (landmarks[:, 1] - centre[1]) * (np.cos(pitch) - 1.0)
    return np.stack([dx, dy], axis=1)
