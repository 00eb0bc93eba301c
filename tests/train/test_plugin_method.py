"""A method defined in the tests folder (`throwaway_method.py`: two loss terms, stateful hooks, landmarks in
the batch) trains through `stages/train.py` with no edit under src/: the `plugins` params key imports it.

Its terms are logged to DVCLive one by one, and a run SIGKILLed mid-epoch resumes to the predictions and
hook state of an uninterrupted run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from aubench.align.store import AlignedStore
from aubench.data.folds import build_fold_table
from aubench.io import read_json, write_json
from tests.conftest import make_store, write_index, write_sequence
from tests.train.test_trainer import KILLER, ROOT, TRAIN_STAGE

PLUGIN_DIR = Path(__file__).resolve().parent
RUN = "throwaway"


def make_landmark_store(root: Path, subjects: int = 3, frames: int = 24) -> Path:
    """The tiny store of `make_store`, each sequence with (T, 68, 2) float32 landmarks in crop pixels."""
    store = AlignedStore.open(make_store(root, subjects=subjects, frames=frames))
    draws = np.random.default_rng(1)
    template = draws.uniform(8, store.crop_size - 8, (68, 2))
    entries = []
    for sequence in store.sequences:
        images, labels = np.array(store.images(sequence.key)), store.labels(sequence.key)
        points = (template + draws.normal(0, 1.5, (sequence.length, 68, 2))).astype(np.float32)
        entries.append(write_sequence(root, sequence.subject, images, labels=labels, points=points))
    return write_index(root, entries, store.crop_size)


def make_plugin_run_dir(root: Path) -> Path:
    """A project folder whose params train only the plugin method."""
    store = AlignedStore.open(make_landmark_store(root / "data" / "aligned"))
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    write_json(root / "data" / "folds.json", build_fold_table("synthau", store.aus, labels, seed=0))
    params = {"plugins": ["throwaway_method"],
              "train": {"seed": 0, "input_size": 32, "epochs": 3, "batch_size": 8, "num_workers": 0},
              RUN: {"channels": 8, "momentum": 0.5, "optim": {"lr": 0.01}},
              "runs": {"scratch": [{"name": RUN, "method": "throwaway", "key": RUN}]}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def train(cwd: Path, *python_args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python [python_args] stages/train.py throwaway --fold 1`, with the tests folder on PYTHONPATH."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), str(PLUGIN_DIR)])
    environment = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(env or {})}
    command = [sys.executable, *python_args, str(TRAIN_STAGE), RUN, "--fold", "1"]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


def predictions(cwd: Path) -> np.ndarray:
    with np.load(cwd / "predictions" / RUN / "fold1.npz") as data:
        return data["probabilities"]


def checkpoint(cwd: Path) -> dict:
    return torch.load(cwd / "models" / RUN / "fold1" / "checkpoint.pt", weights_only=False)


def test_plugin_method_trains_logs_its_terms_and_resumes_after_sigkill(tmp_path):
    reference, interrupted = make_plugin_run_dir(tmp_path / "ref"), make_plugin_run_dir(tmp_path / "kill")
    done = train(reference)
    assert done.returncode == 0, done.stderr[-3000:]

    # Both named terms and their sum are logged every epoch.
    live = reference / "dvclive" / "train" / RUN / "fold1"
    logged = {path.stem: path for path in (live / "plots" / "metrics" / "train").rglob("*.tsv")}
    assert {"loss", "bce", "landmark"} <= set(logged), sorted(logged)
    for term in ("bce", "landmark"):
        rows = logged[term].read_text().splitlines()[1:]
        assert len(rows) == 3 and all(np.isfinite(float(row.split("\t")[-1])) for row in rows)
    assert read_json(live / "metrics.json")["train"]

    # The hooks ran with the engine: one weight update per epoch, every optimiser step counted.
    state = checkpoint(reference)
    hooks = state["hooks"]
    assert state["finished"] and hooks["epochs"] == 3 and len(hooks["history"]) == 3
    steps_per_epoch = hooks["steps"] // 3
    assert steps_per_epoch >= 2 and hooks["steps"] == 3 * steps_per_epoch
    assert len(set(hooks["history"])) == 3 and all(weight > 0 for weight in hooks["history"])

    # SIGKILL at the 2nd step of epoch 2, then resume.
    killed = train(interrupted, "-c", KILLER, env={"KILL_AT_FORWARD": str(steps_per_epoch + 2)})
    assert killed.returncode == -9, killed.stderr[-3000:]
    partial = checkpoint(interrupted)
    assert partial["epoch"] == 1 and not partial["finished"]
    assert partial["hooks"]["epochs"] == 1 and partial["hooks"]["steps"] == steps_per_epoch
    resumed = train(interrupted)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stderr

    np.testing.assert_array_equal(predictions(reference), predictions(interrupted))
    assert checkpoint(interrupted)["hooks"] == hooks
