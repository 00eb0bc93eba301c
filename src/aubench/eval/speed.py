"""Throughput measurements: training samples/s and inference frames/s of a model on this machine."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch

from aubench.models.registry import StepOutput, supervised_step


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_rate(step: Callable[[], int], steps: int, warmup: int, device: torch.device) -> float:
    """Items per second of `step()` (which returns how many items it processed), after `warmup` calls."""
    for _ in range(warmup):
        step()
    _synchronise(device)
    started, items = time.perf_counter(), 0
    for _ in range(steps):
        items += step()
    _synchronise(device)
    return items / (time.perf_counter() - started)


def bare_training_rate(model: torch.nn.Module, loss_fn: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       images: torch.Tensor, targets: torch.Tensor, steps: int = 10, warmup: int = 2,
                       method_step: Callable[..., StepOutput] = supervised_step,
                       fields: Mapping[str, torch.Tensor] | None = None) -> float:
    """Samples/s of a plain forward/backward/step loop on one fixed, already-on-device batch (the reference);
    `method_step` is the method's own step (its loss terms are summed, as the trainer does); `fields` are
    extra batch fields it reads (e.g. landmarks)."""
    batch = {"image": images, "target": targets, "mask": torch.ones_like(targets, dtype=torch.bool), **(fields or {})}
    model.train()

    def step() -> int:
        loss = sum(method_step(model, loss_fn, batch).terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(images)

    return timed_rate(step, steps, warmup, images.device)


@torch.no_grad()
def inference_rate(model: torch.nn.Module, images: torch.Tensor, steps: int = 10, warmup: int = 2) -> float:
    """Frames/s of the model's forward pass in eval mode (clip inputs count T frames per clip)."""
    model.eval()
    frames = images.shape[0] * (images.shape[1] if images.dim() == 5 else 1)

    def step() -> int:
        model(images)
        return frames

    return timed_rate(step, steps, warmup, images.device)
