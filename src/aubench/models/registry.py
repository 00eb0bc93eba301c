"""Method registry: a method's name maps to its config type, model and loss builders and data mode.

The trainer only talks to `Method` objects, so it never branches on a method's name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from aubench.errors import ConfigError


@dataclass(frozen=True)
class Method:
    """What a method declares: its params section type, how to build its model and loss, its data mode.

    `data_mode` "frames": the model maps images (B, 3, H, W) to scores (B, N); "clips": clips
    (B, T, 3, H, W) to (B, T, N), with T = the method config's `clips.length` (a `ClipSampling`). `outputs` says whether the
    scores are logits (probability = sigmoid) or already probabilities (e.g. a cosine classifier).
    The loss is called as `loss(scores, targets, mask)` with targets and mask shaped like the scores.
    `on_epoch_start(model, loss, epoch)`, when given, runs before every training epoch (e.g. LAC's
    class-weight update, CIU's teacher/student phase switch).
    """

    name: str
    config_type: type
    build_model: Callable[[Any, int], nn.Module]
    build_loss: Callable[[Any, np.ndarray], nn.Module]
    data_mode: str = "frames"
    outputs: str = "logits"
    on_epoch_start: Callable[[nn.Module, nn.Module, int], None] | None = None


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called `name`."""
    _import_methods()
    if name not in _METHODS:
        raise ConfigError(f"method: unknown method {name!r}; registered: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def _import_methods() -> None:
    # Importing a method module registers it; kept lazy so importing the registry stays cheap.
    from aubench.models import baseline, stf  # noqa: F401


def method_configs(params: dict[str, Any], name: str) -> tuple[Method, Any, Any]:
    """The method called `name`, its typed params section and its `optim` subsection."""
    from aubench.config import from_mapping
    from aubench.train.optim import OptimConfig

    method = get_method(name)
    section = dict(params.get(name, {}))
    optim = from_mapping(OptimConfig, section.pop("optim", {}), f"{name}.optim")
    return method, from_mapping(method.config_type, section, name), optim
