"""Benchmark: the training engine's samples/s against a bare forward/backward loop, same model, same process.

Run after `make repro` (it reads the pipeline's aligned store and folds):
    python benchmarks/train_speed.py --run baseline --out metrics/benchmarks/train_speed.json
The engine's epoch includes everything a real run does (data loading from the memory-mapped store,
augmentation, LR schedule, NaN guard, per-epoch F1); the reference loop reuses one batch already in memory.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from aubench.align.store import AlignedStore
from aubench.config import load_params
from aubench.data.folds import read_fold
from aubench.eval.speed import bare_training_rate
from aubench.io import read_json, write_json
from aubench.data.samples import normalise
from aubench.train.optim import build_optimizer
from aubench.train.runs import resolve_run
from aubench.train.config import RunPaths
from aubench.train.trainer import FoldTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="baseline", help="a run of the `runs` params section (without upstream)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--folds", default="data/folds.json")
    parser.add_argument("--out", default="metrics/benchmarks/train_speed.json")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved engine/bare measurements (median)")
    args = parser.parse_args()
    params = load_params(args.params)
    run = resolve_run(params, args.run)  # the profile's sizes (params.yaml's `profile`)
    method, method_config, optim, config = run.method, run.method_config, run.optim, run.train_config(params)
    fold, rates = read_fold(read_json(Path(args.folds)), 1)
    scratch = Path("/tmp/aubench-benchmark")
    trainer = FoldTrainer(method, method_config, optim, config, AlignedStore.open(Path(args.store)), fold, rates,
                          RunPaths(scratch / "ckpt.pt", scratch / "pred.npz", scratch / "live"))
    frames_per_sample = trainer.sampling.frames_per_sample
    batch = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=trainer.sampler.batch_size)))
    images = normalise(batch["image"].to(trainer.device))
    optimizer = build_optimizer(method.trainable(trainer.model), optim)
    trainer.train_epoch(trainer.model, 0)  # warm-up epoch (allocations, page cache)
    engine_rates, bare_rates = [], []
    for repeat in range(args.repeats):  # interleaved, so load changes on the machine hit both alike
        started = time.perf_counter()
        trainer.train_epoch(trainer.model, repeat + 1)
        samples = trainer.sampler.steps * trainer.sampler.batch_size * frames_per_sample
        engine_rates.append(samples / (time.perf_counter() - started))
        bare_rates.append(frames_per_sample * bare_training_rate(
            trainer.model, trainer.loss_fn, optimizer, images, batch["target"].to(trainer.device),
            steps=trainer.sampler.steps, warmup=1, method_step=method.step))
    engine, bare = statistics.median(engine_rates), statistics.median(bare_rates)
    result = {"run": args.run, "profile": params.get("profile"), "device": str(trainer.device), "engine_samples_per_s": round(engine, 2),
              "bare_loop_samples_per_s": round(bare, 2), "engine_over_bare": round(engine / bare, 3),
              "batch_size": trainer.sampler.batch_size, "input_size": config.input_size,
              "threads": torch.get_num_threads(), "repeats": args.repeats,
              "engine_runs": [round(rate, 2) for rate in engine_rates],
              "bare_runs": [round(rate, 2) for rate in bare_rates]}
    write_json(Path(args.out), result)
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
