"""Torch datasets over the aligned store: single frames (image mode) and clips of T frames.

Augmentation follows the ME-GraphAU convention (pipeline.md §2 align): a random `input_size` crop with
horizontal flip for training, the centre crop for testing; a clip gets one crop and flip for all its
frames. Every random choice comes from (seed, epoch, sample index), so data order and augmentation are
identical after a resume, with any number of loader workers and under DDP. Images leave the dataset as
uint8; normalisation happens on the device (`normalise`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from aubench.align.store import AlignedStore
from aubench.data.aus import UNKNOWN
from aubench.data.clips import ClipSampling, segment_windows, tiling_windows

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
@dataclass(frozen=True)
class FrameIndex:
    """Flat list of (sequence key, frame position) for a set of subjects."""

    keys: np.ndarray
    positions: np.ndarray

    @classmethod
    def for_subjects(cls, store: AlignedStore, subjects: tuple[str, ...], labelled_only: bool) -> "FrameIndex":
        keys, positions = [], []
        for sequence in store.sequences:
            if sequence.subject not in subjects:
                continue
            frames = np.arange(sequence.length)
            if labelled_only:
                frames = frames[(store.labels(sequence.key) != UNKNOWN).any(1)]
            keys.extend([sequence.key] * len(frames))
            positions.extend(frames.tolist())
        return cls(np.array(keys, dtype=str), np.array(positions, dtype=np.int64))


def crop_and_flip(images: np.ndarray, size: int, draws: np.random.Generator | None) -> np.ndarray:
    """Crop (..., S, S, 3) images to size²: random offset and flip with `draws`, centre crop without."""
    margin = images.shape[-3] - size
    if draws is None:
        top = left = margin // 2
        flip = False
    else:
        top, left = draws.integers(0, margin + 1, size=2)
        flip = draws.random() < 0.5
    crop = images[..., top:top + size, left:left + size, :]
    return np.ascontiguousarray(crop[..., ::-1, :] if flip else crop)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) → float, scaled to [0, 1] and standardised with ImageNet statistics."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class _StoreDataset(Dataset):
    """Shared machinery: lazily memory-mapped images, labels, per-epoch augmentation draws."""

    def __init__(self, store: AlignedStore, subjects: tuple[str, ...], input_size: int, train: bool,
                 seed: int) -> None:
        if input_size > store.crop_size:
            raise ValueError(f"train.input_size {input_size} exceeds the aligned crop size {store.crop_size}")
        self.store, self.input_size, self.train, self.seed = store, input_size, train, seed
        self.epoch = 0
        self.sequences = [sequence for sequence in store.sequences if sequence.subject in subjects]
        self._labels = {sequence.key: store.labels(sequence.key).astype(np.int64) for sequence in self.sequences}
        self._images: dict[str, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws (and, for clips, windows) to use."""
        self.epoch = epoch

    def _sample(self, key: str, positions: np.ndarray | int, item: int) -> dict[str, torch.Tensor]:
        if key not in self._images:  # opened lazily so each loader worker has its own memory map
            self._images[key] = self.store.images(key)
        draws = np.random.default_rng([self.seed, self.epoch, item]) if self.train else None
        images = crop_and_flip(self._images[key][positions], self.input_size, draws)
        labels = torch.from_numpy(self._labels[key][positions])
        return {"image": torch.from_numpy(images).movedim(-1, -3), "target": labels.clamp(min=0),
                "mask": labels != UNKNOWN}


class FrameDataset(_StoreDataset):
    """Single aligned frames (image mode).

    Supervised training skips frames with no known label; `labelled_only=False` keeps every frame, for
    self-supervised pretraining on unlabeled frames (labels then come back fully masked where unknown).
    """

    def __init__(self, store: AlignedStore, subjects: tuple[str, ...], input_size: int, train: bool,
                 seed: int = 0, labelled_only: bool | None = None) -> None:
        super().__init__(store, subjects, input_size, train, seed)
        keep_labelled = train if labelled_only is None else labelled_only
        self.index = FrameIndex.for_subjects(store, subjects, labelled_only=keep_labelled)

    def __len__(self) -> int:
        return len(self.index.keys)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        return self._sample(str(self.index.keys[item]), int(self.index.positions[item]), item)


class ClipDataset(_StoreDataset):
    """Clips of `sampling.length` consecutive frames of one sequence, redrawn every training epoch.

    Testing tiles each sequence from frame 0; the last window is the sequence's last `length` frames and
    only its not-yet-covered frames count (`keep`), so every frame gets exactly one prediction.
    Sequences shorter than `length` repeat their last frame, and padded frames are masked.
    """

    def __init__(self, store: AlignedStore, subjects: tuple[str, ...], input_size: int, train: bool,
                 sampling: ClipSampling, seed: int = 0) -> None:
        super().__init__(store, subjects, input_size, train, seed)
        self.sampling, self.length = sampling, sampling.length
        self._lengths = {sequence.key: sequence.length for sequence in self.sequences}
        self.windows = self._windows()

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.windows = self._windows()

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        key, start, keep_from = self.windows[item]
        count = self._lengths[key]
        offsets = np.arange(start, start + self.length)
        positions = np.minimum(offsets, count - 1)
        sample = self._sample(key, positions, item)
        padded = torch.from_numpy(offsets >= count)
        sample["mask"] = sample["mask"] & ~padded[:, None]
        sample["positions"] = torch.from_numpy(positions)
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
