"""A minimal SynthAU generator (the foundation slice; the full generator replaces it).

Real face photos shipped by installed packages (scikit-image's astronaut, matplotlib's Grace Hopper)
are landmarked once with dlib, normalised to a canvas with level eyes, varied into identities
(mirroring, skin tone, face proportions), animated by a landmark rig for the 15 BP4D/DISFA AUs with
piecewise-affine warps, moved by small head motions, and written in the BP4D layout with AU_OCC CSVs and
ground-truth landmarks.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay
from tqdm import tqdm

from aubench.data.aus import ALL_AUS, BP4D_AUS
from aubench.data.video import write_image
from aubench.errors import DataError
from aubench.seeding import rng

log = logging.getLogger(__name__)

#: iBUG 68-point index of each point's mirror image (left ↔ right of the face).
MIRROR = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + list(range(27, 31)) + [35, 34, 33, 32, 31]
                  + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
                  + [64, 63, 62, 61, 60, 67, 66, 65])

# AU rig: (landmark indices, displacement (dx, dy) at intensity 5 in inter-ocular units, in face coordinates
# with x towards the image right and y down). Points on the image-left half mirror dx for symmetric actions.
UP, DOWN = -1.0, 1.0
RIG: dict[int, list[tuple[list[int], tuple[float, float]]]] = {
    1: [([20, 21], (0.0, UP * 0.10)), ([22, 23], (0.0, UP * 0.10))],                   # inner brow raiser
    2: [([17, 18], (0.0, UP * 0.10)), ([25, 26], (0.0, UP * 0.10))],                   # outer brow raiser
    4: [([19, 20, 21], (0.06, DOWN * 0.10)), ([22, 23, 24], (-0.06, DOWN * 0.10))],    # brow lowerer
    6: [([40, 41, 46, 47], (0.0, UP * 0.08)), ([1, 2, 14, 15], (0.0, UP * 0.06))],     # cheek raiser
    7: [([40, 41, 46, 47], (0.0, UP * 0.07)), ([37, 38, 43, 44], (0.0, DOWN * 0.05))],  # lid tightener
    9: [([31, 35], (0.0, UP * 0.10)), ([21, 22], (0.0, DOWN * 0.05))],                 # nose wrinkler
    10: [([50, 51, 52, 61, 62, 63], (0.0, UP * 0.12))],                                # upper lip raiser
    12: [([48, 60], (-0.14, UP * 0.14)), ([54, 64], (0.14, UP * 0.14))],               # lip corner puller
    14: [([48, 60], (0.06, 0.0)), ([54, 64], (-0.06, 0.0))],                           # dimpler
    15: [([48, 60], (0.0, DOWN * 0.08)), ([54, 64], (0.0, DOWN * 0.08))],              # lip corner depressor
    17: [([7, 8, 9, 57, 58, 56], (0.0, UP * 0.10))],                                   # chin raiser
    23: [([48, 60], (0.05, 0.0)), ([54, 64], (-0.05, 0.0))],                           # lip tightener
    24: [([61, 62, 63], (0.0, DOWN * 0.03)), ([65, 66, 67], (0.0, UP * 0.03))],        # lip pressor
    25: [([65, 66, 67, 56, 57, 58], (0.0, DOWN * 0.12))],                              # lips part
    26: [([5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67], (0.0, DOWN * 0.22))],  # jaw drop
}
#: Prototype combinations (pipeline.md §1.4) and how often an episode starts with each.
PROTOTYPES: list[tuple[tuple[int, ...], float]] = [
    ((6, 12), 0.25), ((6, 12, 25), 0.15), ((4, 6, 7, 9, 10), 0.07), ((1, 2), 0.06), ((1, 2, 26), 0.04),
    ((1, 4, 15), 0.05), ((1, 4, 15, 17), 0.03), ((4, 7, 23, 24), 0.05), ((9, 10), 0.04), ((9, 10, 17), 0.03),
    ((7,), 0.08), ((10,), 0.06), ((14,), 0.09),
]


@dataclass(frozen=True)
class SynthConfig:
    """The `synthesize` params section."""

    seed: int = 0
    root: str = "data/raw/synthau"
    layout: str = "bp4d"
    subjects: int = 6
    tasks: int = 2
    frames: int = 120
    frame_size: int = 256
    fps: float = 25.0
    iod: float = 56.0
    jpeg_quality: int = 90
    head_motion: float = 1.0
    noise: float = 3.0


@dataclass(frozen=True)
class Identity:
    canvas: np.ndarray       # (S, S, 3) uint8 neutral face
    landmarks: np.ndarray    # (68, 2) neutral landmarks on the canvas
    weights: sparse.csr_matrix  # (S·S, 68 + border) barycentric weights of every pixel


def base_faces(size: int, iod: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The shipped photos normalised to a size² canvas: eyes level, IOD px apart, centred."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    from aubench.align.transform import eye_centres, similarity_matrix
    from aubench.landmarks.dlib_backend import DlibLandmarker

    photos = [skimage.data.astronaut(), np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")))]
    landmarker = DlibLandmarker(upsample=1)
    target = np.array([[size / 2 - iod / 2, 0.42 * size], [size / 2 + iod / 2, 0.42 * size]])
    faces = []
    for photo in photos:
        box = landmarker.detect(photo)
        if box is None:
            raise DataError("SynthAU: dlib found no face in a shipped sample photo")
        points = landmarker.fit(photo, box)
        matrix = similarity_matrix(eye_centres(points), target)
        canvas = cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        faces.append((canvas, points @ matrix[:, :2].T + matrix[:, 2]))
    return faces


def barycentric_weights(points: np.ndarray, size: int) -> sparse.csr_matrix:
    """Sparse (pixels × points+border) matrix: each pixel as a barycentric mix of its triangle's corners."""
    border = np.array([[x, y] for x in (0, size / 2, size - 1) for y in (0, size / 2, size - 1) if (x, y) != (size / 2, size / 2)])
    vertices = np.vstack([points, border])
    triangulation = Delaunay(vertices)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).reshape(-1, 2).astype(float)
    simplex = triangulation.find_simplex(grid)
    inside = simplex >= 0
    transform = triangulation.transform[simplex[inside]]
    partial = np.einsum("nij,nj->ni", transform[:, :2], grid[inside] - transform[:, 2])
    bary = np.hstack([partial, 1 - partial.sum(1, keepdims=True)])
    rows = np.repeat(np.flatnonzero(inside), 3)
    columns = triangulation.simplices[simplex[inside]].ravel()
    return sparse.csr_matrix((bary.ravel(), (rows, columns)), shape=(len(grid), len(vertices)))


