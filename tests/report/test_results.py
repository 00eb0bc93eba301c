"""The results report (aubench.report.results_page): runs found by their metrics files, statistics computed from
their predictions, the README's table between markers, training curves and stage times."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from aubench.align.store import AlignedStore
from aubench.cli import record_stage_time
from aubench.config import load_params
from aubench.errors import ConfigError
from aubench.eval.report import EvaluateConfig, evaluate_method
from aubench.io import read_json, write_json
from aubench.report.curves import stage_times, write_training_curves
from aubench.report.results_page import README_END, README_START, ReportPaths, update_readme, write_results_report
from aubench.train.predict import save_predictions
from tests.conftest import make_store

ROOT = Path(__file__).resolve().parents[2]
FOLDS = {1: ("F001", "F002"), 2: ("F003", "F004"), 3: ("F005", "F006")}


def _predictions(store: AlignedStore, subjects: tuple[str, ...], skill: float, seed: int) -> dict[str, np.ndarray]:
    """Per-frame predictions of `subjects` in the predictions-file format, right with probability `skill`."""
    sequences = [sequence for sequence in store.sequences if sequence.subject in subjects]
    labels = np.concatenate([store.labels(sequence.key) for sequence in sequences])
    right = np.random.default_rng(seed).random(labels.shape) < skill
    probabilities = np.where(right, labels == 1, labels != 1).astype(np.float32)
    return {"probabilities": probabilities, "labels": labels.astype(np.int8),
            "keys": np.concatenate([[sequence.key] * sequence.length for sequence in sequences]),
            "positions": np.concatenate([np.arange(sequence.length) for sequence in sequences]),
            "aus": np.array(store.aus)}


@pytest.fixture
def workspace(tmp_path: Path) -> ReportPaths:
    """Three runs scored on the same frames (baseline, a copy of it, a better `newmethod` that params do not
    know), one run with metrics but no predictions, and a README with the results markers."""
    store = AlignedStore.open(make_store(tmp_path / "data" / "aligned", subjects=6, frames=30))
    paths = ReportPaths(metrics=tmp_path / "metrics", predictions=tmp_path / "predictions", store=store.root,
                        live=tmp_path / "dvclive", stage_log=tmp_path / "logs", lock=tmp_path / "dvc.lock",
                        results=tmp_path / "reports" / "results.md", summary=tmp_path / "reports" / "summary.json",
                        times=tmp_path / "reports" / "stage_times.json", curves=tmp_path / "plots" / "training",
                        readme=tmp_path / "README.md")
    for run, skill, seed in (("baseline", 0.7, 1), ("stf", 0.7, 1), ("newmethod", 0.95, 2)):
        for fold, subjects in FOLDS.items():
            save_predictions(paths.predictions / run / f"fold{fold}.npz", _predictions(store, subjects, skill, seed + fold))
        metrics, _ = evaluate_method(run, paths.predictions / run, store.root, EvaluateConfig(), curve=False)
        write_json(paths.metrics / f"{run}.json", metrics)
    unscored = read_json(paths.metrics / "baseline.json")
    write_json(paths.metrics / "without_predictions.json", {**unscored, "method": "without_predictions"})
    paths.readme.write_text(f"# Project\n\n{README_START}\nold table\n{README_END}\n\nMore text.\n")
    return paths


def _params(**report) -> dict:
    params = load_params(ROOT / "params.yaml")
    params["report"] = {**params["report"], "replicates": 2000, **report}
    return params


def test_every_metrics_file_is_a_row_with_statistics_from_its_predictions(workspace):
    write_results_report(_params(), workspace)
    page = workspace.results.read_text()
    for run in ("baseline", "stf", "newmethod", "without_predictions"):
        assert f"| {run} |" in page
    summary = read_json(workspace.summary)
    assert summary["dataset"].startswith("SynthAU")
    assert summary["newmethod"]["ci_low"] < summary["newmethod"]["mean_f1"] <= summary["newmethod"]["ci_high"]
    assert summary["newmethod"]["minus_baseline"] > 0.1 and summary["newmethod"]["p_value"] < 0.1
    # stf predicts exactly as the baseline: no difference, p = 1
    assert summary["stf"]["minus_baseline"] == 0.0 and summary["stf"]["p_value"] == 1.0
    assert "ci_low" not in summary["without_predictions"]
    assert "not in params `runs`" in page  # newmethod's protocol is not claimed


def test_the_estimate_is_the_evaluated_mean(workspace):
    write_results_report(_params(), workspace)
    for run in ("baseline", "newmethod"):
        assert read_json(workspace.summary)[run]["mean_f1"] == read_json(workspace.metrics / f"{run}.json")["mean_f1"]
    assert "| 63.56 ± 0.55 (BP4D, STF paper, Table 1, A1)" in workspace.results.read_text()  # labelled paper number


def test_readme_table_replaces_only_the_text_between_the_markers(workspace):
    write_results_report(_params(), workspace)
    readme = workspace.readme.read_text()
    assert readme.startswith("# Project\n\n") and readme.endswith("\n\nMore text.\n")
    assert "old table" not in readme and "| newmethod |" in readme
    block = readme[readme.index(README_START):readme.index(README_END)]
    assert "SynthAU" in block  # our dataset named in the table's header


def test_missing_readme_markers_name_the_file(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ConfigError, match="README.md: the results markers"):
        update_readme(readme, "table")


def test_training_curves_overlay_the_folds(tmp_path):
    for fold, values in ((1, [3.0, 2.0]), (2, [4.0, 1.0])):
        metrics = tmp_path / "dvclive" / "stf" / f"fold{fold}" / "plots" / "metrics" / "train"
        (metrics / "f1").mkdir(parents=True)
        (metrics / "loss.tsv").write_text("step\tloss\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(values)))
        (metrics / "f1" / "AU1.tsv").write_text("step\tAU1\n0\t0.5\n")
    written = write_training_curves(tmp_path / "dvclive", ["stf"], tmp_path / "plots")
    assert written == [tmp_path / "plots" / "stf" / "train_loss.json"]  # per-AU curves left out
    assert read_json(written[0]) == [{"epoch": 1, "fold1": 3.0, "fold2": 4.0}, {"epoch": 2, "fold1": 2.0, "fold2": 1.0}]


def test_stage_times_sum_the_current_pipeline_by_family(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    for stage, seconds in (("train@run0-1", 10.0), ("train@run0-2", 5.5), ("report", 1.0), ("gone", 99.0)):
        monkeypatch.setenv("DVC_STAGE", stage)
        record_stage_time(seconds)
    lock = tmp_path / "dvc.lock"
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": {"train@run0-1": {}, "train@run0-2": {}, "report": {},
                                                                  "align": {}}}))
    times = stage_times(tmp_path / "logs" / "stage_times", lock)
    assert times["by_family"] == {"report": 1.0, "train": 15.5}  # a stage no longer in the pipeline is left out
    assert times["total_seconds"] == 16.5
    assert (times["stages_measured"], times["stages_in_pipeline"]) == (3, 4)


def test_no_time_is_logged_outside_dvc(tmp_path, monkeypatch):
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    record_stage_time(1.0)
    assert not (tmp_path / "logs").exists()


def test_paired_test_refuses_runs_on_different_frames(workspace):
    data = dict(np.load(workspace.predictions / "stf" / "fold1.npz"))
    data["positions"] = data["positions"][::-1].copy()
    save_predictions(workspace.predictions / "stf" / "fold1.npz", data)
    with pytest.raises(Exception, match="predictions/stf and predictions/baseline cover different frames"):
        write_results_report(_params(), workspace)
    json.dumps(read_json(workspace.metrics / "stf.json"))  # the metrics themselves are untouched


def test_an_ablation_row_is_tested_against_the_main_run_on_its_own_folds(workspace):
    """`report.full_models.stf: stf` (a main run on 3 folds) is the reference of an ablation run on fold 1:
    the paired test uses the main run's fold-1 predictions only."""
    store = AlignedStore.open(workspace.store)
    ablation = workspace.predictions / "stf" / "ablations" / "stf_A5_wo_trm"  # a row of the main run `stf`
    save_predictions(ablation / "fold1.npz", _predictions(store, FOLDS[1], 0.9, 7))
    metrics, _ = evaluate_method("stf", ablation, store.root, EvaluateConfig(folds=(1,)), curve=False)
    write_json(workspace.metrics / "ablations" / "stf" / "stf_A5_wo_trm.json", metrics)
    write_results_report(_params(full_models={"stf": "stf"}), workspace)
    summary = read_json(workspace.summary)
    main_fold1 = read_json(workspace.metrics / "stf.json")["folds"]["fold1"]["mean_f1"]
    assert summary["stf_A5_wo_trm"]["minus_stf"] == pytest.approx(metrics["mean_f1"] - main_fold1, abs=1e-3)
