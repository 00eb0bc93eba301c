"""LAC — Lock and Check (Huang et al., IEEE TAFFC manuscript TAFFC-2025-03-0229).

The modules follow the paper's §III in order; where the paper is silent, docs/methods/lac.md gives the
choice made and the switch that selects the other reading:

    frames (B·T, 3, H, W) → ResNet trunk → F (B·T, C, h, w)
    Lock (§III-A, eq. 1–6): y' = GAP(F)·w_cᵀ (the classifier, eq. 2) and M = cos(w_c, F), one map per AU
      from the classifier's own weights; in training only, landmark RoIs (Table I) shape F's norm (L_loc),
      M inside active / inactive AUs' RoIs (L_act) and M's local vs global mean (L_l2g)
    Check (§III-B, eq. 7–11): f_c = mean over positions of M ⊙ F → a shared projection to d → a GAT over the
      AU nodes, mixed per AU with its own feature by the confidence α = |σ(y') − 0.5| / 0.5
    → an LSTM over the clip's frames shared by every AU → per-AU linear scores y'' (B, T, N)

Training (§III-C–D): clips of t frames, one per segment of each subject's sequence (Algorithm 1, the
`segments` clip sampler), and eq. 17's total loss with the Dynamic Weighted Asymmetric loss on y' and y'',
whose weights a hook updates once per epoch and checkpoints. Every row of Tables IV–VII is a switch here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from aubench.data.aus import aus_for_layout
from aubench.data.samples import ClipSampling, FrameSampling
from aubench.errors import ConfigError, ModelError
from aubench.losses.asymmetric import WeightedAsymmetricLoss, normalised_inverse_rates
from aubench.losses.dynamic_asymmetric import DynamicWeightedAsymmetricLoss, initial_weights
from aubench.models.backbones import RESNETS, ResNetTrunk, build_resnet
from aubench.models.blocks.classifier import PerClassLinear
from aubench.models.blocks.graph import MaskedGraphAttention
from aubench.models.registry import Batch, Hooks, Method, StepOutput, register

#: The input size that Table I's RoI side (`roi.box_size_px`) is given at.
PAPER_INPUT_SIZE = 224

# Table I's AU centres (two per AU, left and right), rewritten from the paper's 98-point WFLW indices to the
# pipeline's 68-point iBUG ones (docs/methods/lac.md, "AU centres"). A centre is (points whose mean is x,
# points whose mean is y); a point listed twice weighs twice (AU17: the midpoint of a jaw midpoint and a lip point).
AU_CENTRES: dict[int, tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]] = {
    1: (((21,), (21,)), ((22,), (22,))),                        # inner brows (WFLW 37, 42)
    2: (((18,), (18,)), ((25,), (25,))),                        # outer brows (WFLW 40, 48)
    4: (((21, 27), (21,)), ((22, 27), (22,))),                  # between inner brow and nose root, brow height
    6: (((41,), (28,)), ((46,), (28,))),                        # below the outer eye corners, at nose height
    7: ((tuple(range(36, 42)),) * 2, (tuple(range(42, 48)),) * 2),   # eye centres (WFLW 60–67, 68–75)
    9: (((27,), (27,)), ((29,), (29,))),                        # nose bridge (WFLW 51, 53)
    10: (((49, 50), (49, 50)), ((52, 53), (52, 53))),           # upper lip (WFLW 77–78, 80–81)
    12: (((60,), (60,)), ((64,), (64,))),                       # inner mouth corners (WFLW 88, 92)
    14: (((60,), (60,)), ((64,), (64,))),
    15: (((60,), (60,)), ((64,), (64,))),
    17: (((7, 8, 58, 58),) * 2, ((8, 9, 56, 56),) * 2),         # chin: mid(WFLW 15, 86), mid(WFLW 17, 84)
    23: (((61, 67),) * 2, ((63, 65),) * 2),                     # lips' inner middle: mid(WFLW 89, 95), mid(91, 93)
    24: (((61, 67),) * 2, ((63, 65),) * 2),
    25: (((61, 67),) * 2, ((63, 65),) * 2),
    26: (((55,), (55,)), ((59,), (59,))),                       # lower lip (WFLW 83, 87)
}
#: Table I's face regions (the `cross_region` graph: an AU attends to itself and to the other regions' AUs).
AU_REGIONS = {"upper": (1, 2, 4, 7), "middle": (6, 9), "lower": (10, 12, 14, 15, 17, 23, 24, 25, 26)}


@dataclass(frozen=True)
class SamplerConfig:
    """§III-C, Algorithm 1 (Tables IV–VI). `temporal_sampling`: one window of `window_t` frames per segment of
    each subject's task sequences, `n_sep` segments (false: every labelled frame, image mode, Table IV row 1)."""

    temporal_sampling: bool = True
    window_t: int = 16
    n_sep: int = 12


@dataclass(frozen=True)
class RoIConfig:
    """Table I's RoIs: a square of `box_size_px` (at a 224-px input; scaled with the input) on each centre,
    clipped to the image, read by RoIAlign with `output_size`² bins (the loss's points)."""

    box_size_px: float = 40.0
    output_size: int = 3
    sampling_ratio: int = 2
    aligned: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """Lock (§III-A) and Check (§III-B) switches. `loc_head_bias`: a bias on the classifier (eq. 2 has none);
    `heatmap_type`: cosine (§III-A) | dot; `heatmap_activation` on M before it weights F (none | relu |
    sigmoid); `st_module`: the Check step (Table IV "ST"; off: y' is the prediction); `st_input_proj`: a shared
    Linear C → `st_dim` on f_c (off: the ST module works at the backbone's width C); `confidence_gating`:
    eq. 11 (off: h' = GAT(h)); `alpha_detach`: α carries no gradient; the GAT's neighbourhood, heads, LeakyReLU
    slope and output activation θ; the LSTM's layers and direction; `final_head`: per_au (U ∈ R^{N×d}) |
    shared (one vector for every AU)."""

    loc_head_bias: bool = False
    heatmap_type: Literal["cosine", "dot"] = "cosine"
    heatmap_activation: Literal["none", "relu", "sigmoid"] = "none"
    st_module: bool = True
    st_dim: int = 512
    st_input_proj: bool = True
    confidence_gating: bool = True
    alpha_detach: bool = True
    gat_adjacency: Literal["full", "cross_region"] = "full"
    gat_heads: int = 1
    gat_leaky_slope: float = 0.2
    gat_activation: Literal["elu", "relu", "none"] = "elu"
    lstm_layers: int = 1
    lstm_bidirectional: bool = False
    final_head: Literal["per_au", "shared"] = "per_au"


@dataclass(frozen=True)
class DWAConfig:
    """Eq. 13–16. β1 (`beta_diff`), β2 (`beta_dist`), δ; `init`: train_inverse_distribution (the static WA
    weights) | train_distribution_literal (the rates, mean 1); `normalize_mean_one`: both targets scaled to
    mean 1 before the momentum step; `recall_source`: final (y'', or y' without ST) | first (y')."""

    beta_diff: float = 0.9
    beta_dist: float = 0.9
    delta: float = 0.5
    init: Literal["train_inverse_distribution", "train_distribution_literal"] = "train_inverse_distribution"
    normalize_mean_one: bool = True
    recall_source: Literal["final", "first"] = "final"
    recall_threshold: float = 0.5
    recall_floor: float = 0.01
    dist_count_floor: float = 1.0


@dataclass(frozen=True)
class LossConfig:
    """Eq. 4–6, 12–17. `use_l_*`: the Lock losses (Table IV); `loc_loss_mode`: raw_mean (eq. 4 as a mean) |
    normalized (RoI norm over the map's mean norm); `l2g_sign`: +1 (a consistency loss) | −1 (eq. 6 as
    printed); `cls_loss`: bce | wa | dwa (Table VII), for y' and y'' alike; η1…η5; `asym_detach_neg_factor`:
    the factor p on negatives carries no gradient; `prob_eps`: the logs' clamp."""

    use_l_loc: bool = True
    use_l_act: bool = True
    use_l_l2g: bool = True
    loc_loss_mode: Literal["raw_mean", "normalized"] = "raw_mean"
    l2g_sign: Literal[1, -1] = 1
    cls_loss: Literal["bce", "wa", "dwa"] = "dwa"
    eta_loc: float = 0.5
    eta_act: float = 0.5
    eta_l2g: float = 0.01
    eta_cls_first: float = 0.5
    eta_cls_final: float = 1.0
    asym_detach_neg_factor: bool = True
    prob_eps: float = 1e-8
    dwa: DWAConfig = field(default_factory=DWAConfig)

    @property
    def lock(self) -> bool:
        """Whether any Lock loss needs the landmarks."""
        return self.use_l_loc or self.use_l_act or self.use_l_l2g


@dataclass(frozen=True)
class LACConfig:
    """The `lac` params section; defaults are the paper's BP4D / ResNet-50 configuration (its `optim`
    subsection is read separately). The backbone keys stand at the top, as every method's."""

    backbone: str = "resnet50"
    pretrained: bool = True
    init_from: str | None = None
    train_backbone: bool = True
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    roi: RoIConfig = field(default_factory=RoIConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    losses: LossConfig = field(default_factory=LossConfig)

    @property
    def sampling(self) -> FrameSampling:
        """Algorithm 1's clips (landmarks in the batch when a Lock loss needs them), or single frames."""
        fields = ("landmarks",) if self.losses.lock else ()
        if not self.sampler.temporal_sampling:
            return FrameSampling(fields=fields)
        return ClipSampling(length=self.sampler.window_t, sampler="segments", segments=self.sampler.n_sep,
                            fields=fields)

    def __post_init__(self) -> None:
        if self.backbone not in RESNETS:
            raise ConfigError(f"lac.backbone: {self.backbone!r} is not one of {', '.join(RESNETS)}")
        if self.pretrained and self.init_from:
            raise ConfigError(f"lac.pretrained and lac.init_from ({self.init_from!r}) both set the backbone's "
                              "starting weights; choose one")
        if self.sampler.window_t < 1 or self.sampler.n_sep < 1:
            raise ConfigError("lac.sampler.window_t and lac.sampler.n_sep must be ≥ 1")
        model, losses, dwa = self.model, self.losses, self.losses.dwa
        if model.st_module and not self.sampler.temporal_sampling:
            raise ConfigError("lac.model.st_module reads clips; set lac.sampler.temporal_sampling: true "
                              "or model.st_module: false (image mode)")
        if model.st_dim < 1 or model.lstm_layers < 1 or model.gat_heads < 1:
            raise ConfigError("lac.model.st_dim, lstm_layers and gat_heads must be ≥ 1")
        roi = self.roi
        if roi.box_size_px <= 0 or roi.output_size < 1 or roi.sampling_ratio < 1:
            raise ConfigError("lac.roi.box_size_px must be > 0, output_size and sampling_ratio ≥ 1")
        etas = (losses.eta_loc, losses.eta_act, losses.eta_l2g, losses.eta_cls_first, losses.eta_cls_final)
        if min(etas) < 0:
            raise ConfigError(f"lac.losses.eta_*: {etas} must all be ≥ 0")
        if not 0 < losses.prob_eps < 0.5:
            raise ConfigError(f"lac.losses.prob_eps: {losses.prob_eps} must lie in (0, 0.5)")
        if not (0 <= dwa.beta_diff < 1 and 0 <= dwa.beta_dist < 1 and 0 <= dwa.delta <= 1):
            raise ConfigError("lac.losses.dwa: beta_diff and beta_dist must lie in [0, 1), delta in [0, 1]")
        if not (0 < dwa.recall_threshold < 1 and 0 < dwa.recall_floor <= 1 and dwa.dist_count_floor > 0):
            raise ConfigError("lac.losses.dwa: recall_threshold must lie in (0, 1), recall_floor in (0, 1], "
                              "dist_count_floor > 0")


def dataset_aus(num_aus: int) -> tuple[int, ...]:
    """The dataset's AUs, recognised by their count (BP4D 12, DISFA 8): Table I is given for those."""
    for layout in ("bp4d", "disfa"):
        if num_aus == len(aus_for_layout(layout)):
            return tuple(aus_for_layout(layout))
    raise ConfigError(f"lac: Table I's AU centres are defined for BP4D (12 AUs) and DISFA (8 AUs), not {num_aus} AUs")


def centre_weights(aus: tuple[int, ...], points: int = 68) -> torch.Tensor:
    """Table I as weights (N, 2 centres, 2 coordinates, 68 points): centre = Σ_k weight_k · p_k per coordinate."""
    weights = torch.zeros(len(aus), 2, 2, points)
    for au_index, au in enumerate(aus):
        for side, coordinates in enumerate(AU_CENTRES[au]):
            for axis, indices in enumerate(coordinates):
                for index in indices:
                    weights[au_index, side, axis, index] += 1.0 / len(indices)
    return weights


def au_boxes(landmarks: torch.Tensor, weights: torch.Tensor, side: float, image_size: int) -> torch.Tensor:
    """Table I's RoIs: landmarks (F, 68, 2) → boxes (F, N, 2, 4) as (x1, y1, x2, y2), squares of `side` px
    centred on each AU centre and clipped to [0, image_size]."""
    centres = torch.einsum("nrak,fka->fnra", weights.to(landmarks), landmarks)
    return torch.cat([centres - side / 2, centres + side / 2], dim=-1).clamp(0, image_size)


def roi_bins(maps: torch.Tensor, boxes: torch.Tensor, spatial_scale: float, config: RoIConfig) -> torch.Tensor:
    """RoIAlign of channel k of each map over its own boxes: maps (F, K, h, w), boxes (F, K, R, 4) →
    bins (F, K, R, o·o), the RoI's points of eq. 4–6."""
    frames, channels, height, width = maps.shape
    regions = boxes.shape[2]
    owner = torch.arange(frames * channels, device=maps.device, dtype=boxes.dtype).repeat_interleave(regions)
    rows = torch.cat([owner[:, None], boxes.reshape(-1, 4)], dim=1)
    pooled = roi_align(maps.reshape(frames * channels, 1, height, width), rows, config.output_size,
                       spatial_scale, config.sampling_ratio, config.aligned)
    return pooled.view(frames, channels, regions, -1)


# --- Lock (§III-A) ----------------------------------------------------------------------------------------------

class ClassWeightHeatmaps(nn.Module):
    """Eq. 1–3: the first-stage classifier y' = GAP(F)·w_cᵀ (+ b) and its heatmaps M_i = cos(w_c[i], F_hw)
    (`heatmap_type: dot`: the dot product). The maps add no parameter beyond w_c (N, C).
    F (F, C, h, w) → y' (F, N), M (F, N, h, w)."""

    def __init__(self, channels: int, num_aus: int, bias: bool, heatmap_type: str, eps: float = 1e-8) -> None:
        super().__init__()
        self.classifier = nn.Linear(channels, num_aus, bias=bias)
        self.heatmap_type, self.eps = heatmap_type, eps

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.classifier.weight
        logits = self.classifier(features.mean((2, 3)))
        dots = torch.einsum("ic,nchw->nihw", weights, features)
        if self.heatmap_type == "dot":
            return logits, dots
        norms = weights.norm(dim=1)[None, :, None, None] * features.norm(dim=1, keepdim=True)
        return logits, dots / (norms + self.eps)


HEATMAP_ACTIVATIONS = {"none": lambda maps: maps, "relu": F.relu, "sigmoid": torch.sigmoid}


def au_specific_features(heatmaps: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """§III-B (i): f_c = GAP(M ⊙ F), without building M ⊙ F: (F, N, h, w), (F, C, h, w) → (F, N, C)."""
    return torch.einsum("nihw,nchw->nic", heatmaps, features) / (features.shape[2] * features.shape[3])


def confidence(first_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 10 on probabilities: α = |σ(y') − 0.5| / 0.5, 0 for an undecided AU, → 1 for a certain one."""
    return (torch.sigmoid(first_logits) - 0.5).abs() / 0.5


# --- Check (§III-B) ---------------------------------------------------------------------------------------------

def neighbourhood(aus: tuple[int, ...], adjacency: str) -> torch.Tensor:
    """The GAT's allowed edges (N, N): `full` (every AU, itself included, eq. 8) or `cross_region` (itself
    and the AUs of Table I's other face regions)."""
    region = torch.tensor([next(i for i, members in enumerate(AU_REGIONS.values()) if au in members) for au in aus])
    if adjacency == "full":
        return torch.ones(len(aus), len(aus), dtype=torch.bool)
    return (region[:, None] != region[None, :]) | torch.eye(len(aus), dtype=torch.bool)


class ConfidenceGatedRelations(nn.Module):
    """Eq. 7–11: h' = α ⊙ h + (1 − α) ⊙ GAT(h) over the AU nodes of each frame (`gated` false: h' = GAT(h)).
    The GAT (eq. 7–9) has one W, one a, no bias and no residual; θ = `activation`. h (F, N, d), y' (F, N) → h'."""

    def __init__(self, dim: int, allowed: torch.Tensor, config: ModelConfig) -> None:
        super().__init__()
        self.gat = MaskedGraphAttention(dim, config.gat_leaky_slope, 0.0, config.gat_heads, residual=False,
                                        activation=config.gat_activation, bias=False)
        self.register_buffer("allowed", allowed, persistent=False)
        self.gated, self.detach = config.confidence_gating, config.alpha_detach

    def forward(self, nodes: torch.Tensor, first_logits: torch.Tensor) -> torch.Tensor:
        related = self.gat(nodes, self.allowed)
        if not self.gated:
            return related
        alpha = confidence(first_logits.detach() if self.detach else first_logits).unsqueeze(-1)
        return alpha * nodes + (1 - alpha) * related


class SpatialTemporalModule(nn.Module):
    """§III-B's ST module: f_c (B·T, N, C) → projection to d → confidence-gated GAT → an LSTM over each AU's
    frames (weights shared by the AUs, a zero state per clip) → per-AU scores y'' (B, T, N)."""

    def __init__(self, channels: int, aus: tuple[int, ...], config: ModelConfig) -> None:
        super().__init__()
        width = config.st_dim if config.st_input_proj else channels
        self.projection = nn.Linear(channels, width) if config.st_input_proj else nn.Identity()
        self.relations = ConfidenceGatedRelations(width, neighbourhood(aus, config.gat_adjacency), config)
        self.temporal = nn.LSTM(width, width, config.lstm_layers, batch_first=True,
                                bidirectional=config.lstm_bidirectional)
        out_width = width * (2 if config.lstm_bidirectional else 1)
        self.head = PerClassLinear(len(aus), out_width) if config.final_head == "per_au" else nn.Linear(out_width, 1)

    def forward(self, au_features: torch.Tensor, first_logits: torch.Tensor, clips: int) -> torch.Tensor:
        nodes = self.relations(self.projection(au_features), first_logits)
        frames, aus, width = nodes.shape
        sequences = nodes.view(clips, frames // clips, aus, width).transpose(1, 2).flatten(0, 1)
        temporal, _ = self.temporal(sequences)
        temporal = temporal.view(clips, aus, frames // clips, -1).transpose(1, 2)
        scores = self.head(temporal)
        return scores if isinstance(self.head, PerClassLinear) else scores.squeeze(-1)


class LAC(nn.Module):
    """The LAC network: frames (B, 3, H, W) or clips (B, T, 3, H, W), normalised → logits of the same
    leading shape × N: y'' with the ST module, y' without (Table IV's image-mode rows).

    Submodules in the paper's order: `trunk`, `lock` (w_c, y', M), `check` (None without the ST module).
    Landmarks never enter the forward pass: the RoIs serve only the training losses (§III-A).
    """

    def __init__(self, num_aus: int, config: LACConfig | None = None) -> None:
        super().__init__()
        config = config or LACConfig()
        self.config, self.aus = config, dataset_aus(num_aus)
        self.trunk = ResNetTrunk(build_resnet(config.backbone, config.pretrained), frozen=not config.train_backbone)
        channels, model = self.trunk.out_channels, config.model
        self.lock = ClassWeightHeatmaps(channels, num_aus, model.loc_head_bias, model.heatmap_type)
        self.activation = HEATMAP_ACTIVATIONS[model.heatmap_activation]
        self.check = SpatialTemporalModule(channels, self.aus, model) if model.st_module else None

    def forward_intermediates(self, images: torch.Tensor) -> dict[str, Any]:
        """first_logits y' and final_logits (the prediction), both (B[, T], N); heatmaps M (B·T, N, h, w);
        feature_norms ‖F‖ (B·T, 1, h, w); input_size (the RoIs' pixel scale)."""
        clip = images.dim() == 5
        if images.dim() not in (4, 5) or images.shape[-3] != 3 or (self.check is not None and not clip):
            wanted = "clips (B, T, 3, H, W)" if self.check is not None else "frames (B, 3, H, W) or clips"
            raise ModelError(f"LAC expects {wanted}, got {tuple(images.shape)}")
        lead = images.shape[:-3]
        features = self.trunk(images.flatten(0, -4))
        first_logits, heatmaps = self.lock(features)
        outputs = {"first_logits": first_logits.view(*lead, -1), "heatmaps": heatmaps,
                   "feature_norms": features.norm(dim=1, keepdim=True), "input_size": images.shape[-1]}
        if self.check is None:
            outputs["final_logits"] = outputs["first_logits"]
            return outputs
        au_features = au_specific_features(self.activation(heatmaps), features)
        outputs["final_logits"] = self.check(au_features, first_logits, clips=lead[0])
        return outputs

    def forward(self, images: torch.Tensor, intermediates: bool = False):
        """The prediction's logits; with `intermediates`, what the training losses read."""
        outputs = self.forward_intermediates(images)
        return outputs if intermediates else outputs["final_logits"]


# --- Losses (eq. 4–6, 12–17) ------------------------------------------------------------------------------------

def localisation_loss(feature_norms: torch.Tensor, boxes: torch.Tensor, spatial_scale: float, config: RoIConfig,
                      mode: str = "raw_mean", eps: float = 1e-8) -> torch.Tensor:
    """Eq. 4 as a mean: L_loc = −mean RoIAlign(‖F‖) over frames, AUs, RoIs and bins (`normalized`: each
    frame's RoI mean over its map's mean norm). ‖F‖ (F, 1, h, w), boxes (F, N, R, 4)."""
    maps = feature_norms.expand(-1, boxes.shape[1], -1, -1)
    inside = roi_bins(maps, boxes, spatial_scale, config).flatten(1).mean(1)
    if mode == "normalized":
        inside = inside / (feature_norms.flatten(1).mean(1) + eps)
    return -inside.mean()


def activation_loss(region_means: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 5 as a mean: L_act = Σ m (1 − 2y) s / Σ m, s (F, N) the mean of M_i over AU i's RoIs; raising M
    inside an active AU's RoIs lowers it, inside an inactive AU's raises it; unknown labels count nothing."""
    targets, mask = targets.reshape(region_means.shape).float(), mask.reshape(region_means.shape).float()
    return (mask * (1 - 2 * targets) * region_means).sum() / mask.sum().clamp(min=1)


def local_to_global_loss(region_bins: torch.Tensor, heatmaps: torch.Tensor, sign: int = 1) -> torch.Tensor:
    """Eq. 6: sign · mean over frames of (1/2N) Σ_i Σ_r (GAP(M_i,r) − GAP(M_i))²; bins (F, N, R, o²)."""
    local = region_bins.mean(-1)
    whole = heatmaps.flatten(2).mean(-1, keepdim=True)
    return sign * ((local - whole) ** 2).sum((1, 2)).mean() / (2 * heatmaps.shape[1])


class LACLoss(nn.Module):
    """Eq. 17: L = η1 L_loc + η2 L_act + η3 L_l2g + η4 L_cls(y') + η5 L_cls(y''), each a named term (already
    weighted); a switched-off Lock loss, or y'' without the ST module (A29), has no term.

    L_cls is eq. 12 on probabilities σ(logits): `bce` (unit weights, no asymmetric factor), `wa` (the static
    normalised inverse training rates) or `dwa` (the same start, then eq. 13–15 each epoch: `LACHooks`).
    """

    def __init__(self, config: LACConfig, au_rates: np.ndarray) -> None:
        super().__init__()
        losses, dwa = config.losses, config.losses.dwa
        self.config, self.st_module = config, config.model.st_module
        self.register_buffer("centres", centre_weights(dataset_aus(len(au_rates))), persistent=False)
        if losses.cls_loss == "dwa":
            start = initial_weights(au_rates, literal=dwa.init == "train_distribution_literal")
            self.classification = DynamicWeightedAsymmetricLoss(
                start, dwa.beta_diff, dwa.beta_dist, dwa.delta, dwa.normalize_mean_one, dwa.recall_threshold,
                dwa.recall_floor, dwa.dist_count_floor, losses.prob_eps, losses.asym_detach_neg_factor)
        else:
            weights = normalised_inverse_rates(au_rates) if losses.cls_loss == "wa" else torch.ones(len(au_rates))
            self.classification = WeightedAsymmetricLoss(weights, losses.cls_loss == "wa", losses.prob_eps,
                                                         losses.asym_detach_neg_factor)

    def lock_terms(self, outputs: dict[str, Any], targets: torch.Tensor, mask: torch.Tensor,
                   landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        """η1 L_loc, η2 L_act, η3 L_l2g from the RoIs of the frames' landmarks (B[, T], 68, 2)."""
        losses, roi = self.config.losses, self.config.roi
        heatmaps, size = outputs["heatmaps"], outputs["input_size"]
        boxes = au_boxes(landmarks.reshape(-1, *landmarks.shape[-2:]).float(), self.centres,
                         roi.box_size_px * size / PAPER_INPUT_SIZE, size)
        scale = heatmaps.shape[-1] / size
        terms = {}
        if losses.use_l_loc:
            terms["localisation"] = losses.eta_loc * localisation_loss(
                outputs["feature_norms"].float(), boxes, scale, roi, losses.loc_loss_mode)
        if losses.use_l_act or losses.use_l_l2g:
            bins = roi_bins(heatmaps.float(), boxes, scale, roi)
            if losses.use_l_act:
                terms["activation"] = losses.eta_act * activation_loss(bins.mean((2, 3)), targets, mask)
            if losses.use_l_l2g:
                terms["local_to_global"] = losses.eta_l2g * local_to_global_loss(bins, heatmaps.float(),
                                                                                  losses.l2g_sign)
        return terms

    def forward(self, outputs: dict[str, Any], targets: torch.Tensor, mask: torch.Tensor,
                landmarks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        losses = self.config.losses
        terms = {}
        if losses.lock:
            if landmarks is None:
                raise ModelError("lac: the Lock losses (losses.use_l_loc / use_l_act / use_l_l2g) need the batch's "
                                 "`landmarks`; sample with the method's sampling, or switch those losses off")
            terms = self.lock_terms(outputs, targets, mask, landmarks)
        first = torch.sigmoid(outputs["first_logits"].float())
        terms["first_stage"] = losses.eta_cls_first * self.classification(first, targets, mask)
        final = first
        if self.st_module:
            final = torch.sigmoid(outputs["final_logits"].float())
            terms["final"] = losses.eta_cls_final * self.classification(final, targets, mask)
        if isinstance(self.classification, DynamicWeightedAsymmetricLoss):
            self.classification.observe(final if losses.dwa.recall_source == "final" else first, targets, mask)
        return terms


class LACHooks(Hooks):
    """The DWA weights' epoch cycle (eq. 13–15): counts cleared before each epoch, one momentum update after
    it; the weights, both momentum averages and the update count are checkpointed, so a resumed run
    continues with exactly the weights it had."""

    STATE = ("difficulty", "distribution", "au_weights", "updates")

    def __init__(self, loss: DynamicWeightedAsymmetricLoss) -> None:
        self.loss = loss

    def on_epoch_start(self, epoch: int) -> None:
        self.loss.reset_statistics()

    def on_epoch_end(self, epoch: int, terms: dict[str, float]) -> None:
        self.loss.update()

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self.loss, name).detach().cpu().clone() for name in self.STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.STATE:
            getattr(self.loss, name).copy_(state[name])


def lac_hooks(config: LACConfig, model: nn.Module, loss_fn: LACLoss) -> Hooks:
    """DWA's hooks when the classification loss is `dwa`; none otherwise."""
    classification = loss_fn.classification
    return LACHooks(classification) if isinstance(classification, DynamicWeightedAsymmetricLoss) else Hooks()


def lac_step(model: nn.Module, loss_fn: LACLoss, batch: Batch) -> StepOutput:
    """One step: eq. 17's terms, logged apart; the scores are the prediction's logits."""
    outputs = model(batch["image"], intermediates=True)  # through the model's forward, as DDP requires
    terms = loss_fn(outputs, batch["target"], batch["mask"], batch.get("landmarks"))
    return StepOutput(terms, outputs["final_logits"])


def build_model(config: LACConfig, num_aus: int) -> LAC:
    return LAC(num_aus, config)


def build_loss(config: LACConfig, au_rates: np.ndarray) -> LACLoss:
    return LACLoss(config, au_rates)


METHOD = register(Method("lac", LACConfig, build_model, build_loss, sampling=lambda config: config.sampling,
                         step=lac_step, hooks=lac_hooks))