def make_identity(face: tuple[np.ndarray, np.ndarray], index: int, config: SynthConfig) -> Identity:
    """Vary a base face into a subject: mirroring, proportions, skin tone and lighting."""
    canvas, points = face[0].copy(), face[1].copy()
    size = config.frame_size
    if (index // 2) % 2:
        canvas, points = canvas[:, ::-1].copy(), points.copy()
        points[:, 0] = size - 1 - points[:, 0]
        points = points[MIRROR]
    draws = rng(config.seed, "identity", index)
    centre = points[27:36].mean(0)
    stretch = np.array([1 + draws.uniform(-0.06, 0.06), 1 + draws.uniform(-0.06, 0.06)])
    shaped = (points - centre) * stretch + centre
    weights = barycentric_weights(points, size)
    canvas = warp(canvas, weights, shaped - points)
    tone = (1 + draws.uniform(-0.15, 0.15, 3)) * draws.uniform(0.85, 1.1)
    canvas = np.clip(canvas.astype(np.float32) * tone, 0, 255).astype(np.uint8)
    return Identity(canvas, shaped.astype(np.float32), barycentric_weights(shaped, size))


def warp(image: np.ndarray, weights: sparse.csr_matrix, displacement: np.ndarray) -> np.ndarray:
    """Move landmarks by `displacement` (68, 2): dense field by barycentric interpolation, inverse by first order."""
    size = image.shape[0]
    padded = np.vstack([displacement, np.zeros((weights.shape[1] - len(displacement), 2))])
    field = (weights @ padded).reshape(size, size, 2).astype(np.float32)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).astype(np.float32)
    source = grid - field
    return cv2.remap(image, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def rig_displacement(intensities: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) landmark displacement for intensities (0–5) in ALL_AUS order."""
    iod = np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0))
    displacement = np.zeros((68, 2))
    for au, intensity in zip(ALL_AUS, intensities):
        for indices, (dx, dy) in RIG[au]:
            displacement[indices] += np.array([dx, dy]) * iod * intensity / 5
    return displacement


def intensity_tracks(frames: int, fps: float, draws: np.random.Generator) -> np.ndarray:
    """(T, 15) intensities: episodes of prototype combinations with onset–apex–offset envelopes."""
    tracks = np.zeros((frames, len(ALL_AUS)))
    combos, probabilities = zip(*PROTOTYPES)
    probabilities = np.array(probabilities) / sum(probabilities)
    time = 0
    while time < frames:
        time += int(draws.integers(int(0.05 * fps), int(0.8 * fps)))
        if time >= frames:
            break
        length = int(draws.integers(int(0.5 * fps), int(3 * fps)))
        combo = combos[draws.choice(len(combos), p=probabilities)]
        apex = draws.uniform(2.5, 5.0)
        ramp = max(1, length // 4)
        envelope = np.concatenate([np.linspace(0, 1, ramp), np.ones(max(length - 2 * ramp, 1)), np.linspace(1, 0, ramp)])
        stop = min(frames, time + len(envelope))
        for au in combo:
            column = ALL_AUS.index(au)
            tracks[time:stop, column] = np.maximum(tracks[time:stop, column], apex * envelope[:stop - time])
        time = stop
    return tracks


def render_sequence(identity: Identity, tracks: np.ndarray, config: SynthConfig,
                    draws: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames and ground-truth landmarks of one sequence."""
    size, frames = config.frame_size, len(tracks)
    phase = draws.uniform(0, 2 * np.pi, 4)
    time = np.arange(frames) / config.fps
    images, landmarks = [], np.zeros((frames, 68, 2), dtype=np.float32)
    for index in range(frames):
        displacement = rig_displacement(tracks[index], identity.landmarks)
        face = warp(identity.canvas, identity.weights, displacement)
        angle = config.head_motion * 4 * np.sin(0.7 * time[index] + phase[0])
        scale = 1 + config.head_motion * 0.04 * np.sin(0.5 * time[index] + phase[1])
        shift = config.head_motion * 6 * np.sin([0.9 * time[index] + phase[2], 0.6 * time[index] + phase[3]])
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
        matrix[:, 2] += shift
        frame = cv2.warpAffine(face, matrix, (size, size), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        frame += draws.normal(0, config.noise, frame.shape)
        images.append(np.clip(frame, 0, 255).astype(np.uint8))
        moved = identity.landmarks + displacement
        landmarks[index] = moved @ matrix[:, :2].T + matrix[:, 2]
    return images, landmarks


def generate(config: SynthConfig) -> dict[str, float]:
    """Write SynthAU in the BP4D layout under `config.root` (atomically); returns per-AU base rates."""
    if config.layout != "bp4d":
        raise DataError(f"synthesize.layout={config.layout!r}: this generator writes the bp4d layout only")
    root = Path(config.root)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    faces = base_faces(config.frame_size, config.iod)
    labels_all = []
    subjects = [f"{'FM'[i % 2]}{i // 2 + 1:03d}" for i in range(config.subjects)]
    for index, subject in enumerate(tqdm(subjects, desc="synthesize", unit="subject")):
        identity = make_identity(faces[index % len(faces)], index, config)
        for task_index in range(config.tasks):
            task = f"T{task_index + 1}"
            draws = rng(config.seed, subject, task)
            tracks = intensity_tracks(config.frames, config.fps, draws)
            images, landmarks = render_sequence(identity, tracks, config, draws)
            for number, image in enumerate(images, start=1):
                write_image(partial / "Sequences" / subject / task / f"{number:04d}.jpg", image, config.jpeg_quality)
            labels = (tracks >= 2).astype(int)
            labels[draws.random(labels.shape) < 0.005] = 9
            _write_au_occ(partial / "AUCoding" / "AU_OCC" / f"{subject}_{task}.csv", labels)
            (partial / "SynthAU_Landmarks").mkdir(parents=True, exist_ok=True)
            np.save(partial / "SynthAU_Landmarks" / f"{subject}_{task}.npy", landmarks)
            labels_all.append(labels)
    shutil.rmtree(root, ignore_errors=True)
    partial.replace(root)
    stacked = np.concatenate(labels_all)
    return {f"AU{au}": float((stacked[:, i] == 1).sum() / (stacked[:, i] != 9).sum())
            for i, au in enumerate(ALL_AUS) if au in BP4D_AUS}


def _write_au_occ(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "0," + ",".join(str(au) for au in ALL_AUS)
    rows = [f"{number}," + ",".join(map(str, row)) for number, row in enumerate(labels, start=1)]
    path.write_text("\n".join([header, *rows]) + "\n")
