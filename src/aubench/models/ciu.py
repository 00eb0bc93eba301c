"""CIU — causal intervention for unbiased AU recognition (Shao et al., Acta Electronica Sinica 2024, seed 003):
the unbiased student (§2.2–2.5, Algorithm 1 step 3).

Its network is the teachers' (`aubench.models.ciu_teachers`); the fold's `ciu_teachers` run is its upstream
run, frozen (no gradient, eval mode) and run on the same batch:

    XE^imba, XE^ba: the teachers' BCE against the labels, summed over AUs (no gradient)
    w^imba = XE^imba^γ / (XE^imba^γ + XE^ba^γ), w^ba = 1 − w^imba        (eqs. 4–6)
    R = w^imba·Σ_j BCE(f_j, y_j) + w^ba·Σ_j BCE(f_j, σ(balanced logits)_j)  (eqs. 7–9)
    L_AA = R + λ_a·L_a                                                      (eq. 17)

Table 3's TE / TDE drop one risk (`risk.use_ba_risk` / `risk.use_imba_risk`), Fig. 4 sweeps γ. Where the paper
is silent: docs/methods/ciu.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aubench.errors import ConfigError
from aubench.models.backbones import ResNetTrunk, finished_weights
from aubench.models.ciu_teachers import (AttentionRegressionNet, NetworkConfig, TeacherPair, attention_term,
                                         dataset_aus, network_outputs, sampling)
from aubench.models.registry import Batch, Method, StepOutput, register


def adaptive_weights(xe_imbalanced: torch.Tensor, xe_balanced: torch.Tensor, gamma: float, eps: float = 1e-12
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 5–6 in their stable form: w^imba = XE_imba^γ / (XE_imba^γ + XE_ba^γ) = σ(γ (ln XE_imba − ln XE_ba)),
    w^ba = 1 − w^imba. A teacher that fits a sample worse gets the larger weight on its own domain's risk;
    γ = 0 gives 0.5 each, and so do two equal (or two vanishing) cross-entropies."""
    logit = gamma * (xe_imbalanced.clamp_min(eps).log() - xe_balanced.clamp_min(eps).log())
    imbalanced = torch.sigmoid(logit)
    return imbalanced, 1 - imbalanced


def _bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-entry binary cross-entropy (soft targets allowed) with unknown labels zeroed: (B, N)."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none") * mask


@dataclass(frozen=True)
class RiskConfig:
    """The student's cross-domain risk (eqs. 5–9) and its ablation switches (Table 3, Fig. 4)."""

    gamma: float = 1.0  # eq. 4's γ: 1 on BP4D, 2 on DISFA
    use_imba_risk: bool = True  # TDE drops it
    use_ba_risk: bool = True  # TE drops it
    keep_adaptive_weights_in_single_risk: bool = True  # TE / TDE keep w inside the remaining risk (spec A9)
    weight_granularity: str = "sample"  # sample: XE summed over AUs | sample_au: one weight pair per AU
    weight_eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.gamma < 0:
            raise ConfigError(f"ciu.risk.gamma: {self.gamma} < 0 (eq. 4 needs γ >= 0; 0 is the constant-0.5 row)")
        if not (self.use_imba_risk or self.use_ba_risk):
            raise ConfigError("ciu.risk: use_imba_risk and use_ba_risk are both false (no loss to train on)")
        if self.weight_granularity not in ("sample", "sample_au"):
            raise ConfigError(f"ciu.risk.weight_granularity: {self.weight_granularity!r} is not sample or sample_au")


