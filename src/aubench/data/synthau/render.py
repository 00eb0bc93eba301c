"""Frame rendering: AU rig and cues on an identity's canvas, then head pose, lighting, blur and noise.

Order per frame: shade the neutral canvas with the AU cues (so wrinkles move with the skin), warp it by
the rig's landmark displacement plus a pseudo-3D yaw/pitch, paint the mouth interior when the lips part,
then one affine warp for in-plane head motion into the output frame, a lighting field, blur and sensor
noise. Ground-truth landmarks follow the same displacements and the same affine transform.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from aubench.data.synthau.identity import Identity
from aubench.data.synthau.rig import cue_matrix, pose_displacement, rig_matrix

_RIG = rig_matrix().astype(np.float32)  # (15, 68, 2) per unit intensity, IOD
_CUES = cue_matrix()[1]  # (n_cues, 15) darkening per unit intensity, rig.CUES order
_MOUTH_INTERIOR = np.array([52.0, 22.0, 24.0], dtype=np.float32)  # dark red-brown of an open mouth
_TEETH = np.array([195.0, 185.0, 170.0], dtype=np.float32)
_INNER_LIPS = [60, 61, 62, 63, 64, 65, 66, 67]


@dataclass(frozen=True)
class Nuisance:
    """Strength of everything that is not an AU (1.0 = the default difficulty)."""

    head_motion: float = 1.0
    lighting: float = 1.0
    noise: float = 0.015  # Gaussian sensor noise, std as a fraction of 255
    blur: float = 0.6  # Gaussian blur sigma in output pixels
    au_strength: float = 1.0  # scales rig displacements and cues


@dataclass(frozen=True)
class PoseTrack:
    """Per-frame head pose and lighting of one sequence (smooth over time)."""

    yaw: np.ndarray  # radians
    pitch: np.ndarray
    roll: np.ndarray
    scale: np.ndarray
    shift: np.ndarray  # (T, 2) pixels in the output frame
    brightness: np.ndarray
    gradient: np.ndarray  # (T, 2) lighting slope across x and y


def smooth_signal(generator: np.random.Generator, frames: int, fps: float, amplitude: float) -> np.ndarray:
    """A smooth random signal in [-amplitude, amplitude]: a static offset plus a few slow sinusoids."""
    time = np.arange(frames) / fps
    frequencies = generator.uniform(0.05, 0.6, size=3)
    phases = generator.uniform(0, 2 * np.pi, size=3)
    weights = generator.dirichlet(np.ones(4))
    waves = np.sin(2 * np.pi * frequencies[:, None] * time[None] + phases[:, None])
    return amplitude * (weights[0] * generator.uniform(-1, 1) + weights[1:] @ waves)


def sample_pose_track(generator: np.random.Generator, frames: int, fps: float, size: int,
                      nuisance: Nuisance) -> PoseTrack:
    """Head motion and lighting drift for one sequence."""
    motion, light = nuisance.head_motion, nuisance.lighting

    def signal(amplitude: float) -> np.ndarray:
        return smooth_signal(generator, frames, fps, amplitude)

    return PoseTrack(
        yaw=signal(np.radians(8.0) * motion), pitch=signal(np.radians(6.0) * motion),
        roll=signal(np.radians(8.0) * motion), scale=1.0 + signal(0.06 * motion),
        shift=np.stack([signal(0.05 * size * motion), signal(0.04 * size * motion)], axis=1),
        brightness=signal(0.12 * light), gradient=np.stack([signal(0.25 * light), signal(0.15 * light)], axis=1),
    )


def frame_landmarks(identity: Identity, intensity: np.ndarray, yaw: float, pitch: float,
                    au_strength: float = 1.0) -> np.ndarray:
    """(68, 2) canvas landmarks for AU intensities (ALL_AUS order) and an out-of-plane pose."""
    neutral, iod = identity.face.landmarks, identity.iod
    au = np.tensordot(intensity * au_strength, _RIG, axes=1) * iod
    return neutral + au + pose_displacement(neutral, iod, yaw, pitch)


def head_transform(identity: Identity, track: PoseTrack, index: int, size: int) -> np.ndarray:
    """2x3 affine from the canvas to the output frame: crop, roll and scale about the face, shift."""
    canvas = identity.face.image.shape[0]
    centre = identity.face.landmarks.mean(axis=0)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(np.degrees(track.roll[index])),
                                     float(track.scale[index]))
    matrix[:, 2] += track.shift[index] - (canvas - size) / 2
    return matrix


def render_frame(identity: Identity, intensity: np.ndarray, track: PoseTrack, index: int, size: int,
                 nuisance: Nuisance, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 frame and its (68, 2) ground-truth landmarks in frame pixels."""
    landmarks = frame_landmarks(identity, intensity, track.yaw[index], track.pitch[index], nuisance.au_strength)
    canvas = _shade(identity, intensity * nuisance.au_strength)
    identity.mesh.warp(canvas, (landmarks - identity.face.landmarks).astype(np.float32), out=canvas)
    _paint_mouth(canvas, identity, landmarks)
    matrix = head_transform(identity, track, index, size)
    frame = cv2.warpAffine(canvas, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    frame = _light(frame, track, index)
    if nuisance.blur > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), nuisance.blur)
    if nuisance.noise > 0:
        frame += _noise(generator, frame.shape, 255.0 * nuisance.noise)
    image = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return image, landmarks @ matrix[:, :2].T + matrix[:, 2]


