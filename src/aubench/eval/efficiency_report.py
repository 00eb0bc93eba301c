"""The efficiency report (metrics/efficiency.json): per method, parameters and MACs per frame at the
paper's input size, plus training samples/s and inference frames/s measured on this machine.

MACs follow thop's convention (convolutions, matrix products and affine BatchNorm), the one the papers'
figures were produced with: torchvision's ResNet-18 at 256×256 then gives STF Table 1's 2.38 G.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torchvision

from aubench.eval.efficiency import count_macs, count_parameters
from aubench.eval.speed import bare_training_rate, inference_rate
from aubench.models.registry import Method

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class EfficiencyConfig:
    """The `efficiency` params section."""

    paper_input_size: int = 256
    measure_frames: int = 16
    measure_steps: int = 3


def without_weights(config: Any) -> Any:
    """`config` with `pretrained: false` where it has that switch: counting needs no weights (which may not
    be on this machine)."""
    if dataclasses.is_dataclass(config) and any(field.name == "pretrained" for field in dataclasses.fields(config)):
        return dataclasses.replace(config, pretrained=False)
    return config


def model_cost(method: Method, method_config: Any, num_aus: int, input_size: int = 256) -> tuple[int, int]:
    """Parameters and MACs per frame of a method's model at `input_size`² (one place for every report),
    counted on the meta device (shapes only: a ResNet-50 on 16-frame clips costs no compute) and without
    pretrained weights."""
    method_config = without_weights(method_config)
    with torch.device("meta"):
        model = method.build_model(method_config, num_aus)
    sampling = method.sampling(method_config)
    example = sampling.example_input(input_size, sampling.frames_per_sample, torch.device("meta"))
    # one sample: MACs per frame it predicts (a clip's context frames are part of its cost)
    return count_parameters(model), int(count_macs(model, example, include_batchnorm=True) / sampling.frames_per_sample)


def method_efficiency(method: Method, method_config: Any, make_optimizer: OptimizerFactory, num_aus: int,
                      run_input_size: int, config: EfficiencyConfig, device: torch.device) -> dict[str, Any]:
    """Size and cost of one method's model, and its measured throughput at the run's input size."""
    parameters, macs = model_cost(method, method_config, num_aus, config.paper_input_size)
    model = method.build_model(method_config, num_aus).to(device)
    sampling = method.sampling(method_config)
    images = sampling.example_input(run_input_size, config.measure_frames, device)
    scores = model(images)
    targets = (torch.rand(scores.shape, generator=torch.Generator().manual_seed(1)) < 0.3).long().to(device)
    loss_fn = method.build_loss(method_config, torch.full((num_aus,), 0.3).numpy()).to(device)
    training = bare_training_rate(model, loss_fn, make_optimizer(method.trainable(model)), images, targets,
                                  steps=config.measure_steps, warmup=1, method_step=method.step,
                                  fields=sampling.example_fields(images))
    training *= sampling.frames_per_sample
    return {"parameters": parameters, "macs_per_frame": macs, "input_size": config.paper_input_size,
            "train_frames_per_s": round(training, 2), "inference_frames_per_s": round(
                inference_rate(model, images, steps=config.measure_steps, warmup=1), 2),
            "measured_at_input_size": run_input_size, "device": str(device)}


def torchvision_resnet18_reference(size: int) -> dict[str, int]:
    """ResNet-18 exactly as torchvision builds it (1000-way fc): how STF's Table 1 counts its baseline row."""
    model = torchvision.models.resnet18(weights=None)
    return {"parameters": count_parameters(model),
            "macs_per_frame": int(count_macs(model, torch.zeros(1, 3, size, size), include_batchnorm=True)),
            "input_size": size}
