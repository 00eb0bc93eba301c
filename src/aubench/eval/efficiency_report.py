"""The efficiency report (metrics/efficiency.json): per method, parameters and MACs per frame at the
paper's input size, plus training samples/s and inference frames/s measured on this machine.

MACs follow thop's convention (convolutions, matrix products and affine BatchNorm), the one the papers'
figures were produced with: torchvision's ResNet-18 at 256×256 then gives STF Table 1's 2.38 G.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torchvision

from aubench.eval.efficiency import count_macs, count_parameters, per_frame_macs
from aubench.eval.speed import bare_training_rate, inference_rate
from aubench.models.registry import Method
from aubench.train.data import normalise
from aubench.train.optim import OptimConfig, build_optimizer


@dataclass(frozen=True)
class EfficiencyConfig:
    """The `efficiency` params section."""

    methods: tuple[str, ...] = ("baseline",)
    paper_input_size: int = 256
    measure_frames: int = 16
    measure_steps: int = 3


def example_input(method: Method, method_config: Any, size: int, frames: int, device: torch.device) -> torch.Tensor:
    """A normalised random input of `frames` frames: (frames, 3, S, S), or clips (frames // T, T, 3, S, S)."""
    if method.data_mode == "clips":
        length = method_config.clips.length
        shape = (max(1, frames // length), length, 3, size, size)
    else:
        shape = (frames, 3, size, size)
    generator = torch.Generator().manual_seed(0)
    return normalise(torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device))


def method_efficiency(method: Method, method_config: Any, optim: OptimConfig, num_aus: int, run_input_size: int,
                      config: EfficiencyConfig, device: torch.device) -> dict[str, Any]:
    """Size and cost of one method's model, and its measured throughput at the run's input size."""
    model = method.build_model(method_config, num_aus).to(device)
    paper_input = example_input(method, method_config, config.paper_input_size, 1, torch.device("cpu"))
    cpu_model = method.build_model(method_config, num_aus)
    count = per_frame_macs if method.data_mode == "clips" else count_macs
    macs = count(cpu_model, paper_input, include_batchnorm=True)
    images = example_input(method, method_config, run_input_size, config.measure_frames, device)
    scores = model(images)
    targets = (torch.rand(scores.shape, generator=torch.Generator().manual_seed(1)) < 0.3).long().to(device)
    loss_fn = method.build_loss(method_config, torch.full((num_aus,), 0.3).numpy()).to(device)
    frames_per_item = images.shape[1] if method.data_mode == "clips" else 1
    training = bare_training_rate(model, loss_fn, build_optimizer(model.parameters(), optim), images, targets,
                                  steps=config.measure_steps, warmup=1) * frames_per_item
    return {"parameters": count_parameters(model), "macs_per_frame": int(macs),
            "input_size": config.paper_input_size,
            "train_frames_per_s": round(training, 2), "inference_frames_per_s": round(
                inference_rate(model, images, steps=config.measure_steps, warmup=1), 2),
            "measured_at_input_size": run_input_size, "device": str(device)}


def torchvision_resnet18_reference(size: int) -> dict[str, int]:
    """ResNet-18 exactly as torchvision builds it (1000-way fc): how STF's Table 1 counts its baseline row."""
    model = torchvision.models.resnet18(weights=None)
    return {"parameters": count_parameters(model),
            "macs_per_frame": int(count_macs(model, torch.zeros(1, 3, size, size), include_batchnorm=True)),
            "input_size": size}
