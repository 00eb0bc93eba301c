"""Benchmark: MDHR at the paper's configuration (ResNet-50, one 16-frame 224² clip, BP4D's 12 AUs) on the CPU:
one training step (forward, both loss terms, backward, AdamW) and inference, against a bare ResNet-50 doing the
same on the same 16 frames in the same process (the reference that absorbs the machine's speed).

    python benchmarks/mdhr_speed.py --threads 2 --out metrics/benchmarks/mdhr_speed.json

Weights are random (timing does not depend on them). The issue that asked for this benchmark measured the
authors' implementation (CVI-SZU/MDHR, its `.cuda()` calls patched) on a 2-core machine of this project at
about 9 s per training step and 8.7 frames/s inference; `--authors-step-s` / `--authors-fps` print ours beside
those figures (another run on another day: compare the ratios to the bare ResNet-50 as well).
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision

from aubench.eval.efficiency import count_parameters
from aubench.io import write_json
from aubench.models.mdhr import MDHR, MDHRConfig, MDHRLoss, mdhr_step


def timed(action: Callable[[], None], repeats: int) -> float:
    """Median seconds of `action` over `repeats` calls, after one warm-up call."""
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def mdhr_actions(clip: torch.Tensor) -> tuple[Callable[[], None], Callable[[], None], int]:
    """A training step and an inference pass of MDHR at the paper's configuration, and its parameter count."""
    torch.manual_seed(0)
    model = MDHR(12, MDHRConfig(pretrained=False))
    loss_fn = MDHRLoss(model.config, np.full(12, 0.25))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=5e-4)
    batch = {"image": clip, "target": (torch.rand(1, 16, 12) > 0.7).float(), "mask": torch.ones(1, 16, 12)}

    def step() -> None:
        model.train()
        terms = mdhr_step(model, loss_fn, batch).terms
        optimizer.zero_grad(set_to_none=True)
        sum(terms.values()).backward()
        optimizer.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode():
            model(clip)

    return step, infer, count_parameters(model)


def resnet_actions(clip: torch.Tensor) -> tuple[Callable[[], None], Callable[[], None]]:
    """The reference: a bare torchvision ResNet-50 on the same 16 frames (BCE on 12 outputs, AdamW)."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=12)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    frames, target = clip.flatten(0, 1), (torch.rand(16, 12) > 0.7).float()

    def step() -> None:
        model.train()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(frames), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode():
            model(frames)

    return step, infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--authors-step-s", type=float, default=9.0)
    parser.add_argument("--authors-fps", type=float, default=8.7)
    parser.add_argument("--out", default="metrics/benchmarks/mdhr_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clip = torch.randn(1, 16, 3, 224, 224)
    step, infer, parameters = mdhr_actions(clip)
    bare_step, bare_infer = resnet_actions(clip)
    seconds = {"mdhr_step": timed(step, args.repeats), "resnet50_step": timed(bare_step, args.repeats),
               "mdhr_infer": timed(infer, args.repeats), "resnet50_infer": timed(bare_infer, args.repeats)}
    result = {
        "threads": args.threads, "clip": "1 × 16 × 3 × 224²", "parameters": parameters,
        "train_step_s": round(seconds["mdhr_step"], 3), "train_clips_per_s": round(1 / seconds["mdhr_step"], 4),
        "inference_frames_per_s": round(16 / seconds["mdhr_infer"], 2),
        "reference_resnet50_step_s": round(seconds["resnet50_step"], 3),
        "reference_resnet50_inference_frames_per_s": round(16 / seconds["resnet50_infer"], 2),
        "step_vs_resnet50": round(seconds["mdhr_step"] / seconds["resnet50_step"], 3),
        "inference_vs_resnet50": round(seconds["mdhr_infer"] / seconds["resnet50_infer"], 3),
        "authors_reported": {"train_step_s": args.authors_step_s, "inference_frames_per_s": args.authors_fps},
    }
    write_json(Path(args.out), result)
    print(result)


if __name__ == "__main__":
    main()
