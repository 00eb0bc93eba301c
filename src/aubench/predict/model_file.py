"""The deploy model: one run trained on every labelled subject, saved as a self-contained model file.

`aubench predict` needs nothing but this file: the method and its resolved config, the AU list, the input
size and test crop, the alignment template and landmark settings the training crops were made with (so
that a user's video is preprocessed exactly like the training data), the dataset it was trained on, and the
weights. It holds only tensors, strings, numbers, lists and dicts, so it loads with
`torch.load(weights_only=True)`: opening a model file never runs code from it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aubench.align.store import AlignedStore
from aubench.align.transform import AlignConfig
from aubench.config import from_mapping, to_dict
from aubench.data.folds import Fold, occurrence_rates
from aubench.errors import DataError
from aubench.landmarks.pipeline import NOT_IN_KEY, LandmarkConfig
from aubench.models.registry import Method, get_method

FORMAT = "aubench-model/1"


@dataclass(frozen=True)
class DeployConfig:
    """The `deploy` params section."""

    run: str = "baseline"          # the run (params `runs`) trained on every labelled subject
    epochs: int | None = None      # None: the run's own schedule
    out_dir: str = "models/deploy"


def all_subjects_fold(store: AlignedStore) -> tuple[Fold, np.ndarray]:
    """Every subject of the store as training data (no test subject), and their AU occurrence rates."""
    subjects = tuple(store.subjects())
    labels = np.concatenate([store.labels(sequence.key) for sequence in store.sequences])
    return Fold(0, subjects, ()), occurrence_rates(labels)


@dataclass(frozen=True)
class DeployedModel:
    """A loaded model file: everything predict needs to preprocess frames and score them."""

    method: Method
    config: Any
    aus: tuple[int, ...]
    input_size: int
    test_crop: str
    threshold: float
    align: AlignConfig
    landmarks: LandmarkConfig
    dataset: str
    synthetic: bool
    run: str
    state_dict: dict[str, torch.Tensor]

    def build(self, device: torch.device) -> nn.Module:
        """The network with its trained weights, in eval mode on `device`."""
        model = self.method.build_model(self.config, len(self.aus))
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()


def save_model_file(path: Path, run: str, method: Method, config: Any, model: nn.Module, store: AlignedStore,
                    input_size: int, test_crop: str, threshold: float, align: AlignConfig,
                    landmarks: LandmarkConfig, dataset: str) -> Path:
    """Write the self-contained model file atomically."""
    landmark_settings = {key: value for key, value in to_dict(landmarks).items() if key not in NOT_IN_KEY}
    content = {"format": FORMAT, "run": run, "method": method.name, "config": to_dict(config),
               "aus": list(store.aus), "input_size": input_size, "test_crop": test_crop, "threshold": threshold,
               "align": to_dict(align), "landmarks": landmark_settings, "dataset": dataset,
               "synthetic": store.dataset == "synthau",
               "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(content, partial)
    partial.replace(path)
    return path


def load_model_file(path: Path) -> DeployedModel:
    """Read a model file (weights only: no code is unpickled); a missing or foreign file is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file is missing (the `deploy` stage writes one: `dvc repro deploy`)")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a foreign or damaged file
        raise DataError(f"{path}: not a readable aubench model file ({error})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise DataError(f"{path}: not an aubench model file (format {FORMAT!r} expected)")
    method = get_method(content["method"])
    config = from_mapping(method.config_type, content["config"], f"{path}: config")
    if any(field.name == "pretrained" for field in dataclasses.fields(config)):
        config = dataclasses.replace(config, pretrained=False)  # the file holds the weights
    return DeployedModel(method, config, tuple(content["aus"]), content["input_size"], content["test_crop"],
                         content["threshold"], from_mapping(AlignConfig, content["align"], f"{path}: align"),
                         from_mapping(LandmarkConfig, content["landmarks"], f"{path}: landmarks"),
                         content["dataset"], content["synthetic"], content["run"], content["state_dict"])
