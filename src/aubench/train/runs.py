"""What one training run is: a method, the params key that holds its own settings, the run it starts
from, and the protocol it follows — resolved into typed configs and paths.

Runs are listed in the `runs` params section, by the dependency shape that dvc.yaml trains them with:
`scratch` (no upstream run), `from_upstream` (starts from another run's finished checkpoint on the same
fold), `pretrain` (learns a backbone from the unlabeled face pool, once for all folds) and `from_pretrain`
(starts from a `pretrain` run's backbone). Each entry is `{name, method, key, upstream?}`; `key` names the one
params key, besides the method's section, that the run depends on:
- the method's own section name: the run is the method as its section says;
- a top-level key the method declares (`Method.top_level`, e.g. STF's `k` → `srm_top_k`);
- a mapping such as `variants.stf.A5_wo_trm`: overrides of the method's section (dotted keys reach into
  subsections, `optim.lr: 0.01`).
`ablation` maps a `from_upstream`, `pretrain` or `from_pretrain` run to its ablation rows, entries of
`variants.<its method>`: row R of run M is the run `M_R` (same method, on `ablate.folds` for `ablate.epochs`),
trained in M's stage, so its outputs live in M's folders (`models/M/ablations/M_R`, …). A row starts from
M's upstream run or from one of that run's rows (its variant says which: MC-SFAU Table 3's probe of the
`pretrain_mfdc_only` pretraining), since both are outputs of the upstream's stage.
A method's section may hold a `train` subsection: engine settings (the `train` section's keys) that its runs
override, e.g. `train.augment: false` for a head on a fixed backbone (`profiles.cpu.stf`).
A run's checkpoint, predictions and DVCLive log live under its name.
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

import aubench.models  # noqa: F401  (registers the built-in methods)
from aubench.config import from_mapping, section, set_dotted, to_dict
from aubench.errors import ConfigError
from aubench.eval.report import EvaluateConfig
from aubench.models.registry import Method, get_method
from aubench.train.optim import OptimConfig
from aubench.train.config import AblateConfig, RunPaths, TrainConfig

RUN_GROUPS = ("scratch", "from_upstream", "pretrain", "from_pretrain", "ablation")  # the keys of `runs`
ROW_GROUPS = {"from_upstream": "ablation", "pretrain": "pretrain", "from_pretrain": "ablation_from_pretrain"}
NO_UPSTREAM = ("scratch", "pretrain")
ABLATION_GROUPS = ("ablation", "ablation_from_pretrain")
FROM_PRETRAIN = ("from_pretrain", "ablation_from_pretrain")
POOL = "pool"  # the folder of a pretraining run's outputs (it has no fold)


@dataclass(frozen=True)
class RunSpec:
    """One entry of the `runs` params section."""

    name: str
    method: str
    key: str
    group: str
    upstream: str | None = None
    parent: str | None = None  # the main run whose stage trains this ablation row (runs.ablation)

    @property
    def folder(self) -> Path:
        """Where the run's checkpoints, predictions and logs go under models/, predictions/, dvclive/train/."""
        return Path(self.parent) / "ablations" / self.name if self.parent else Path(self.name)


