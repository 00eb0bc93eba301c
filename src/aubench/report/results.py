"""The results report: every run that has metrics, side by side, with subject-level intervals and paired tests.

Runs are found by their metrics files, not by a list: every `metrics/<run>.json` written by the evaluate
stage (it names its `method` and `folds`) is a main run, every `metrics/ablations/[<main run>/]<run>.json`
an ablation run, so a new method appears here as soon as its metrics exist. For each run the report reads its
saved per-frame predictions (`predictions/<run>/fold<k>.npz`; a main run's ablation rows under its folder)
and computes, with `aubench.eval.statistics`, the 95 % interval of its mean F1 by resampling test subjects
within each fold, and a paired test against its reference on the same frames: each main run against
`report.baseline`, each ablation run against its method's full model (`report.full_models`). A run
without predictions is listed without them. Beside our numbers stand the papers' (`published` in
`papers/<method>.yaml`), labelled with their dataset.
"""
from __future__ import annotations

import dataclasses

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aubench.errors import ConfigError, DataError
from aubench.eval.statistics import (Comparison, FoldCounts, Interval, bootstrap_interval, counts_by_fold,
                                     paired_comparison)
from aubench.io import read_json
from aubench.report.tables import MISSING, Value, from_paper, render, run_protocol, summary_value
from aubench.train.runs import resolve_run, run_specs


@dataclass(frozen=True)
class ReportConfig:
    """The `report` params section."""

    baseline: str = "baseline"           # every main run is compared with this run
    full_models: dict[str, str] = field(default_factory=dict)  # method → its full-model ablation run
    replicates: int = 10_000             # bootstrap draws and permutations per statistic
    level: float = 0.95                  # interval coverage
    seed: int = 0


@dataclass(frozen=True)
class Frames:
    """Which frames a run's predictions cover, per fold: a paired test needs the same frames in both runs."""

    keys: tuple[np.ndarray, ...]
    positions: tuple[np.ndarray, ...]

    def same_as(self, other: Frames) -> bool:
        return len(self.keys) == len(other.keys) and all(
            np.array_equal(a, b) for a, b in zip(self.keys + self.positions, other.keys + other.positions))


@dataclass(frozen=True)
class RunResult:
    """One run's metrics, and (when its predictions exist) its subject counts and interval."""

    name: str
    group: str                           # "main" | "ablation"
    method: str
    metrics: dict[str, Any]
    protocol: str
    counts: list[FoldCounts] | None = None
    frames: Frames | None = None
    interval: Interval | None = None


def find_runs(metrics_dir: Path) -> dict[str, tuple[str, Path]]:
    """Run name → (group, metrics file) for every evaluated run under `metrics_dir`."""
    found = {}
    for path in sorted(Path(metrics_dir).glob("*.json")):
        data = read_json(path)
        if isinstance(data, dict) and "method" in data and "folds" in data:
            found[path.stem] = ("main", path)
    for path in sorted((Path(metrics_dir) / "ablations").rglob("*.json")):  # rows of a main run: in its folder
        found[path.stem] = ("ablation", path)
    return found


def load_run(params: Mapping[str, Any], name: str, group: str, metrics_path: Path, predictions_dir: Path,
             subject_of: Mapping[str, str], config: ReportConfig) -> RunResult:
    """A run's metrics with, when every scored fold has predictions, its counts and interval."""
    metrics = read_json(metrics_path)
    specs = run_specs(dict(params))
    method = specs[name].method if name in specs else str(metrics.get("method", name))
    protocol = _protocol(params, name) if name in specs else "not in params `runs`: protocol not recorded"
    folds = [int(fold.removeprefix("fold")) for fold in sorted(metrics.get("folds") or {})]
    folder = specs[name].folder if name in specs else Path(name)
    paths = {fold: Path(predictions_dir) / folder / f"fold{fold}.npz" for fold in folds}
    if not folds or not all(path.is_file() for path in paths.values()):
        return RunResult(name, group, method, metrics, protocol)
    data = {fold: dict(np.load(path)) for fold, path in paths.items()}
    counts = counts_by_fold(data, subject_of, float(metrics.get("threshold", 0.5)))
    frames = Frames(tuple(data[f]["keys"] for f in folds), tuple(data[f]["positions"] for f in folds))
    interval = bootstrap_interval(counts, config.replicates, config.level, config.seed)
    return RunResult(name, group, method, metrics, protocol, counts, frames, interval)


def _protocol(params: Mapping[str, Any], name: str) -> str:
    return run_protocol(params, resolve_run(dict(params), name)).describe(group=False)


def reference_of(run: RunResult, config: ReportConfig) -> str | None:
    """The run a paired test compares `run` with: the baseline for main runs, the full model for ablations."""
    reference = config.baseline if run.group == "main" else config.full_models.get(run.method)
    return None if reference == run.name else reference


