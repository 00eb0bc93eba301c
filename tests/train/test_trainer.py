"""The training engine through the real stage entry point: determinism, resume after SIGKILL, NaN guard,
and DDP (2 Gloo processes) against single-process gradient accumulation."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from aubench.align.store import AlignedStore
from aubench.data.folds import build_fold_table
from aubench.errors import ConfigError, ModelError
from aubench.io import write_json
from aubench.train import folds as folds_module
from aubench.train.folds import fold_processes, start_method
from tests.conftest import make_store

ROOT = Path(__file__).resolve().parents[2]
TRAIN_STAGE = ROOT / "stages" / "train.py"
# SIGKILL this process at the given forward call: a real kill in the middle of epoch 2.
KILLER = """
import os, runpy, signal, sys
from aubench.train.trainer import FoldTrainer
calls, limit, forward = [0], int(os.environ["KILL_AT_FORWARD"]), FoldTrainer._forward
def counting(self, *args):
    calls[0] += 1
    if calls[0] == limit:
        os.kill(os.getpid(), signal.SIGKILL)
    return forward(self, *args)
FoldTrainer._forward = counting
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def make_run_dir(root: Path, **train) -> Path:
    """A project-like folder with a tiny aligned store, its folds and a params file."""
    store_dir = make_store(root / "data" / "aligned", subjects=3, frames=24)
    store = AlignedStore.open(store_dir)
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    write_json(root / "data" / "folds.json", build_fold_table("synthau", store.aus, labels, seed=0))
    params = {"train": {"seed": 0, "input_size": 32, "epochs": 3, "batch_size": 8, "num_workers": 0, **train},
              "baseline": {"optim": {"lr": 0.003}},
              "runs": {"scratch": [{"name": "baseline", "method": "baseline", "key": "baseline"}]}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run_stage(cwd: Path, *extra: str, env: dict | None = None, launcher: list[str] | None = None,
              fold: int | None = 1) -> subprocess.CompletedProcess:
    """`python [extra] stages/train.py baseline [--fold N]` (fold None: every fold, as dvc.yaml runs it)."""
    environment = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1",
                   **(env or {})}
    folds = [] if fold is None else ["--fold", str(fold)]
    command = (launcher or [sys.executable]) + [*extra, str(TRAIN_STAGE), "baseline", *folds]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


def predictions(cwd: Path, fold: int = 1) -> np.ndarray:
    with np.load(cwd / "predictions" / "baseline" / f"fold{fold}.npz") as data:
        return data["probabilities"]


