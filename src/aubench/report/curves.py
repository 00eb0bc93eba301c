"""What the report gathers besides scores: training curves from DVCLive, and the pipeline's time per stage.

Training curves: DVCLive writes one TSV per logged value and fold (`dvclive/train/<run>/fold<k>/plots/
metrics/<name>.tsv`, one row per epoch). For each run they are merged into one file per value with the folds
as columns (`plots/training/<run>/<name>.json`: rows `{epoch, fold1, fold2, …}`), so `dvc plots show` draws
the folds of a run overlaid. Per-AU curves are left out (the per-AU numbers are in the tables).

Stage times: `aubench.cli.run_stage` logs each stage's wall time under `logs/stage_times/` whenever DVC runs
it; the report sums the stages of the current `dvc.lock` per stage family (`train@run0` → `train`) into a
small metrics file, so that growth shows in `dvc metrics diff`.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from aubench.io import read_json, write_json


def curve_files(live_dir: Path) -> dict[str, Path]:
    """Value name (e.g. `train/loss`, `train/terms/bce`, `validation/mean_f1`) → its TSV in one fold's log."""
    metrics = Path(live_dir) / "plots" / "metrics"
    files = {}
    for path in sorted(metrics.rglob("*.tsv")):
        name = path.relative_to(metrics).with_suffix("").as_posix()
        if "/f1/" not in f"/{name}":  # per-AU curves: the tables hold those
            files[name] = path
    return files


def read_curve(path: Path) -> dict[int, float]:
    """Epoch (1-based) → value, from a DVCLive TSV (`step` is 0-based, one step per epoch)."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return {int(row[0]) + 1: float(row[1]) for row in rows[1:] if row}


def merge_folds(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Value name → rows `{epoch, fold1, …}` over every `fold<k>` log of one run."""
    curves: dict[str, dict[int, dict[str, Any]]] = {}
    for fold_dir in sorted(Path(run_dir).glob("fold*")):
        for name, path in curve_files(fold_dir).items():
            for epoch, value in read_curve(path).items():
                curves.setdefault(name, {}).setdefault(epoch, {"epoch": epoch})[fold_dir.name] = value
    return {name: [rows[epoch] for epoch in sorted(rows)] for name, rows in curves.items()}


def write_training_curves(live_root: Path, runs: Iterable[str], out_dir: Path) -> list[Path]:
    """`out_dir/<run>/<value>.json` for each run that has DVCLive logs; returns the written files."""
    written = []
    for run in runs:
        for name, rows in merge_folds(Path(live_root) / run).items():
            path = Path(out_dir) / run / f"{name.replace('/', '_')}.json"
            write_json(path, rows)
            written.append(path)
    return written


def stage_times(log_dir: Path, lock_path: Path) -> dict[str, Any]:
    """The current pipeline's time (stages in `lock_path`, as last measured): seconds per stage family
    (`train@run0` → `train`) and in all, how many stages were measured, and when the last one finished."""
    current = set((yaml.safe_load(lock_path.read_text()) or {}).get("stages", {})) if lock_path.is_file() else set()
    logged = [read_json(path) for path in sorted(Path(log_dir).glob("*.json"))]
    logged = [entry for entry in logged if entry["stage"] in current]
    stages = {entry["stage"]: entry["seconds"] for entry in logged}
    families: dict[str, float] = {}
    for stage, seconds in stages.items():
        family = stage.split("@")[0]
        families[family] = round(families.get(family, 0.0) + seconds, 2)
    return {"total_seconds": round(sum(stages.values()), 2), "by_family": families,
            "stages_measured": len(stages), "stages_in_pipeline": len(current),
            "last_finished": max((entry["finished"] for entry in logged), default=None)}