@dataclass(frozen=True)
class Run:
    """A resolved training run."""

    spec: RunSpec
    method: Method
    method_config: Any
    optim: OptimConfig
    train_overrides: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # runs it may start from → their folders

    @property
    def name(self) -> str:
        return self.spec.name

    def paths(self, fold: int | None) -> RunPaths:
        """Outputs of this run on `fold` (None for a pretraining run), and the checkpoints of the upstream
        runs it starts from (a pretraining run's one checkpoint serves every fold)."""
        folder = self.spec.folder
        if self.spec.group == "pretrain":
            return RunPaths(checkpoint_path(folder, None), Path("models") / folder / POOL / "unused.npz",
                            Path("dvclive") / "pretrain" / folder)
        upstream = {}
        for slot, source in self.method.upstream(self.method_config).items():
            if source == self.name:
                raise ConfigError(f"runs.{self.name}: a run cannot start from its own checkpoint")
            if source not in self.sources:
                raise ConfigError(f"runs.{self.spec.group}: run {self.name!r} starts its {slot} from {source!r} "
                                  f"but its entry names upstream {self.spec.upstream!r}; dvc.yaml tracks only "
                                  "the entry's upstream (and an ablation row's, that run's rows too), so set "
                                  "`upstream` to the run it starts from")
            upstream[slot] = checkpoint_path(self.sources[source], None if self.spec.group in FROM_PRETRAIN else fold)
        return RunPaths(checkpoint_path(folder, fold), Path("predictions") / folder / f"fold{fold}.npz",
                        Path("dvclive") / "train" / folder / f"fold{fold}", upstream)

    def folds(self, params: dict[str, Any]) -> tuple[int, ...]:
        """The folds this run trains on: `ablate.folds` for an ablation run, `evaluate.folds` otherwise."""
        if self.spec.group in ABLATION_GROUPS:
            return section(AblateConfig, params, "ablate").folds
        return section(EvaluateConfig, params, "evaluate").folds

    def train_config(self, params: dict[str, Any]) -> TrainConfig:
        """The engine settings of this run: the `train` section, the method section's `train` overrides, and
        `ablate.epochs` for an ablation row."""
        config = replace(section(TrainConfig, params, "train"), **self.train_overrides)
        if self.spec.parent:
            epochs = section(AblateConfig, params, "ablate").epochs
            config = replace(config, epochs=epochs or config.epochs)
        return config

    def resolved(self) -> dict[str, Any]:
        """The configuration to save beside the run's outputs."""
        return {"run": self.name, "method": self.method.name, "key": self.spec.key, "group": self.spec.group,
                "upstream": self.spec.upstream, self.method.name: to_dict(self.method_config),
                "optim": to_dict(self.optim)}


def checkpoint_path(folder: str | Path, fold: int | None) -> Path:
    """The checkpoint of the run in `folder` (`RunSpec.folder`, its name for a main run) on `fold`; fold None:
    a pretraining run's, shared by every fold."""
    return Path("models") / folder / (POOL if fold is None else f"fold{fold}") / "checkpoint.pt"


def import_plugins(params: dict[str, Any]) -> None:
    """Import the modules of the `plugins` params key: methods defined outside this package register
    themselves on import, so they train without any edit under src/."""
    for module in params.get("plugins") or ():
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConfigError(f"plugins: cannot import {module!r} ({error}); is its folder on PYTHONPATH?") from error


def run_specs(params: dict[str, Any]) -> dict[str, RunSpec]:
    """Every run of the `runs` section by name, ablation rows (`runs.ablation`) after the runs they belong to."""
    runs = params.get("runs") or {}
    unknown = set(runs) - set(RUN_GROUPS)
    if unknown:
        raise ConfigError(f"runs: unknown group(s) {sorted(unknown)}; use {', '.join(RUN_GROUPS)}")
    specs: dict[str, RunSpec] = {}
    for group in RUN_GROUPS:
        entries = _ablation_rows(runs.get(group), specs) if group == "ablation" else [
            from_mapping(RunSpec, {**entry, "group": group}, f"runs.{group}[{index}]")
            for index, entry in enumerate(runs.get(group) or ())]
        for spec in entries:
            if spec.name in specs:
                raise ConfigError(f"runs.{group}: run name {spec.name!r} is used twice")
            if (spec.upstream is None) != (spec.group in NO_UPSTREAM):
                raise ConfigError(f"runs.{group}: run {spec.name!r} " + ("must not name an upstream run"
                                  if spec.group in NO_UPSTREAM else "needs an upstream run"))
            specs[spec.name] = spec
    for spec in specs.values():
        _check_upstream(spec, specs.get(spec.upstream) if spec.upstream else None)
    return specs


