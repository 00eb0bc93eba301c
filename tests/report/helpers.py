"""Hand-made inputs for the report tests: params in the pipeline's format (`runs`, `variants`, `ablate`,
`profile`) and metrics JSON as aubench.eval.report writes it."""
from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SYNTH = "SynthAU (BP4D layout, synthetic)"
BP4D_AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]

#: Every STF ablation row's overrides by run name (params.yaml's `variants.stf`, whose rows drop the `stf_`).
VARIANTS = {
    "stf_A1_baseline": {"use_trm": False, "use_srm": False, "use_sff": False},
    "stf_A2_trm_only": {"use_srm": False, "use_sff": False},
    "stf_A3_srm_only": {"use_trm": False, "use_sff": False},
    "stf_A4_sff_only": {"use_trm": False, "use_srm": False},
    "stf_A5_wo_trm": {"use_trm": False},
    "stf_A6_wo_srm": {"use_srm": False},
    "stf_A7_wo_sff": {"use_sff": False},
    "stf_A8_full": {"use_trm": True},
    "stf_K1": {"srm_top_k": 1},
    "stf_K2": {"srm_top_k": 2},
    "stf_K4": {"srm_top_k": 4},
    "stf_K5": {"srm_top_k": 5},
    "stf_TF_transformer_trm": {"trm_variant": "transformer"},
}
#: The CPU-sized default's ablation runs: one row per STF module and the full model beside them.
DEFAULT_ABLATION = ("stf_A1_baseline", "stf_A5_wo_trm", "stf_A6_wo_srm", "stf_A7_wo_sff", "stf_A8_full")


def make_params(ablation: Iterable[str] = DEFAULT_ABLATION, k: int = 3, main: bool = True,
                ablate_folds: list[int] = (1,), ablate_epochs: int | None = 3, train_epochs: int | None = 6,
                variants: dict | None = None, profile: str = "cpu", stf: dict | None = None) -> dict:
    """Params with a baseline, the main STF run `stf` (SRM Top-K = `k`) and its `ablation` rows (run names) when
    `main`; `variants` by run name."""
    runs = {"scratch": [{"name": "baseline", "method": "baseline", "key": "baseline"}],
            "from_upstream": [{"name": "stf", "method": "stf", "upstream": "baseline", "key": "k"}] if main else [],
            "ablation": {"stf": [name.removeprefix("stf_") for name in ablation]} if main else {}}
    rows = {name.removeprefix("stf_"): value for name, value in (VARIANTS if variants is None else variants).items()}
    return {"profile": profile, "k": k, "methods": ["baseline", "stf"] if main else ["baseline"], "runs": runs,
            "variants": {"stf": rows},
            "ablate": {"folds": list(ablate_folds), "epochs": ablate_epochs},
            "train": {"epochs": train_epochs}, "evaluate": {"folds": [1, 2, 3]},
            "baseline": {}, "stf": {"clip_length": 16, **(stf or {})}}


def make_metrics(run: str, f1: dict[str, list[float | None]], accuracy: float = 0.8, dataset: str = SYNTH) -> dict:
    """A metrics JSON from per-AU F1 fractions per fold (one list entry per fold)."""
    aus = [int(name.removeprefix("AU")) for name in f1]
    count = len(next(iter(f1.values())))
    folds = {}
    for index in range(count):
        fold_f1 = {name: values[index] for name, values in f1.items()}
        defined = [value for value in fold_f1.values() if value is not None]
        folds[f"fold{index + 1}"] = {
            "mean_f1": round(float(np.mean(defined)), 4), "mean_accuracy": accuracy,
            "f1": fold_f1, "accuracy": {name: accuracy for name in f1},
            "positives": {name: 10 for name in f1}, "frames": {name: 100 for name in f1}}
    means = [fold["mean_f1"] for fold in folds.values()]

    def au_mean(values):
        defined = [value for value in values if value is not None]
        return round(float(np.mean(defined)), 4) if defined else None

    return {"method": run, "dataset": dataset, "threshold": 0.5, "aus": aus,
            "mean_f1": round(float(np.mean(means)), 4), "std_f1": round(float(np.std(means)), 4),
            "mean_accuracy": accuracy, "std_accuracy": 0.0,
            "per_au_f1": {name: au_mean(values) for name, values in f1.items()}, "folds": folds}


def full_metrics(run: str, level: float = 0.5, folds: int = 3, dataset: str = SYNTH) -> dict:
    """Metrics for every BP4D AU, seeded by the run's name."""
    draws = np.random.default_rng(zlib.crc32(run.encode()))
    return make_metrics(run, {f"AU{au}": [round(level + 0.1 * draws.random(), 4) for _ in range(folds)]
                              for au in BP4D_AUS}, dataset=dataset)


def write_results(metrics_dir: Path, main: Iterable[str] = (), ablation: Iterable[str] = (), parent: str = "stf") -> None:
    """metrics_dir/<run>.json for main runs and metrics_dir/ablations/<parent>/<run>.json for the ablation rows
    of the main run `parent`."""
    for name in main:
        (metrics_dir / f"{name}.json").parent.mkdir(parents=True, exist_ok=True)
        (metrics_dir / f"{name}.json").write_text(json.dumps(full_metrics(name)))
    for name in ablation:
        (metrics_dir / "ablations" / parent).mkdir(parents=True, exist_ok=True)
        (metrics_dir / "ablations" / parent / f"{name}.json").write_text(json.dumps(full_metrics(name, folds=1)))
