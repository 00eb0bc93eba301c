"""STF — Spatio-Temporal Fusion network (Huang & Wang, J. Image and Graphics, DOI 10.11834/jig.250503).

The modules below follow the paper's order (section numbers are the paper's); the choices made where the
paper is silent or ambiguous, and the switch for each, are listed in docs/methods/stf.md:

    clips (B,T,3,H,W) → Backbone (§1.2) → AUProjection (§1.3) → x_linear (B,T,N,d)
        ├─► SRM, eq. 1–2 (§1.3) → x_space (B,T,N,d) ─┐
        └─► TRM, eq. 3   (§1.4) → x_time  (B,T,N,d) ─┴─► SFF, eq. 4 (§1.5) → F_ST (B,T,N,d)
                                                                   → ACM, eq. 5 (§1.6) → Ŷ (B,T,N)

SRM and TRM both read x_linear (they run in parallel). Ŷ is a cosine score in [0, 1] used directly
as the probability; the loss is the weighted BCE of eq. 6 on probabilities. Ablation switches follow
§2.3 (Table 1): a disabled SRM/TRM passes x_linear through unchanged (identity), a disabled SFF is the sum
x_space + x_time. The eq. 7 learning-rate schedule belongs to the training engine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aubench.data.samples import ClipSampling
from aubench.errors import ConfigError, ModelError
from aubench.losses.weighted_bce import WeightedBCELoss, stf_au_weights
from aubench.models.backbones import RESNETS, ResNetTrunk, build_resnet
from aubench.models.blocks.classifier import CosineClassifier
from aubench.models.blocks.graph import BN_AXES, TOPK_IMPLS, TopKGraphLayer
from aubench.models.blocks.temporal import (
    POSITIONAL_ENCODINGS,
    TemporalTransformer,
    forward_difference,
    restore_length_pool,
)
from aubench.models.registry import Method, register

_CHOICES = {
    "au_proj_type": ("linear", "linear_bn_relu"),
    "au_proj_apply_on": ("tokens", "pooled"),
    "topk_impl": TOPK_IMPLS,
    "bn_axis": BN_AXES,
    "trm_variant": ("gnn", "transformer"),
    "transformer_positional_encoding": POSITIONAL_ENCODINGS,
    "sff_gate_target": ("split", "input"),
    "ablation_replacement": ("identity", "linear"),
}


@dataclass(frozen=True)
class STFConfig:
    """The `stf` params section: every model constant and switch, defaulting to the paper's reading.

    Where the paper is silent or ambiguous the default and its alternative are explained in
    docs/methods/stf.md; section, equation and table numbers below are the paper's.

    Backbone and projections (§1.2–1.3): `backbone`, `pretrained` (ImageNet weights from the local
    torch hub cache only; off by default because machines are offline), `init_from` (the offline
    stand-in: start the backbone from this run's finished checkpoint on the same fold, e.g. `baseline`,
    which saw only that fold's training subjects; the engine loads it), `train_backbone` (false: the
    backbone is a fixed feature extractor and only STF's own modules learn), `clip_length` (T) and
    `clip_sampler` (how training clips are drawn; §2.2 says only "16 sampled frames": full_pass |
    one_clip_per_sequence), `d` (per-AU width, not stated; 256 fits Table 1), `au_proj_type`
    (linear | linear_bn_relu), `au_proj_apply_on` (tokens: Linear on each of the H'×W' tokens, then
    mean — the FLOP-faithful form; pooled: mean first, same result for linear).

    Graph conventions shared by SRM and TRM (§1.3–1.4): `detach_graph` (stop-gradient into the
    similarity, stated for the SRM and applied to the TRM too), `include_self` (a node is one of its own
    Top-K), `topk_impl` (index: exactly K per row | threshold), `bn_axis` (node | feature),
    `gnn_residual` (eq. 2 has none), `gnn_layers`.

    SRM: `use_srm`, `srm_top_k` (K), `srm_share_weights` (one GNN for all T frames, the paper's "T GNNs").
    TRM: `use_trm`, `trm_variant` (gnn | transformer, Table 3), `trm_top_k`, `trm_top_k_follows_srm`
    (the Top-K ablation of Tables 4/5 varies the SRM's K only), `trm_share_weights` (one GNN/encoder for
    all N AUs, the paper's "N independent GNNs"), and the Transformer variant's `transformer_*` settings
    (the paper gives none).
    SFF: `use_sff`, `sff_reduction` (r), `gate_fc_shared` (one "another FC layer" for both gates),
    `sff_gate_bn`, `sff_gate_target` (split: gate the split halves, needs r = 1 | input: gate x_space
    and x_time).
    `ablation_replacement`: what replaces a disabled SRM/TRM (identity, §2.3 | linear: a fresh
    Linear(d, d), for experiments only). A disabled SFF is always the sum.

    Fixed, not configurable: cosine similarity, D^-1/2 A D^-1/2 normalisation, U/V
    init N(0, sqrt(2/d)), forward differences x[t+1] − x[t], AvgPool1d(2,1,1) restore pooling, ACM with
    ReLU on features and prototypes, xavier-uniform prototypes, eps 1e-12 and no sigmoid.
    """

    backbone: str = "resnet18"
    pretrained: bool = False
    init_from: str | None = None
    train_backbone: bool = True
    clip_length: int = 16
    clip_sampler: str = "full_pass"
    d: int = 256
    au_proj_type: str = "linear"
    au_proj_apply_on: str = "tokens"
    detach_graph: bool = True
    include_self: bool = True
    topk_impl: str = "index"
    bn_axis: str = "node"
    gnn_residual: bool = False
    gnn_layers: int = 1
    use_srm: bool = True
    srm_top_k: int = 3
    srm_share_weights: bool = True
    use_trm: bool = True
    trm_variant: str = "gnn"
    trm_top_k: int = 3
    trm_top_k_follows_srm: bool = False
    trm_share_weights: bool = True
    transformer_layers: int = 1
    transformer_heads: int = 8
    transformer_feedforward: int = 2048
    transformer_dropout: float = 0.1
    transformer_norm_first: bool = False
    transformer_positional_encoding: str = "sinusoidal"
    use_sff: bool = True
    sff_reduction: float = 1.0
    gate_fc_shared: bool = True
    sff_gate_bn: bool = True
    sff_gate_target: str = "split"
    ablation_replacement: str = "identity"

    @property
    def clips(self) -> ClipSampling:
        """What the training engine needs to cut clips for this method."""
        return ClipSampling(length=self.clip_length, sampler=self.clip_sampler)

    def __post_init__(self) -> None:
        self.clips  # validates clip_sampler
        if self.pretrained and self.init_from:
            raise ConfigError(f"stf.pretrained and stf.init_from ({self.init_from!r}) both set the backbone's "
                              "starting weights; choose one")
        for name, options in _CHOICES.items():
            value = getattr(self, name)
            if value not in options:
                raise ConfigError(f"stf.{name}: {value!r} is not one of {', '.join(options)}")
        if self.backbone not in RESNETS:
            raise ConfigError(f"stf.backbone: {self.backbone!r} is not one of {', '.join(RESNETS)}")
        for name in ("clip_length", "d", "gnn_layers", "srm_top_k", "trm_top_k", "transformer_layers",
                     "transformer_heads", "transformer_feedforward"):
            if getattr(self, name) < 1:
                raise ConfigError(f"stf.{name}: must be a positive integer, got {getattr(self, name)}")
        if not 0.0 <= self.transformer_dropout < 1.0:
            raise ConfigError(f"stf.transformer_dropout: must lie in [0, 1), got {self.transformer_dropout}")
        self._check_trm()
        self._check_sff()

    def _check_trm(self) -> None:
        if not self.use_trm:
            return
        if self.trm_variant == "transformer":
            if self.d % self.transformer_heads:
                raise ConfigError(f"stf.transformer_heads: {self.transformer_heads} does not divide d = {self.d}")
            return
        nodes = self.clip_length - 1
        available = nodes if self.include_self else nodes - 1
        if not 1 <= self.trm_effective_top_k <= available:
            raise ConfigError(f"stf.trm_top_k: {self.trm_effective_top_k} neighbours cannot be chosen among the "
                              f"{nodes} frame differences of a {self.clip_length}-frame clip "
                              f"(include_self={self.include_self}); lower it or raise clip_length")

    def _check_sff(self) -> None:
        width = self.d * self.sff_reduction
        if self.sff_reduction <= 0 or width < 1 or not math.isclose(width, round(width)):
            raise ConfigError(f"stf.sff_reduction: d·r = {self.d}·{self.sff_reduction} must be a positive integer")
        if self.use_sff and self.sff_gate_target == "split" and round(width) != self.d:
            raise ConfigError(f"stf.sff_gate_target: 'split' gates the two halves of x_ST (width d·r each) "
                              f"against d = {self.d}, which needs sff_reduction = 1 (got {self.sff_reduction}); "
                              "set sff_gate_target: input or sff_reduction: 1")

    @property
    def trm_effective_top_k(self) -> int:
        """The TRM's K: its own `trm_top_k`, or the SRM's K when `trm_top_k_follows_srm`."""
        return self.srm_top_k if self.trm_top_k_follows_srm else self.trm_top_k

    @property
    def sff_width(self) -> int:
        """d·r, the width of each half of x_ST."""
        return round(self.d * self.sff_reduction)


class Backbone(nn.Module):
    """Backbone (paper §1.2): ResNet trunk without avgpool/fc, output as tokens.

    Frames (B·T, 3, H, W) → F_res (B·T, P, C), P = H/32 · W/32 (64 for 256×256), C = 512 for ResNet-18.
    """

    def __init__(self, name: str = "resnet18", pretrained: bool = False, trainable: bool = True) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(build_resnet(name, pretrained), frozen=not trainable)
        self.out_channels = self.trunk.out_channels

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.trunk(frames).flatten(2).transpose(1, 2)


class AUProjection(nn.Module):
    """Per-AU projections, "AU-specific feature spaces" (paper §1.2–1.3).

    N independent Linear^(i): R^C → R^d stored as one Linear(C, N·d) (row block i is Linear^(i); the
    same parameters and the same function as N separate layers). Applied to each token of F_res and
    averaged over the P tokens (`apply_on="tokens"`), or applied to the token mean (`"pooled"`,
    identical for a plain linear map). `proj_type="linear_bn_relu"` adds ME-GraphAU's BN + ReLU per
    output feature before the token mean. F_res (B·T, P, C) → x_linear (B·T, N, d).
    """

    def __init__(self, in_channels: int, num_aus: int, dim: int, proj_type: str = "linear",
                 apply_on: str = "tokens") -> None:
        super().__init__()
        self.num_aus = num_aus
        self.dim = dim
        self.apply_on = apply_on
        self.linear = nn.Linear(in_channels, num_aus * dim)
        self.norm = nn.BatchNorm1d(num_aus * dim) if proj_type == "linear_bn_relu" else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.apply_on == "pooled":
            tokens = tokens.mean(1, keepdim=True)
        projected = self.linear(tokens)
        if self.norm is not None:
            projected = torch.relu(self.norm(projected.transpose(1, 2)).transpose(1, 2))
        return projected.mean(1).unflatten(-1, (self.num_aus, self.dim))


def _gnn_stack(dim: int, num_nodes: int, top_k: int, layers: int, config: STFConfig) -> nn.Sequential:
    return nn.Sequential(*(TopKGraphLayer(dim, num_nodes, top_k, include_self=config.include_self,
                                          topk_impl=config.topk_impl, bn_axis=config.bn_axis,
                                          residual=config.gnn_residual, detach=config.detach_graph)
                           for _ in range(layers)))


class SRM(nn.Module):
    """SRM — spatial relation modelling (paper §1.3, eq. 1–2).

    Each frame is a graph over its N AU nodes: eq. 1 similarity A = Norm(x)·Norm(x)ᵀ of the detached
    features, Top-K rows → A', A'' = D^-1/2 A' D^-1/2 = A'/K, then eq. 2 x_gnn = ReLU(BN(V x + A'' U x))
    (`TopKGraphLayer`, BN over the N nodes). One weight set shared by all frames unless
    `share_weights=False` (then one GNN per frame position, the paper's literal "T GNNs").
    x_linear (B,T,N,d) → x_space (B,T,N,d), run batched over the B·T frames.
    """

    def __init__(self, dim: int, num_aus: int, clip_length: int, top_k: int, config: STFConfig) -> None:
        super().__init__()
        copies = 1 if config.srm_share_weights else clip_length
        self.gnns = nn.ModuleList(_gnn_stack(dim, num_aus, top_k, config.gnn_layers, config)
                                  for _ in range(copies))

    def forward(self, x_linear: torch.Tensor) -> torch.Tensor:
        batch, frames, aus, dim = x_linear.shape
        if len(self.gnns) == 1:
            return self.gnns[0](x_linear.reshape(batch * frames, aus, dim)).view(batch, frames, aus, dim)
        return torch.stack([gnn(x_linear[:, t]) for t, gnn in enumerate(self.gnns)], dim=1)


class TRM(nn.Module):
    """TRM — temporal relation modelling (paper §1.4, eq. 3).

    Per AU i: frame differences x_diff^i[t] = x^i[t+1] − x^i[t] (T−1 "motion" nodes), a Top-K cosine
    graph over them built like eq. 1 (detached), the eq. 2 GNN (BN over the T−1 nodes), then average
    pooling back to T steps (AvgPool1d(2,1,1), `restore_length_pool`). Each (clip, AU) has its own
    graph; the GNN weights are shared by the N AUs unless `share_weights=False` (the paper's literal
    "N independent GNNs"; see docs/methods/stf.md). x_linear (B,T,N,d) → x_time (B,T,N,d), batched over
    B·N sequences.
    """

    def __init__(self, dim: int, num_aus: int, clip_length: int, top_k: int, config: STFConfig) -> None:
        super().__init__()
        copies = 1 if config.trm_share_weights else num_aus
        self.gnns = nn.ModuleList(_gnn_stack(dim, clip_length - 1, top_k, config.gnn_layers, config)
                                  for _ in range(copies))

    def forward(self, x_linear: torch.Tensor) -> torch.Tensor:
        batch, frames, aus, dim = x_linear.shape
        differences = forward_difference(x_linear.transpose(1, 2), dim=2)  # (B, N, T−1, d)
        if len(self.gnns) == 1:
            motion = self.gnns[0](differences.reshape(batch * aus, frames - 1, dim))
            motion = motion.view(batch, aus, frames - 1, dim)
        else:
            motion = torch.stack([gnn(differences[:, i]) for i, gnn in enumerate(self.gnns)], dim=1)
        return restore_length_pool(motion, dim=2).transpose(1, 2)


class TransformerTRM(nn.Module):
    """Transformer-TRM — the paper's alternative TRM (§2.3, Table 3 "Transformer").

    A standard Transformer encoder over each AU's T-step sequence x_AU^i (no differencing, no
    pooling), with a sinusoidal positional encoding; weights shared by the N AUs unless
    `share_weights=False`. The paper gives no configuration; ours is in docs/methods/stf.md.
    x_linear (B,T,N,d) → x_time (B,T,N,d).
    """

    def __init__(self, dim: int, num_aus: int, config: STFConfig) -> None:
        super().__init__()
        copies = 1 if config.trm_share_weights else num_aus
        self.encoders = nn.ModuleList(
            TemporalTransformer(dim, config.transformer_layers, config.transformer_heads,
                                config.transformer_feedforward, config.transformer_dropout,
                                config.transformer_norm_first, config.transformer_positional_encoding)
            for _ in range(copies))

    def forward(self, x_linear: torch.Tensor) -> torch.Tensor:
        batch, frames, aus, dim = x_linear.shape
        sequences = x_linear.transpose(1, 2)  # (B, N, T, d)
        if len(self.encoders) == 1:
            encoded = self.encoders[0](sequences.reshape(batch * aus, frames, dim)).view(batch, aus, frames, dim)
        else:
            encoded = torch.stack([encoder(sequences[:, i]) for i, encoder in enumerate(self.encoders)], dim=1)
        return encoded.transpose(1, 2)


class SFF(nn.Module):
    """SFF — spatio-temporal feature fusion (paper §1.5, eq. 4).

    z = [x_space, x_time] (width 2d); eq. 4: x_ST = ReLU(FC_{2d→2dr}(z)), shared by all AUs and frames;
    split x_ST into x_s = x_ST[..., :dr] and x_t = x_ST[..., dr:]; gates W_space = σ(BN_s(G(x_s))),
    W_time = σ(BN_t(G(x_t))) with G "another FC layer" Linear(dr → d) — one shared G
    (`gate_fc_shared`) or one per half — and two BatchNorm1d(d) over all B·T·N vectors;
    F_ST = W_space ⊙ x_s + W_time ⊙ x_t (`gate_target="split"`, needs r = 1) or
    W_space ⊙ x_space + W_time ⊙ x_time (`gate_target="input"`). (B,T,N,d) ×2 → F_ST (B,T,N,d).
    """

    def __init__(self, dim: int, reduced_width: int, gate_fc_shared: bool = True, gate_bn: bool = True,
                 gate_target: str = "split") -> None:
        super().__init__()
        if gate_target == "split" and reduced_width != dim:
            raise ConfigError(f"stf.sff_gate_target: 'split' needs d·r = d (got d·r = {reduced_width}, d = {dim})")
        self.reduced_width = reduced_width
        self.gate_target = gate_target
        self.fusion_fc = nn.Linear(2 * dim, 2 * reduced_width)
        self.gate_fcs = nn.ModuleList(nn.Linear(reduced_width, dim) for _ in range(1 if gate_fc_shared else 2))
        self.gate_norms = nn.ModuleList(nn.BatchNorm1d(dim) if gate_bn else nn.Identity() for _ in range(2))
        self.gate_activation = nn.Sigmoid()  # a module, so that its output (the gates) can be observed

    def _gate(self, half: torch.Tensor, which: int) -> torch.Tensor:
        gate_fc = self.gate_fcs[min(which, len(self.gate_fcs) - 1)]
        pre = gate_fc(half)
        return self.gate_activation(self.gate_norms[which](pre.reshape(-1, pre.shape[-1])).view_as(pre))

    def forward(self, x_space: torch.Tensor, x_time: torch.Tensor) -> torch.Tensor:
        x_st = torch.relu(self.fusion_fc(torch.cat([x_space, x_time], dim=-1)))
        x_s, x_t = x_st.split(self.reduced_width, dim=-1)
        w_space, w_time = self._gate(x_s, 0), self._gate(x_t, 1)
        if self.gate_target == "split":
            return w_space * x_s + w_time * x_t
        return w_space * x_space + w_time * x_time


class SumFusion(nn.Module):
    """"w/o SFF" (§2.3, Table 1): the simplest fusion, F_ST = x_space + x_time. No parameters."""

    def forward(self, x_space: torch.Tensor, x_time: torch.Tensor) -> torch.Tensor:
        return x_space + x_time


class ACM(CosineClassifier):
    """ACM — AU classification module (paper §1.6, eq. 5).

    ŷ_{i,t} = cos(ReLU(F_ST^{i,t}), ReLU(s_i)) with learnable prototypes s ∈ R^{N×d}; in [0, 1] and
    used directly as the probability. F_ST (B,T,N,d) → Ŷ (B,T,N).
    """


class STF(nn.Module):
    """The STF network: clips (B, T, 3, H, W), already normalised → AU probabilities Ŷ (B, T, N).

    Submodules in the paper's order: `backbone`, `au_projection`, `srm`, `trm`, `sff`, `acm`. Disabled
    modules (§2.3, Table 1) are `nn.Identity` (or a fresh `nn.Linear(d, d)` with
    `ablation_replacement="linear"`) for SRM/TRM and `SumFusion` for SFF. T must equal
    `config.clip_length` (the TRM's BN is sized T−1).
    """

    def __init__(self, num_aus: int, config: STFConfig | None = None) -> None:
        super().__init__()
        config = config or STFConfig()
        if num_aus < 1:
            raise ConfigError(f"num_aus: must be positive, got {num_aus}")
        available = num_aus if config.include_self else num_aus - 1
        if config.use_srm and not 1 <= config.srm_top_k <= available:
            raise ConfigError(f"stf.srm_top_k: {config.srm_top_k} neighbours cannot be chosen among {num_aus} AUs "
                              f"(include_self={config.include_self}); use 1..{available}")
        self.config = config
        self.num_aus = num_aus
        dim, frames = config.d, config.clip_length
        self.backbone = Backbone(config.backbone, config.pretrained, config.train_backbone)
        self.au_projection = AUProjection(self.backbone.out_channels, num_aus, dim, config.au_proj_type,
                                          config.au_proj_apply_on)
        self.srm = SRM(dim, num_aus, frames, config.srm_top_k, config) if config.use_srm else self._removed()
        if not config.use_trm:
            self.trm = self._removed()
        elif config.trm_variant == "transformer":
            self.trm = TransformerTRM(dim, num_aus, config)
        else:
            self.trm = TRM(dim, num_aus, frames, config.trm_effective_top_k, config)
        self.sff = (SFF(dim, config.sff_width, config.gate_fc_shared, config.sff_gate_bn, config.sff_gate_target)
                    if config.use_sff else SumFusion())
        self.acm = ACM(num_aus, dim)

    def _removed(self) -> nn.Module:
        if self.config.ablation_replacement == "linear":
            return nn.Linear(self.config.d, self.config.d)
        return nn.Identity()

    def forward_intermediates(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage of the network: tokens, x_linear, x_space, x_time, f_st and probabilities."""
        if clips.dim() != 5 or clips.shape[2] != 3:
            raise ModelError(f"STF expects clips shaped (B, T, 3, H, W), got {tuple(clips.shape)}")
        batch, frames = clips.shape[:2]
        if frames != self.config.clip_length:
            raise ModelError(f"STF was built for clip_length = {self.config.clip_length} frames, got clips of "
                             f"{frames}; set stf.clip_length to the clip length the data provides")
        tokens = self.backbone(clips.flatten(0, 1))
        x_linear = self.au_projection(tokens).unflatten(0, (batch, frames))
        x_space = self.srm(x_linear)
        x_time = self.trm(x_linear)
        f_st = self.sff(x_space, x_time)
        return {"tokens": tokens, "x_linear": x_linear, "x_space": x_space, "x_time": x_time, "f_st": f_st,
                "probabilities": self.acm(f_st)}

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(clips)["probabilities"]


def build_model(config: STFConfig, num_aus: int) -> STF:
    return STF(num_aus, config)


def build_loss(config: STFConfig, au_rates: np.ndarray) -> WeightedBCELoss:
    """STF eq. 6: w_i = N (1 − r_i), on the cosine probabilities (logs clamped at 1e-8)."""
    return WeightedBCELoss(stf_au_weights(au_rates), inputs="probabilities")


METHOD = register(Method("stf", STFConfig, build_model, build_loss, sampling=lambda config: config.clips,
                         outputs="probabilities", top_level={"k": "srm_top_k"}))
