"""What one training run is: a method, or a named ablation variant of one, with its resolved config.

A run is named after its method (`stf`) or its variant (`stf_A1_baseline`); its checkpoint, predictions
and DVCLive log live under that name. Variants are entries of the `ablations` params section:
`{method: stf, overrides: {use_srm: false, optim.lr: 0.001}}`. `--set key=value` on the command line
applies the same kind of override (dvc.yaml uses it to feed the top-level `k` into STF's Top-K).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aubench.config import to_dict
from aubench.errors import ConfigError
from aubench.models.registry import Method, method_configs
from aubench.train.optim import OptimConfig
from aubench.train.trainer import RunPaths


@dataclass(frozen=True)
class AblateConfig:
    """The `ablate` params section: which variants the pipeline runs, on which folds, for how long.

    `epochs` overrides `train.epochs` for ablation runs only (null = the same schedule as the main runs).
    """

    variants: tuple[str, ...] = ()
    folds: tuple[int, ...] = (1, 2, 3)
    epochs: int | None = None


@dataclass(frozen=True)
class Run:
    """A resolved training run."""

    name: str
    method: Method
    method_config: Any
    optim: OptimConfig

    def paths(self, fold: int) -> RunPaths:
        init_from = getattr(self.method_config, "init_from", None)
        if init_from == self.name:
            raise ConfigError(f"{self.method.name}.init_from: run {self.name!r} cannot start from its own checkpoint")
        return RunPaths(_checkpoint(self.name, fold), Path("predictions") / self.name / f"fold{fold}.npz",
                        Path("dvclive") / "train" / self.name / f"fold{fold}",
                        _checkpoint(init_from, fold) if init_from else None)

    def resolved(self) -> dict[str, Any]:
        """The configuration to save beside the run's outputs."""
        return {"run": self.name, "method": self.method.name, self.method.name: to_dict(self.method_config),
                "optim": to_dict(self.optim)}


def _checkpoint(run: str, fold: int) -> Path:
    return Path("models") / run / f"fold{fold}" / "checkpoint.pt"


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`["srm_top_k=4", "optim.lr=0.01"]` → {"srm_top_k": 4, "optim.lr": 0.01} (values parsed as YAML)."""
    parsed = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected key=value")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def resolve_run(params: dict[str, Any], method: str | None = None, variant: str | None = None,
                overrides: dict[str, Any] | None = None) -> Run:
    """The run for `method`, or for ablation `variant`, with `overrides` applied to the method's section."""
    changes = dict(overrides or {})
    if variant is not None:
        entry = params.get("ablations", {}).get(variant)
        if entry is None:
            raise ConfigError(f"ablations.{variant}: no such ablation variant in params.yaml")
        method = entry["method"]
        changes = {**entry.get("overrides", {}), **changes}
    if method is None:
        raise ConfigError("a training run needs --method or --variant")
    patched = copy.deepcopy(params)
    section = patched.setdefault(method, {})
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        target = section
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    resolved_method, method_config, optim = method_configs(patched, method)
    return Run(variant or method, resolved_method, method_config, optim)
