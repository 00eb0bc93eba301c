"""Optimiser and learning-rate schedule from a method's `optim` params."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aubench.errors import ConfigError


@dataclass(frozen=True)
class OptimConfig:
    """A method's optimisation hyperparameters (the paper's values live in params.yaml)."""

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: str = "cosine"
    epochs: int = 20
    batch_size: int = 64


def build_optimizer(parameters, config: OptimConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, config.lr, weight_decay=config.weight_decay)
    raise ConfigError(f"optim.optimizer: unknown optimizer {config.optimizer!r}; use sgd, adam or adamw")


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Multiplier of the initial learning rate at `step` (0-based) of `total_steps`, stepped per iteration."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))
    raise ConfigError(f"optim.schedule: unknown schedule {schedule!r}; use constant or cosine")
