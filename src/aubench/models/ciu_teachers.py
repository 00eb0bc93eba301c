"""CIU's network and teachers (Shao et al., Acta Electronica Sinica 2024, seed 003: §3, Algorithm 1 steps 1–2).

The adaptive attention regression network all three of CIU's models share (spec §3), read top to bottom:

    face (B, 3, l, l) → two hierarchical multi-scale region layers R^hm, each followed by 2×2 max pooling
      → F (B, 8c, l/4, l/4), shared by the AU branches (the CPU profile: a frozen ResNet-18 trunk instead)
    per AU j (its own weights): 3 convs → A_j → a one-channel conv + sigmoid → attention M̂_j;
      a 4th conv on A_j → G_j; H_j = G_j ⊙ M̂_j; conv → max pool → conv → GAP → z_j (12c) → FC → logit
    L_a (eq. 12): MSE between M̂ and the predefined maps M (eqs. 10–11: Gaussians, δ cells wide, at two
      landmark-derived AU centres per AU, merged by their maximum), weighted by λ_a (eq. 16)

and the two teachers, trained by one `ciu_teachers` run per fold on the same batches (their losses share no
weight, so each trains as if alone): the imbalanced teacher p^imba on plain BCE (eq. 13) and the balanced
teacher p^ba on BCE re-weighted by the training fold's AU frequencies (eqs. 14–15). The student is
`aubench.models.ciu`; it depends on this module through the teachers' checkpoints, so editing the student
never retrains a teacher. Where the paper is silent: docs/methods/ciu.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aubench.data.aus import aus_for_layout
from aubench.data.samples import FrameSampling
from aubench.errors import ConfigError
from aubench.losses.weighted_bce import WeightedBCELoss, inverse_frequency
from aubench.models.backbones import ResNetTrunk, build_resnet, finished_weights, trunk_weights
from aubench.models.registry import Batch, Method, StepOutput, register

#: JAA-Net's 49 inner-face landmarks as iBUG-68 indices (jaw 0–16 and the inner-lip corners 60, 64 dropped):
#: brows 0–9, nose 10–18, eyes 19–30, outer lip 31–42, inner lip 43–48.
JAANET49 = tuple(range(17, 60)) + (61, 62, 63, 65, 66, 67)

#: AU centres (spec §3.3, JAA-Net's table): two (49-point index, vertical offset in eye-corner distances s)
#: per AU, a left/right pair. The y axis points down: a negative offset is above the point.
AU_CENTRES: dict[int, tuple[tuple[int, float], tuple[int, float]]] = {
    1: ((4, -1 / 2), (5, -1 / 2)),      # above the inner brow ends
    2: ((1, -1 / 3), (8, -1 / 3)),      # above the outer brows
    4: ((2, 1 / 3), (7, 1 / 3)),        # below the brow middles
    6: ((24, 1.0), (29, 1.0)),          # below the lower eyelids
    7: ((21, 0.0), (26, 0.0)),          # eyelids
    9: ((15, -1 / 2), (17, -1 / 2)),    # above the lower nose
    10: ((43, 0.0), (45, 0.0)),         # upper lip
    12: ((31, 0.0), (37, 0.0)),         # mouth corners (AU12, 14, 15 share the map)
    14: ((31, 0.0), (37, 0.0)),
    15: ((31, 0.0), (37, 0.0)),
    17: ((39, 1 / 2), (41, 1 / 2)),     # below the lower lip (AU17, 26)
    26: ((39, 1 / 2), (41, 1 / 2)),
    23: ((34, 0.0), (40, 0.0)),         # lip centres (AU23, 24, 25)
    24: ((34, 0.0), (40, 0.0)),
    25: ((34, 0.0), (40, 0.0)),
}
#: The two inner eye corners whose horizontal distance is the scale s.
SCALE_POINTS = (22, 25)


@dataclass(frozen=True)
class NetworkConfig:
    """The adaptive attention regression network shared by the teachers and the student (spec §3)."""

    unit_dim: int = 8  # c: the trunk ends with 8c channels, z_j has 12c
    grids: tuple[int, ...] = (8, 4, 2)  # the partitioned convolutions' patch grids in each R^hm layer
    attention_sigma: float = 3.0  # δ of eq. 10, in cells of the attention map (l/4 with R^hm)
    lambda_a: float = 2.0  # weight of the attention regression loss L_a (eqs. 16–17)
    trunk: str = "region_layers"  # region_layers: two R^hm layers (the paper's) | resnet18: a frozen ResNet-18
    trunk_stages: int = 2  # resnet18: its stem and this many stages (2: 128 channels at l/8)

    def __post_init__(self) -> None:
        if self.unit_dim < 1 or self.attention_sigma <= 0 or not self.grids:
            raise ConfigError("ciu.network: unit_dim must be >= 1, attention_sigma > 0 and grids non-empty")
        if self.trunk not in ("region_layers", "resnet18") or not 1 <= self.trunk_stages <= 4:
            raise ConfigError(f"ciu.network: trunk {self.trunk!r} is not region_layers or resnet18, or "
                              f"trunk_stages {self.trunk_stages} is not 1–4")


def attention_centres(landmarks: torch.Tensor, aus: tuple[int, ...]) -> torch.Tensor:
    """(B, 68, 2) landmarks → (B, N, 2, 2): each AU's two centres (x, y) in the landmarks' pixels."""
    unknown = [au for au in aus if au not in AU_CENTRES]
    if unknown:
        raise ConfigError(f"ciu: no predefined attention centre for AU {unknown} (known: {sorted(AU_CENTRES)})")
    points = landmarks[:, list(JAANET49)].float()
    scale = (points[:, SCALE_POINTS[0], 0] - points[:, SCALE_POINTS[1], 0]).abs()
    index = torch.tensor([[point for point, _ in AU_CENTRES[au]] for au in aus], device=landmarks.device)
    offset = torch.tensor([[shift for _, shift in AU_CENTRES[au]] for au in aus], device=landmarks.device)
    centres = points[:, index]  # (B, N, 2, 2)
    return torch.stack([centres[..., 0], centres[..., 1] + offset * scale[:, None, None]], -1)


def attention_maps(landmarks: torch.Tensor, aus: tuple[int, ...], image_size: int, grid: int, sigma: float
                   ) -> torch.Tensor:
    """Eqs. 10–11: (B, 68, 2) landmarks in `image_size` pixels → (B, N, grid, grid) predefined attention maps.

    Centres are scaled to the grid, rounded to the nearest cell and clipped to it (JAA-Net's convention, so
    each map peaks at exactly 1); the two Gaussians of an AU (std `sigma` cells) merge by their maximum.
    """
    cells = (attention_centres(landmarks, aus) * grid / image_size).round().clamp(0, grid - 1)  # (B, N, 2, 2)
    axis = torch.arange(grid, device=landmarks.device, dtype=cells.dtype)
    dx = (axis - cells[..., 0, None]) ** 2  # (B, N, 2, grid) over columns b
    dy = (axis - cells[..., 1, None]) ** 2  # over rows a
    squared = dy[..., :, None] + dx[..., None, :]  # (B, N, 2, grid, grid)
    return torch.exp(-squared / (2 * sigma ** 2)).amax(2)


class PartitionedConv(nn.Sequential):
    """One partitioned convolution of R^hm: the map is cut into grid × grid patches and each patch gets its
    own BatchNorm, ReLU and 3×3 convolution, padded on its own (patches never see their neighbours)."""

    def __init__(self, channels: int, out_channels: int, grid: int) -> None:
        patches = grid * grid
        super().__init__(nn.BatchNorm2d(patches * channels), nn.ReLU(inplace=True),
                         nn.Conv2d(patches * channels, patches * out_channels, 3, padding=1, groups=patches))
        self.grid = grid

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        g = self.grid
        if height % g or width % g:
            raise ConfigError(f"ciu: a {height}×{width} map does not split into a {g}×{g} patch grid")
        h, w = height // g, width // g
        patches = features.reshape(batch, channels, g, h, g, w).permute(0, 2, 4, 1, 3, 5)
        out = super().forward(patches.reshape(batch, g * g * channels, h, w))
        return out.reshape(batch, g, g, -1, h, w).permute(0, 3, 1, 4, 2, 5).reshape(batch, -1, height, width)


class RegionLayer(nn.Module):
    """R^hm (spec §3.2): a 3×3 conv to 4c′ channels P, then partitioned convs on 8×8, 4×4 and 2×2 grids in
    sequence (to 2c′, c′, c′ channels); their outputs concatenated (4c′) are added to P, then BN and ReLU."""

    def __init__(self, in_channels: int, unit: int, grids: tuple[int, ...]) -> None:
        super().__init__()
        widths = [4 * unit] + [2 * unit] + [unit] * (len(grids) - 1)
        if sum(widths[1:]) != widths[0]:
            raise ConfigError(f"ciu.network.grids: {len(grids)} partitioned convs do not add up to 4c′ channels "
                              "(R^hm has three: 2c′ + c′ + c′)")
        self.conv = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.partitioned = nn.ModuleList(PartitionedConv(widths[i], widths[i + 1], grid)
                                         for i, grid in enumerate(grids))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        plain = self.conv(images)
        outputs, features = [], plain
        for layer in self.partitioned:
            features = layer(features)
            outputs.append(features)
        return self.out(plain + torch.cat(outputs, 1))


def frozen_resnet_trunk(stages: int) -> ResNetTrunk:
    """A frozen ResNet-18 stem and its first `stages` stages (the CPU profile's stand-in for R^hm, loaded from
    another run's backbone: a trunk that starts from random weights and never trains would learn nothing)."""
    trunk = ResNetTrunk(build_resnet("resnet18"), frozen=True)
    del trunk.stages[stages:]
    trunk.out_channels = 64 * 2 ** (stages - 1)
    return trunk


def _grouped_conv(in_channels: int, out_channels: int, groups: int) -> nn.Sequential:
    """`groups` independent 3×3 conv → BN → ReLU branches, stacked along channels."""
    return nn.Sequential(nn.Conv2d(in_channels * groups, out_channels * groups, 3, padding=1, groups=groups),
                         nn.BatchNorm2d(out_channels * groups), nn.ReLU(inplace=True))


class AttentionRegressionNet(nn.Module):
    """Images (B, 3, l, l) → (AU logits (B, N), attention maps M̂ (B, N, l/4, l/4)).

    The N AU branches hold separate weights; they run as grouped convolutions (one group per AU), which
    computes exactly the N separate branches in one kernel per layer.
    """

    def __init__(self, num_aus: int, config: NetworkConfig) -> None:
        super().__init__()
        c, n = config.unit_dim, num_aus
        self.num_aus = n
        if config.trunk == "resnet18":
            self.trunk: nn.Module = frozen_resnet_trunk(config.trunk_stages)
            channels = self.trunk.out_channels
        else:
            self.trunk = nn.Sequential(RegionLayer(3, c, config.grids), nn.MaxPool2d(2),
                                       RegionLayer(4 * c, 2 * c, config.grids), nn.MaxPool2d(2))
            channels = 8 * c
        self.branch_in = nn.Sequential(nn.Conv2d(channels, 8 * c * n, 3, padding=1), nn.BatchNorm2d(8 * c * n),
                                       nn.ReLU(inplace=True))  # each branch's first conv, all reading F
        self.branch_convs = nn.Sequential(_grouped_conv(8 * c, 8 * c, n), _grouped_conv(8 * c, 8 * c, n))
        self.attention = nn.Conv2d(8 * c * n, n, 3, padding=1, groups=n)
        self.fourth = _grouped_conv(8 * c, 8 * c, n)
        self.after = nn.Sequential(_grouped_conv(8 * c, 12 * c, n), nn.MaxPool2d(2), _grouped_conv(12 * c, 12 * c, n))
        self.classifier = nn.Conv1d(12 * c * n, n, 1, groups=n)  # one FC 12c → 1 per AU

    @property
    def frozen_trunk(self) -> bool:
        """A fixed ResNet trunk (network.trunk resnet18): networks loaded from one backbone share its features."""
        return isinstance(self.trunk, ResNetTrunk)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.trunk(images))

    def heads(self, shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The AU branches on the trunk's features F → (logits, attention maps)."""
        branches = self.branch_convs(self.branch_in(shared))  # A_j, stacked
        attention = torch.sigmoid(self.attention(branches))  # M̂ (B, N, l/4, l/4)
        guided = self.fourth(branches)
        batch, channels, height, width = guided.shape
        guided = (guided.view(batch, self.num_aus, -1, height, width) * attention[:, :, None]).view_as(guided)
        pooled = self.after(guided).mean((2, 3))  # z_j, stacked: (B, N·12c)
        return self.classifier(pooled[..., None])[..., 0], attention


def attention_loss(predicted: torch.Tensor, landmarks: torch.Tensor, aus: tuple[int, ...], image_size: int,
                   sigma: float) -> torch.Tensor:
    """Eq. 12: the mean squared difference between M̂ and the predefined maps, over AUs, cells and frames."""
    target = attention_maps(landmarks, aus, image_size, predicted.shape[-1], sigma)
    return F.mse_loss(predicted.float(), target)


def dataset_aus(num_aus: int) -> tuple[int, ...]:
    """The AUs of the dataset with `num_aus` AUs (BP4D 12, DISFA 8): the attention centres are given for those."""
    matches = [aus_for_layout(layout) for layout in ("bp4d", "disfa") if len(aus_for_layout(layout)) == num_aus]
    if not matches:
        raise ConfigError(f"ciu: attention centres are defined for BP4D's 12 and DISFA's 8 AUs, not {num_aus} AUs")
    return tuple(matches[0])


def balanced_weights(au_rates: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 15 from the training fold's occurrence rates r_j = n_j/n: per-AU weights w_j = (1/r_j) / Σ_k (1/r_k)
    (they sum to 1) and positive-term weights v_j = (n − n_j)/n_j = (1 − r_j)/r_j."""
    positives = inverse_frequency(au_rates)
    inverse = 1 / torch.as_tensor(np.asarray(au_rates), dtype=torch.float32).clamp(1e-3, 1 - 1e-3)
    return inverse / inverse.sum(), positives


@dataclass(frozen=True)
class CIUTeachersConfig:
    """The `ciu_teachers` params section: the imbalanced and the balanced teacher, trained side by side."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    frame_stride: int = 1  # training frames: every n-th of each sequence
    init_from: str | None = None  # network.trunk resnet18: the finished run (same fold) whose backbone it loads

    def __post_init__(self) -> None:
        if (self.network.trunk == "resnet18") != bool(self.init_from):
            raise ConfigError("ciu_teachers: a resnet18 trunk is loaded from a finished run (set init_from), "
                              "and only such a trunk is (region_layers train from scratch)")


class TeacherPair(nn.Module):
    """The imbalanced and the balanced teacher (independent weights); as a model it predicts with p^imba."""

    def __init__(self, num_aus: int, network: NetworkConfig) -> None:
        super().__init__()
        self.imbalanced = AttentionRegressionNet(num_aus, network)
        self.balanced = AttentionRegressionNet(num_aus, network)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.imbalanced(images)[0]


class TeacherLosses(nn.Module):
    """Eq. 13 (plain BCE) for p^imba and eq. 14 (BCE weighted by eq. 15) for p^ba, each + λ_a·L_a (eq. 16)."""

    def __init__(self, network: NetworkConfig, au_rates: np.ndarray) -> None:
        super().__init__()
        self.network, self.aus = network, dataset_aus(len(au_rates))
        self.imbalanced = WeightedBCELoss(torch.ones(len(au_rates)))
        au_weights, positive_weights = balanced_weights(au_rates)
        self.balanced = WeightedBCELoss(au_weights, positive_weights=positive_weights)


def attention_term(attention: torch.Tensor, batch: Batch, aus: tuple[int, ...], network: NetworkConfig
                    ) -> torch.Tensor:
    return network.lambda_a * attention_loss(attention, batch["landmarks"], aus, batch["image"].shape[-1],
                                             network.attention_sigma)


def network_outputs(network: AttentionRegressionNet, images: torch.Tensor, shared: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The network on the images, or its heads on trunk features already computed (`shared`)."""
    return network(images) if shared is None else network.heads(shared)


def teachers_step(model: TeacherPair, loss_fn: TeacherLosses, batch: Batch) -> StepOutput:
    """Both teachers on the same batch: their losses are independent (no shared trainable weight), so the sum
    trains each as if alone. A frozen ResNet trunk, the same in both, runs once."""
    shared = model.imbalanced.trunk(batch["image"]) if model.imbalanced.frozen_trunk else None
    terms, logits = {}, None
    for name in ("balanced", "imbalanced"):  # the imbalanced teacher's scores are the run's
        logits, attention = network_outputs(getattr(model, name), batch["image"], shared)
        terms[f"{name}_bce"] = getattr(loss_fn, name)(logits.float(), batch["target"], batch["mask"])
        terms[f"{name}_attention"] = attention_term(attention, batch, loss_fn.aus, loss_fn.network)
    return StepOutput(terms, logits)


def load_trunks(model: TeacherPair, slot: str, checkpoint: Path) -> None:
    """Both teachers' frozen ResNet trunks from a finished run's backbone (its stem and first stages)."""
    weights = trunk_weights(finished_weights(checkpoint), model.imbalanced.trunk.state_dict(), partial=True)
    if weights is None:
        raise ConfigError(f"{checkpoint}: holds no ResNet-18 backbone to load ciu_teachers' trunk from")
    model.imbalanced.trunk.load_state_dict(weights)
    model.balanced.trunk.load_state_dict(weights)


def sampling(config: Any) -> FrameSampling:
    return FrameSampling(fields=("landmarks",), stride=config.frame_stride)


METHOD = register(Method(
    "ciu_teachers", CIUTeachersConfig, lambda config, num_aus: TeacherPair(num_aus, config.network),
    lambda config, au_rates: TeacherLosses(config.network, au_rates), sampling=sampling, step=teachers_step,
    load_upstream=load_trunks))
