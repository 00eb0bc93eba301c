"""torchvision backbones as feature trunks (everything up to global pooling).

Pretrained ImageNet weights are optional and explicit: they load only from torch's local hub cache,
because machines running aubench may be offline; a missing file stops with a message saying how to
pre-seed it. `load_trunk` is the offline alternative: it starts a model's trunk from another run's
finished checkpoint (e.g. the same fold's baseline).
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

from aubench.errors import ConfigError, ModelError

RESNETS = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights"}
SWINS = {"swin_b": "Swin_B_Weights"}


def build_resnet(name: str, pretrained: bool = False) -> nn.Module:
    """A torchvision ResNet with its original 1000-way fc (callers replace or drop it)."""
    if name not in RESNETS:
        raise ConfigError(f"backbone: unknown backbone {name!r}; use one of {', '.join(RESNETS)}")
    model = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        model.load_state_dict(_cached_imagenet_weights(name))
    return model


SWIN_DROP_PATH = {"swin_b": 0.5}  # torchvision's builders fix the last block's stochastic-depth rate


def build_swin(name: str, pretrained: bool = False, drop_path: float = 0.5) -> nn.Module:
    """A torchvision Swin Transformer (its head unused by callers) whose stochastic depth rises linearly over
    its blocks to `drop_path` (torchvision's rule, rescaled from the rate its builder fixes)."""
    if name not in SWINS:
        raise ConfigError(f"backbone: unknown backbone {name!r}; use one of {', '.join(SWINS)}")
    model = getattr(torchvision.models, name)(weights=None)
    for module in model.modules():
        if isinstance(module, torchvision.ops.StochasticDepth):
            module.p *= drop_path / SWIN_DROP_PATH[name]
    if pretrained:
        model.load_state_dict(_cached_imagenet_weights(name))
    return model


def _cached_imagenet_weights(name: str) -> dict[str, torch.Tensor]:
    weights = getattr(torchvision.models, {**RESNETS, **SWINS}[name]).IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise ModelError(f"{path}: ImageNet weights for {name} are not cached and cannot be downloaded here; "
                         f"copy the file from {weights.url} to that path on a connected machine, "
                         "or set pretrained: false")
    return torch.load(path, map_location="cpu", weights_only=True)


class FeatureMemo:
    """A frozen trunk's outputs per input frame, keyed by the frame's bytes: un-augmented training frames recur
    every epoch, and a fixed backbone maps them to the same features, so each is computed once per run.

    Frames it has not seen are computed in chunks of a fixed size (the last one padded): a convolution's result
    depends on its batch size in the last bits but not on the other frames in the batch, so a frame's
    features are the same whatever batch first brought it, and a resumed run (whose memo starts empty) sees
    exactly what an uninterrupted one saw.
    """

    chunk = 16

    def __init__(self) -> None:
        self.outputs: dict[bytes, tuple[torch.Tensor, ...]] = {}
        self.computed = 0

    def __call__(self, frames: torch.Tensor, compute: Callable[[torch.Tensor], list[torch.Tensor]]
                 ) -> list[torch.Tensor]:
        """`compute(frames)`'s outputs (each (F, ...)), from the memo where a frame was seen before."""
        keys = [hashlib.blake2b(frame.cpu().numpy().tobytes(), digest_size=16).digest() for frame in frames]
        first = {key: index for index, key in reversed(list(enumerate(keys)))}
        missing = [key for key in first if key not in self.outputs]
        for start in range(0, len(missing), self.chunk):
            batch = missing[start:start + self.chunk]
            chunk = frames[[first[key] for key in batch]]
            padding = chunk[-1:].expand(self.chunk - len(batch), *chunk.shape[1:])
            outputs = compute(torch.cat([chunk, padding]))
            for row, key in enumerate(batch):
                self.outputs[key] = tuple(output[row] for output in outputs)
        self.computed += len(missing)
        return [torch.stack(parts) for parts in zip(*(self.outputs[key] for key in keys))]


class ResNetTrunk(nn.Module):
    """ResNet stem and stages 1–4: images (B, 3, H, W) → feature maps (B, C, H/32, W/32).

    `frozen`: a fixed feature extractor — no gradients, BatchNorm statistics kept (always in eval mode),
    and no activations stored for a backward pass. A frozen trunk given a `memo` (`memoise_frozen_trunks`)
    computes each distinct frame once.
    """

    def __init__(self, resnet: nn.Module, frozen: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.stages = nn.Sequential(resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.out_channels = resnet.fc.in_features
        self.frozen = frozen
        self.memo: FeatureMemo | None = None
        self.requires_grad_(not frozen)
        self.train()  # a frozen trunk is in eval mode from the start (its BatchNorm statistics fixed)

    def train(self, mode: bool = True) -> "ResNetTrunk":
        return super().train(mode and not self.frozen)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.memoised(images, lambda frames: [self.stages(self.stem(frames))])[0]

    def memoised(self, images: torch.Tensor, compute: Callable[[torch.Tensor], list[torch.Tensor]]
                 ) -> list[torch.Tensor]:
        """`compute(images)` (this trunk's outputs of any kind), through the memo when it has one."""
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            return compute(images) if self.memo is None else self.memo(images, compute)


def memoise_frozen_trunks(model: nn.Module) -> int:
    """Give every frozen ResNet trunk of `model` a fresh `FeatureMemo`; returns how many got one. Only for
    inputs that recur (training without augmentation): otherwise the memo holds every frame for nothing."""
    trunks = [module for module in model.modules() if isinstance(module, ResNetTrunk) and module.frozen]
    for trunk in trunks:
        trunk.memo = FeatureMemo()
    return len(trunks)


def frozen_trunk_keys(model: nn.Module) -> set[str]:
    """`model.state_dict()` keys of its frozen ResNet trunks: fixed for a whole run, since a trunk is frozen
    as built (random weights from the seed, or its upstream run's, loaded before training)."""
    return {f"{name}.{key}" for name, module in model.named_modules()
            if isinstance(module, ResNetTrunk) and module.frozen for key in module.state_dict()}


def load_trunk(model: nn.Module, checkpoint: Path) -> None:
    """Copy the ResNet trunk of a finished training checkpoint into `model`'s (only) `ResNetTrunk`.

    The source may be any method's model: its trunk is found by key names, whatever module holds it.
    """
    target = _only_trunk(model)
    weights = trunk_weights(finished_weights(checkpoint), target.state_dict())
    if weights is None:
        raise ConfigError(f"{checkpoint}: holds no backbone matching this model's ({type(target).__name__} with "
                          f"{len(target.state_dict())} tensors); are both runs the same backbone?")
    target.load_state_dict(weights)


def finished_weights(checkpoint: Path, what: str = "backbone") -> dict[str, torch.Tensor]:
    """The model weights of a finished training checkpoint, which another run starts its `what` from."""
    if not checkpoint.is_file():
        raise ConfigError(f"{checkpoint}: no checkpoint to initialise the {what} from; "
                          "train that run on this fold first")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if not state.get("finished"):
        raise ConfigError(f"{checkpoint}: that run has not finished training; finish it before initialising "
                          f"another model's {what} from it")
    return state["model"]


def trunk_weights(state: dict[str, torch.Tensor], wanted: dict[str, torch.Tensor], partial: bool = False
                  ) -> dict[str, torch.Tensor] | None:
    """The tensors of `wanted` (a trunk's state dict) from a ResNet trunk in `state` with the same names and
    shapes: exactly that trunk's, or with `partial` the stem and first stages a shorter trunk keeps (a
    ResNet-34's layer 1 holds a ResNet-18's too, so only `partial` accepts extra tensors). None if none fits."""
    for prefix in _trunk_prefixes(state):
        source = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        fits = all(key in source and source[key].shape == value.shape for key, value in wanted.items())
        if fits and (partial or source.keys() == wanted.keys()):
            return {key: source[key] for key in wanted}
    return None


def _only_trunk(model: nn.Module) -> ResNetTrunk:
    trunks = [module for module in model.modules() if isinstance(module, ResNetTrunk)]
    if len(trunks) != 1:
        raise ModelError(f"{type(model).__name__}: expected one ResNet trunk to initialise, found {len(trunks)}")
    return trunks[0]


def _trunk_prefixes(state: dict[str, torch.Tensor]) -> list[str]:
    """Candidate module prefixes of a trunk in a state dict: whatever precedes `stem.0.weight`. Where a model
    holds several (a pretraining's online `trunk` and its EMA `target_trunk`), a module named `trunk` is the
    one other runs start from, whatever the order of the keys."""
    prefixes = [key[:-len("stem.0.weight")] for key in state if key.endswith("stem.0.weight")]
    return sorted(prefixes, key=lambda prefix: prefix.rstrip(".").rpartition(".")[2] != "trunk")
