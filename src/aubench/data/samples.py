"""How a method samples the aligned store: sampling objects (single frames, clips of T frames) that own
their torch dataset and example input, so no caller branches on a method's data mode.

Augmentation follows the ME-GraphAU convention the cited results use: a random `input_size` crop with
horizontal flip for training, the centre crop for testing (`augment: false` trains on centre crops too;
`test_crop: resize` tests on the whole aligned face resized to the input size instead, for papers that
feed uncropped faces); a clip gets one crop and flip for all its frames. Every random choice comes from (seed, epoch, sample
index), so data order and augmentation are identical after a resume, with any number of loader workers
and under DDP. Images leave the dataset as uint8; normalisation happens on the device (`normalise`).
Extra batch fields a method asks for (`landmarks`) follow the same crop and flip, with the 68-point
mirror permutation. The store is any object with the aligned store's read methods
(`aubench.align.store.AlignedStore`); this module does not import it, so methods can declare sampling.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from aubench.data.aus import UNKNOWN
from aubench.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_SAMPLERS = ("full_pass", "one_clip_per_sequence", "segments")
BATCH_FIELDS = ("landmarks",)
TEST_CROPS = ("centre", "resize")

#: iBUG 68-point index of each point's mirror image (jaw, brows, nose, eyes, outer and inner lips).
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def example_landmarks(size: int, leading: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """68 points spread along the diagonals of a `size`² crop, shaped (*leading, 68, 2) (cost counting)."""
    points = torch.linspace(0.2 * size, 0.8 * size, 68, device=device)
    return torch.stack([points, points.flip(0)], -1).expand(*leading, 68, 2)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) → float, scaled to [0, 1] and standardised with ImageNet statistics."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    return (images.float() / 255.0 - mean) / std


@dataclass(frozen=True)
class FrameSampling:
    """Single frames: the model maps images (B, 3, H, W) to scores (B, N).

    `fields`: extra batch fields (`landmarks`, (B, 68, 2) in input-crop pixels). `stride`: training takes
    every `stride`-th frame of each sequence (consecutive frames are nearly identical; testing takes all).
    """

    fields: tuple[str, ...] = ()
    stride: int = 1

    @property
    def frames_per_sample(self) -> int:
        """Frames a sample predicts."""
        return 1

    @property
    def loaded_frames(self) -> int:
        """Frames a sample's images hold."""
        return self.frames_per_sample

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(BATCH_FIELDS)
        if unknown:
            raise ConfigError(f"sampling fields {sorted(unknown)}: unknown; available: {', '.join(BATCH_FIELDS)}")
        if self.stride < 1:
            raise ConfigError(f"sampling stride {self.stride}: must be >= 1")

    def dataset(self, store: Any, subjects: tuple[str, ...], input_size: int, train: bool, seed: int = 0,
                augment: bool = True, test_crop: str = "centre") -> "FrameDataset":
        """Training (`train`: labelled frames, augmented) or test (every frame, `test_crop`) samples."""
        return FrameDataset(store, subjects, input_size, train, seed, fields=self.fields, augment=augment,
                            test_crop=test_crop, stride=self.stride if train else 1)

    def samples(self, frames: int) -> int:
        """How many samples make a batch of `frames` frames."""
        return max(1, frames // self.frames_per_sample)

    def example_input(self, size: int, frames: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """A normalised random input of `frames` frames in this sampling's shape (for cost counting)."""
        shape = (self.samples(frames), self.loaded_frames, 3, size, size)
        if self.frames_per_sample == 1:
            shape = shape[:1] + shape[2:]
        generator = torch.Generator().manual_seed(0)
        return normalise(torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device))

    def example_fields(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The extra batch fields (`fields`) that go with `example_input`'s images."""
        if "landmarks" not in self.fields:
            return {}
        return {"landmarks": example_landmarks(images.shape[-1], tuple(images.shape[:-3]), images.device)}


@dataclass(frozen=True)
class ClipSampling(FrameSampling):
    """Clips of `length` consecutive frames: the model maps (B, T, 3, H, W) to scores (B, T, N).

    `context`: frames loaded on each side of every clip (the first / last frame of the sequence repeated
    beyond its ends) for a model that needs its frames' neighbours: images are (B, T + 2·context, 3, H, W),
    while targets, masks, positions and scores cover the central T frames. Training clips: `full_pass` (STF's default; docs/methods/stf.md) tiles every sequence with non-overlapping windows from a random
    offset; `one_clip_per_sequence` draws one random window per sequence; `segments` (LAC Algorithm 1)
    splits each subject's task sequences, in order, into `segments` equal parts and draws one window
    inside each part, never across a task boundary.
    """

    length: int = 16
    sampler: str = "full_pass"
    segments: int = 12
    context: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sampler not in CLIP_SAMPLERS:
            raise ConfigError(f"clips.sampler: unknown sampler {self.sampler!r}; use one of {CLIP_SAMPLERS}")
        if self.context < 0:
            raise ConfigError(f"clips.context {self.context}: must be >= 0")

    @property
    def frames_per_sample(self) -> int:
        return self.length

    @property
    def loaded_frames(self) -> int:
        return self.length + 2 * self.context

    def dataset(self, store: Any, subjects: tuple[str, ...], input_size: int, train: bool, seed: int = 0,
                augment: bool = True, test_crop: str = "centre") -> "ClipDataset":
        return ClipDataset(store, subjects, input_size, train, self, seed, augment=augment, test_crop=test_crop)


@dataclass(frozen=True)
class FrameIndex:
    """Flat list of (sequence key, frame position) for a set of subjects."""

    keys: np.ndarray
    positions: np.ndarray

    @classmethod
    def for_subjects(cls, store: Any, subjects: tuple[str, ...], labelled_only: bool,
                     stride: int = 1) -> "FrameIndex":
        keys, positions = [], []
        for sequence in store.sequences:
            if sequence.subject not in subjects:
                continue
            frames = np.arange(0, sequence.length, stride)
            if labelled_only:
                frames = frames[(store.labels(sequence.key)[frames] != UNKNOWN).any(1)]
            keys.extend([sequence.key] * len(frames))
            positions.extend(frames.tolist())
        return cls(np.array(keys, dtype=str), np.array(positions, dtype=np.int64))


@dataclass(frozen=True)
class Crop:
    """Where a crop was taken and whether it was mirrored (applied alike to images and landmarks)."""

    top: int
    left: int
    size: int
    flip: bool
    resize_to: int | None = None  # resized after cropping (the whole face at test time, `test_crop: resize`)

    @classmethod
    def whole(cls, crop_size: int, size: int) -> "Crop":
        """The whole aligned face, resized to size²."""
        return cls(0, 0, crop_size, False, size)

    @classmethod
    def draw(cls, crop_size: int, size: int, draws: np.random.Generator | None) -> "Crop":
        """A random offset and flip with `draws`, the centre crop without."""
        margin = crop_size - size
        if draws is None:
            return cls(margin // 2, margin // 2, size, False)
        top, left = draws.integers(0, margin + 1, size=2)
        return cls(int(top), int(left), size, bool(draws.random() < 0.5))

    def images(self, images: np.ndarray) -> np.ndarray:
        crop = images[..., self.top:self.top + self.size, self.left:self.left + self.size, :]
        crop = np.ascontiguousarray(crop[..., ::-1, :] if self.flip else crop)
        if self.resize_to is None or self.resize_to == self.size:
            return crop
        frames = crop.reshape(-1, *crop.shape[-3:])
        resized = [cv2.resize(frame, (self.resize_to, self.resize_to), interpolation=cv2.INTER_AREA) for frame in frames]
        return np.stack(resized).reshape(*crop.shape[:-3], self.resize_to, self.resize_to, 3)

    def points(self, points: np.ndarray) -> np.ndarray:
        """(..., 68, 2) (x, y) crop coordinates → input coordinates (mirrored points swap sides)."""
        moved = points - np.array([self.left, self.top], dtype=points.dtype)
        if self.resize_to is not None:
            moved = moved * (self.resize_to / self.size)
        if not self.flip:
            return moved
        mirrored = moved[..., MIRROR_68, :].copy()
        mirrored[..., 0] = self.size - 1 - mirrored[..., 0]
        return mirrored


class _StoreDataset(Dataset):
    """Shared machinery: lazily memory-mapped images, labels, per-epoch augmentation draws.

    Every sample carries `positions` and `keep` (which frames of its sequence it holds, and which of
    them its prediction counts for), so one predictor serves frames and clips.
    """

    def __init__(self, store: Any, subjects: tuple[str, ...], input_size: int, train: bool, seed: int,
                 fields: tuple[str, ...] = (), augment: bool = True, test_crop: str = "centre") -> None:
        if input_size > store.crop_size:
            raise ConfigError(f"train.input_size {input_size} exceeds the aligned crop size {store.crop_size}")
        if test_crop not in TEST_CROPS:
            raise ConfigError(f"train.test_crop: {test_crop!r} is not one of {', '.join(TEST_CROPS)}")
        self.store, self.input_size, self.train, self.seed = store, input_size, train, seed
        self.fields, self.augment = fields, augment and train
        self.resize_whole = test_crop == "resize" and not train
        self.epoch = 0
        self.sequences = [sequence for sequence in store.sequences if sequence.subject in subjects]
        self._labels = {sequence.key: store.labels(sequence.key).astype(np.int64) for sequence in self.sequences}
        self._points = ({sequence.key: store.landmarks(sequence.key) for sequence in self.sequences}
                        if "landmarks" in fields else {})
        self._images: dict[str, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws (and, for clips, windows) to use."""
        self.epoch = epoch

    def sample_key(self, item: int) -> str:
        """The sequence that sample `item` comes from."""
        raise NotImplementedError

    def _sample(self, key: str, positions: np.ndarray | int, item: int) -> dict[str, torch.Tensor]:
        if key not in self._images:  # opened lazily so each loader worker has its own memory map
            self._images[key] = self.store.images(key)
        draws = np.random.default_rng([self.seed, self.epoch, item]) if self.augment else None
        crop = (Crop.whole(self.store.crop_size, self.input_size) if self.resize_whole
                else Crop.draw(self.store.crop_size, self.input_size, draws))
        labels = torch.from_numpy(self._labels[key][positions])
        sample = {"image": torch.from_numpy(crop.images(self._images[key][positions])).movedim(-1, -3),
                  "target": labels.clamp(min=0), "mask": labels != UNKNOWN,
                  "positions": torch.as_tensor(positions), "keep": torch.ones(np.shape(positions), dtype=torch.bool)}
        if "landmarks" in self.fields:
            sample["landmarks"] = torch.from_numpy(crop.points(self._points[key][positions]).astype(np.float32))
        return sample


class FrameDataset(_StoreDataset):
    """Single aligned frames (image mode).

    Supervised training skips frames with no known label; `labelled_only=False` keeps every frame, for
    self-supervised pretraining on unlabeled frames (labels then come back fully masked where unknown).
    """

    def __init__(self, store: Any, subjects: tuple[str, ...], input_size: int, train: bool, seed: int = 0,
                 labelled_only: bool | None = None, fields: tuple[str, ...] = (), augment: bool = True,
                 test_crop: str = "centre", stride: int = 1) -> None:
        super().__init__(store, subjects, input_size, train, seed, fields, augment, test_crop)
        keep_labelled = train if labelled_only is None else labelled_only
        self.index = FrameIndex.for_subjects(store, subjects, labelled_only=keep_labelled, stride=stride)

    def __len__(self) -> int:
        return len(self.index.keys)

    def sample_key(self, item: int) -> str:
        return str(self.index.keys[item])

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        return self._sample(self.sample_key(item), int(self.index.positions[item]), item)


class ClipDataset(_StoreDataset):
    """Clips of `sampling.length` consecutive frames of one sequence, redrawn every training epoch.

    Testing tiles each sequence from frame 0; the last window is the sequence's last `length` frames and
    only its not-yet-covered frames count (`keep`), so every frame gets exactly one prediction.
    Sequences shorter than `length` repeat their last frame, and padded frames are masked.
    """

    def __init__(self, store: Any, subjects: tuple[str, ...], input_size: int, train: bool,
                 sampling: ClipSampling, seed: int = 0, augment: bool = True, test_crop: str = "centre") -> None:
        super().__init__(store, subjects, input_size, train, seed, sampling.fields, augment, test_crop)
        self.sampling, self.length = sampling, sampling.length
        self._lengths = {sequence.key: sequence.length for sequence in self.sequences}
        self.windows = self._windows()

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.windows = self._windows()

    def __len__(self) -> int:
        return len(self.windows)

    def sample_key(self, item: int) -> str:
        return self.windows[item][0]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        key, start, keep_from = self.windows[item]
        count, context = self._lengths[key], self.sampling.context
        loaded = np.arange(start - context, start + self.length + context)
        sample = self._sample(key, np.clip(loaded, 0, count - 1), item)
        offsets = loaded[context:context + self.length]
        for name in ("target", "mask", "positions", "keep"):  # labels and bookkeeping: the central frames
            sample[name] = sample[name][context:context + self.length]
        padded = torch.from_numpy(offsets >= count)
        sample["mask"] = sample["mask"] & ~padded[:, None]
        sample["keep"] = torch.from_numpy((offsets >= keep_from) & (offsets < count))
        return sample

    def _windows(self) -> list[tuple[str, int, int]]:
        """(key, start, first frame to keep) of every window of this epoch."""
        if not self.train:
            return [window for sequence in self.sequences for window in tiling_windows(sequence.key, sequence.length,
                                                                                        self.length)]
        draws = np.random.default_rng([self.seed, self.epoch, 11])
        if self.sampling.sampler == "segments":
            windows = []
            for subject in sorted({sequence.subject for sequence in self.sequences}):
                lengths = [(s.key, s.length) for s in self.sequences if s.subject == subject]
                windows.extend(segment_windows(lengths, self.length, self.sampling.segments, draws))
            return [windows[i] for i in draws.permutation(len(windows))]
        windows = []
        for sequence in self.sequences:
            span = max(sequence.length - self.length, 0)
            if self.sampling.sampler == "one_clip_per_sequence":
                starts = [int(draws.integers(0, span + 1))]
            else:
                offset = int(draws.integers(0, self.length)) if span else 0
                starts = list(range(offset, span + 1, self.length)) or [0]
            windows.extend((sequence.key, start, start) for start in starts)
        return windows


def tiling_windows(key: str, count: int, length: int) -> list[tuple[str, int, int]]:
    """Consecutive windows from frame 0; the last one ends at the last frame and keeps only new frames."""
    starts = list(range(0, max(count - length, 0) + 1, length))
    windows = [(key, start, start) for start in starts]
    if count > length and starts[-1] + length < count:
        windows.append((key, count - length, starts[-1] + length))
    return windows


def segment_windows(lengths: list[tuple[str, int]], length: int, segments: int,
                    draws: np.random.Generator) -> list[tuple[str, int, int]]:
    """LAC Algorithm 1 for one subject: one window per segment of the concatenated task sequences.

    Segments that are shorter than a window fall back to max(1, L // length) segments; a window never
    spans two task sequences; a subject shorter than one window gives no clip.
    """
    total = sum(count for _, count in lengths)
    if total < length:
        return []
    used = segments if total // segments >= length else max(1, total // length)
    size = total // used
    bounds = np.cumsum([0] + [count for _, count in lengths])
    windows = []
    for segment in range(used):
        low, high = segment * size, (segment + 1) * size
        starts = [s for s in range(low, high - length + 1)
                  if np.searchsorted(bounds, s, "right") == np.searchsorted(bounds, s + length - 1, "right")]
        if not starts:
            continue
        start = int(draws.choice(starts))
        sequence = int(np.searchsorted(bounds, start, "right")) - 1
        local = start - int(bounds[sequence])
        windows.append((lengths[sequence][0], local, local))
    return windows
