"""Evaluate one method from its per-fold prediction files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aubench.align.store import AlignedStore
from aubench.errors import DataError
from aubench.eval.metrics import score_fold, summarise


@dataclass(frozen=True)
class EvaluateConfig:
    """The `evaluate` params section."""

    threshold: float = 0.5
    folds: tuple[int, ...] = (1, 2, 3)


def evaluate_method(method: str, predictions_dir: Path, store_dir: Path, config: EvaluateConfig) -> dict:
    """Scores of `method` on every configured fold, labelled with the dataset they come from."""
    store = AlignedStore.open(store_dir)
    scores = {}
    for fold in config.folds:
        path = predictions_dir / f"fold{fold}.npz"
        if not path.is_file():
            raise DataError(f"{path}: predictions are missing (run the train stage for fold {fold})")
        with np.load(path) as data:
            if tuple(data["aus"].tolist()) != store.aus:
                raise DataError(f"{path}: AUs {data['aus'].tolist()} differ from the store's {list(store.aus)}")
            scores[fold] = score_fold(data["probabilities"], data["labels"], config.threshold)
    dataset = f"{store.dataset} ({store.layout.upper()} layout)" if store.dataset == "synthau" else store.dataset.upper()
    return {"method": method, "dataset": dataset, "threshold": config.threshold, "aus": list(store.aus),
            **summarise(scores, store.aus)}
