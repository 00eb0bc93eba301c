"""The method contract and its registry: a method's name maps to everything the engine needs to train it.

A leaf module: it imports no method. `aubench.models` imports the method modules, each of which calls
`register`, so every method is known once the package is imported (as timm's registry does); modules
outside the package (a user's own method) register themselves the same way when imported (see the
`plugins` params key). The trainer only talks to `Method` objects and never branches on a method's name.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aubench.data.samples import FrameSampling
from aubench.errors import ConfigError

Batch = Mapping[str, torch.Tensor]


@dataclass
class StepOutput:
    """One training step's named loss terms (the trainer sums them, logs the sum as `train/loss` and each
    term as `train/terms/<name>`) and its AU scores (shaped like `batch["target"]`; None for a run that predicts no AUs)."""

    terms: dict[str, torch.Tensor]
    scores: torch.Tensor | None = None


class Hooks:
    """Per-run callbacks with state; the default does nothing and holds nothing.

    The trainer calls `on_epoch_start(epoch)` before each training epoch, `after_optimizer_step()` after
    each optimiser step and `on_epoch_end(epoch, terms)` with the epoch's mean loss terms; `state_dict()`
    is saved in every checkpoint and `load_state_dict()` restores it on resume, so a killed run continues
    with exactly the state it had (e.g. loss weights updated each epoch, an EMA target network).
    """

    def on_epoch_start(self, epoch: int) -> None:
        """Before training epoch `epoch` (0-based)."""

    def after_optimizer_step(self) -> None:
        """After every optimiser step."""

    def on_epoch_end(self, epoch: int, terms: Mapping[str, float]) -> None:
        """After training epoch `epoch`, with its mean loss terms."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""


def supervised_step(model: nn.Module, loss_fn: nn.Module, batch: Batch) -> StepOutput:
    """The usual step: scores = model(images), one loss term on (scores, target, mask)."""
    scores = model(batch["image"])
    return StepOutput({"loss": loss_fn(scores.float(), batch["target"], batch["mask"])}, scores)


def predict_scores(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The usual prediction: scores = model(images)."""
    return model(batch["image"])


def backbone_upstream(config: Any) -> dict[str, str]:
    """The run a method's backbone starts from: its config's `init_from`, when it has one and it is set."""
    source = getattr(config, "init_from", None)
    return {"backbone": source} if source else {}


def load_backbone(model: nn.Module, slot: str, checkpoint: Path) -> None:
    """Copy the ResNet trunk of a finished run's checkpoint into `model`'s trunk (`slot` is "backbone")."""
    from aubench.models.backbones import load_trunk  # the registry stays a leaf of the models package

    load_trunk(model, checkpoint)


def parameters_with_gradients(model: nn.Module) -> Iterable[nn.Parameter]:
    """Every parameter not frozen (`requires_grad`)."""
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


@dataclass(frozen=True)
class Method:
    """What a method declares.

    - `config_type`: its params section (a frozen dataclass); `build_model(config, num_aus)`,
      `build_loss(config, au_rates)`.
    - `sampling(config)`: how it samples the store (single frames, clips, extra batch fields); the object
      builds the dataset and an example input.
    - `outputs`: "logits" (probability = sigmoid) or "probabilities" (e.g. a cosine classifier).
    - `step(model, loss_fn, batch) -> StepOutput`: the named loss terms of one batch (images normalised,
      every field on the device).
    - `predict(model, batch) -> scores`: a test batch's scores (every field on the device; labels are
      there, for an oracle ablation only).
    - `hooks(config, model, loss_fn) -> Hooks`: stateful callbacks, checkpointed with the run.
    - `upstream(config) -> {slot: run}`: runs (same fold) it starts from or distils, and
      `load_upstream(model, slot, checkpoint)` loads one of them.
    - `trainable(model)`: the parameters the optimiser sees (e.g. a probe on a frozen backbone).
    - `predicts`: False for a run that learns no AU head (pretraining): it writes no predictions.
    - `top_level`: top-level params keys that stand for one config field (STF's `k` → `srm_top_k`).
    """

    name: str
    config_type: type
    build_model: Callable[[Any, int], nn.Module]
    build_loss: Callable[[Any, np.ndarray], nn.Module]
    sampling: Callable[[Any], FrameSampling] = lambda config: FrameSampling()
    outputs: str = "logits"
    step: Callable[[nn.Module, nn.Module, Batch], StepOutput] = supervised_step
    predict: Callable[[nn.Module, Batch], torch.Tensor] = predict_scores
    hooks: Callable[[Any, nn.Module, nn.Module], Hooks] = lambda config, model, loss_fn: Hooks()
    upstream: Callable[[Any], dict[str, str]] = backbone_upstream
    load_upstream: Callable[[nn.Module, str, Path], None] = load_backbone
    trainable: Callable[[nn.Module], Iterable[nn.Parameter]] = parameters_with_gradients
    predicts: bool = True
    top_level: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outputs not in ("logits", "probabilities"):
            raise ConfigError(f"method {self.name}: outputs must be 'logits' or 'probabilities'")

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """AU probabilities from this method's scores."""
        return torch.sigmoid(scores.float()) if self.outputs == "logits" else scores.float()


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Make `method` known by its name (re-registering a name replaces it, e.g. on module reload)."""
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called `name`."""
    if name not in _METHODS:
        raise ConfigError(f"method: unknown method {name!r}; registered: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def method_names() -> list[str]:
    """Every registered method, sorted."""
    return sorted(_METHODS)
