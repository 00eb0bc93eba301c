"""One tiny run of the whole pipeline through its real entry points: `dvc repro` on the project's own
dvc.yaml and stage scripts, in a scratch git+DVC repository with tiny params."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipeline.scratch import ROOT, dvc, make_project

TINY = {
    "synthesize": {"subjects": 3, "tasks": 1, "frames": 40, "unlabeled_subjects": 2, "unlabeled_clips": 1,
                   "unlabeled_frames": 12},
    "landmarks": {"workers": 1},
    "align": {"workers": 1},
    "profiles": {"cpu": {"align": {"crop_size": 64},
                         # tiny folds train in seconds: a process per fold would cost more than it saves
                         # (tests/train/test_trainer.py covers fold_processes)
                         "train": {"input_size": 56, "epochs": 1, "batch_size": 8, "fold_processes": 1},
                         "deploy": {"epochs": 1},
                         "mcsfau_pretrain": {"grid": 2, "samples_per_epoch": 16},
                         "mdhr": {"feat_dim": 16, "clip_length": 4, "mfd.k": 2},
                         "lac": {"model.st_dim": 16, "sampler.window_t": 4, "sampler.n_sep": 4},
                         "ciu_teachers": {"train.input_size": 56}, "ciu": {"train.input_size": 56}}},
    "stf": {"clip_length": 4, "d": 32},
    "runs": {"ablation": {"stf": ["K1"], "mdhr": ["T3_5"], "lac": ["T4_6"], "ciu": ["TE"],  # a row each, in its
                          "pretrain": ["mfdc_only"], "mcsfau": ["mfdc_only"]}},          # method's stage
    "efficiency": {"paper_input_size": 64, "measure_frames": 4, "measure_steps": 1},
}
BASELINE = {"train-pretrained@run0"}  # one stage per run: it trains every fold
STF = {"train-from@run0"}


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


# Runs before the tests that edit params or fail a stage on purpose: it copies the project as `dvc repro`
# left it, and checks which stages an experiment re-runs.
def test_readme_worked_example_runs_as_written(project, tmp_path):
    """Branch, change a param, reproduce, commit, compare with main: every line of the README exits 0."""
    copy = shutil.copytree(project, tmp_path / "copy", symlinks=True)
    identity = {"GIT_AUTHOR_NAME": "aubench", "GIT_AUTHOR_EMAIL": "tests@aubench.invalid",
                "GIT_COMMITTER_NAME": "aubench", "GIT_COMMITTER_EMAIL": "tests@aubench.invalid"}
    environment = {**os.environ, **identity, "PYTHONPATH": str(ROOT / "src"),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def shell(line: str) -> str:
        result = subprocess.run(["bash", "-c", line], cwd=copy, env=environment, capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, f"{line}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        return result.stdout

    shell("git branch -M main && git add -A && git commit -qm 'pipeline results'")  # the user's main branch
    outputs = {line: shell(line) for line in worked_example()}
    # `dvc exp run -S k=2` changes STF's Top-K: only STF's runs (each evaluates itself) and the reports re-run
    experiment = next(out for line, out in outputs.items() if line.startswith("dvc exp run"))
    ran = {line.split("'")[1] for line in experiment.splitlines() if line.startswith("Running stage")}
    assert STF <= ran
    assert not {stage for stage in ran if stage.startswith(("train@", "train-pretrained@", "ablate", "pretrain",
                                                            "landmarks", "align"))}
    assert "reports/summary.json" in shell("dvc exp show --json")
    params = next(out for line, out in outputs.items() if line.startswith("dvc params diff"))
    assert re.search(r"\bk\s+\S+\s+2\b", params)
    metrics = next(out for line, out in outputs.items() if line == "dvc metrics diff main")
    assert "reports/summary.json" in metrics and "stf.mean_f1" in metrics
    assert len(metrics.splitlines()) < 60 and "per_au_f1" not in metrics  # readable: summary numbers only
    assert (copy / "dvc_plots" / "index.html").is_file()
    assert yaml.safe_load((copy / "params.yaml").read_text())["k"] != 2  # back on main


def test_training_param_change_reruns_only_training(project, params_restored):
    params = yaml.safe_load(params_restored.read_text())
    params["baseline"]["optim"]["lr"] = 0.002
    params_restored.write_text(yaml.safe_dump(params, sort_keys=False))
    status = dvc(project, "status", "--json")
    changed = set(json.loads(status.stdout))
    assert BASELINE <= changed
    assert not changed & {"synthesize", "landmarks", "align", "folds"}


def test_a_ciu_student_param_retrains_no_teacher(project, params_restored):
    """CIU's teachers are the student's upstream run: the student's γ re-runs the student's stage only."""
    stages = {run["name"]: f"train-from@run{index}" for index, run in
              enumerate(yaml.safe_load(params_restored.read_text())["runs"]["from_upstream"])}
    params = yaml.safe_load(params_restored.read_text())
    params["ciu"]["risk"]["gamma"] = 2.0
    params_restored.write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(dvc(project, "status", "--json").stdout))
    assert stages["ciu"] in changed and stages["ciu_teachers"] not in changed and not BASELINE & changed


def test_stage_failure_names_the_problem_and_loses_nothing(project, params_restored):
    params = yaml.safe_load(params_restored.read_text())
    params["train"]["epoch"] = 3  # typo: must fail, not be ignored
    params_restored.write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc(project, "repro", "train-pretrained@run0")
    assert result.returncode != 0
    assert "train.epoch: unknown key; did you mean 'epochs'" in result.stdout + result.stderr
    # Nothing computed is lost: the checkpoint persists, and the earlier predictions come back from the cache.
    assert (project / "models" / "baseline" / "fold1" / "checkpoint.pt").is_file()
    assert dvc(project, "checkout", "train-pretrained@run0").returncode == 0
    assert (project / "predictions" / "baseline" / "fold1.npz").is_file()


def test_a_new_method_module_reruns_no_other_run(project):
    """Adding `models/<method>.py` (and registering it) leaves every existing run up to date."""
    before = set(json.loads(dvc(project, "status", "--json").stdout))
    module = project / "src" / "aubench" / "models" / "newmethod.py"
    module.write_text('"""A method being written."""\n')
    try:
        changed = set(json.loads(dvc(project, "status", "--json").stdout)) - before
        assert not {stage for stage in changed if stage.startswith(("train", "ablate"))}
        assert "tables" in changed  # the reports count every method's cost
    finally:
        module.unlink()


def test_paper_profile_retrains_every_run_with_the_papers_schedules(project, params_restored):
    """`profile: paper` changes every training stage and no data stage; each run resolves to its paper."""
    params = yaml.safe_load(params_restored.read_text())
    params["profile"] = "paper"
    params_restored.write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(dvc(project, "status", "--json").stdout))
    assert BASELINE | STF | {"pretrain@run0", "train-pretrained@run1", "align"} <= changed  # align: 256² crops
    assert not changed & {"synthesize", "landmarks"}
    shown = subprocess.run([sys.executable, "stages/train.py", "stf", "--print-config"], cwd=project,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(project / "src")})
    assert shown.returncode == 0, shown.stderr
    config = yaml.safe_load(shown.stdout)
    assert config["profile"] == "paper" and config["stf"]["init_from"] is None and config["stf"]["pretrained"]
    assert (config["optim"]["optimizer"], config["optim"]["lr"], config["optim"]["schedule"]) == (
        "sgd", 0.01, "cosine_periodic")
    assert config["train"]["input_size"] == 224 and config["train"]["epochs"] is None
    assert config["folds"] == [1, 2, 3]  # one stage trains every evaluation fold


def test_a_main_runs_stage_trains_its_ablation_rows_into_its_folders(project):
    """`runs.ablation` rows train in their main run's stage (no stage of their own), on `ablate.folds`; a
    pretraining's row has no fold, and the probe's row starts from it."""
    for main, row in (("stf", "stf_K1"), ("mdhr", "mdhr_T3_5"), ("lac", "lac_T4_6"), ("ciu", "ciu_TE"),
                      ("mcsfau", "mcsfau_mfdc_only")):
        assert (project / "models" / main / "ablations" / row / "fold1" / "checkpoint.pt").is_file()
        assert (project / "predictions" / main / "ablations" / row / "fold1.npz").is_file()
        assert set(json.loads((project / "metrics" / "ablations" / main / f"{row}.json").read_text())["folds"]) == {
            "fold1"}
        assert not (project / "models" / row).exists()
    pretrained = project / "models" / "pretrain" / "ablations" / "pretrain_mfdc_only" / "pool"
    assert json.loads((pretrained / "config.json").read_text())["mcsfau_pretrain"]["modules"]["mfrr"] is False
    stages = dvc(project, "stage", "list", "--name-only").stdout.split()
    assert "train-from@run0" in stages and not [stage for stage in stages if stage.startswith("ablate")]
    assert [stage for stage in stages if stage.startswith("pretrain")] == ["pretrain@run0"]


def test_report_lists_every_run_with_statistics(project):
    summary = json.loads((project / "reports" / "summary.json").read_text())
    assert {"baseline", "stf", "stf_K1"} <= set(summary)
    assert summary["stf"]["ci_low"] <= summary["stf"]["mean_f1"] <= summary["stf"]["ci_high"]
    assert "p_value" in summary["stf"] and "p_value" not in summary["baseline"]
    assert "| stf |" in (project / "reports" / "results.md").read_text()
    readme = (project / "README.md").read_text()
    assert "| stf |" in readme[readme.index("<!-- results:start -->"):readme.index("<!-- results:end -->")]
    times = json.loads((project / "reports" / "stage_times.json").read_text())
    assert times["stages_measured"] >= 10 and times["by_family"]["train"] > 0
    curve = json.loads((project / "plots" / "training" / "baseline" / "train_loss.json").read_text())
    assert set(curve[0]) == {"epoch", "fold1", "fold2", "fold3"}


def worked_example() -> list[str]:
    """The command lines of the README's worked example (between its markers), comments dropped."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- worked-example:start -->\n```bash\n(.*?)```\n<!-- worked-example:end -->", readme, re.S)
    assert block, "README.md: the worked example's markers or code block are missing"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_deploy_model_runs_through_the_installed_command(project, tmp_path):
    """`dvc repro` wrote the deploy model; `aubench predict` (the console script) scores a raw sequence."""
    command = Path(sys.executable).parent / "aubench"
    sequence = project / "data" / "raw" / "synthau" / "Sequences" / "F001" / "T1"
    result = subprocess.run([str(command), "predict", str(sequence), "--model",
                             str(project / "models" / "deploy" / "baseline.pt"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not AU measurements" in result.stderr  # a SynthAU model says what it is
    lines = (tmp_path / "T1.csv").read_text().splitlines()
    assert len(lines) == 1 + 40 and lines[0].startswith("frame,timestamp,face_id,success,confidence")


def test_a_forced_rerun_of_a_finished_pretraining_keeps_its_weights_and_log(project):
    """DVC clears a stage's outputs before running it: the finished checkpoint and its DVCLive log persist, so
    the stage finds the run done, trains nothing, and succeeds."""
    checkpoint = project / "models" / "pretrain" / "pool" / "checkpoint.pt"
    log = project / "dvclive" / "pretrain" / "pretrain" / "metrics.json"
    weights, logged = checkpoint.read_bytes(), log.read_text()
    result = dvc(project, "repro", "--force", "--single-item", "pretrain@run0")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "finished already" in result.stdout + result.stderr
    assert checkpoint.read_bytes() == weights and log.read_text() == logged
