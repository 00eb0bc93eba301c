"""Benchmark: random 16-frame clips with augmentation from the aligned store vs the baseline's training step.

Loading: `aubench.data.samples.ClipDataset` (training mode: a random window per sample, one random
`train.input_size` crop and flip per clip, labels and masks) through a shuffling `DataLoader`, timed over
`--batches` batches after one warm-up batch, for each `--workers` count. Consuming: the baseline (ResNet-18
+ per-AU head, weighted BCE, its optimiser from params.yaml) doing forward + backward + step on a batch of
the same number of frames already on the device (bf16 autocast on CUDA, as the trainer does). The ratio
is loader frames/s over training frames/s; issue #4 asks for ≥ 3 on the same machine.

    python benchmarks/loading_speed.py metrics/benchmarks/loading_speed.json --store data/aligned
    python benchmarks/loading_speed.py out.json                  # builds a store from moving photos first
    python benchmarks/loading_speed.py out.json --crop-size 256 --input-size 224   # the paper's sizes
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from aubench.align.store import AlignedStore, build_store
from aubench.align.transform import AlignConfig
from aubench.config import load_params, section
from aubench.data.samples import ClipSampling
from aubench.data.datasets import DatasetConfig, load_sequences
from aubench.eval.speed import timed_rate
from aubench.io import write_json
from aubench.landmarks.pipeline import LandmarkConfig, run_landmarks
from aubench.train.runs import method_configs
from aubench.data.samples import ClipDataset, normalise
from aubench.train.optim import build_optimizer
from aubench.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def build_photo_store(scratch: Path, crop_size: int, workers: int) -> AlignedStore:
    """A store aligned by the real pipeline from moving-photo sequences (see photo_sequences.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from photo_sequences import generate

    root = generate(scratch / "raw", tasks=2, frames=120)
    dataset = DatasetConfig(name="benchmark", layout="bp4d", root=str(root))
    records = load_sequences(dataset)
    run_landmarks(records, LandmarkConfig(workers=workers), scratch / "landmarks")
    return build_store(records, scratch / "landmarks", dataset, AlignConfig(crop_size=crop_size, workers=workers),
                       scratch / "aligned")


def loader_rate(store: AlignedStore, input_size: int, clip_length: int, clips_per_batch: int, workers: int,
                batches: int) -> dict:
    """Clips/s and frames/s of the training clip loader."""
    dataset = ClipDataset(store, tuple(store.subjects()), input_size, train=True,
                          sampling=ClipSampling(length=clip_length), seed=0)
    loader = DataLoader(dataset, batch_size=clips_per_batch, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, drop_last=True)
    clips, epoch, timed, started = 0, 0, -1, 0.0
    while timed < batches:
        dataset.set_epoch(epoch)
        for batch in loader:
            timed += 1
            if timed == 0:  # the first batch pays for worker start-up and page faults
                started = time.perf_counter()
                continue
            clips += len(batch["image"])
            if timed == batches:
                break
        epoch += 1
    seconds = time.perf_counter() - started
    return {"workers": workers, "clips_per_second": clips / seconds, "frames_per_second": clips * clip_length / seconds,
            "clips_in_store": len(dataset)}


def training_rate(params: dict, frames: int, input_size: int, num_aus: int, steps: int) -> dict:
    """Frames/s the baseline's training step consumes (forward + backward + optimiser step)."""
    method, method_config, optim = method_configs(params, "baseline")
    train = section(TrainConfig, params, "train")
    device = torch.device("cuda" if torch.cuda.is_available() and train.device in ("auto", "cuda") else
                          (train.device if train.device != "auto" else "cpu"))
    model = method.build_model(method_config, num_aus).to(device)
    loss_fn = method.build_loss(method_config, np.full(num_aus, 0.3)).to(device)
    optimizer = build_optimizer(model.parameters(), optim)
    generator = torch.Generator().manual_seed(0)
    images = normalise(torch.randint(0, 256, (frames, 3, input_size, input_size), generator=generator,
                                     dtype=torch.uint8).to(device))
    targets = torch.randint(0, 2, (frames, num_aus), generator=generator).float().to(device)
    mask = torch.ones_like(targets, dtype=torch.bool)
    autocast = torch.bfloat16 if device.type == "cuda" and train.amp else None
    model.train()

    def step() -> int:
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            loss = loss_fn(model(images).float(), targets, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return frames

    rate = timed_rate(step, steps=steps, warmup=2, device=device)
    return {"device": str(device), "frames_per_second": rate, "threads": torch.get_num_threads(),
            "autocast": str(autocast) if autocast else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="where to write the JSON results")
    parser.add_argument("--store", type=Path, help="an aligned store (default: build one from moving photos)")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--crop-size", type=int, help="store crop size when building one (default: align.crop_size)")
    parser.add_argument("--input-size", type=int, help="training crop (default: train.input_size)")
    parser.add_argument("--clip-length", type=int, default=16)
    parser.add_argument("--frames-per-batch", type=int,
                        help="frames per training step (default: train.batch_size, else baseline.optim.batch_size)")
    parser.add_argument("--workers", default="0,2", help="loader worker counts to measure, comma-separated")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    args = parser.parse_args()

    params = load_params(args.params)
    train = section(TrainConfig, params, "train")
    input_size = args.input_size or train.input_size
    frames = args.frames_per_batch or train.batch_size or method_configs(params, "baseline")[2].batch_size
    clips_per_batch = max(1, frames // args.clip_length)
    frames = clips_per_batch * args.clip_length
    with tempfile.TemporaryDirectory(prefix="aubench-loading-bench-") as scratch:
        if args.store:
            store = AlignedStore.open(args.store)
        else:
            crop = args.crop_size or section(AlignConfig, params, "align").crop_size
            store = build_photo_store(Path(scratch), crop, workers=2)
        if input_size > store.crop_size:
            raise SystemExit(f"input size {input_size} exceeds the store's crop size {store.crop_size}")
        loaders = [loader_rate(store, input_size, args.clip_length, clips_per_batch, int(workers), args.batches)
                   for workers in args.workers.split(",")]
    consumer = training_rate(params, frames, input_size, len(store.aus), args.steps)
    best = max(loaders, key=lambda result: result["frames_per_second"])
    summary = {"store": str(args.store) if args.store else "moving photos (built)", "crop_size": store.crop_size,
               "input_size": input_size, "clip_length": args.clip_length, "clips_per_batch": clips_per_batch,
               "frames_per_batch": frames, "loaders": loaders, "training": consumer,
               "ratio": best["frames_per_second"] / consumer["frames_per_second"],
               "ratio_workers": best["workers"]}
    write_json(args.out, summary)

    print(f"store {summary['store']}: crops {store.crop_size}², training input {input_size}², "
          f"{clips_per_batch} clips × {args.clip_length} frames per batch")
    header = f"{'':<30}{'clips/s':>10}{'frames/s':>11}"
    print(header)
    print("-" * len(header))
    for result in loaders:
        print(f"{'loader, ' + str(result['workers']) + ' workers':<30}{result['clips_per_second']:>10.1f}"
              f"{result['frames_per_second']:>11.1f}")
    print(f"{'baseline training step (' + consumer['device'] + ')':<30}"
          f"{consumer['frames_per_second'] / args.clip_length:>10.1f}{consumer['frames_per_second']:>11.1f}")
    print(f"ratio loader / training: {summary['ratio']:.1f}× (loader with {best['workers']} workers)")


if __name__ == "__main__":
    main()
