"""Optimiser and learning-rate schedules from a method's `optim` params.

Schedules (the learning rate is set before every optimiser step):
- `constant`;
- `cosine`: per-iteration cosine decay to `min_lr_ratio`·lr over all steps, after `warmup_epochs` of
  linear warm-up (ME-GraphAU / MDHR style);
- `cosine_periodic`: STF eq. 7, stepped per epoch θ: lr·[((1 + cos(θπ/P))/2)(1 − γ) + γ] with
  P = `cosine_period`, γ = `min_lr_ratio` (periodic when run past P, as printed);
- `cosine_clamped`: eq. 7 with θ → min(θ, P) (decay over P epochs, then hold);
- `cosine_full`: eq. 7 with P = the number of epochs;
- `step`: lr·`step_factor`^⌊epoch / `step_epochs`⌋ (JAA-Net / CIU: ×0.3 every 2 epochs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aubench.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "cosine_periodic", "cosine_clamped", "cosine_full", "step")


@dataclass(frozen=True)
class OptimConfig:
    """A method's optimisation hyperparameters (the paper's values live in params.yaml)."""

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = False  # SGD only
    betas: tuple[float, ...] = (0.9, 0.999)
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    cosine_period: int = 20
    min_lr_ratio: float = 0.0
    epochs: int = 20
    batch_size: int = 64
    step_epochs: int = 2  # `step` schedule: epochs between decays
    step_factor: float = 0.3  # `step` schedule: the factor of each decay

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optim.optimizer: unknown optimizer {self.optimizer!r}; use one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule: unknown schedule {self.schedule!r}; use one of {SCHEDULES}")
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError(f"optim.nesterov: Nesterov momentum is an SGD option, not {self.optimizer}'s")
        if self.step_epochs < 1:
            raise ConfigError(f"optim.step_epochs: {self.step_epochs} < 1")


def build_optimizer(parameters, config: OptimConfig) -> torch.optim.Optimizer:
    """The configured optimiser over `parameters`, in PyTorch's fused form (one kernel over all tensors:
    on CPU the per-tensor loop of the default AdamW took about a third of a ResNet-18 step at 48²)."""
    parameters = list(parameters)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               nesterov=config.nesterov, fused=True)
    optimizer = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return optimizer(parameters, config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay, fused=True)


def learning_rate(config: OptimConfig, epoch: int, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Learning rate for `step` (0-based) of `epoch` (0-based) in a run of `epochs` epochs."""
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        return config.lr * config.step_factor ** (epoch // config.step_epochs)
    if config.schedule == "cosine":
        return config.lr * _warm_cosine(config, epoch * steps_per_epoch + step, steps_per_epoch, epochs)
    period = {"cosine_periodic": config.cosine_period, "cosine_clamped": config.cosine_period,
              "cosine_full": epochs}[config.schedule]
    theta = min(epoch, period) if config.schedule == "cosine_clamped" else epoch
    return stf_eq7(config.lr, theta, period, config.min_lr_ratio)


def stf_eq7(lr: float, theta: float, period: float, gamma: float) -> float:
    """STF eq. 7: lr_θ = lr·[((1 + cos(θπ/period))/2)(1 − γ) + γ]."""
    return lr * ((1 + math.cos(theta * math.pi / period)) / 2 * (1 - gamma) + gamma)


def _warm_cosine(config: OptimConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return (step + 1) / warmup
    total = max(epochs * steps_per_epoch - warmup, 1)
    progress = (step - warmup) / total
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
