"""Benchmark: MDHR at the paper's configuration (ResNet-50, one 16-frame 224² clip, BP4D's 12 AUs) on the CPU:
one training step (forward, both loss terms, backward, AdamW) and inference, against a bare ResNet-50 doing the
same on the same 16 frames in the same process (the reference that absorbs the machine's speed).

    python benchmarks/mdhr_speed.py --threads 2 --out metrics/benchmarks/mdhr_speed.json

With `--authors DIR` (a checkout of the authors' code, github.com/CVI-SZU/MDHR) their model is timed beside
ours in the same process, the two alternating call by call, so that the ratio holds on a busy machine too.
Their code runs as published, with three runtime patches and no edited file: `.cuda()` returns its tensor or
module unchanged (their graph module moves its adjacency to the GPU every forward), their ResNet-50 is built
without its ImageNet checkpoint, and a stub stands in for `timm` when it is not installed (only their Swin
backbone, not built here, uses it). Their step is their `train.py`'s: the weighted asymmetric loss with their
fold-1 weights plus 0.01 × the mean cross-entropy of their four combination heads, AdamW.

Weights are random (timing does not depend on them).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision

from aubench.eval.efficiency import count_parameters
from aubench.io import write_json
from aubench.models.mdhr import BP4D_GROUPS, MDHR, MDHRConfig, MDHRLoss, combination_index, group_indices, mdhr_step

Actions = tuple[Callable[[], None], Callable[[], None]]


def alternated(actions: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each action over `repeats` rounds in which they take turns (after one warm-up call
    each), so that a change in the machine's load falls on all of them alike."""
    for action in actions.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def training_actions(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: Callable[[], torch.Tensor],
                     inputs: torch.Tensor) -> Actions:
    """A training step (`loss()` runs the model and its loss; backward; optimiser step) and an inference pass
    on `inputs` (eval mode, no autograd)."""

    def step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode():
            model(inputs)

    return step, infer


def mdhr_actions(clip: torch.Tensor) -> tuple[Callable[[], None], Callable[[], None], int]:
    """A training step and an inference pass of MDHR at the paper's configuration, and its parameter count."""
    torch.manual_seed(0)
    model = MDHR(12, MDHRConfig(pretrained=False))
    loss_fn = MDHRLoss(model.config, np.full(12, 0.25))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=5e-4)
    batch = {"image": clip, "target": (torch.rand(1, 16, 12) > 0.7).float(), "mask": torch.ones(1, 16, 12)}
    loss = lambda: sum(mdhr_step(model, loss_fn, batch).terms.values())  # noqa: E731
    return *training_actions(model, optimizer, loss, clip), count_parameters(model)


def resnet_actions(clip: torch.Tensor) -> Actions:
    """The reference: a bare torchvision ResNet-50 on the same 16 frames (BCE on 12 outputs, AdamW)."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=12)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    frames, target = clip.flatten(0, 1), (torch.rand(16, 12) > 0.7).float()
    loss = lambda: torch.nn.functional.binary_cross_entropy_with_logits(model(frames), target)  # noqa: E731
    return training_actions(model, optimizer, loss, frames)


def authors_actions(checkout: Path, clip: torch.Tensor) -> tuple[Callable[[], None], Callable[[], None], int]:
    """The authors' training step (their train.py: weighted asymmetric loss + λ = 0.01 × the mean CE of the
    four BP4D combination heads, AdamW) and inference, on CPU, and their model's parameter count."""
    model_module, loss_class = _import_authors(checkout)
    torch.manual_seed(0)
    model = model_module.MDHR(dataset="BP4D", num_classes=12, backbone="resnet", k=5)
    weights = torch.from_numpy(np.loadtxt(checkout / "data/BP4D_dataset/BP4D_train_weight_fold1.txt"))
    asymmetric, cross_entropy = loss_class(weight=weights), torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), betas=(0.9, 0.999), lr=1e-4, weight_decay=5e-4)
    labels = (torch.rand(16, 12) > 0.7).float()
    heads = [combination_index(labels, positions) for positions in group_indices(BP4D_GROUPS, 12)]

    def loss() -> torch.Tensor:
        *logits, scores = model(clip)  # up, mid, down1, down2 (our BP4D_GROUPS' order), AU scores
        combination = sum(cross_entropy(head, target) for head, target in zip(logits, heads)) / len(heads)
        return asymmetric(scores, labels) + 0.01 * combination

    return *training_actions(model, optimizer, loss, clip), count_parameters(model)


