"""The engine's settings (`train` and `ablate` params sections) and where a run writes: shared by the trainer, run
resolution and the reports, which must not import the trainer itself."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aubench.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """The `train` params section: engine settings shared by every method.

    `epochs` and `batch_size` override the method's own values when set (null = the method's).
    `batch_size` is the global batch per optimiser step in frames (a clip method gets batch_size // T
    clips), split over `accumulate` micro-batches and DDP ranks. The method's own `optim.batch_size`
    counts its samples (frames, or clips for clip methods), as its paper does. `epoch_fraction` < 1
    trains each epoch on that share of the training samples, redrawn every epoch (on SynthAU it cost
    more F1 than the time it saved, so the CPU profile keeps 1). `augment: false` trains on centre crops without flips; `test_crop` is how test frames are
    cut from the aligned face (`centre`: the centre input_size² crop; `resize`: the whole face resized).
    `channels_last` stores images and convolution weights channels-last (for GPU tensor cores; on the
    project's 2-core CPU it measured 15 % slower for a ResNet-18 step at 48², so the CPU profile keeps it off).
    `fold_processes`: folds of a run trained at once in separate processes on a CPU (`aubench.train.folds`),
    each with an equal share of the threads; a fold's numbers depend on its thread count.
    """

    seed: int = 0
    device: str = "auto"
    input_size: int = 224
    epochs: int | None = None
    batch_size: int | None = None
    epoch_fraction: float = 1.0
    augment: bool = True
    test_crop: str = "centre"
    channels_last: bool = False
    accumulate: int = 1
    amp: bool = True
    num_workers: int = 0
    validation_subjects: int = 0
    early_stopping_patience: int = 0
    predict_batch_size: int = 64
    fold_processes: int = 1

    def __post_init__(self) -> None:
        if self.early_stopping_patience and not self.validation_subjects:
            raise ConfigError("train.early_stopping_patience needs train.validation_subjects > 0 "
                              "(the test fold is never used for selection)")
        if self.fold_processes < 1:
            raise ConfigError(f"train.fold_processes: {self.fold_processes} must be >= 1")
        if not 0 < self.epoch_fraction <= 1:
            raise ConfigError(f"train.epoch_fraction: {self.epoch_fraction} is not in (0, 1]")


@dataclass(frozen=True)
class RunPaths:
    """Where one run × fold writes (checkpoint, predictions, DVCLive directory), and the finished
    checkpoints of its upstream runs by slot (e.g. {"backbone": models/baseline/fold1/checkpoint.pt})."""

    checkpoint: Path
    predictions: Path
    live_dir: Path
    upstream: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class AblateConfig:
    """The `ablate` params section: the folds ablation runs use (read by dvc.yaml) and their epochs
    (`epochs` overrides `train.epochs` for ablation runs; null = the main runs' schedule)."""

    folds: tuple[int, ...] = (1, 2, 3)
    epochs: int | None = None
