"""Torch datasets over the aligned store.

Augmentation follows the ME-GraphAU convention (pipeline.md §2 align): a random `input_size` crop with
horizontal flip for training, the centre crop for testing. Every random choice comes from
(seed, epoch, sample index), so data order and augmentation are identical after a resume and with any
number of loader workers. Images leave the dataset as uint8; normalisation happens on the device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from aubench.align.store import AlignedStore
from aubench.data.aus import UNKNOWN

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
        return cls(np.array(keys), np.array(positions, dtype=np.int64))


class FrameDataset(Dataset):
    """Single aligned frames with labels and masks, for image-mode methods."""

    def __init__(self, store: AlignedStore, subjects: tuple[str, ...], input_size: int, train: bool,
                 seed: int = 0) -> None:
        if input_size > store.crop_size:
            raise ValueError(f"train.input_size {input_size} exceeds the aligned crop size {store.crop_size}")
        self.store = store
        self.index = FrameIndex.for_subjects(store, subjects, labelled_only=train)
        self.input_size = input_size
        self.train = train
        self.seed = seed
        self.epoch = 0
        self._images: dict[str, np.ndarray] = {}
        self._labels = {key: torch.from_numpy(store.labels(key).astype(np.int64)) for key in set(self.index.keys)}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws to use."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index.keys)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        key, position = self.index.keys[item], int(self.index.positions[item])
        if key not in self._images:  # opened lazily so each loader worker has its own memory map
            self._images[key] = self.store.images(key)
        image = self._crop(self._images[key][position], item)
        labels = self._labels[key][position]
        return {"image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1),
                "target": labels.clamp(min=0), "mask": labels != UNKNOWN}

    def _crop(self, image: np.ndarray, item: int) -> np.ndarray:
        margin = image.shape[0] - self.input_size
        if not self.train:
            top = left = margin // 2
            return image[top:top + self.input_size, left:left + self.input_size]
        draws = np.random.default_rng([self.seed, self.epoch, item])
        top, left = draws.integers(0, margin + 1, size=2)
        crop = image[top:top + self.input_size, left:left + self.input_size]
        return crop[:, ::-1] if draws.random() < 0.5 else crop


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float, scaled to [0, 1] and standardised with ImageNet statistics."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
