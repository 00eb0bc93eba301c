"""A stage's trainings (a run's folds, and its ablation rows' folds), one after another or several at once in
separate processes.

On a CPU, one small model's step scales poorly over threads (a ResNet-18 step on 48-px frames: 1.3× from one
thread to two on the project's 2-core machine), while independent processes scale with the cores (2.0×), so
`train.fold_processes` trains that many folds at once, each process with an equal share of the threads; a
main run's ablation rows (`runs.ablation`) fill the same processes. Each fold's process resolves its run from
the params again (a `Method` holds functions, which do not pickle) and
writes exactly the files a sequential run writes; a fold's result depends on its thread count, not on which
process trained it. Under torchrun, or on a GPU, folds always run one after another.

Processes of one thread each are forked: they start in milliseconds instead of re-importing torch (about 6 s
of CPU each, 10 s of a 2-core machine's wall clock for three). With more threads each they are spawned,
because GNU OpenMP (which torch's CPU kernels use) deadlocks in a forked child that starts a parallel region
after its parent ran one.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from aubench.align.store import AlignedStore
from aubench.data.folds import read_fold
from aubench.io import read_json, write_json
from aubench.train.distributed import named_device
from aubench.train.runs import import_plugins, resolve_run
from aubench.train.trainer import train_fold


def train_one_fold(params: dict[str, Any], run_name: str, overrides: dict[str, Any], number: int,
                   store_dir: Path, folds_file: Path, resolved: dict[str, Any]) -> None:
    """Train fold `number` of the run, writing its resolved configuration beside its checkpoint."""
    import_plugins(params)
    run = resolve_run(params, run_name, overrides)
    fold, au_rates = read_fold(read_json(folds_file), number)
    paths = run.paths(number)
    write_json(paths.checkpoint.parent / "config.json", {**resolved, "fold": number})
    train_fold(run.method, run.method_config, run.optim, run.train_config(params), AlignedStore.open(store_dir),
               fold, au_rates, paths)


def fold_processes(params: dict[str, Any], run_name: str, overrides: dict[str, Any], jobs: int) -> int:
    """How many of `jobs` trainings to run at once: at most the run's `train.fold_processes`, on a CPU outside
    torchrun only, spread evenly over the rounds that takes (4 jobs at most 3 at once: 2 + 2, not 3 + 1, whose
    last round leaves cores idle)."""
    config = resolve_run(params, run_name, overrides).train_config(params)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or named_device(config.device).type != "cpu":
        return 1
    rounds = -(-jobs // max(1, min(config.fold_processes, jobs)))
    return -(-jobs // rounds)


def start_method(threads: int) -> str:
    """How to start fold processes of `threads` threads each (see the module docstring)."""
    return "fork" if threads == 1 else "spawn"


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def train_folds(params: dict[str, Any], folds: dict[str, tuple[int, ...]], overrides: dict[str, Any],
                store_dir: Path, folds_file: Path, resolved: dict[str, dict[str, Any]]) -> None:
    """Train each run of `folds` (run name → its folds; the first run's settings decide how many train at
    once, see the module docstring) with `overrides`, saving `resolved[run]` beside each checkpoint."""
    jobs = [(params, name, overrides, number, store_dir, folds_file, resolved[name])
            for name, numbers in folds.items() for number in numbers]
    processes = fold_processes(params, next(iter(folds)), overrides, len(jobs))
    if processes == 1:
        for job in jobs:
            train_one_fold(*job)
        return
    threads = max(1, torch.get_num_threads() // processes)
    with ProcessPoolExecutor(processes, mp_context=get_context(start_method(threads)), initializer=_start_worker,
                             initargs=(threads,)) as pool:
        for future in [pool.submit(train_one_fold, *job) for job in jobs]:
            future.result()
