"""MDHR — Multi-scale Dynamic and Hierarchical Relationship modelling (Wang et al., CVPR 2024).

The modules follow the paper's §3 in order; where the paper is silent the authors' released code decides,
and docs/methods/mdhr.md lists each such choice with the switch that selects the other reading:

    clips (B,T,3,H,W) → ResNet taps x_1…x_4 (§3.1)
      ├─► MFD (§3.2, eq. 1–5): differences of neighbouring frames per scale → step convs to x_L's grid →
      │   mean over 2k differences around each frame → per-pixel softmax weights over scales → x_motion
      └─► static projection of x_L;  G = x_static + x_motion (eq. 6), (B·T, h, w, c)
    → HSR stage 1 (§3.3, eq. 7–8): upper / middle / lower row slices of G, a transform per AU group, one
      AU feature extractor (AFE) per AU → nodes V (B·T, N, c); per-group combination heads (Aux)
    → HSR stage 2 (§3.3, eq. 9): a GAT over the N nodes, node n attending to itself and to the AUs of
      other groups that stage 1 predicts active
    → TCN (§3.4): a depthwise temporal convolution per AU → SC classifier (cosine, no sigmoid) → P (B,T,N)

Loss (eq. 10–12): the weighted asymmetric loss on P plus λ = 0.01 × the mean cross-entropy of the
combination heads. Every ablation of Tables 3–5 is a switch of `MDHRConfig`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aubench.data.aus import aus_for_layout
from aubench.data.samples import ClipSampling
from aubench.errors import ConfigError, ModelError
from aubench.losses.asymmetric import WeightedAsymmetricLoss, normalised_inverse_rates
from aubench.models.backbones import RESNETS, SWINS, ResNetTrunk, build_resnet, build_swin
from aubench.models.blocks.classifier import CosineClassifier, PerClassLinear
from aubench.models.blocks.graph import MaskedGraphAttention
from aubench.models.blocks.heads import TokenLinearBlock
from aubench.models.registry import Batch, Method, StepOutput, register

# Kernel = stride of each stage's step convolution (§3.2 eq. 2): H_l / H_L for ResNet stages 1–4.
STEP_KERNELS = (8, 4, 2, 1)
# Row slices of G in sevenths of its height (eq. 7: [0, 3h/7), [2h/7, 5h/7), [4h/7, h)); neighbours share a row.
SLICES = {"up": (0, 3), "mid": (2, 5), "low": (4, 7)}


@dataclass(frozen=True)
class AUGroup:
    """One combination head and graph region: its name, its row slice and its AUs (most significant bit first)."""

    name: str
    slice: str
    aus: tuple[int, ...]

    @property
    def classes(self) -> int:
        return 2 ** len(self.aus)


# The authors' code (§3.3 names only three regions): BP4D's seven lower-face AUs form two heads on one slice.
BP4D_GROUPS = (AUGroup("up", "up", (1, 2, 4, 7)), AUGroup("mid", "mid", (6,)),
               AUGroup("low1", "low", (12, 14, 15)), AUGroup("low2", "low", (10, 17, 23, 24)))
BP4D_ONE_LOWER_GROUP = (*BP4D_GROUPS[:2], AUGroup("low", "low", (10, 12, 14, 15, 17, 23, 24)))
DISFA_GROUPS = (AUGroup("up", "up", (1, 2, 4)), AUGroup("mid", "mid", (6, 9)), AUGroup("low", "low", (12, 25, 26)))


@dataclass(frozen=True)
class MFDConfig:
    """MFD (§3.2). `layers`: the backbone stages whose dynamics are used (Table 4); their step convolutions
    have kernel = stride = 8, 4, 2, 1 (H_l / H_L for a ResNet input that is a multiple of 32; the paper's
    "8/l" is not an integer for l = 3); `pad_to_grid`: zero-pad a difference map at the bottom and right to
    whole kernels when the input is not a multiple of 32 (false: such an input is an error); `k`: neighbours
    on each side (2k differences averaged); `fusion`: adaptive weights (AW) | sum | concat (Table 4);
    `aw_hidden`: channels of each scale's squeeze before the weight logits (the code's 16; 0 = the paper's
    single 1×1 convolution on the concatenation); `step_conv_bn_relu`: BN + ReLU after each step convolution
    (the code; the paper shows the convolution alone); `temporal_context`: clip (the code: differences stop at
    the clip's edges and count as zeros there) | video (the paper's padding, A3: each clip is loaded with k
    more frames on each side, the first / last frame repeated at a video's ends, so every frame averages its
    true neighbours' differences)."""

    enabled: bool = True
    layers: tuple[int, ...] = (1, 2, 3, 4)
    pad_to_grid: bool = False
    k: int = 5
    fusion: Literal["adaptive", "sum", "concat"] = "adaptive"
    aw_hidden: int = 16
    step_conv_bn_relu: bool = True
    temporal_context: Literal["clip", "video"] = "clip"


@dataclass(frozen=True)
class CRMConfig:
    """HSR stage 2 (§3.3, eq. 9; Table 5). `edge_mode`: cross_region_activated (node n hears the AUs of
    other regions that stage 1 predicts active) | cross_region_all | local (same region only) | full;
    `region_key`: what counts as a region — group (the code: BP4D's two lower heads are two regions) |
    slice (the paper's three); `activation_source`: aux_argmax (the code) | gt (the frames' labels: an oracle
    for debugging, at training and test time); `self_loop`: δ_nm in A = S·a + δ (the code; without it a node
    with no allowed neighbour hears nothing); edges are the entries A ≥ `mask_threshold` (A is 0, 1 or 2, so
    any value in (0, 1] selects the same edges as the code's 0.1). The GAT: `heads` (concatenated, d/heads
    wide each), `residual` (identity), `out_activation` φ (elu | relu | none), LeakyReLU slope, dropout on α."""

    enabled: bool = True
    edge_mode: Literal["cross_region_activated", "cross_region_all", "local", "full"] = "cross_region_activated"
    region_key: Literal["group", "slice"] = "group"
    activation_source: Literal["aux_argmax", "gt"] = "aux_argmax"
    self_loop: bool = True
    mask_threshold: float = 0.1
    heads: int = 1
    residual: bool = True
    out_activation: Literal["elu", "relu", "none"] = "elu"
    leaky_relu_slope: float = 0.2
    dropout: float = 0.0


@dataclass(frozen=True)
class HSRConfig:
    """HSR stage 1 (§3.3, eq. 7–8; Table 3). `afe`: per-AU extractors on their region's slice (false: on
    the whole map, Table 3's rows without AFE); `region_transform`: a token-wise block per group before the
    extractors (auto: BP4D yes, DISFA no, as the code); `aux`: the combination heads and their loss, weighted
    `aux_weight` (λ) on the `aux_reduction` (mean, as the code; or sum) of the groups' cross-entropies;
    `bp4d_one_lower_group`: one 128-class lower head instead of the code's two."""

    afe: bool = True
    region_transform: Literal["auto", "always", "never"] = "auto"
    aux: bool = True
    aux_weight: float = 0.01
    aux_reduction: Literal["mean", "sum"] = "mean"
    bp4d_one_lower_group: bool = False
    crm: CRMConfig = field(default_factory=CRMConfig)


@dataclass(frozen=True)
class TCNConfig:
    """§3.4: one depthwise temporal convolution per AU (kernel `kernel_size`, zero padding), then BN + ReLU
    (the code). `depthwise: false`: each convolution mixes the feature channels; `per_au: false`: one
    convolution shared by every AU."""

    enabled: bool = True
    kernel_size: int = 5
    depthwise: bool = True
    per_au: bool = True


@dataclass(frozen=True)
class LossConfig:
    """Eq. 10. `main`: weighted_asymmetric | weighted_bce | bce; `detach_neg_factor`: p̃ in the negative term
    carries no gradient (the code); `log_clamp_eps`: both logs are clamped at it (the code's 1e-8)."""

    main: Literal["weighted_asymmetric", "weighted_bce", "bce"] = "weighted_asymmetric"
    detach_neg_factor: bool = True
    log_clamp_eps: float = 1e-8


@dataclass(frozen=True)
class MDHRConfig:
    """The `mdhr` params section; defaults are the paper's BP4D / ResNet-50 configuration (its `optim`
    subsection is read separately). `feat_dim` is b = c, the width of G and of every AU feature (the
    code's 512). `classifier`: sc (§3.4's similarity: cosine to a prototype, no sigmoid) | linear (a per-AU
    linear score and a sigmoid). `clip_sampler`: the code draws one random window per video per epoch
    (`one_clip_per_sequence`)."""

    backbone: str = "resnet50"  # resnet18 | resnet34 | resnet50 | swin_b
    pretrained: bool = True
    init_from: str | None = None
    train_backbone: bool = True
    swin_tap: Literal["stage_inputs", "stage_outputs"] = "stage_inputs"  # the code's taps (docs/methods/mdhr.md)
    swin_drop_path: float = 0.5
    clip_length: int = 16
    clip_sampler: str = "one_clip_per_sequence"
    feat_dim: int = 512
    mfd: MFDConfig = field(default_factory=MFDConfig)
    hsr: HSRConfig = field(default_factory=HSRConfig)
    tcn: TCNConfig = field(default_factory=TCNConfig)
    classifier: Literal["sc", "linear"] = "sc"
    loss: LossConfig = field(default_factory=LossConfig)

    @property
    def context(self) -> int:
        """Frames loaded on each side of a clip for MFD's video-level padding (0: clip-local)."""
        return self.mfd.k if self.mfd.enabled and self.mfd.temporal_context == "video" else 0

    @property
    def clips(self) -> ClipSampling:
        return ClipSampling(length=self.clip_length, sampler=self.clip_sampler, context=self.context)

    def __post_init__(self) -> None:
        self.clips  # validates clip_sampler
        if self.backbone not in {**RESNETS, **SWINS}:
            raise ConfigError(f"mdhr.backbone: {self.backbone!r} is not one of {', '.join({**RESNETS, **SWINS})}")
        if self.backbone in SWINS and self.init_from:
            raise ConfigError(f"mdhr.init_from ({self.init_from!r}) copies a ResNet trunk; {self.backbone} starts "
                              "from its ImageNet weights (pretrained) or from random weights")
        if self.swin_tap not in ("stage_inputs", "stage_outputs") or not 0 <= self.swin_drop_path < 1:
            raise ConfigError("mdhr.swin_tap must be stage_inputs or stage_outputs, swin_drop_path in [0, 1)")
        if self.pretrained and self.init_from:
            raise ConfigError(f"mdhr.pretrained and mdhr.init_from ({self.init_from!r}) both set the backbone's "
                              "starting weights; choose one")
        mfd = self.mfd
        if not mfd.layers or sorted(set(mfd.layers)) != list(mfd.layers) or not set(mfd.layers) <= {1, 2, 3, 4}:
            raise ConfigError(f"mdhr.mfd.layers: {list(mfd.layers)} must be increasing backbone stages among 1–4")
        if mfd.k < 1 or mfd.aw_hidden < 0 or self.feat_dim < 1:
            raise ConfigError("mdhr: mfd.k and feat_dim must be positive and mfd.aw_hidden ≥ 0")
        if mfd.enabled and self.clip_length < 2:
            raise ConfigError("mdhr.clip_length: MFD differences neighbouring frames, so clips need ≥ 2 frames")
        if self.tcn.kernel_size < 1 or self.tcn.kernel_size % 2 == 0:
            raise ConfigError(f"mdhr.tcn.kernel_size: {self.tcn.kernel_size} must be odd (same-length output)")
        crm = self.hsr.crm
        if crm.enabled and crm.edge_mode == "cross_region_activated" and crm.activation_source == "aux_argmax" \
                and not self.hsr.aux:
            raise ConfigError("mdhr.hsr.crm.edge_mode: cross_region_activated reads the combination heads' "
                              "predictions; with hsr.aux: false use full, cross_region_all or local")
        if not 0 < crm.mask_threshold <= 1:
            raise ConfigError(f"mdhr.hsr.crm.mask_threshold: {crm.mask_threshold} must lie in (0, 1] (A's edges are 1)")
        if crm.heads < 1 or self.feat_dim % crm.heads:
            raise ConfigError(f"mdhr.hsr.crm.heads: {crm.heads} must divide feat_dim ({self.feat_dim})")
        if not 0 < self.loss.log_clamp_eps < 0.5:
            raise ConfigError(f"mdhr.loss.log_clamp_eps: {self.loss.log_clamp_eps} must lie in (0, 0.5)")


def au_groups(config: MDHRConfig, num_aus: int) -> tuple[AUGroup, ...]:
    """The dataset's groups, recognised by its AU count (BP4D 12, DISFA 8)."""
    if num_aus == len(aus_for_layout("bp4d")):
        return BP4D_ONE_LOWER_GROUP if config.hsr.bp4d_one_lower_group else BP4D_GROUPS
    if num_aus == len(aus_for_layout("disfa")):
        return DISFA_GROUPS
    raise ConfigError(f"mdhr: its AU groups are defined for BP4D (12 AUs) and DISFA (8 AUs), not {num_aus} AUs")


def group_indices(groups: tuple[AUGroup, ...], num_aus: int) -> list[list[int]]:
    """Each group's AUs as positions in the dataset's AU order."""
    order = aus_for_layout("bp4d" if num_aus == 12 else "disfa")
    return [[order.index(au) for au in group.aus] for group in groups]


def slice_rows(name: str, height: int) -> slice:
    """Rows [⌊s·h/7⌋, ⌈e·h/7⌉) of an h-row map: exactly eq. 7's rows at h = 7, and never empty below it."""
    start, end = SLICES[name]
    return slice(math.floor(start * height / 7), math.ceil(end * height / 7))


def combination_index(labels: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """A group's class index Σ_i y_{a_i} · 2^(N_g − i), first AU most significant: (..., N) → (...)."""
    bits = labels[..., positions].long()
    powers = 2 ** torch.arange(len(positions) - 1, -1, -1, device=labels.device)
    return (bits * powers).sum(-1)


def decode_bits(index: torch.Tensor, width: int) -> torch.Tensor:
    """The inverse of `combination_index`: (...) → (..., width) in {0, 1}, most significant bit first."""
    powers = 2 ** torch.arange(width - 1, -1, -1, device=index.device)
    return (index.unsqueeze(-1) // powers) % 2


class StepConv(nn.Conv2d):
    """A convolution whose stride equals its kernel, computed as one matrix product over the non-overlapping
    patches: the same weights and the same result as `nn.Conv2d`, about 3× faster on a CPU for MDHR's 8×8
    step convolution (forward and backward; benchmarks/mdhr_speed.py)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__(in_channels, out_channels, kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel_size[0]
        batch, channels, height, width = x.shape
        rows, columns = height // kernel, width // kernel
        patches = x.unfold(2, kernel, kernel).unfold(3, kernel, kernel)  # (B, C, rows, columns, k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(batch * rows * columns, channels * kernel * kernel)
        out = F.linear(patches, self.weight.reshape(self.out_channels, -1), self.bias)
        return out.view(batch, rows, columns, self.out_channels).permute(0, 3, 1, 2)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, bn_relu: bool = True) -> nn.Sequential:
    """Conv (kernel = stride, bias; weights N(0, √(2/(k²·out)))) → BN → ReLU, as the code's MFD convolutions
    (`bn_relu` false: the convolution alone)."""
    conv = StepConv(in_channels, out_channels, kernel)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (kernel * kernel * out_channels)))
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)) if bn_relu else nn.Sequential(conv)


class TappedResNet(nn.Module):
    """§3.1: a ResNet trunk whose four stage outputs x_1 … x_4 are the taps, x_L = x_4: frames (F, 3, H, W)
    → ([x_1 … x_4] as (F, C_l, H_l, W_l), x_L)."""

    def __init__(self, name: str, pretrained: bool, trainable: bool) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(build_resnet(name, pretrained), frozen=not trainable)
        expansion = self.trunk.out_channels // 512
        self.channels = tuple(width * expansion for width in (64, 128, 256, 512))

    def forward(self, frames: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        taps = self.trunk.memoised(frames, self._taps)
        return taps, taps[-1]

    def _taps(self, frames: torch.Tensor) -> list[torch.Tensor]:
        x, taps = self.trunk.stem(frames), []
        for stage in self.trunk.stages:
            x = stage(x)
            taps.append(x)
        return taps


class TappedSwin(nn.Module):
    """§3.1 with Swin-B: the authors' code taps the map entering each of the four stages (the patch
    embedding, then each patch merging: 128×56², 256×28², 512×14², 1024×7² at 224²; `stage_outputs`: the
    maps leaving each stage's blocks, of the same shapes), and x_L is the LayerNorm'd stage-4 output. So the
    4th scale's dynamics come from stage 4's input, not from x_L. Frames (F, 3, H, W) → (taps, x_L), NCHW."""

    def __init__(self, name: str, pretrained: bool, trainable: bool, tap: str, drop_path: float) -> None:
        super().__init__()
        swin = build_swin(name, pretrained, drop_path)
        self.features, self.norm, self.tap, self.frozen = swin.features, swin.norm, tap, not trainable
        embed = swin.features[0][0].out_channels
        self.channels = tuple(embed * 2 ** stage for stage in range(4))
        self.requires_grad_(trainable)

    def train(self, mode: bool = True) -> "TappedSwin":
        return super().train(mode and not self.frozen)  # a fixed extractor keeps drop-path off

    def forward(self, frames: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            x, inputs, outputs = self.features[0](frames), [], []
            for stage in range(4):
                inputs.append(x)
                x = self.features[2 * stage + 1](x)
                outputs.append(x)
                if stage < 3:
                    x = self.features[2 * stage + 2](x)  # patch merging
            taps = inputs if self.tap == "stage_inputs" else outputs
            return [tap.permute(0, 3, 1, 2) for tap in taps], self.norm(x).permute(0, 3, 1, 2)


def tapped_backbone(config: MDHRConfig) -> nn.Module:
    """The configured backbone with its four taps and x_L."""
    if config.backbone in SWINS:
        return TappedSwin(config.backbone, config.pretrained, config.train_backbone, config.swin_tap,
                          config.swin_drop_path)
    return TappedResNet(config.backbone, config.pretrained, config.train_backbone)


def temporal_differences(maps: torch.Tensor, frames: int) -> torch.Tensor:
    """Eq. 1, d^t = x^t − x^(t−1) within each clip: (B·T, C, H, W) → (B·(T−1), C, H, W)."""
    clips = maps.unflatten(0, (-1, frames))
    return (clips[:, 1:] - clips[:, :-1]).flatten(0, 1)


def temporal_average(differences: torch.Tensor, frames: int, k: int, context: bool = False) -> torch.Tensor:
    """Eq. 3: frame t's mean of the 2k differences d^(t−k+1) … d^(t+k), differences outside the clip
    counting as zeros (the divisor is always 2k, as the code): (B·(T−1), C, h, w) → (B·T, C, h, w).
    With `context` the clips hold k extra frames on each side, whose differences are real: only the central
    T − 2k frames are averaged, with no padding: (B·(T−1), C, h, w) → (B·(T − 2k), C, h, w)."""
    clips = differences.unflatten(0, (-1, frames - 1))
    batch, steps, channels, height, width = clips.shape
    series = clips.permute(0, 2, 3, 4, 1).reshape(batch, channels * height * width, steps)
    pooled = F.avg_pool1d(series, kernel_size=2 * k, stride=1, padding=0 if context else k, count_include_pad=True)
    return pooled.reshape(batch, channels, height, width, -1).permute(0, 4, 1, 2, 3).flatten(0, 1)


def central_frames(frames: torch.Tensor, length: int, context: int) -> torch.Tensor:
    """The central frames of each clip, without `context` frames on either side: (B·T, ...) → (B·(T − 2c), ...)."""
    return frames.unflatten(0, (-1, length))[:, context:length - context].flatten(0, 1)


class AdaptiveScaleWeights(nn.Module):
    """Eq. 4–5: per-pixel softmax weights over the L scales, from all scales jointly: each scale squeezed by
    a 1×1 conv to `hidden` channels (+ BN + ReLU), concatenated, a 1×1 conv to L logits (`hidden` 0: one
    1×1 conv on the concatenated maps). L maps (F, C, h, w) → weights (F, L, h, w)."""

    def __init__(self, channels: int, scales: int, hidden: int) -> None:
        super().__init__()
        self.squeeze = nn.ModuleList(_conv_bn_relu(channels, hidden, 1) for _ in range(scales)) if hidden else None
        self.logits = nn.Conv2d((hidden or channels) * scales, scales, 1)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        if self.squeeze is not None:
            maps = [squeeze(x) for squeeze, x in zip(self.squeeze, maps)]
        return torch.softmax(self.logits(torch.cat(maps, dim=1)), dim=1)


class MultiScaleDynamics(nn.Module):
    """MFD (§3.2): the motion of each frame at `layers`' scales, fused into x_motion (F, h·w, feat_dim).

    Per scale: differences (eq. 1) → step conv to x_L's grid (eq. 2, + BN + ReLU) → mean over 2k
    differences (eq. 3). Fusion: adaptive weights (eq. 4–5), a plain sum, or a channel concatenation; then a
    1×1 conv to feat_dim (+ BN + ReLU).
    """

    def __init__(self, tap_channels: tuple[int, ...], config: MDHRConfig) -> None:
        super().__init__()
        mfd, out = config.mfd, tap_channels[-1]
        self.layers, self.k, self.fusion, self.pad_to_grid = mfd.layers, mfd.k, mfd.fusion, mfd.pad_to_grid
        self.context = config.context > 0
        self.kernels = [STEP_KERNELS[layer - 1] for layer in mfd.layers]
        self.step_convs = nn.ModuleList(_conv_bn_relu(tap_channels[layer - 1], out, kernel, mfd.step_conv_bn_relu)
                                        for layer, kernel in zip(mfd.layers, self.kernels))
        scales = len(mfd.layers)
        self.weights = AdaptiveScaleWeights(out, scales, mfd.aw_hidden) if mfd.fusion == "adaptive" else None
        self.projection = _conv_bn_relu(out * (scales if mfd.fusion == "concat" else 1), config.feat_dim, 1)

    def scale_maps(self, taps: list[torch.Tensor], frames: int) -> list[torch.Tensor]:
        """d̄_l for each used scale: (B·T, C_L, h, w) (B·(T − 2k) with video context)."""
        grid = tuple(taps[-1].shape[-2:])
        maps = []
        for layer, kernel, conv in zip(self.layers, self.kernels, self.step_convs):
            differences = self.on_grid(temporal_differences(taps[layer - 1], frames), layer, kernel, grid)
            maps.append(temporal_average(conv(differences), frames, self.k, self.context))
        return maps

    def on_grid(self, differences: torch.Tensor, layer: int, kernel: int, grid: tuple[int, ...]) -> torch.Tensor:
        """The difference map, zero-padded at the bottom/right to `grid` whole kernels where allowed."""
        size = tuple(differences.shape[-2:])
        if size == tuple(kernel * cells for cells in grid):
            return differences
        if not self.pad_to_grid or any(-(-s // kernel) != cells for s, cells in zip(size, grid)):
            raise ModelError(f"mdhr: stage {layer}'s {size} map is not {kernel} × the last stage's {grid} (the input "
                             "is not a multiple of 32 px); use such an input, or set mdhr.mfd.pad_to_grid: true")
        return F.pad(differences, (0, kernel * grid[1] - size[1], 0, kernel * grid[0] - size[0]))

    def forward(self, taps: list[torch.Tensor], frames: int) -> torch.Tensor:
        maps = self.scale_maps(taps, frames)
        if self.fusion == "adaptive":
            weights = self.weights(maps)
            fused = sum(weights[:, i:i + 1] * x for i, x in enumerate(maps))
        elif self.fusion == "sum":
            fused = sum(maps)
        else:
            fused = torch.cat(maps, dim=1)
        return self.projection(fused).flatten(2).transpose(1, 2)


class LocalRelations(nn.Module):
    """HSR stage 1 (§3.3, eq. 7–8): G (F, h, w, c) → AU nodes V (F, N, c) and each group's combination logits.

    Each group takes its row slice of G (eq. 7), optionally through its own token block (the code, BP4D);
    each AU's extractor (token block + mean over tokens) reads its group's slice — or the whole map
    without AFE (Table 3) — and each group's head classifies the mean of its slice into 2^N_g combinations.
    """

    def __init__(self, groups: tuple[AUGroup, ...], positions: list[list[int]], num_aus: int, dim: int,
                 transform: bool, afe: bool, aux: bool) -> None:
        super().__init__()
        self.groups, self.afe = groups, afe
        self.group_of = [0] * num_aus
        for index, members in enumerate(positions):
            for position in members:
                self.group_of[position] = index
        self.transforms = nn.ModuleList(TokenLinearBlock(dim, dim) if transform else nn.Identity() for _ in groups)
        self.extractors = nn.ModuleList(TokenLinearBlock(dim, dim) for _ in range(num_aus))
        self.heads = nn.ModuleList(nn.Linear(dim, group.classes) for group in groups) if aux else None

    def region_tokens(self, g: torch.Tensor) -> list[torch.Tensor]:
        """Each group's slice after its transform: (F, rows·w, c)."""
        height = g.shape[1]
        return [transform(g[:, slice_rows(group.slice, height)].flatten(1, 2))
                for group, transform in zip(self.groups, self.transforms)]

    def forward(self, g: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        regions = self.region_tokens(g)
        whole = g.flatten(1, 2)
        nodes = torch.stack([extractor(regions[self.group_of[n]] if self.afe else whole).mean(1)
                             for n, extractor in enumerate(self.extractors)], dim=1)
        logits = [head(tokens.mean(1)) for head, tokens in zip(self.heads, regions)] if self.heads else []
        return nodes, logits


class CrossRegionRelations(nn.Module):
    """HSR stage 2 (§3.3, eq. 9): a GAT over the N AU nodes of each frame, with the neighbourhood of
    `edge_mode`. Activations come from the arg-max of each combination head, decoded to bits and
    detached (never the labels), at training and test time alike — unless `activation_source` is the
    `gt` oracle, which reads the frames' known positive labels instead."""

    def __init__(self, regions: list[int], group_sizes: list[int], positions: list[list[int]], dim: int,
                 config: CRMConfig) -> None:
        super().__init__()
        region = torch.tensor(regions)
        self.register_buffer("other_region", region[:, None] != region[None, :], persistent=False)
        self.positions, self.group_sizes, self.config = positions, group_sizes, config
        self.gat = MaskedGraphAttention(dim, config.leaky_relu_slope, config.dropout, config.heads, config.residual,
                                        config.out_activation)

    def activations(self, logits: list[torch.Tensor], num_aus: int) -> torch.Tensor:
        """a (F, N) in {0, 1}: the AUs each group's head predicts active."""
        active = torch.zeros(logits[0].shape[0], num_aus, dtype=torch.bool, device=logits[0].device)
        for group_logits, members, size in zip(logits, self.positions, self.group_sizes):
            active[:, members] = decode_bits(group_logits.detach().argmax(-1), size).bool()
        return active

    def active_aus(self, logits: list[torch.Tensor], num_aus: int, oracle_labels: torch.Tensor | None) -> torch.Tensor:
        """a (F, N): the decoded arg-max of the heads, or the known positive labels for the `gt` oracle."""
        if self.config.activation_source == "aux_argmax":
            return self.activations(logits, num_aus)
        if oracle_labels is None:
            raise ModelError("mdhr.hsr.crm.activation_source: gt reads the frames' labels, and none were given "
                             "(the gt oracle needs labelled frames at training and test time)")
        return oracle_labels.reshape(-1, num_aus).bool()

    def edge_strengths(self, active: torch.Tensor | None, frames: int) -> torch.Tensor:
        """A = S·a + δ (F, N, N) (the code's effective adjacency): S the edge mode's pairs (no self-pairs),
        column m multiplied by a_m (F, N) for `cross_region_activated`, δ the self-loop when `self_loop`."""
        eye = torch.eye(len(self.other_region), dtype=torch.bool, device=self.other_region.device)
        pairs = {"cross_region_activated": self.other_region, "cross_region_all": self.other_region,
                 "local": ~self.other_region & ~eye, "full": ~eye}[self.config.edge_mode]
        strengths = pairs.float().expand(frames, -1, -1)
        if active is not None:
            strengths = strengths * active[:, None, :].float()
        return strengths + eye.float() if self.config.self_loop else strengths

    def neighbourhood(self, logits: list[torch.Tensor], frames: int, num_aus: int,
                      oracle_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Allowed edges (F, N, N), row n = the nodes n attends to: A ≥ mask_threshold."""
        activated = self.config.edge_mode == "cross_region_activated"
        active = self.active_aus(logits, num_aus, oracle_labels) if activated else None
        return self.edge_strengths(active, frames) >= self.config.mask_threshold

    def forward(self, nodes: torch.Tensor, logits: list[torch.Tensor],
                oracle_labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.gat(nodes, self.neighbourhood(logits, nodes.shape[0], nodes.shape[1], oracle_labels))


class PerAUTemporalConv(nn.Module):
    """§3.4: for each AU its own depthwise Conv1d over time (one grouped convolution holding the N
    independent ones), then BatchNorm over the N AU channels and ReLU. (B, T, N, c) → (B, T, N, c).
    `depthwise` false: each AU's convolution mixes its c channels; `per_au` false: one convolution, shared."""

    def __init__(self, num_aus: int, dim: int, kernel_size: int, depthwise: bool = True, per_au: bool = True) -> None:
        super().__init__()
        width, self.per_au = (num_aus if per_au else 1) * dim, per_au
        groups = width if depthwise else width // dim
        self.conv = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2, groups=groups)
        self.norm = nn.BatchNorm1d(num_aus)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        batch, frames, aus, dim = sequences.shape
        if self.per_au:  # (B, N·c, T): AU n's channels are group n
            convolved = self.conv(sequences.flatten(2).transpose(1, 2)).transpose(1, 2)
        else:  # (B·N, c, T): every AU's sequence through the same convolution
            series = self.conv(sequences.permute(0, 2, 3, 1).reshape(batch * aus, dim, frames))
            convolved = series.view(batch, aus, dim, frames).permute(0, 3, 1, 2)
        return torch.relu(self.norm(convolved.reshape(batch * frames, aus, dim))).view(batch, frames, aus, dim)


class MDHR(nn.Module):
    """The MDHR network: clips (B, T, 3, H, W), already normalised → AU probabilities P (B, T, N) in [0, 1].
    With video context (`mfd.temporal_context: video`) clips hold T + 2k frames and P covers the central T.

    Submodules in the paper's order: `backbone`, `static_projection`, `mfd`, `local`, `cross`, `tcn`,
    `classifier`; a disabled module (Table 3) is None and its step is skipped (identity).
    """

    def __init__(self, num_aus: int, config: MDHRConfig | None = None) -> None:
        super().__init__()
        config = config or MDHRConfig()
        self.config, self.num_aus = config, num_aus
        self.groups = au_groups(config, num_aus)
        positions = group_indices(self.groups, num_aus)
        dim, hsr = config.feat_dim, config.hsr
        self.backbone = tapped_backbone(config)
        self.static_projection = TokenLinearBlock(self.backbone.channels[-1], dim)
        self.mfd = MultiScaleDynamics(self.backbone.channels, config) if config.mfd.enabled else None
        transform = hsr.region_transform == "always" or (hsr.region_transform == "auto" and num_aus == 12)
        self.local = LocalRelations(self.groups, positions, num_aus, dim, transform, hsr.afe, hsr.aux)
        region_names = [group.name if hsr.crm.region_key == "group" else group.slice for group in self.groups]
        regions = [sorted(set(region_names)).index(region_names[g]) for g in self.local.group_of]
        self.cross = (CrossRegionRelations(regions, [len(g.aus) for g in self.groups], positions, dim, hsr.crm)
                      if hsr.crm.enabled else None)
        tcn = config.tcn
        self.tcn = PerAUTemporalConv(num_aus, dim, tcn.kernel_size, tcn.depthwise, tcn.per_au) if tcn.enabled else None
        self.classifier = (CosineClassifier(num_aus, dim) if config.classifier == "sc"
                           else nn.Sequential(PerClassLinear(num_aus, dim), nn.Sigmoid()))

    def forward_intermediates(self, clips: torch.Tensor, oracle_labels: torch.Tensor | None = None
                              ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Every stage: g (B·T, h, w, c), nodes (B·T, N, c), aux_logits (one (B·T, 2^N_g) per group),
        relations (B·T, N, c), temporal (B, T, N, c) and probabilities (B, T, N). `oracle_labels` (B, T, N):
        the known positives, read only by the `gt` activation oracle."""
        context = self.config.context
        if clips.dim() != 5 or clips.shape[2] != 3 or clips.shape[1] <= 2 * context:
            raise ModelError(f"MDHR expects clips shaped (B, T, 3, H, W) with T > {2 * context} (frames of "
                             f"context on both sides), got {tuple(clips.shape)}")
        batch, loaded = clips.shape[:2]
        taps, last = self.backbone(clips.flatten(0, 1))
        last = central_frames(last, loaded, context)
        g = self.static_projection(last.flatten(2).transpose(1, 2))
        if self.mfd is not None:
            g = g + self.mfd(taps, loaded)
        g = g.unflatten(1, last.shape[-2:])
        nodes, aux_logits = self.local(g)
        relations = self.cross(nodes, aux_logits, oracle_labels) if self.cross is not None else nodes
        temporal = relations.unflatten(0, (batch, loaded - 2 * context))
        if self.tcn is not None:
            temporal = self.tcn(temporal)
        return {"g": g, "nodes": nodes, "aux_logits": aux_logits, "relations": relations, "temporal": temporal,
                "probabilities": self.classifier(temporal)}

    def forward(self, clips: torch.Tensor, intermediates: bool = False, oracle_labels: torch.Tensor | None = None):
        """P (B, T, N); with `intermediates`, every stage's output (training needs the combination logits)."""
        outputs = self.forward_intermediates(clips, oracle_labels)
        return outputs if intermediates else outputs["probabilities"]


class MDHRLoss(nn.Module):
    """Eq. 12: L = L_AU + λ · mean over groups of CE(combination logits, combination index of the labels).

    L_AU is eq. 10's weighted asymmetric loss (or weighted / plain BCE) with w_n = normalised inverse
    training rates; a frame whose group has an unknown label is left out of that group's cross-entropy.
    """

    def __init__(self, config: MDHRConfig, au_rates: np.ndarray) -> None:
        super().__init__()
        num_aus = len(au_rates)
        loss = config.loss
        weights = normalised_inverse_rates(au_rates) if loss.main != "bce" else torch.ones(num_aus)
        self.au_loss = WeightedAsymmetricLoss(weights, loss.main == "weighted_asymmetric", loss.log_clamp_eps,
                                              loss.detach_neg_factor)
        self.positions = group_indices(au_groups(config, num_aus), num_aus)
        self.aux_weight, self.aux_reduction = config.hsr.aux_weight, config.hsr.aux_reduction

    def aux_loss(self, logits: list[torch.Tensor], targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean (or sum, `aux_reduction`) over groups of each group's cross-entropy over its fully labelled
        frames."""
        targets, mask = targets.flatten(0, -2), mask.flatten(0, -2).bool()
        losses = []
        for group_logits, members in zip(logits, self.positions):
            index = combination_index(targets, members).masked_fill(~mask[:, members].all(-1), -100)
            losses.append(F.cross_entropy(group_logits.float(), index, ignore_index=-100, reduction="sum")
                          / (index >= 0).sum().clamp(min=1))
        return torch.stack(losses).mean() if self.aux_reduction == "mean" else torch.stack(losses).sum()

    def forward(self, outputs: dict, targets: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {"au": self.au_loss(outputs["probabilities"], targets, mask)}
        if outputs["aux_logits"]:
            terms["aux"] = self.aux_weight * self.aux_loss(outputs["aux_logits"], targets, mask)
        return terms


def known_positives(batch: Batch) -> torch.Tensor:
    """The frames' labelled positives (B, T, N): what the `gt` activation oracle reads (other modes ignore it)."""
    return batch["target"].bool() & batch["mask"].bool()


def mdhr_step(model: nn.Module, loss_fn: nn.Module, batch: Batch) -> StepOutput:
    """One step: the AU term and the weighted combination-head term, logged apart."""
    # through the model's forward, as DDP requires
    outputs = model(batch["image"], intermediates=True, oracle_labels=known_positives(batch))
    return StepOutput(loss_fn(outputs, batch["target"], batch["mask"]), outputs["probabilities"])


def mdhr_predict(model: nn.Module, batch: Batch) -> torch.Tensor:
    """P for a test batch (labels reach only the `gt` oracle)."""
    return model(batch["image"], oracle_labels=known_positives(batch))


def build_model(config: MDHRConfig, num_aus: int) -> MDHR:
    return MDHR(num_aus, config)


def build_loss(config: MDHRConfig, au_rates: np.ndarray) -> MDHRLoss:
    return MDHRLoss(config, au_rates)


METHOD = register(Method("mdhr", MDHRConfig, build_model, build_loss, sampling=lambda config: config.clips,
                         outputs="probabilities", step=mdhr_step, predict=mdhr_predict))
