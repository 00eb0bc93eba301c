"""One tiny run of the whole pipeline through its real entry points: `dvc repro` on the project's own
dvc.yaml and stage scripts, in a scratch git+DVC repository with tiny params."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.pipeline.scratch import dvc, make_project

TINY = {
    "synthesize": {"subjects": 3, "tasks": 1, "frames": 40},
    "landmarks": {"workers": 1},
    "align": {"crop_size": 64, "workers": 1},
    "train": {"input_size": 56, "epochs": 1, "batch_size": 8},
    "stf": {"clip_length": 4, "d": 32},
    "ablate": {"variants": ["stf_K1"]},
    "efficiency": {"paper_input_size": 64, "measure_frames": 4, "measure_steps": 1},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project (pipeline definition, stages, library) with tiny params, after `dvc repro`."""
    project = make_project(tmp_path_factory.mktemp("project"), TINY)
    result = dvc(project, "repro")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return project


@pytest.fixture
def params_restored(project):
    """Let a test edit params.yaml; the original comes back afterwards."""
    original = (project / "params.yaml").read_text()
    yield project / "params.yaml"
    (project / "params.yaml").write_text(original)


def test_repro_produces_metrics_from_real_predictions(project):
    metrics = json.loads((project / "metrics" / "baseline.json").read_text())
    assert metrics["dataset"].startswith("SynthAU")
    assert set(metrics["folds"]) == {"fold1", "fold2", "fold3"}
    assert 0.0 <= metrics["mean_f1"] <= 1.0 and metrics["std_f1"] >= 0.0
    assert len(metrics["per_au_f1"]) == 12
    landmarks = json.loads((project / "metrics" / "landmarks.json").read_text())
    assert landmarks["detection_rate"] > 0.9
    assert (project / "plots" / "f1_threshold" / "baseline.json").is_file()
    assert json.loads((project / "metrics" / "efficiency.json").read_text())["baseline"]["parameters"] > 0
    difficulty = json.loads((project / "metrics" / "difficulty.json").read_text())
    assert difficulty["dataset"] == metrics["dataset"]
    assert set(difficulty["always_positive"]["folds"]) == set(difficulty["context"]["folds"]) == {"fold1", "fold2", "fold3"}


def test_second_repro_does_nothing(project):
    result = dvc(project, "repro")
    assert result.returncode == 0
    assert "Data and pipelines are up to date" in result.stdout


def test_training_param_change_reruns_only_training(project, params_restored):
    params = yaml.safe_load(params_restored.read_text())
    params["baseline"]["optim"]["lr"] = 0.002
    params_restored.write_text(yaml.safe_dump(params, sort_keys=False))
    status = dvc(project, "status", "--json")
    changed = set(json.loads(status.stdout))
    assert {"train@baseline-1", "train@baseline-2", "train@baseline-3"} <= changed
    assert not changed & {"synthesize", "landmarks", "align", "folds", "train-stf@1"}


def test_exp_run_k_reruns_only_stf(project):
    """`dvc exp run -S k=4` exactly as the README types it: STF's Top-K, only STF's stages re-run."""
    result = dvc(project, "exp", "run", "-S", "k=4")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}
    assert {"train-stf@1", "train-stf@2", "train-stf@3", "evaluate@stf"} <= ran
    assert not {stage for stage in ran if stage.startswith(("train@", "ablate@", "landmarks", "align"))}
    config = json.loads((project / "models" / "stf" / "fold1" / "config.json").read_text())
    assert config["stf"]["srm_top_k"] == 4
    shown = dvc(project, "exp", "show", "--json")
    assert shown.returncode == 0 and "metrics/stf.json" in shown.stdout


def test_stage_failure_names_the_problem_and_loses_nothing(project, params_restored):
    params = yaml.safe_load(params_restored.read_text())
    params["train"]["epoch"] = 3  # typo: must fail, not be ignored
    params_restored.write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc(project, "repro", "train@baseline-1")
    assert result.returncode != 0
    assert "train.epoch: unknown key; did you mean 'epochs'" in result.stdout + result.stderr
    # Nothing computed is lost: the checkpoint persists, and the earlier predictions come back from the cache.
    assert (project / "models" / "baseline" / "fold1" / "checkpoint.pt").is_file()
    assert dvc(project, "checkout", "train@baseline-1").returncode == 0
    assert (project / "predictions" / "baseline" / "fold1.npz").is_file()
