"""Scratch copies of this project (pipeline definition, stages, library) in their own git+DVC repository,
so tests run the real `dvc repro` on the real `dvc.yaml` without touching the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def dvc(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=timeout)


def merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def make_project(project: Path, overrides: dict) -> Path:
    """A committed copy of the project whose params.yaml is the project's with `overrides` merged in."""
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "stages", project / "stages")
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=aubench", "-c", "user.email=tests@aubench.invalid"]
    subprocess.run(git + ["init", "-q"], cwd=project, check=True)
    assert dvc(project, "init", "-q").returncode == 0
    subprocess.run(git + ["add", "-A"], cwd=project, check=True)
    subprocess.run(git + ["commit", "-qm", "scratch project"], cwd=project, check=True)  # like a clone
    return project