def _noise(generator: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian noise from OpenCV's fast generator, reseeded from `generator` so frames stay reproducible."""
    cv2.setRNGSeed(int(generator.integers(2**31 - 1)))
    noise = np.empty(shape, np.float32)
    cv2.randn(noise, 0.0, sigma)
    return noise


def _shade(identity: Identity, intensity: np.ndarray) -> np.ndarray:
    """A copy of the neutral canvas darkened along the cue maps (wrinkles, furrows) of the active AUs."""
    canvas = identity.face.image.copy()
    strength = np.clip(_CUES @ intensity, 0.0, 0.6).astype(np.float32)
    active = np.flatnonzero(strength > 1e-3)
    if len(active):
        darkening = np.zeros(identity.cue_stack.shape[1:], np.float32)
        for cue in active:
            darkening += strength[cue] * identity.cue_stack[cue]
        canvas[identity.mesh.box] *= (1.0 - darkening)[..., None]
    return canvas


def _paint_mouth(image: np.ndarray, identity: Identity, landmarks: np.ndarray) -> None:
    """Fills the parted inner lips with a dark mouth interior, fading in as the lips open."""
    neutral_gap = _lip_gap(identity.face.landmarks)
    opening = (_lip_gap(landmarks) - neutral_gap) / identity.iod
    alpha = float(np.clip(opening / 0.05, 0.0, 1.0)) * 0.9
    if alpha <= 0:
        return
    polygon = np.round(landmarks[_INNER_LIPS] * 16).astype(np.int32)
    x0, y0 = np.floor(landmarks[_INNER_LIPS].min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(landmarks[_INNER_LIPS].max(axis=0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])
    origin = np.array([x0, y0]) * 16
    mouth = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillPoly(mouth, [polygon - origin], 1.0, cv2.LINE_AA, shift=4)
    teeth = np.zeros_like(mouth)  # upper teeth show under the upper lip, at most 0.05 IOD tall
    upper = landmarks[[60, 61, 62, 63, 64]]
    drop = min(0.3 * _lip_gap(landmarks), 0.05 * identity.iod)
    band = np.vstack([upper, upper[::-1] + [0.0, drop]])
    cv2.fillPoly(teeth, [np.round(band * 16).astype(np.int32) - origin], 1.0, cv2.LINE_AA, shift=4)
    mouth = cv2.GaussianBlur(mouth, (0, 0), 0.8)[..., None] * alpha
    teeth = cv2.GaussianBlur(teeth * mouth[..., 0], (0, 0), 0.6)[..., None]
    patch = image[y0:y1, x0:x1]
    patch = patch * (1 - mouth) + _MOUTH_INTERIOR * mouth
    image[y0:y1, x0:x1] = patch * (1 - teeth) + _TEETH * teeth


def _lip_gap(landmarks: np.ndarray) -> float:
    return float(np.mean(landmarks[[67, 66, 65], 1] - landmarks[[61, 62, 63], 1]))


def _light(frame: np.ndarray, track: PoseTrack, index: int) -> np.ndarray:
    """Brightness drift and a linear lighting gradient across the frame."""
    size = frame.shape[0]
    axis = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    across = np.float32(1.0 + track.brightness[index]) + np.float32(track.gradient[index, 0]) * axis
    down = np.float32(track.gradient[index, 1]) * axis
    gain = across[None, :] + down[:, None]
    return frame * gain[..., None]
