"""Resumable per-sequence outputs: content keys, completion checks and removal of stale files.

A stage that handles independent sequences writes one output per sequence, atomically (temp file +
rename), carrying a *resume key*: a hash of everything that determines it (the stage's params, the input
files' names and content hashes, the label content, the stage's own source code and the versions of the
libraries that compute it). A later run skips a sequence whose output exists with the same key, so an
interrupted stage picks up where it stopped and a stage re-run by DVC (its outputs marked `persist: true`)
redoes only the sequences whose inputs changed. Outputs of sequences that are no longer in the dataset are
deleted, so the output folder always describes the current dataset only.

A key identifies content only, never modification times, absolute paths or anything else of one checkout:
it is stored inside the output, so a fresh clone's `dvc repro` must compute the same keys to reproduce the
committed output hashes (and to share results through DVC caches and remotes). Timings and how much a run
reused go to the log, never into an output.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Name of the array that holds the resume key inside a sequence's `.npz` output.
KEY_FIELD = "resume_key"


def digest(value: Any) -> str:
    """Stable SHA-256 of a JSON-serialisable value (dict keys sorted; paths and numbers as text)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes."""
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.dtype.str}{array.shape}".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


@functools.lru_cache(maxsize=None)
def source_digest(*modules: str) -> str:
    """SHA-256 of the source files of the named modules or packages (a package: all its .py files).

    Part of every resume key, so that editing the code that computes an output redoes it.
    """
    hasher = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            hasher.update(str(path.relative_to(origin.parent)).encode())
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


def package_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of the named distributions, else of the importable modules of that name
    (`__version__`; dlib's wheels are published under several distribution names); None where neither."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            spec = importlib.util.find_spec(name.replace("-", "_"))
            versions[name] = getattr(importlib.import_module(spec.name), "__version__", None) if spec else None
    return versions


def stored_key(path: Path) -> str | None:
    """The resume key inside a finished `.npz` output, or None when the file is absent, unreadable or keyless."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return str(data[KEY_FIELD]) if KEY_FIELD in data.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # a damaged file counts as not done
        log.warning("%s: unreadable (%s); it will be recomputed", path, error)
        return None


def remove_stale(out_dir: Path, keep: set[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Delete interrupted writes (`*.partial*`) and outputs `<stem><suffix>` whose stem is not in `keep`."""
    removed = []
    for path in sorted(out_dir.iterdir()):
        if not path.is_file():
            continue
        partial = ".partial" in path.name
        stale = any(path.name.endswith(suffix) and path.name[: -len(suffix)] not in keep for suffix in suffixes)
        if partial or stale:
            path.unlink()
            removed.append(path)
    if removed:
        log.info("%s: removed %d stale or partial files (e.g. %s)", out_dir, len(removed), removed[0].name)
    return removed