def test_same_seed_gives_identical_predictions(tmp_path):
    first, second = make_run_dir(tmp_path / "a"), make_run_dir(tmp_path / "b")
    assert run_stage(first).returncode == 0
    assert run_stage(second).returncode == 0
    np.testing.assert_array_equal(predictions(first), predictions(second))
    assert (first / "dvclive" / "train" / "baseline" / "fold1" / "plots" / "metrics" / "train" / "loss.tsv").is_file()


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    reference, interrupted = make_run_dir(tmp_path / "ref"), make_run_dir(tmp_path / "kill")
    assert run_stage(reference).returncode == 0
    # 48 training frames / batch 8 = 6 steps per epoch: forward call 8 is the 2nd step of epoch 2.
    killed = run_stage(interrupted, "-c", KILLER, env={"KILL_AT_FORWARD": "8"})
    assert killed.returncode == -9
    state = torch.load(interrupted / "models" / "baseline" / "fold1" / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 1 and not state["finished"]
    resumed = run_stage(interrupted)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1" in resumed.stderr
    np.testing.assert_array_equal(predictions(reference), predictions(interrupted))


def test_one_process_trains_every_fold_and_a_rerun_redoes_only_the_interrupted_one(tmp_path):
    """Without --fold the stage trains the folds of `evaluate.folds`; killed in fold 2, its re-run keeps fold 1
    (finished, same run: only its predictions are recomputed) and resumes fold 2 from its last epoch."""
    reference, interrupted = make_run_dir(tmp_path / "ref"), make_run_dir(tmp_path / "kill")
    for run_dir in (reference, interrupted):
        params = yaml.safe_load((run_dir / "params.yaml").read_text())
        (run_dir / "params.yaml").write_text(yaml.safe_dump({**params, "evaluate": {"folds": [1, 2]}}))
    assert not (interrupted / "metrics").exists()
    assert run_stage(interrupted, fold=1).returncode == 0  # one fold of two: nothing to evaluate yet
    assert not (interrupted / "metrics").exists()
    assert run_stage(reference, fold=None).returncode == 0
    assert sorted(path.name for path in (reference / "predictions" / "baseline").iterdir()) == ["fold1.npz", "fold2.npz"]
    # the stage evaluates its run on the protocol's folds (pipeline.md's `evaluate`)
    scores = json.loads((reference / "metrics" / "baseline.json").read_text())
    assert set(scores["folds"]) == {"fold1", "fold2"} and scores["method"] == "baseline"
    assert len(json.loads((reference / "plots" / "f1_threshold" / "baseline.json").read_text())) == 19
    for made in ("models", "predictions"):  # the partial run leaves no trace in the resume check below
        shutil.rmtree(interrupted / made)
    # 6 steps an epoch, 3 epochs: fold 1 makes 18 training forward calls; call 26 is in fold 2's 2nd epoch.
    killed = run_stage(interrupted, "-c", KILLER, env={"KILL_AT_FORWARD": "26"}, fold=None)
    assert killed.returncode == -9
    checkpoints = interrupted / "models" / "baseline"
    assert torch.load(checkpoints / "fold1" / "checkpoint.pt", weights_only=False)["finished"]
    assert torch.load(checkpoints / "fold2" / "checkpoint.pt", weights_only=False)["epoch"] == 1
    (interrupted / "predictions" / "baseline" / "fold1.npz").unlink()  # DVC removes a stage's outputs first
    resumed = run_stage(interrupted, fold=None)
    assert resumed.returncode == 0, resumed.stderr
    assert "this run finished already" in resumed.stderr and "resuming after epoch 1" in resumed.stderr
    for fold in (1, 2):
        np.testing.assert_array_equal(predictions(reference, fold), predictions(interrupted, fold))


def test_changed_data_is_another_run(tmp_path):
    """The checkpoint's fingerprint covers the store's content: new data never resumes or reuses old weights."""
    run_dir = make_run_dir(tmp_path, epochs=1)
    assert run_stage(run_dir).returncode == 0
    before = predictions(run_dir)
    make_store(run_dir / "data" / "aligned", subjects=3, frames=24, seed=1)  # same layout, other pixels and labels
    rerun = run_stage(run_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert "another configuration or data" in rerun.stderr and "finished already" not in rerun.stderr
    assert not np.array_equal(before, predictions(run_dir))


def test_nan_loss_stops_with_step_and_batch_named(tmp_path):
    run_dir = make_run_dir(tmp_path, epochs=1)
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["baseline"]["optim"]["lr"] = 1e30
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(run_dir)
    assert result.returncode == 2
    assert "non-finite loss" in result.stderr and "epoch 1, step 2" in result.stderr and "batch of 8" in result.stderr
    assert not (run_dir / "predictions" / "baseline" / "fold1.npz").exists()


def test_ddp_two_gloo_processes_match_gradient_accumulation(tmp_path):
    single = make_run_dir(tmp_path / "single", accumulate=2, epochs=2)
    ddp = make_run_dir(tmp_path / "ddp", epochs=2)
    assert run_stage(single).returncode == 0
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533"]
    result = run_stage(ddp, launcher=launcher)
    assert result.returncode == 0, result.stderr[-3000:]
    weights = [torch.load(run / "models" / "baseline" / "fold1" / "checkpoint.pt", weights_only=False)["model"]
               for run in (single, ddp)]
    parameters = [name for name in weights[0] if "running" not in name and "num_batches" not in name]
    for name in parameters:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=1e-4, atol=1e-5, msg=name)
    # BatchNorm running statistics are buffers, not weights: under DDP they follow rank 0's micro-batches,
    # so predictions are compared for completeness only (one file, written once, by rank 0).
    assert predictions(ddp).shape == predictions(single).shape


def test_epoch_hooks_run_around_every_epoch_and_validation_split_is_logged(tmp_path):
    """A method's hooks see each epoch start and end once (with the epoch's loss terms) and every optimiser
    step; validation F1 comes from held-out training subjects."""
    import dataclasses

    from aubench.data.folds import read_fold
    from aubench.io import read_json
    from aubench.models.baseline import BaselineConfig
    from aubench.models.registry import Hooks, get_method
    from aubench.train.optim import OptimConfig
    from aubench.train.config import RunPaths, TrainConfig
    from aubench.train.trainer import train_fold

    seen, steps = [], []

    class Recorder(Hooks):
        def on_epoch_start(self, epoch):
            seen.append(("start", epoch))

        def after_optimizer_step(self):
            steps.append(len(seen))

        def on_epoch_end(self, epoch, terms):
            seen.append(("end", epoch, sorted(terms)))

    method = dataclasses.replace(get_method("baseline"), hooks=lambda config, model, loss: Recorder())
    store = AlignedStore.open(make_store(tmp_path / "store", subjects=6, frames=16))
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    fold, rates = read_fold(build_fold_table("synthau", store.aus, labels, seed=0), 1)
    config = TrainConfig(input_size=32, epochs=3, batch_size=8, validation_subjects=1, early_stopping_patience=5)
    paths = RunPaths(tmp_path / "ckpt.pt", tmp_path / "pred.npz", tmp_path / "live")
    train_fold(method, BaselineConfig(), OptimConfig(), config, store, fold, rates, paths)
    assert seen == [event for epoch in range(3) for event in (("start", epoch), ("end", epoch, ["loss"]))]
    assert steps and steps.count(1) == steps.count(3) == steps.count(5) == len(steps) // 3  # steps inside epochs
    logged = read_json(tmp_path / "live" / "metrics.json")
    assert "mean_f1" in logged["validation"] and "AU12" in logged["validation"]["f1"]
    assert torch.load(paths.checkpoint, weights_only=False)["best"]["epoch"] in (1, 2, 3)


def test_clip_mode_method_trains_and_predicts_every_frame_once(tmp_path):
    """STF through the same engine: clips in, one probability per test frame out."""
    from aubench.data.folds import read_fold
    from aubench.models.registry import get_method
    from aubench.models.stf import STFConfig
    from aubench.train.optim import OptimConfig
    from aubench.train.config import RunPaths, TrainConfig
    from aubench.train.trainer import train_fold

    store = AlignedStore.open(make_store(tmp_path / "store", subjects=3, frames=18))
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    fold, rates = read_fold(build_fold_table("synthau", store.aus, labels, seed=0), 1)
    config = TrainConfig(input_size=32, epochs=2, batch_size=8)  # 8 frames = 2 clips of 4
    paths = RunPaths(tmp_path / "ckpt.pt", tmp_path / "pred.npz", tmp_path / "live")
    optim = OptimConfig(optimizer="sgd", lr=0.01, schedule="cosine_periodic", min_lr_ratio=0.01)
    train_fold(get_method("stf"), STFConfig(clip_length=4, d=16), optim, config, store, fold, rates, paths)
    with np.load(paths.predictions) as data:
        assert data["probabilities"].shape == (18, 12)
        assert ((data["probabilities"] >= 0) & (data["probabilities"] <= 1)).all()
        assert data["positions"].tolist() == list(range(18))


def test_stf_starts_from_the_same_folds_finished_baseline_backbone(tmp_path):
    """`RunPaths.upstream`: the engine loads that checkpoint's trunk before training (and before resume)."""
    from aubench.data.folds import read_fold
    from aubench.models.baseline import BaselineConfig
    from aubench.models.registry import get_method
    from aubench.models.stf import STFConfig
    from aubench.train import distributed
    from aubench.train.optim import OptimConfig
    from aubench.train.config import RunPaths, TrainConfig
    from aubench.train.trainer import FoldTrainer, train_fold

    store = AlignedStore.open(make_store(tmp_path / "store", subjects=3, frames=8))
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    fold, rates = read_fold(build_fold_table("synthau", store.aus, labels, seed=0), 1)
    config = TrainConfig(input_size=32, epochs=1, batch_size=8)
    baseline = RunPaths(tmp_path / "base.pt", tmp_path / "base.npz", tmp_path / "base_live")
    train_fold(get_method("baseline"), BaselineConfig(), OptimConfig(), config, store, fold, rates, baseline)
    trained = torch.load(baseline.checkpoint, weights_only=False)
    retrained = {**trained, "model": {**trained["model"], "trunk.stem.0.weight": -trained["model"]["trunk.stem.0.weight"]}}
    torch.save(retrained, tmp_path / "retrained.pt")

    def stf_trainer(source: Path) -> FoldTrainer:
        paths = RunPaths(tmp_path / "stf.pt", tmp_path / "stf.npz", tmp_path / "stf_live", upstream={"backbone": source})
        try:
            return FoldTrainer(get_method("stf"), STFConfig(clip_length=4, d=8, init_from="baseline"), OptimConfig(),
                               config, store, fold, rates, paths)
        finally:
            distributed.shutdown()

    trainer = stf_trainer(baseline.checkpoint)
    for key, value in trainer.model.backbone.trunk.state_dict().items():
        assert torch.equal(value, trained["model"][f"trunk.{key}"]), key
    # A retrained source backbone makes it another run: an interrupted checkpoint of the old one is not resumed.
    assert stf_trainer(tmp_path / "retrained.pt").key != trainer.key


def test_folds_trained_at_once_in_processes_equal_folds_trained_one_after_another(tmp_path):
    """`train.fold_processes: 2` trains folds 1 and 2 in two processes; at the same thread count (one) each
    fold's predictions equal a sequential run's, and the stage scores both folds as before."""
    runs = {}
    for processes in (1, 2):
        run_dir = make_run_dir(tmp_path / f"processes{processes}", fold_processes=processes, epochs=2)
        params = yaml.safe_load((run_dir / "params.yaml").read_text())
        (run_dir / "params.yaml").write_text(yaml.safe_dump({**params, "evaluate": {"folds": [1, 2]}}))
        done = run_stage(run_dir, fold=None)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[processes] = run_dir
    for fold in (1, 2):
        np.testing.assert_array_equal(predictions(runs[1], fold), predictions(runs[2], fold))
        config = json.loads((runs[2] / "models" / "baseline" / f"fold{fold}" / "config.json").read_text())
        assert config["fold"] == fold and config["train"]["fold_processes"] == 2
    assert set(json.loads((runs[2] / "metrics" / "baseline.json").read_text())["folds"]) == {"fold1", "fold2"}


def test_folds_train_in_even_rounds_on_a_cpu_and_one_after_another_under_torchrun_or_on_a_gpu(monkeypatch):
    params = {"train": {"fold_processes": 3}, "runs": {"scratch": [{"name": "baseline", "method": "baseline",
                                                                     "key": "baseline"}]}}
    assert fold_processes(params, "baseline", {}, 3) == 3 and fold_processes(params, "baseline", {}, 2) == 2
    assert [fold_processes(params, "baseline", {}, jobs) for jobs in (4, 5, 6, 7)] == [2, 3, 3, 3]  # even rounds
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert fold_processes(params, "baseline", {}, 3) == 1
    monkeypatch.delenv("WORLD_SIZE")
    on_gpu = {**params, "train": {"fold_processes": 3, "device": "cuda"}}
    assert fold_processes(on_gpu, "baseline", {}, 3) == 1
    with pytest.raises(ConfigError, match="fold_processes"):
        fold_processes({**params, "train": {"fold_processes": 0}}, "baseline", {}, 3)


def test_a_stage_trains_its_runs_folds_then_its_ablation_rows_folds(monkeypatch):
    """`train_folds` takes every run of a stage (a main run and its `runs.ablation` rows): each run's folds, with
    the configuration saved beside each; the main run's settings decide how many train at once."""
    calls = []
    monkeypatch.setattr(folds_module, "train_one_fold", lambda params, name, overrides, number, store, folds, resolved:
                        calls.append((name, number, overrides, resolved["run"])))
    params = {"train": {"fold_processes": 1}, "runs": {
        "scratch": [{"name": "baseline", "method": "baseline", "key": "baseline"}],
        "from_upstream": [{"name": "stf", "method": "stf", "upstream": "baseline", "key": "stf"}],
        "ablation": {"stf": ["K5"]}}, "variants": {"stf": {"K5": {"srm_top_k": 5}}}}
    folds_module.train_folds(params, {"stf": (1, 2, 3), "stf_K5": (1,)}, {"d": 16}, Path("store"), Path("folds.json"),
                             {"stf": {"run": "stf"}, "stf_K5": {"run": "stf_K5"}})
    assert calls == [("stf", 1, {"d": 16}, "stf"), ("stf", 2, {"d": 16}, "stf"), ("stf", 3, {"d": 16}, "stf"),
                     ("stf_K5", 1, {"d": 16}, "stf_K5")]


def test_fold_processes_of_one_thread_are_forked_others_spawned():
    # GNU OpenMP deadlocks in a forked child that runs a parallel region after its parent did: only
    # single-threaded children (no OpenMP team) may skip spawn's fresh interpreter.
    assert start_method(1) == "fork" and start_method(2) == "spawn" and start_method(8) == "spawn"


def test_a_fixed_backbone_without_augmentation_computes_each_frame_once_per_run(tmp_path):
    """`augment: false` on a frozen trunk: a second epoch passes no frame through the backbone again."""
    from aubench.data.folds import read_fold
    from aubench.models.baseline import BaselineConfig
    from aubench.models.registry import get_method
    from aubench.models.stf import STFConfig
    from aubench.train.optim import OptimConfig
    from aubench.train.config import RunPaths, TrainConfig
    from aubench.train.trainer import train_fold

    store = AlignedStore.open(make_store(tmp_path / "store", subjects=3, frames=8))
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    fold, rates = read_fold(build_fold_table("synthau", store.aus, labels, seed=0), 1)
    baseline = RunPaths(tmp_path / "base.pt", tmp_path / "base.npz", tmp_path / "base_live")
    train_fold(get_method("baseline"), BaselineConfig(), OptimConfig(), TrainConfig(input_size=32, epochs=1, batch_size=8),
               store, fold, rates, baseline)
    computed = {}
    for epochs, augment in ((1, False), (3, False), (1, True)):
        paths = RunPaths(tmp_path / f"stf{epochs}{augment}.pt", tmp_path / f"stf{epochs}{augment}.npz",
                         tmp_path / f"live{epochs}{augment}", upstream={"backbone": baseline.checkpoint})
        model = train_fold(get_method("stf"), STFConfig(clip_length=4, d=8, init_from="baseline", train_backbone=False),
                           OptimConfig(),
                           TrainConfig(input_size=32, epochs=epochs, batch_size=8, augment=augment), store, fold,
                           rates, paths)
        memo = model.backbone.trunk.memo
        computed[epochs, augment] = memo and (memo.computed, len(memo.outputs))
    frames = sum(len(store.labels(sequence.key)) for sequence in store.sequences)
    # every frame (training and test) through the backbone at most once, however many epochs
    assert computed[1, False][0] == computed[1, False][1] and computed[3, False][0] == computed[3, False][1]
    assert 0 < computed[1, False][0] <= computed[3, False][0] <= frames
    assert computed[1, True] is None  # augmented frames do not recur: no memo


def test_a_frozen_trunk_is_left_out_of_resume_checkpoints_and_rebuilt_on_resume(tmp_path, monkeypatch):
    """MC-SFAU's probe on a random frozen trunk, interrupted in epoch 2: its resume checkpoint holds the probe,
    not the trunk, and the resumed run predicts exactly what an uninterrupted one does; the finished
    checkpoint holds everything (prediction and deployment load it alone)."""
    from aubench.data.folds import read_fold
    from aubench.models.backbones import frozen_trunk_keys
    from aubench.models.mcsfau import MCSFAUConfig
    from aubench.models.registry import get_method
    from aubench.train.optim import OptimConfig
    from aubench.train.config import RunPaths, TrainConfig
    from aubench.train.trainer import FoldTrainer, train_fold

    store = AlignedStore.open(make_store(tmp_path / "store", subjects=3, frames=8))
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    fold, rates = read_fold(build_fold_table("synthau", store.aus, labels, seed=0), 1)
    method, config = get_method("mcsfau"), MCSFAUConfig(backbone="resnet18", init_from=None)
    train = TrainConfig(input_size=32, epochs=3, batch_size=8, augment=False)

    def run(name: str) -> RunPaths:
        paths = RunPaths(tmp_path / name / "checkpoint.pt", tmp_path / name / "fold1.npz", tmp_path / name / "live")
        train_fold(method, config, OptimConfig(), train, store, fold, rates, paths)
        return paths

    reference = run("reference")
    forward, calls = FoldTrainer._forward, [0]

    def interrupted(self, *args):
        calls[0] += 1
        if calls[0] == 3:  # 16 training frames / batch 8: the 1st step of epoch 2
            raise KeyboardInterrupt
        return forward(self, *args)

    monkeypatch.setattr(FoldTrainer, "_forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run("resumed")
    state = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    model = method.build_model(config, len(store.aus))
    trunk = frozen_trunk_keys(model)
    assert state["epoch"] == 1 and trunk and set(state["model"]) == set(model.state_dict()) - trunk
    monkeypatch.setattr(FoldTrainer, "_forward", forward)
    (tmp_path / "tampered").mkdir()
    torch.save({**state, "model": {key: value for key, value in state["model"].items() if key != "head.bias"}},
               tmp_path / "tampered" / "checkpoint.pt")
    with pytest.raises(ModelError, match="tampered/checkpoint.pt: its weights do not fit.*head.bias"):
        run("tampered")
    resumed = run("resumed")
    with np.load(reference.predictions) as first, np.load(resumed.predictions) as second:
        np.testing.assert_array_equal(first["probabilities"], second["probabilities"])
    assert set(torch.load(resumed.checkpoint, weights_only=False)["model"]) == set(model.state_dict())