def cross_domain_risk(student: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                      imbalanced: torch.Tensor, balanced: torch.Tensor, config: RiskConfig
                      ) -> dict[str, torch.Tensor]:
    """Eqs. 5–9 on logits (B, N): R^imba = w^imba·Σ_j BCE(f_j, y_j) and R^ba = w^ba·Σ_j BCE(f_j, p^ba_j), each
    averaged over the frames with a known label. The teachers' logits enter without gradient."""
    with torch.no_grad():
        soft = torch.sigmoid(balanced.float())
        xe_imbalanced, xe_balanced = _bce(imbalanced, targets, mask), _bce(balanced, targets, mask)
        if config.weight_granularity == "sample":
            xe_imbalanced, xe_balanced = xe_imbalanced.sum(1, keepdim=True), xe_balanced.sum(1, keepdim=True)
        w_imbalanced, w_balanced = adaptive_weights(xe_imbalanced, xe_balanced, config.gamma, config.weight_eps)
        if not config.keep_adaptive_weights_in_single_risk and config.use_imba_risk != config.use_ba_risk:
            w_imbalanced, w_balanced = torch.ones_like(w_imbalanced), torch.ones_like(w_balanced)
    frames = (mask.sum(1) > 0).sum().clamp(min=1)
    risks = {}
    if config.use_imba_risk:
        risks["risk_imbalanced"] = (w_imbalanced * _bce(student, targets, mask)).sum() / frames
    if config.use_ba_risk:
        risks["risk_balanced"] = (w_balanced * _bce(student, soft, mask)).sum() / frames
    return risks


@dataclass(frozen=True)
class CIUConfig:
    """The `ciu` params section: the unbiased student."""

    network: NetworkConfig = field(default_factory=NetworkConfig)  # must match the teachers' network
    risk: RiskConfig = field(default_factory=RiskConfig)
    teachers_from: str = "ciu_teachers"  # the run (same fold) whose teachers the student learns with
    frame_stride: int = 1


class Student(nn.Module):
    """The unbiased model f beside its frozen teachers (always in eval mode, no gradients)."""

    def __init__(self, num_aus: int, network: NetworkConfig) -> None:
        super().__init__()
        self.student = AttentionRegressionNet(num_aus, network)
        self.teachers = TeacherPair(num_aus, network).requires_grad_(False)

    def train(self, mode: bool = True) -> "Student":
        super().train(mode)
        self.teachers.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.student(images)[0]


class StudentLoss(nn.Module):
    """Eq. 17's parts: the cross-domain risk's settings and λ_a·L_a."""

    def __init__(self, config: CIUConfig, au_rates: np.ndarray) -> None:
        super().__init__()
        self.network, self.risk, self.aus = config.network, config.risk, dataset_aus(len(au_rates))


def student_step(model: Student, loss_fn: StudentLoss, batch: Batch) -> StepOutput:
    """Eq. 17: R (eqs. 5–9, the teachers see the same augmented batch, in eval mode) + λ_a·L_a. A frozen ResNet
    trunk is the teachers' too (`load_teachers`), so its features serve all three networks."""
    images = batch["image"]
    shared = model.student.trunk(images) if model.student.frozen_trunk else None
    with torch.no_grad():
        imbalanced = network_outputs(model.teachers.imbalanced, images, shared)[0]
        balanced = network_outputs(model.teachers.balanced, images, shared)[0]
    logits, attention = network_outputs(model.student, images, shared)
    terms = cross_domain_risk(logits, batch["target"], batch["mask"], imbalanced, balanced, loss_fn.risk)
    terms["attention"] = attention_term(attention, batch, loss_fn.aus, loss_fn.network)
    return StepOutput(terms, logits)


def load_teachers(model: Student, slot: str, checkpoint: Path) -> None:
    """Copy a finished `ciu_teachers` run's two networks into the student's frozen teachers; a frozen ResNet
    trunk (network.trunk resnet18) is the teachers' for the student too."""
    state = finished_weights(checkpoint, "teachers")
    try:
        model.teachers.load_state_dict(state)
    except RuntimeError as error:
        raise ConfigError(f"{checkpoint}: its teachers do not match ciu.network (set the same network in the "
                          f"ciu and ciu_teachers sections): {str(error).splitlines()[0]}") from error
    if isinstance(model.student.trunk, ResNetTrunk):
        model.student.trunk.load_state_dict(model.teachers.imbalanced.trunk.state_dict())


METHOD = register(Method(
    "ciu", CIUConfig, lambda config, num_aus: Student(num_aus, config.network), StudentLoss, sampling=sampling,
    step=student_step, upstream=lambda config: {"teachers": config.teachers_from}, load_upstream=load_teachers))