def compare(runs: Mapping[str, RunResult], config: ReportConfig) -> dict[str, tuple[str, Comparison]]:
    """Run name → (reference run, paired comparison of run minus reference) wherever both have predictions."""
    comparisons = {}
    for name, run in runs.items():
        reference = runs.get(reference_of(run, config) or "")
        if reference is None or run.counts is None or reference.counts is None:
            continue
        reference = on_folds_of(reference, run)
        if not run.frames.same_as(reference.frames):
            raise DataError(f"predictions/{name} and predictions/{reference.name} cover different frames: "
                            "a paired test needs both runs scored on the same folds")
        comparisons[name] = (reference.name, paired_comparison(run.counts, reference.counts, config.replicates,
                                                               config.level, config.seed))
    return comparisons


def scored_folds(run: RunResult) -> list[str]:
    """The folds a run's counts and frames are listed by, in order ("fold1", …)."""
    return sorted(run.metrics.get("folds") or {})


def on_folds_of(reference: RunResult, run: RunResult) -> RunResult:
    """`reference` restricted to the folds `run` was scored on, when it has more (a main run standing in for
    the full model of ablation runs on `ablate.folds`); unchanged otherwise."""
    folds, available = scored_folds(run), scored_folds(reference)
    if folds == available or not set(folds) <= set(available):
        return reference
    keep = [available.index(fold) for fold in folds]
    frames = Frames(tuple(reference.frames.keys[i] for i in keep), tuple(reference.frames.positions[i] for i in keep))
    return dataclasses.replace(reference, counts=[reference.counts[i] for i in keep], frames=frames)


def published_numbers() -> dict[str, list[dict[str, Any]]]:
    """Method → the papers' headline mean F1s for it, from every `papers/<paper>.yaml` `published` entry
    (`{method: [{table, row, column?}]}`: the number is read from that paper table's row — its `f1`, or the
    cell of `column` in a per-AU table — never typed twice)."""
    numbers: dict[str, list[dict[str, Any]]] = {}
    for resource in sorted(resources.files("aubench.report").joinpath("papers").iterdir(), key=str):
        if not resource.name.endswith(".yaml"):
            continue
        paper = yaml.safe_load(resource.read_text())
        for method, entries in (paper.get("published") or {}).items():
            for entry in entries:
                table = paper["tables"].get(entry["table"])
                if table is None or entry["row"] not in table.get("rows", {}):
                    raise ConfigError(f"papers/{resource.name}: published.{method} names {entry['table']}."
                                      f"{entry['row']}, which the paper's tables do not have")
                row = table["rows"][entry["row"]]
                cell = row[list(table["columns"]).index(entry["column"])] if "column" in entry else row["f1"]
                numbers.setdefault(method, []).append({
                    "dataset": table["dataset"], "f1": from_paper(cell),
                    "source": f"{table['source']}, {entry['row']}"})
    return numbers


def summary(runs: Mapping[str, RunResult], comparisons: Mapping[str, tuple[str, Comparison]]) -> dict[str, Any]:
    """The small metrics file `dvc metrics diff` shows: per run its mean F1, std, interval and test."""
    result: dict[str, Any] = {}
    for name, run in runs.items():
        entry = {"mean_f1": run.metrics.get("mean_f1")}
        if len(run.metrics.get("folds") or {}) > 1:  # one fold has no spread (its recorded 0.0 is not one)
            entry["std_f1"] = run.metrics.get("std_f1")
        if run.interval is not None:
            entry.update(ci_low=_rounded(run.interval.low), ci_high=_rounded(run.interval.high))
        if name in comparisons:
            reference, comparison = comparisons[name]
            entry.update({f"minus_{reference}": _rounded(comparison.difference.estimate),
                          "p_value": _rounded(comparison.p_value)})
        result[name] = entry
    return result


def _rounded(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def percent_interval(interval: Interval | None) -> str:
    if interval is None or not np.isfinite(interval.low):
        return MISSING
    return f"[{100 * interval.low:.2f}, {100 * interval.high:.2f}]"


def difference_cells(comparisons: Mapping[str, tuple[str, Comparison]], name: str) -> list[str]:
    """Difference in F1 points with its interval, the reference's name, and the p-value."""
    if name not in comparisons:
        return [MISSING, MISSING]
    reference, comparison = comparisons[name]
    difference = comparison.difference
    return [f"{100 * difference.estimate:+.2f} {percent_interval(difference)} vs {reference}",
            f"{comparison.p_value:.3f} (≥ {comparison.smallest_p:.3g})"]


def paper_cell(numbers: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{render(entry['f1'])} ({entry['dataset']}, {entry['source']})" for entry in numbers) or MISSING


def value_cell(metrics: Mapping[str, Any]) -> str:
    value = summary_value(metrics, "f1")
    return render(value if value is not None else Value(None))
