"""A throwaway method defined outside the package, as a user would write one: importing this module
registers it (a params file lists it under `plugins`), and it trains through `stages/train.py` with no
edit under src/.

It exercises every part of the method contract a plain supervised method leaves unused:
- an extra batch field: single frames with their 68 landmarks (`FrameSampling(fields=("landmarks",))`);
- a custom step with two named loss terms: "bce" on the AU logits and "landmark", the weighted error of
  the landmarks regressed from the same features (it reads `batch["landmarks"]`, so the step fails
  unless the landmarks reach the device with the images);
- stateful hooks: the landmark term's weight is re-balanced after every epoch from that epoch's mean
  terms (a running mean with momentum), and the optimiser steps are counted; both are checkpointed.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aubench.data.samples import FrameSampling
from aubench.losses.weighted_bce import WeightedBCELoss, stf_au_weights
from aubench.models.registry import Hooks, Method, StepOutput, register


@dataclass(frozen=True)
class ThrowawayConfig:
    """The `throwaway` params section."""

    channels: int = 8
    landmark_weight: float = 1.0
    momentum: float = 0.5


class ThrowawayNet(nn.Module):
    """Images (B, 3, H, W) → AU logits (B, N); with `with_landmarks`, also landmarks (B, 68, 2) in [0, 1]."""

    def __init__(self, num_aus: int, channels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, num_aus)
        self.points = nn.Linear(channels, 68 * 2)

    def forward(self, images: torch.Tensor, with_landmarks: bool = False):
        features = self.features(images)
        logits = self.head(features)
        if not with_landmarks:
            return logits
        return logits, torch.sigmoid(self.points(features)).view(-1, 68, 2)


class ThrowawayLoss(nn.Module):
    """Weighted BCE on the AU logits, and the landmark error times `landmark_weight` (set by the hooks)."""

    def __init__(self, au_rates: np.ndarray, landmark_weight: float) -> None:
        super().__init__()
        self.bce = WeightedBCELoss(stf_au_weights(au_rates))
        self.landmark_weight = landmark_weight


def build_model(config: ThrowawayConfig, num_aus: int) -> ThrowawayNet:
    return ThrowawayNet(num_aus, config.channels)


def build_loss(config: ThrowawayConfig, au_rates: np.ndarray) -> ThrowawayLoss:
    return ThrowawayLoss(au_rates, config.landmark_weight)


def step(model: nn.Module, loss_fn: ThrowawayLoss, batch: Mapping[str, torch.Tensor]) -> StepOutput:
    images, landmarks = batch["image"], batch["landmarks"]
    if landmarks.device != images.device or landmarks.shape != (len(images), 68, 2):
        raise AssertionError(f"landmarks {tuple(landmarks.shape)} on {landmarks.device}, images on {images.device}")
    logits, points = model(images, with_landmarks=True)
    target = landmarks / (images.shape[-1] - 1)  # input-crop pixels → [0, 1]
    landmark = F.mse_loss(points.float(), target)
    return StepOutput({"bce": loss_fn.bce(logits.float(), batch["target"], batch["mask"]),
                       "landmark": loss_fn.landmark_weight * landmark}, logits)


class BalancingHooks(Hooks):
    """Re-weights the landmark term after each epoch so that it follows the BCE term's size.

    `running` is a running mean (momentum `momentum`) of the epoch's unweighted landmark error; the new
    weight is the epoch's BCE over it. `steps` counts optimiser steps, `epochs` the finished epochs.
    """

    def __init__(self, config: ThrowawayConfig, loss_fn: ThrowawayLoss) -> None:
        self.loss_fn, self.momentum = loss_fn, config.momentum
        self.running: float | None = None
        self.steps, self.epochs = 0, 0
        self.history: list[float] = []

    def after_optimizer_step(self) -> None:
        self.steps += 1

    def on_epoch_end(self, epoch: int, terms: Mapping[str, float]) -> None:
        error = terms["landmark"] / self.loss_fn.landmark_weight
        self.running = error if self.running is None else self.momentum * self.running + (1 - self.momentum) * error
        self.loss_fn.landmark_weight = terms["bce"] / max(self.running, 1e-8)
        self.history.append(self.loss_fn.landmark_weight)
        self.epochs = epoch + 1

    def state_dict(self) -> dict[str, Any]:
        return {"landmark_weight": self.loss_fn.landmark_weight, "running": self.running, "steps": self.steps,
                "epochs": self.epochs, "history": list(self.history)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.loss_fn.landmark_weight, self.running = state["landmark_weight"], state["running"]
        self.steps, self.epochs, self.history = state["steps"], state["epochs"], list(state["history"])


METHOD = register(Method("throwaway", ThrowawayConfig, build_model, build_loss,
                         sampling=lambda config: FrameSampling(fields=("landmarks",)), step=step,
                         hooks=lambda config, model, loss_fn: BalancingHooks(config, loss_fn)))
