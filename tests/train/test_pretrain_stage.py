"""The `pretrain` stage through its real entry point: a run SIGKILLed mid-epoch and resumed ends with exactly
the weights of an uninterrupted one in another process with the same seed (so a seed also fixes the weights) (online network, EMA target and optimiser
state included), and the finished checkpoint records its configuration and backbone hash; the run groups
that start from a pretraining are checked against it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from aubench.errors import ConfigError
from aubench.io import read_json
from aubench.train.runs import checkpoint_path, resolve_run, run_specs
from tests.conftest import make_store
from tests.train.test_trainer import KILLER

ROOT = Path(__file__).resolve().parents[2]
PRETRAIN_STAGE = ROOT / "stages" / "pretrain.py"
TINY = {"backbone": "resnet18", "feature_map": "layer3", "grid": 2,
        "mfdc": {"projector_hidden": 16, "out_dim": 8, "predictor_hidden": 16},
        "mfrr": {"k_iterations": 3, "refiner_hidden": 8, "mask": {"side_px": 8}, "d_model": 16, "heads": 2,
                 "encoder_layers": 1, "decoder_layers": 1, "feedforward": 16, "dropout": 0.0},
        "mci": {"hidden": 8, "out_dim": 4},
        "optim": {"optimizer": "sgd", "lr": 0.05, "epochs": 2, "batch_size": 8, "schedule": "cosine"}}


def make_pool_dir(root: Path) -> Path:
    """A project-like folder with a tiny aligned pool (2 identities × 16 frames) and a params file."""
    make_store(root / "data" / "unlabeled" / "aligned", subjects=2, frames=16, crop=36)
    params = {"train": {"seed": 0, "input_size": 32, "num_workers": 0},
              "mcsfau_pretrain": TINY,
              "runs": {"pretrain": [{"name": "pretrain", "method": "mcsfau_pretrain", "key": "mcsfau_pretrain"}]}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def pretrain(cwd: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1",
                   **(env or {})}
    return subprocess.run([sys.executable, *extra, str(PRETRAIN_STAGE), "pretrain"], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


def weights(cwd: Path) -> dict[str, torch.Tensor]:
    return torch.load(cwd / checkpoint_path("pretrain", None), weights_only=False)["model"]


def test_pretraining_resumes_after_sigkill_to_the_weights_of_an_uninterrupted_run(tmp_path):
    reference, interrupted = (make_pool_dir(tmp_path / name) for name in ("ref", "kill"))
    result = pretrain(reference)
    assert result.returncode == 0, result.stderr[-3000:]
    # 32 frames / batch 8 = 4 steps an epoch: forward call 6 is the 2nd step of epoch 2.
    assert pretrain(interrupted, "-c", KILLER, env={"KILL_AT_FORWARD": "6"}).returncode == -9
    state = torch.load(interrupted / checkpoint_path("pretrain", None), weights_only=False)
    assert state["epoch"] == 1 and not state["finished"] and state["optimizer"]["state"]
    resumed = pretrain(interrupted)
    assert resumed.returncode == 0 and "resuming after epoch 1" in resumed.stderr
    expected = weights(reference)
    assert any(name.startswith("target_trunk.") for name in expected)
    actual = weights(interrupted)
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=0, msg=name)
    config = read_json(reference / "models" / "pretrain" / "pool" / "config.json")
    assert config["pool"]["subjects"] == ["F001", "F002"] and len(config["backbone_sha256"]) == 64
    logged = reference / "dvclive" / "pretrain" / "pretrain" / "plots" / "metrics" / "train" / "terms"
    assert {path.stem for path in logged.iterdir()} == {"mfdc", "landmark", "reconstruction", "interaction"}


def test_runs_from_a_pretraining_read_its_single_checkpoint_and_groups_are_checked():
    params = {"mcsfau_pretrain": TINY, "mcsfau": {"backbone": "resnet18", "init_from": "pretrain"},
              "runs": {"pretrain": [{"name": "pretrain", "method": "mcsfau_pretrain", "key": "mcsfau_pretrain"}],
                       "from_pretrain": [{"name": "mcsfau", "method": "mcsfau", "upstream": "pretrain",
                                          "key": "mcsfau"}]}}
    run = resolve_run(params, "mcsfau")
    assert run.paths(2).upstream == {"backbone": Path("models/pretrain/pool/checkpoint.pt")}
    assert resolve_run(params, "pretrain").paths(None).checkpoint == Path("models/pretrain/pool/checkpoint.pt")
    params["runs"]["from_upstream"] = params["runs"].pop("from_pretrain")
    with pytest.raises(ConfigError, match="list it under from_pretrain"):
        run_specs(params)


def test_a_pretrainings_ablation_rows_train_in_its_stage(tmp_path):
    """`runs.ablation.pretrain` rows pretrain after the main run in its stage, into its folders, each with its
    own configuration and backbone hash."""
    project = make_pool_dir(tmp_path)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["mcsfau_pretrain"]["optim"]["epochs"] = 1
    params["runs"]["ablation"] = {"pretrain": ["mfdc_only"]}
    params["variants"] = {"mcsfau_pretrain": {"mfdc_only": {"modules": {"mfdc": True, "mfrr": False, "mci": False}}}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = pretrain(project)
    assert result.returncode == 0, result.stderr[-3000:]
    main = read_json(project / "models" / "pretrain" / "pool" / "config.json")
    row = read_json(project / "models" / "pretrain" / "ablations" / "pretrain_mfdc_only" / "pool" / "config.json")
    assert (main["run"], row["run"]) == ("pretrain", "pretrain_mfdc_only")
    assert row["mcsfau_pretrain"]["modules"]["mfrr"] is False and main["mcsfau_pretrain"]["modules"]["mfrr"] is True
    assert len({main["backbone_sha256"], row["backbone_sha256"]}) == 2
    logged = project / "dvclive" / "pretrain" / "pretrain" / "ablations" / "pretrain_mfdc_only" / "metrics.json"
    assert logged.is_file()