def _import_authors(checkout: Path) -> tuple[types.ModuleType, type]:
    """Their `model.model_BP4D` module and loss class, importable on a CPU-only machine without downloads."""
    if not (checkout / "model" / "model_BP4D.py").is_file():
        raise SystemExit(f"{checkout}: not a checkout of github.com/CVI-SZU/MDHR (no model/model_BP4D.py)")
    try:
        import timm  # noqa: F401
    except ImportError:  # only their Swin backbone needs it
        layers = types.ModuleType("timm.models.layers")
        layers.DropPath, layers.trunc_normal_ = torch.nn.Identity, torch.nn.init.trunc_normal_
        layers.to_2tuple = lambda value: tuple(value) if isinstance(value, (tuple, list)) else (value, value)
        timm, models = types.ModuleType("timm"), types.ModuleType("timm.models")
        timm.models, models.layers = models, layers
        sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    sys.path.insert(0, str(checkout))
    import model.model_BP4D as model_module
    import model.resnet as resnet_module
    from utils.utils import WeightedAsymmetricLoss

    model_module.resnet50 = lambda pretrained=True, **kwargs: resnet_module.resnet50(pretrained=False, **kwargs)
    return model_module, WeightedAsymmetricLoss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--authors", type=Path, help="a checkout of github.com/CVI-SZU/MDHR to time beside ours")
    parser.add_argument("--out", default="metrics/benchmarks/mdhr_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clip = torch.randn(1, 16, 3, 224, 224)
    step, infer, parameters = mdhr_actions(clip)
    bare_step, bare_infer = resnet_actions(clip)
    steps, infers = {"mdhr": step, "resnet50": bare_step}, {"mdhr": infer, "resnet50": bare_infer}
    if args.authors:
        authors_step, authors_infer, authors_parameters = authors_actions(args.authors, clip)
        steps["authors"], infers["authors"] = authors_step, authors_infer
    step_s, infer_s = alternated(steps, args.repeats), alternated(infers, args.repeats)
    result = {
        "threads": args.threads, "clip": "1 × 16 × 3 × 224²", "repeats": args.repeats, "parameters": parameters,
        "train_step_s": round(step_s["mdhr"], 3), "train_clips_per_s": round(1 / step_s["mdhr"], 4),
        "inference_frames_per_s": round(16 / infer_s["mdhr"], 2),
        "reference_resnet50_step_s": round(step_s["resnet50"], 3),
        "reference_resnet50_inference_frames_per_s": round(16 / infer_s["resnet50"], 2),
        "step_vs_resnet50": round(step_s["mdhr"] / step_s["resnet50"], 3),
        "inference_vs_resnet50": round(infer_s["mdhr"] / infer_s["resnet50"], 3),
    }
    if args.authors:
        result["authors"] = {
            "code": "github.com/CVI-SZU/MDHR", "commit": _commit(args.authors), "parameters": authors_parameters,
            "train_step_s": round(step_s["authors"], 3), "inference_frames_per_s": round(16 / infer_s["authors"], 2),
            "ours_step_over_theirs": round(step_s["mdhr"] / step_s["authors"], 3),
            "ours_inference_speedup": round(infer_s["authors"] / infer_s["mdhr"], 3),
        }
    write_json(Path(args.out), result)
    print(result)


def _commit(checkout: Path) -> str | None:
    """The checkout's commit, when it is a git work tree."""
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
