"""torchvision backbones as feature trunks (everything up to global pooling).

Pretrained ImageNet weights are optional and explicit: they load only from torch's local hub cache,
because machines running aubench may be offline; a missing file stops with a message saying how to
pre-seed it.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from aubench.errors import ConfigError, ModelError

RESNETS = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights"}


def build_resnet(name: str, pretrained: bool = False) -> nn.Module:
    """A torchvision ResNet with its original 1000-way fc (callers replace or drop it)."""
    if name not in RESNETS:
        raise ConfigError(f"backbone: unknown backbone {name!r}; use one of {', '.join(RESNETS)}")
    model = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        model.load_state_dict(_cached_imagenet_weights(name))
    return model


def _cached_imagenet_weights(name: str) -> dict[str, torch.Tensor]:
    weights = getattr(torchvision.models, RESNETS[name]).IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise ModelError(f"{path}: ImageNet weights for {name} are not cached and cannot be downloaded here; "
                         f"copy the file from {weights.url} to that path on a connected machine, "
                         "or set pretrained: false")
    return torch.load(path, map_location="cpu", weights_only=True)


class ResNetTrunk(nn.Module):
    """ResNet stem and stages 1–4: images (B, 3, H, W) → feature maps (B, C, H/32, W/32)."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.stages = nn.Sequential(resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.out_channels = resnet.fc.in_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(images))
