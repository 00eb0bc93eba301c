"""Issue #16: the data stages are bit-reproducible. Two scratch copies of the project, in different folders,
run at different times, with different frame modification times and hash seeds, must write byte-identical
data and metrics and record identical `dvc.lock` entries: a fresh clone's `dvc repro` reproduces the
committed hashes, and DVC caches and remotes can share the results."""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from aubench.landmarks.pipeline import RUN_FIELDS
from tests.pipeline.scratch import dvc, make_project

DATA_STAGES = ("synthesize", "landmarks", "align", "folds")
TINY = {
    "synthesize": {"subjects": 3, "tasks": 1, "frames": 12, "workers": 1},
    "landmarks": {"workers": 1},
    "align": {"workers": 1},
    "profiles": {"cpu": {"align": {"crop_size": 32}}},
}
#: Folders the data stages write into (outputs, metrics files and plots).
OUTPUT_FOLDERS = ("data", "metrics", "plots")


def repro(project: Path, stage: str) -> None:
    result = dvc(project, "repro", stage)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def written_files(project: Path) -> dict[str, bytes]:
    """Every file under the output folders, by path relative to the project."""
    return {str(path.relative_to(project)): path.read_bytes()
            for folder in OUTPUT_FOLDERS for path in sorted((project / folder).rglob("*")) if path.is_file()}


def data_stage_locks(project: Path) -> dict:
    stages = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    return {name: stages[name] for name in DATA_STAGES}


def test_data_stages_write_identical_files_in_another_folder_at_another_time(tmp_path, monkeypatch):
    folders = tmp_path / "a" / "first", tmp_path / "b" / "elsewhere" / "second"
    for folder in folders:
        folder.mkdir(parents=True)
    first, second = (make_project(folder, TINY) for folder in folders)
    monkeypatch.setenv("PYTHONHASHSEED", "1")
    repro(first, "folds")

    monkeypatch.setenv("PYTHONHASHSEED", "2")  # set and str-key ordering must not matter either
    repro(second, "synthesize")
    raw = second / "data" / "raw" / "synthau"
    for number, path in enumerate(sorted(raw.rglob("*"))):  # a clone's frames get other modification times
        os.utime(path, ns=(1_000_000_000 * (946_684_800 + number),) * 2)
    repro(second, "folds")

    files, again = written_files(first), written_files(second)
    assert sorted(files) == sorted(again)
    assert any(name.startswith("data/landmarks/") for name in files)
    assert any(name.startswith("data/aligned/") for name in files) and "data/folds.json" in files
    differing = [name for name in files if files[name] != again[name]]
    assert not differing, f"files that differ between the two runs: {differing}"
    assert data_stage_locks(first) == data_stage_locks(second)
    report = json.loads(files["metrics/landmarks.json"])
    assert not set(RUN_FIELDS) & set(report)  # timings and resume counts go to the log only
