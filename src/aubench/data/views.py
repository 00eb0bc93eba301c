"""Two augmented views per frame, for self-supervised pretraining (MC-SFAU §3.1, BYOL style).

Each sample holds `image` — the un-augmented frame P (the centre `input_size` crop of the aligned face,
with its 68 `landmarks` when asked for, for the landmark-guided branch) — and `view1`, `view2`: two
independent draws of the augmentation policy (paper Table 8: random crop, random rotation, colour
jitter, or all three mixed). Parameters are drawn with numpy from (seed, epoch, sample), so the views
are identical after a resume and with any number of loader workers. `samples_per_epoch` frames are
drawn from the pool each epoch (all of them when null): an "epoch" of a face-video pool is a choice
(docs/methods/mcsfau.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from aubench.data.samples import FrameDataset, FrameSampling, example_landmarks
from aubench.errors import ConfigError

POLICIES = {"mixed": ("crop", "rotation", "jitter"), "random_crop": ("crop",),
            "random_rotation": ("rotation",), "color_jitter": ("jitter",)}


@dataclass(frozen=True)
class AugmentConfig:
    """The view policy and its operations' ranges (the paper names the operations only)."""

    policy: str = "mixed"
    scale: tuple[float, ...] = (0.6, 1.0)  # random resized crop: area fraction
    ratio: tuple[float, ...] = (0.75, 1.3333)  # and aspect ratio
    degrees: float = 15.0
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    jitter_probability: float = 0.8
    horizontal_flip: bool = False

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"augment.policy: unknown policy {self.policy!r}; use one of {', '.join(POLICIES)}")


def draw_view(image: torch.Tensor, size: int, config: AugmentConfig, draws: np.random.Generator) -> torch.Tensor:
    """One augmented (3, size, size) uint8 view of a (3, S, S) uint8 aligned face."""
    operations = POLICIES[config.policy]
    full = image.shape[-1]
    if "crop" in operations:
        area = full * full * draws.uniform(*config.scale)
        aspect = np.exp(draws.uniform(*np.log(config.ratio)))
        width = int(min(full, round(np.sqrt(area * aspect))))
        height = int(min(full, round(np.sqrt(area / aspect))))
        top, left = int(draws.integers(0, full - height + 1)), int(draws.integers(0, full - width + 1))
        view = TF.resized_crop(image, top, left, height, width, [size, size], antialias=True)
    else:
        view = TF.center_crop(image, [size, size])
    if "rotation" in operations:
        view = TF.rotate(view, float(draws.uniform(-config.degrees, config.degrees)),
                         interpolation=TF.InterpolationMode.BILINEAR)
    if "jitter" in operations and draws.random() < config.jitter_probability:
        view = _jitter(view, config, draws)
    if config.horizontal_flip and draws.random() < 0.5:
        view = TF.horizontal_flip(view)
    return view


def _jitter(view: torch.Tensor, config: AugmentConfig, draws: np.random.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue changes, in a random order (as torchvision's ColorJitter)."""
    adjust = {0: lambda v: TF.adjust_brightness(v, draws.uniform(1 - config.brightness, 1 + config.brightness)),
              1: lambda v: TF.adjust_contrast(v, draws.uniform(1 - config.contrast, 1 + config.contrast)),
              2: lambda v: TF.adjust_saturation(v, draws.uniform(1 - config.saturation, 1 + config.saturation)),
              3: lambda v: TF.adjust_hue(v, draws.uniform(-config.hue, config.hue))}
    for operation in draws.permutation(4):
        view = adjust[int(operation)](view)
    return view


@dataclass(frozen=True)
class ViewsSampling(FrameSampling):
    """Frames with two augmented views (`view1`, `view2`) beside the un-augmented `image`."""

    augment: AugmentConfig = AugmentConfig()
    samples_per_epoch: int | None = None

    def dataset(self, store: Any, subjects: tuple[str, ...], input_size: int, train: bool, seed: int = 0,
                augment: bool = True, test_crop: str = "centre") -> "ViewsDataset":
        return ViewsDataset(store, subjects, input_size, seed, self)

    def example_input(self, size: int, frames: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """A batch of `frames` normalised random images, views and landmarks spread over the face (cost counting)."""
        images = super().example_input(size, frames, device)
        return {"image": images, "view1": images, "view2": images,
                "landmarks": example_landmarks(size, (len(images),), device)}


class ViewsDataset(FrameDataset):
    """Every frame of the subjects (labelled or not); `samples_per_epoch` of them drawn each epoch."""

    def __init__(self, store: Any, subjects: tuple[str, ...], input_size: int, seed: int,
                 sampling: ViewsSampling) -> None:
        super().__init__(store, subjects, input_size, train=True, seed=seed, labelled_only=False,
                         fields=sampling.fields, augment=False)
        if not len(self.index.keys):
            raise ConfigError(f"{store.root}: no frames of subjects {', '.join(subjects) or '(none)'} to pretrain on")
        self.sampling = sampling
        self.chosen = self._choose()

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.chosen = self._choose()

    def _choose(self) -> np.ndarray:
        frames, wanted = len(self.index.keys), self.sampling.samples_per_epoch
        draws = np.random.default_rng([self.seed, self.epoch, 13])
        if wanted is None:
            return np.arange(frames)
        return draws.choice(frames, size=wanted, replace=wanted > frames)

    def __len__(self) -> int:
        return len(self.chosen)

    def sample_key(self, item: int) -> str:
        return str(self.index.keys[self.chosen[item]])

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        frame = int(self.chosen[item])
        key, position = str(self.index.keys[frame]), int(self.index.positions[frame])
        sample = self._sample(key, position, item)
        face = torch.from_numpy(np.array(self._images[key][position])).movedim(-1, -3)  # a writable copy of the memory map
        draws = np.random.default_rng([self.seed, self.epoch, item, 17])
        for name in ("view1", "view2"):
            sample[name] = draw_view(face, self.input_size, self.sampling.augment, draws)
        return sample