def _ablation_rows(rows: Any, specs: dict[str, RunSpec]) -> list[RunSpec]:
    """`runs.ablation` ({main run: [row, …]}) as runs `<main>_<row>` keyed `variants.<method>.<row>`."""
    if rows is not None and not isinstance(rows, dict):
        raise ConfigError("runs.ablation: expected a mapping from a from_upstream, pretrain or from_pretrain run to "
                          "its rows (variants of its method), e.g. `stf: [A5_wo_trm]`")
    found = []
    for main, names in (rows or {}).items():
        parent = specs.get(main)
        if parent is None or parent.group not in ROW_GROUPS:
            raise ConfigError(f"runs.ablation.{main}: ablation rows belong to a run of runs.from_upstream, "
                              f"runs.pretrain or runs.from_pretrain, which {main!r} is not")
        found += [RunSpec(f"{main}_{row}", parent.method, f"variants.{parent.method}.{row}", ROW_GROUPS[parent.group],
                          parent.upstream, main) for row in names or ()]
    return found


def _check_upstream(spec: RunSpec, source: RunSpec | None) -> None:
    """An upstream run is a main run, of the kind the entry's group starts from."""
    if source is None:
        return
    if source.parent is not None:
        raise ConfigError(f"runs.{spec.group}: run {spec.name!r} starts from the ablation row {source.name!r}; "
                          "start from a main run")
    if (source.group == "pretrain") != (spec.group in FROM_PRETRAIN):
        wanted = "from_pretrain" if source.group == "pretrain" else "from_upstream"
        raise ConfigError(f"runs.{spec.group}: run {spec.name!r} starts from {spec.upstream!r} "
                          f"(a {source.group} run); list it under {wanted}")


def ablation_rows(params: dict[str, Any], main: str) -> list[str]:
    """The names of the ablation rows trained in the stage of the main run `main`."""
    return [name for name, spec in run_specs(params).items() if spec.parent == main]


def method_configs(params: dict[str, Any], name: str, overrides: dict[str, Any] | None = None
                   ) -> tuple[Method, Any, OptimConfig, dict[str, Any]]:
    """The method called `name`, its typed params section (with `overrides`), its `optim` subsection and its
    `train` subsection (engine settings its runs override)."""
    method = get_method(name)
    patched = copy.deepcopy(params.get(name) or {})
    for dotted, value in (overrides or {}).items():
        set_dotted(patched, dotted, value, f"{name}")
    optim = from_mapping(OptimConfig, patched.pop("optim", {}), f"{name}.optim")
    train = patched.pop("train", None) or {}
    unknown = set(train) - {item.name for item in fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"{name}.train: unknown key(s) {sorted(unknown)}; valid keys are the `train` section's")
    return method, from_mapping(method.config_type, patched, name), optim, train


def run_overrides(params: dict[str, Any], spec: RunSpec, method: Method) -> dict[str, Any]:
    """What the run's `key` changes in its method's section."""
    if spec.key == spec.method:
        return {}
    if spec.key in method.top_level:
        return {method.top_level[spec.key]: params.get(spec.key)}
    value: Any = params
    for part in spec.key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"runs: run {spec.name!r} names key {spec.key!r}, which params.yaml does not have")
        value = value[part]
    if not isinstance(value, dict):
        raise ConfigError(f"{spec.key}: expected a mapping of overrides of the {spec.method!r} section")
    return value


def resolve_run(params: dict[str, Any], name: str, overrides: dict[str, Any] | None = None) -> Run:
    """The run called `name`, with `overrides` (command-line `--set`) applied last."""
    specs = run_specs(params)
    if name not in specs:
        raise ConfigError(f"runs: no run named {name!r}; known: {', '.join(specs) or 'none'}")
    spec = specs[name]
    method = get_method(spec.method)
    changes = {**run_overrides(params, spec, method), **(overrides or {})}
    _, method_config, optim, train = method_configs(params, spec.method, changes)
    return Run(spec, method, method_config, optim, train, _sources(spec, specs))


def _sources(spec: RunSpec, specs: dict[str, RunSpec]) -> dict[str, Path]:
    """The runs `spec` may start from, by folder: its upstream and, for an ablation row, the upstream's rows."""
    if spec.upstream is None:
        return {}
    rows = [row for row in specs.values() if spec.parent and row.parent == spec.upstream]
    return {source.name: source.folder for source in (specs[spec.upstream], *rows)}


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`["srm_top_k=4", "optim.lr=0.01"]` → {"srm_top_k": 4, "optim.lr": 0.01} (values parsed as YAML)."""
    parsed = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected key=value")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed
