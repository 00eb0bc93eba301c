"""MC-SFAU pretraining (seed 001, §3): a backbone learnt from unlabeled faces with three objectives.

1. MFDC, macro facial dual-stream contrast (§3.2, eqs. 1–2): BYOL. The online stream (backbone q_θ,
   projector g_θ, predictor f_θ) sees view P1, the target stream (q_ξ, g_ξ; EMA of the online weights,
   ξ ← τξ + (1−τ)θ after every optimiser step, never a gradient) sees view P2;
   L_s = 2 − 2·cos(V_mac, V_tar).
2. MFRR, micro facial region reconstruction (§3.3, eqs. 3–5): the un-augmented image P through the same
   online backbone gives F_p; 49 landmarks p_1 (the landmark stage's 68 points minus the jaw and the
   inner-mouth corners) are refined over k iterations by a refiner reading F_p at the current points,
   L_d = Σ_m Σ_n MSE(p_m, p_{m−1}); squares of side r around p_k, each kept with probability γ, zero the
   feature-map cells they cover; a Transformer encoder–decoder rebuilds the map, L_r = MSE(F_mic, F_p).
3. MCI, macro–micro change interaction (§3.4, eq. 6): two 2-layer heads map GAP(F_mac) and GAP(F_mic)
   to D' dimensions; L_c = KL(softmax(C_mic) ‖ softmax(C_mac)).
Total (eq. 7): L_s + L_d + L_r + α·L_c, α = 0.05. Only the online backbone is kept (`trunk`): the
`mcsfau` linear probe and any method with `init_from: <this run>` load it. The choices where the paper is
silent (refiner design, mask-to-cell rule, γ granularity, head sizes, KL direction) are in
docs/methods/mcsfau.md with the switches below.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aubench.data.views import AugmentConfig, ViewsSampling
from aubench.errors import ConfigError
from aubench.models.backbones import ResNetTrunk, build_resnet
from aubench.models.blocks import mlp_head
from aubench.models.registry import Batch, Hooks, Method, StepOutput, register

#: iBUG-68 indices of the 49 inner-face landmarks (jaw 0–16 and inner-mouth corners 60, 64 dropped).
IBUG49 = tuple(range(17, 60)) + (61, 62, 63, 65, 66, 67)
REFINE_MODES = ("feature_sampled_absolute", "residual", "none")
GRANULARITIES = ("per_landmark", "per_sample", "per_batch")
MASK_RULES = ("cell_center", "area_half", "any_overlap")
KL_DIRECTIONS = ("mic_to_mac", "mac_to_mic", "symmetric")


@dataclass(frozen=True)
class ModulesConfig:
    """Table 3's switches; MCI needs MFRR's reconstruction and MFDC's macro feature."""

    mfdc: bool = True
    mfrr: bool = True
    mci: bool = True


@dataclass(frozen=True)
class MFDCConfig:
    projector_hidden: int = 4096
    out_dim: int = 256  # D
    predictor_hidden: int = 4096
    batchnorm: bool = True
    ema_tau: float = 0.99
    symmetric_loss: bool = False  # eq. 2 has one direction


@dataclass(frozen=True)
class MaskConfig:
    side_px: float = 40.0  # r, in input pixels
    prob: float = 0.6  # γ
    granularity: str = "per_landmark"
    rule: str = "cell_center"  # how a pixel square maps onto feature-map cells
    landmarks: str = "refined"  # refined (p_k) | detected (p_1)


@dataclass(frozen=True)
class MFRRConfig:
    k_iterations: int = 50
    refine_mode: str = "feature_sampled_absolute"
    refiner_hidden: int = 256
    refine_start: str = "detected"  # where p_2 reads F_p: detected (p_1) | mean_shape (the batch's mean p_1)
    ld_reduction: str = "sum"  # eq. 3 sums over m and n; `mean` divides by (k−1)·49
    mask: MaskConfig = MaskConfig()
    d_model: int = 512
    heads: int = 8
    encoder_layers: int = 6
    decoder_layers: int = 6
    feedforward: int = 2048
    dropout: float = 0.1
    recon_region: str = "all"  # all | masked_only
    detach_target: bool = True


@dataclass(frozen=True)
class MCIConfig:
    hidden: int = 512
    out_dim: int = 128  # D'
    temperature: float = 1.0
    direction: str = "mic_to_mac"


@dataclass(frozen=True)
class LossWeights:
    landmark: float = 1.0
    reconstruction: float = 1.0
    interaction: float = 0.05  # α


@dataclass(frozen=True)
class MCSFAUPretrainConfig:
    """The `mcsfau_pretrain` params section (its `optim` subsection is read separately)."""

    backbone: str = "resnet50"
    pretrained: bool = False  # ImageNet start (local torch hub cache only); the paper is silent
    feature_map: str = "layer4"  # F_p, F_mask, F_mic: layer4 (paper) or layer3 (a finer grid at small inputs)
    grid: int = 8  # feature-map side at the training input size (256 / 32)
    modules: ModulesConfig = ModulesConfig()
    mfdc: MFDCConfig = MFDCConfig()
    mfrr: MFRRConfig = MFRRConfig()
    mci: MCIConfig = MCIConfig()
    loss_weights: LossWeights = LossWeights()
    augment: AugmentConfig = AugmentConfig()
    samples_per_epoch: int | None = None

    def __post_init__(self) -> None:
        modules = self.modules
        if modules.mci and not (modules.mfrr and modules.mfdc):
            raise ConfigError("mcsfau_pretrain.modules: mci needs mfrr and mfdc (it aligns F_mic with F_mac)")
        if not (modules.mfdc or modules.mfrr):
            raise ConfigError("mcsfau_pretrain.modules: enable mfdc or mfrr (nothing to learn otherwise)")
        choices = {"feature_map": (self.feature_map, ("layer3", "layer4")),
                   "mfrr.refine_mode": (self.mfrr.refine_mode, REFINE_MODES),
                   "mfrr.ld_reduction": (self.mfrr.ld_reduction, ("sum", "mean")),
                   "mfrr.refine_start": (self.mfrr.refine_start, ("detected", "mean_shape")),
                   "mfrr.recon_region": (self.mfrr.recon_region, ("all", "masked_only")),
                   "mfrr.mask.granularity": (self.mfrr.mask.granularity, GRANULARITIES),
                   "mfrr.mask.rule": (self.mfrr.mask.rule, MASK_RULES),
                   "mfrr.mask.landmarks": (self.mfrr.mask.landmarks, ("refined", "detected")),
                   "mci.direction": (self.mci.direction, KL_DIRECTIONS)}
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"mcsfau_pretrain.{key}: {value!r} is not one of {', '.join(allowed)}")
        if not 0 <= self.mfrr.mask.prob <= 1 or self.mfrr.k_iterations < 1:
            raise ConfigError("mcsfau_pretrain.mfrr: mask.prob must lie in [0, 1] and k_iterations be >= 1")


# ---- MFDC: BYOL loss and EMA (eqs. 1–2) ----

def byol_loss(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 2, batch mean of 2 − 2·cos(online, target) (the target carries no gradient)."""
    return (2 - 2 * F.cosine_similarity(online, target.detach(), dim=-1)).mean()


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Eq. 1: ξ ← τ·ξ + (1−τ)·θ for parameters; buffers (BatchNorm statistics) are copied."""
    for target_param, online_param in zip(target.parameters(), online.parameters()):
        target_param.mul_(tau).add_(online_param.detach(), alpha=1 - tau)
    for target_buffer, online_buffer in zip(target.buffers(), online.buffers()):
        target_buffer.copy_(online_buffer)


# ---- MFRR: landmark refinement, masking, reconstruction (eqs. 3–5) ----

class LandmarkRefiner(nn.Module):
    """Reads F_p at the current 49 points and predicts new ones (it never sees the coordinates
    themselves, so it cannot copy them): Linear + landmark embedding → ReLU → Linear → ReLU → Linear(2)."""

    def __init__(self, channels: int, hidden: int, mode: str, points: int = len(IBUG49)) -> None:
        super().__init__()
        self.mode = mode
        self.read = nn.Linear(channels, hidden)
        self.embedding = nn.Parameter(torch.zeros(points, hidden))
        self.layers = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        nn.init.normal_(self.embedding, std=0.02)

    def forward(self, features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """features (B, C, H, W), points (B, P, 2) in [0, 1] (x, y) → refined points (B, P, 2)."""
        sampled = F.grid_sample(features, (2 * points - 1).unsqueeze(2).to(features.dtype), mode="bilinear",
                                padding_mode="border", align_corners=False)  # (B, C, P, 1)
        output = self.layers(self.read(sampled.squeeze(-1).transpose(1, 2)) + self.embedding)
        if self.mode == "residual":
            return points + 0.1 * torch.tanh(output)
        return torch.sigmoid(output)


def refine_landmarks(refiner: LandmarkRefiner | None, features: torch.Tensor, detected: torch.Tensor,
                     iterations: int, reduction: str, start: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3: p_m = refiner(F_p, p_{m−1}) for m = 2…k, each regressed onto the detached p_{m−1}.

    `start`: where p_2 reads F_p instead of p_1 (e.g. the mean shape: p_2 must then find the detected
    landmarks in the features). Returns p_k and L_d (Σ over m and n of the (x, y)-mean squared error, batch
    mean; `mean`: divided by the (k−1)·49 terms). k = 1 or no refiner: p_1 and 0.
    """
    points, total = detected, features.new_zeros(features.shape[0], dtype=torch.float32)
    if refiner is None or iterations < 2:
        return points, total.mean()
    for iteration in range(2, iterations + 1):
        previous = points.detach()
        points = refiner(features, start.detach() if iteration == 2 and start is not None else previous)
        total = total + ((points.float() - previous.float()) ** 2).mean(-1).sum(-1)
    loss = total.mean()
    return points, loss / ((iterations - 1) * detected.shape[1]) if reduction == "mean" else loss


def keep_squares(batch: int, points: int, prob: float, granularity: str, device: torch.device) -> torch.Tensor:
    """(B, P) bool: which landmark squares are applied (Bernoulli γ per landmark, per sample or per batch)."""
    shape = {"per_landmark": (batch, points), "per_sample": (batch, 1), "per_batch": (1, 1)}[granularity]
    return (torch.rand(shape, device=device) < prob).expand(batch, points)


def cell_mask(points_px: torch.Tensor, keep: torch.Tensor, side: float, grid: int, cell: float,
              rule: str = "cell_center") -> torch.Tensor:
    """(B, grid, grid) bool: feature-map cells covered by the kept squares of side `side` around the points.

    `cell_center`: a cell is masked when its centre lies within side/2 of a kept point on both axes.
    `any_overlap` / `area_half`: the squares [floor(x − r/2), ceil(x + r/2)) are drawn at pixel level and a
    cell is masked when any / at least half of its pixels are covered.
    """
    points_px = points_px.detach().float()
    if rule == "cell_center":
        centres = (torch.arange(grid, device=points_px.device) + 0.5) * cell
        near_x = (centres.view(1, 1, grid) - points_px[..., :1]).abs() <= side / 2  # (B, P, grid) by column
        near_y = (centres.view(1, 1, grid) - points_px[..., 1:]).abs() <= side / 2  # by row
        hits = (near_y & keep[..., None]).unsqueeze(-1) & near_x.unsqueeze(-2)  # (B, P, rows, columns)
        return hits.any(1)
    size = int(round(grid * cell))
    pixels = torch.arange(size, device=points_px.device).float()
    low, high = torch.floor(points_px - side / 2), torch.ceil(points_px + side / 2)
    inside_x = (pixels >= low[..., :1]) & (pixels < high[..., :1])  # (B, P, size)
    inside_y = (pixels >= low[..., 1:]) & (pixels < high[..., 1:])
    covered = ((inside_y & keep[..., None]).unsqueeze(-1) & inside_x.unsqueeze(-2)).any(1).float()
    share = F.adaptive_avg_pool2d(covered.unsqueeze(1), grid).squeeze(1)
    return share > 0 if rule == "any_overlap" else share >= 0.5


class FeatureReconstructor(nn.Module):
    """A classic Transformer encoder–decoder over the grid² cells of a feature map (§3.3.2):
    Linear(C → d) + learned 2-D positions; the decoder's input is the same masked tokens; Linear(d → C)."""

    def __init__(self, channels: int, grid: int, config: MFRRConfig) -> None:
        super().__init__()
        self.grid = grid
        self.embed = nn.Linear(channels, config.d_model)
        self.positions = nn.Parameter(torch.zeros(grid * grid, config.d_model))
        self.transformer = nn.Transformer(config.d_model, config.heads, config.encoder_layers,
                                          config.decoder_layers, config.feedforward, config.dropout, batch_first=True)
        self.unembed = nn.Linear(config.d_model, channels)
        nn.init.normal_(self.positions, std=0.02)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        if (height, width) != (self.grid, self.grid):
            raise ConfigError(f"mcsfau_pretrain.grid: the feature map is {height}×{width} at this input size, "
                              f"not {self.grid}×{self.grid}; set grid: {height}")
        tokens = self.embed(features.flatten(2).transpose(1, 2)) + self.positions
        rebuilt = self.unembed(self.transformer(tokens, tokens))
        return rebuilt.transpose(1, 2).reshape(batch, channels, height, width)


# ---- MCI (eq. 6) ----

def interaction_kl(micro: torch.Tensor, macro: torch.Tensor, temperature: float, direction: str) -> torch.Tensor:
    """KL(softmax(C_mic/T) ‖ softmax(C_mac/T)), batch mean (`mac_to_mic` swaps, `symmetric` averages both)."""
    log_micro = F.log_softmax(micro.float() / temperature, -1)
    log_macro = F.log_softmax(macro.float() / temperature, -1)

    def kl(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:  # KL(p ‖ q)
        return F.kl_div(q_log, p_log, reduction="batchmean", log_target=True)

    if direction == "mic_to_mac":
        return kl(log_micro, log_macro)
    if direction == "mac_to_mic":
        return kl(log_macro, log_micro)
    return (kl(log_micro, log_macro) + kl(log_macro, log_micro)) / 2


# ---- the whole pretraining network ----

def _gap(features: torch.Tensor) -> torch.Tensor:
    return features.mean((2, 3))


class MCSFAUPretraining(nn.Module):
    """Batch with `image` (P), `view1`, `view2` (normalised) and `landmarks` (B, 68, 2) input pixels
    → unweighted loss terms {mfdc: L_s, landmark: L_d, reconstruction: L_r, interaction: L_c}."""

    def __init__(self, config: MCSFAUPretrainConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = ResNetTrunk(build_resnet(config.backbone, config.pretrained))  # online q_θ: the one kept
        channels = self.trunk.out_channels
        map_channels = channels if config.feature_map == "layer4" else channels // 2
        modules, mfdc, mfrr, mci = config.modules, config.mfdc, config.mfrr, config.mci
        if modules.mfdc:
            self.projector = mlp_head(channels, mfdc.projector_hidden, mfdc.out_dim, mfdc.batchnorm)
            self.predictor = mlp_head(mfdc.out_dim, mfdc.predictor_hidden, mfdc.out_dim, mfdc.batchnorm)
            self.target_trunk = copy.deepcopy(self.trunk).requires_grad_(False)
            self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        if modules.mfrr:
            self.refiner = (LandmarkRefiner(map_channels, mfrr.refiner_hidden, mfrr.refine_mode)
                            if mfrr.refine_mode != "none" else None)
            self.reconstructor = FeatureReconstructor(map_channels, config.grid, mfrr)
        if modules.mci:
            self.macro_head = mlp_head(channels, mci.hidden, mci.out_dim)
            self.micro_head = mlp_head(map_channels, mci.hidden, mci.out_dim)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """F_p: the online backbone's layer3 or layer4 map."""
        stages = self.trunk.stages if self.config.feature_map == "layer4" else self.trunk.stages[:3]
        return stages(self.trunk.stem(images))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        macro = None
        if self.config.modules.mfdc:
            macro, terms["mfdc"] = self._contrast(batch["view1"], batch["view2"])
            if self.config.mfdc.symmetric_loss:
                terms["mfdc"] = terms["mfdc"] + self._contrast(batch["view2"], batch["view1"])[1]
        if self.config.modules.mfrr:
            micro, terms["landmark"], terms["reconstruction"] = self._reconstruct(batch["image"], batch["landmarks"])
            if self.config.modules.mci:
                mci = self.config.mci
                terms["interaction"] = interaction_kl(self.micro_head(_gap(micro)), self.macro_head(_gap(macro)),
                                                      mci.temperature, mci.direction)
        return terms

    def _contrast(self, online_view: torch.Tensor, target_view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """F_mac and L_s for one direction (the target stream runs without gradients)."""
        macro = self.trunk(online_view)
        online = self.predictor(self.projector(_gap(macro)))
        with torch.no_grad():
            target = self.target_projector(_gap(self.target_trunk(target_view)))
        return macro, byol_loss(online.float(), target.float())

    def _reconstruct(self, image: torch.Tensor, landmarks: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """F_mic, L_d and L_r from the un-augmented image and its detected landmarks."""
        mfrr, size = self.config.mfrr, image.shape[-1]
        features = self.feature_map(image)
        detected = landmarks[:, list(IBUG49)] / size
        start = detected.mean(0, keepdim=True).expand_as(detected) if mfrr.refine_start == "mean_shape" else None
        refined, landmark_loss = refine_landmarks(self.refiner, features, detected, mfrr.k_iterations,
                                                  mfrr.ld_reduction, start)
        points = (refined if mfrr.mask.landmarks == "refined" else detected).clamp(0, 1) * size
        keep = keep_squares(len(image), len(IBUG49), mfrr.mask.prob, mfrr.mask.granularity, image.device)
        mask = cell_mask(points, keep, mfrr.mask.side_px, features.shape[-1], size / features.shape[-1],
                         mfrr.mask.rule).unsqueeze(1)
        micro = self.reconstructor(features * ~mask)
        target = features.detach() if mfrr.detach_target else features
        error = (micro.float() - target.float()) ** 2
        if mfrr.recon_region == "masked_only":
            cells = mask.expand_as(error)
            return micro, landmark_loss, error[cells].mean() if cells.any() else error.sum() * 0
        return micro, landmark_loss, error.mean()


class PretrainLoss(nn.Module):
    """Eq. 7's weights on the named terms (L_s has weight 1)."""

    def __init__(self, weights: LossWeights) -> None:
        super().__init__()
        self.weights = {"mfdc": 1.0, "landmark": weights.landmark, "reconstruction": weights.reconstruction,
                        "interaction": weights.interaction}

    def forward(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: self.weights[name] * value for name, value in terms.items()}


class TargetEMA(Hooks):
    """Updates the target stream from the online one after every optimiser step (its weights are part of
    the model, so a checkpoint holds them and a resumed run continues with the same target)."""

    def __init__(self, model: MCSFAUPretraining) -> None:
        self.model = model

    def after_optimizer_step(self) -> None:
        if self.model.config.modules.mfdc:
            tau = self.model.config.mfdc.ema_tau
            ema_update(self.model.target_trunk, self.model.trunk, tau)
            ema_update(self.model.target_projector, self.model.projector, tau)


def build_model(config: MCSFAUPretrainConfig, num_aus: int) -> MCSFAUPretraining:
    return MCSFAUPretraining(config)


def build_loss(config: MCSFAUPretrainConfig, au_rates: np.ndarray) -> PretrainLoss:
    return PretrainLoss(config.loss_weights)


def pretrain_step(model: nn.Module, loss_fn: nn.Module, batch: Batch) -> StepOutput:
    return StepOutput(loss_fn(model(batch)))


def sampling(config: MCSFAUPretrainConfig) -> ViewsSampling:
    fields = ("landmarks",) if config.modules.mfrr else ()
    return ViewsSampling(fields=fields, augment=config.augment, samples_per_epoch=config.samples_per_epoch)


METHOD = register(Method("mcsfau_pretrain", MCSFAUPretrainConfig, build_model, build_loss, sampling=sampling,
                         step=pretrain_step, hooks=lambda config, model, loss_fn: TargetEMA(model),
                         upstream=lambda config: {}, predicts=False))
