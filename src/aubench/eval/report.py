"""Evaluate one method from its per-fold prediction files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aubench.align.store import AlignedStore
from aubench.errors import DataError
from aubench.eval.metrics import f1_threshold_curve, score_fold, summarise


@dataclass(frozen=True)
class EvaluateConfig:
    """The `evaluate` params section."""

    threshold: float = 0.5
    folds: tuple[int, ...] = (1, 2, 3)


THRESHOLDS = np.arange(0.05, 0.96, 0.05)


def evaluate_method(method: str, predictions_dir: Path, store_dir: Path, config: EvaluateConfig,
                    curve: bool = True) -> tuple[dict, list[dict]]:
    """Scores of `method` on every configured fold, labelled with their dataset, and (with `curve`) its
    F1-threshold curve."""
    store = AlignedStore.open(store_dir)
    scores, folds = {}, []
    for fold in config.folds:
        path = predictions_dir / f"fold{fold}.npz"
        if not path.is_file():
            raise DataError(f"{path}: predictions are missing (run the train stage for fold {fold})")
        with np.load(path) as data:
            if tuple(data["aus"].tolist()) != store.aus:
                raise DataError(f"{path}: AUs {data['aus'].tolist()} differ from the store's {list(store.aus)}")
            folds.append((data["probabilities"], data["labels"]))
            scores[fold] = score_fold(*folds[-1], config.threshold)
    result = {"method": method, "dataset": dataset_label(store), "threshold": config.threshold,
              "aus": list(store.aus), **summarise(scores, store.aus)}
    return result, f1_threshold_curve(folds, THRESHOLDS) if curve else []


def metrics_file(run: str, ablation: bool, metrics_dir: Path = Path("metrics"), parent: str | None = None) -> Path:
    """Where a run's scores go: `<run>.json`; for an ablation run `ablations/<run>.json`, or
    `ablations/<parent>/<run>.json` for a row trained in its main run's stage (`runs.ablation`)."""
    if not ablation:
        return Path(metrics_dir) / f"{run}.json"
    return Path(metrics_dir) / "ablations" / (parent or "") / f"{run}.json"


def dataset_label(store: AlignedStore) -> str:
    """How tables name the data: SynthAU numbers are never presented as BP4D/DISFA numbers."""
    if store.dataset == "synthau":
        return f"SynthAU ({store.layout.upper()} layout, synthetic)"
    return store.dataset.upper()
