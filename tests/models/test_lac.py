"""LAC against its paper (TAFFC manuscript, §III, eq. 1–17, Tables I and IV–VIII) and docs/methods/lac.md:
hand-worked numbers for each loss, Table I's RoIs, the confidence gate, shapes through every module, the
ablation switches, the DWA hook's checkpoint round trip, and parameters / MACs at the paper's configuration."""
from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from aubench.align.store import AlignedStore
from aubench.config import apply_profile, from_mapping
from aubench.data.folds import build_fold_table
from aubench.data.samples import ClipSampling, Crop, FrameSampling, segment_windows
from aubench.errors import ConfigError, ModelError
from aubench.eval.efficiency import count_macs, count_parameters
from aubench.io import write_json
from aubench.losses.asymmetric import WeightedAsymmetricLoss
from aubench.losses.dynamic_asymmetric import DynamicWeightedAsymmetricLoss
from aubench.models.backbones import ResNetTrunk, build_resnet
from aubench.models.lac import (
    LAC,
    METHOD,
    ClassWeightHeatmaps,
    ConfidenceGatedRelations,
    LACConfig,
    LACHooks,
    LACLoss,
    ModelConfig,
    RoIConfig,
    activation_loss,
    au_boxes,
    au_specific_features,
    centre_weights,
    confidence,
    dataset_aus,
    lac_hooks,
    lac_step,
    local_to_global_loss,
    localisation_loss,
    neighbourhood,
    roi_bins,
)
from tests.train.test_plugin_method import make_landmark_store
from tests.train.test_trainer import KILLER, ROOT, TRAIN_STAGE
from aubench.report.papers.lac import paper_cost
from aubench.report.tables import load_paper
from aubench.train.runs import method_configs

BP4D = dataset_aus(12)
RATES = np.linspace(0.1, 0.6, 12)


def small(**changes) -> LACConfig:
    """ResNet-18 at 64 px (a 2×2 map), a narrow ST module, 4-frame clips."""
    mapping = {"backbone": "resnet18", "pretrained": False, "sampler": {"window_t": 4},
               "model": {"st_dim": 16}, **changes}
    return from_mapping(LACConfig, mapping, "lac")


def batch(clips: int = 2, frames: int = 4, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(clips, frames, 3, size, size, generator=generator),
            "target": (torch.rand(clips, frames, 12, generator=generator) < 0.4).long(),
            "mask": torch.ones(clips, frames, 12, dtype=torch.bool),
            "landmarks": torch.rand(clips, frames, 68, 2, generator=generator) * (size - 16) + 8}


def synthetic_landmarks() -> torch.Tensor:
    """p_k = (k, 1000 + k), spec §8's test points."""
    k = torch.arange(68.0)
    return torch.stack([k, 1000 + k], dim=1)[None]


# --- Table I: AU centres and RoIs ---------------------------------------------------------------------------------

def centres(aus=BP4D) -> torch.Tensor:
    boxes = au_boxes(synthetic_landmarks(), centre_weights(aus), side=0.0, image_size=5000)
    return boxes[0, ..., :2]  # zero-sized boxes: (N, 2, 2) centres


def test_au_centres_on_synthetic_landmarks():
    """Table I rewritten on the 68 iBUG points (docs/methods/lac.md): inner brows 21/22, AU4 halfway to the nose
    root 27 at brow height, eye centres = means of 36–41 / 42–47, AU6 below the outer eye corners 41/46 at the
    height of 28, AU10 the upper-lip midpoints, AU17 mid(mid(7, 8), 58), AU23 mid(63, 65)."""
    c = centres()
    index = {au: BP4D.index(au) for au in BP4D}
    assert c[index[1], 0].tolist() == [21, 1021] and c[index[1], 1].tolist() == [22, 1022]
    assert c[index[4], 0].tolist() == [24, 1021] and c[index[4], 1].tolist() == [24.5, 1022]
    assert c[index[7], 0].tolist() == [38.5, 1038.5] and c[index[7], 1].tolist() == [44.5, 1044.5]
    assert c[index[6], 0].tolist() == [41, 1028] and c[index[6], 1].tolist() == [46, 1028]
    assert c[index[10], 1].tolist() == [52.5, 1052.5]
    assert c[index[17], 0].tolist() == [32.75, 1032.75] and c[index[17], 1].tolist() == [32.25, 1032.25]
    assert c[index[23], 1].tolist() == [64, 1064]
    assert torch.equal(c[index[12]], c[index[14]]) and torch.equal(c[index[14]], c[index[15]])
    assert torch.equal(c[index[23]], c[index[24]])
    disfa = dataset_aus(8)
    assert centres(disfa)[disfa.index(9)].tolist() == [[27, 1027], [29, 1029]]
    assert centres(disfa)[disfa.index(26)].tolist() == [[55, 1055], [59, 1059]]


def test_boxes_are_clipped_squares_that_mirror_with_the_face():
    """(F, N, 2, 4) squares of the given side, clipped to the image; after a horizontal flip (the sampler's
    68-point mirror) each AU's pair of boxes is the mirrored pair of the original."""
    weights = centre_weights(BP4D)
    points = torch.rand(1, 68, 2, generator=torch.Generator().manual_seed(0)) * 40 + 12
    boxes = au_boxes(points, weights, side=8.0, image_size=64)
    assert boxes.shape == (1, 12, 2, 4)
    inside = (boxes[..., 0] > 0) & (boxes[..., 2] < 64) & (boxes[..., 1] > 0) & (boxes[..., 3] < 64)
    torch.testing.assert_close((boxes[..., 2] - boxes[..., 0])[inside], torch.full((int(inside.sum()),), 8.0))
    corner = au_boxes(torch.zeros(1, 68, 2), weights, side=8.0, image_size=64)
    assert corner.min() == 0 and corner[..., 2:].max() == 4
    flipped = Crop(0, 0, 64, flip=True).points(points.numpy()[0])
    mirrored = au_boxes(torch.from_numpy(flipped)[None], weights, side=8.0, image_size=64)
    expected = boxes.clone()
    expected[..., 0], expected[..., 2] = 63 - boxes[..., 2], 63 - boxes[..., 0]  # x → size − 1 − x
    for au in range(12):  # the pair in either order: the mirror swaps left and right
        pairs = (expected[0, au], expected[0, au].flip(0))
        assert any(torch.allclose(mirrored[0, au], pair, atol=1e-4) for pair in pairs), BP4D[au]


# --- Lock: heatmaps and losses (eq. 1–6) ------------------------------------------------------------------------

def test_heatmaps_are_cosines_of_the_classifier_weights():
    """Eq. 2–3: M[n,i,h,w] = cos(w_c[i], F[n,:,h,w]) (a double loop), in [−1, 1], invariant to rescaling
    w_c and F; y' = GAP(F)·w_cᵀ = mean ‖w_c‖‖F_hw‖ cos; no parameter beyond w_c."""
    torch.manual_seed(0)
    lock = ClassWeightHeatmaps(8, 3, bias=False, heatmap_type="cosine")
    features = torch.randn(2, 8, 3, 3)
    logits, maps = lock(features)
    for n in range(2):
        for i in range(3):
            for h in range(3):
                for w in range(3):
                    expected = torch.cosine_similarity(lock.classifier.weight[i], features[n, :, h, w], dim=0)
                    assert maps[n, i, h, w].item() == pytest.approx(expected.item(), abs=1e-5)
    assert maps.abs().max() <= 1
    torch.testing.assert_close(logits, features.mean((2, 3)) @ lock.classifier.weight.T)
    norms = lock.classifier.weight.norm(dim=1)[None, :, None, None] * features.norm(dim=1, keepdim=True)
    torch.testing.assert_close(logits, (norms * maps).mean((2, 3)), atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        lock.classifier.weight.mul_(3.0)
    torch.testing.assert_close(lock(features * 2.5)[1], maps, atol=1e-5, rtol=1e-5)
    assert count_parameters(lock) == 3 * 8
    dot = ClassWeightHeatmaps(8, 3, False, "dot")
    torch.testing.assert_close(dot(features)[1], torch.einsum("ic,nchw->nihw", dot.classifier.weight, features))


def test_au_specific_features_are_the_heatmap_weighted_mean():
    """§III-B (i): f_c = GAP(M ⊙ F), (B·T, N, C)."""
    maps, features = torch.rand(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    f_c = au_specific_features(maps, features)
    assert f_c.shape == (2, 3, 5)
    torch.testing.assert_close(f_c, (maps[:, :, None] * features[:, None]).mean((3, 4)))


ROI = RoIConfig()


def test_localisation_loss_on_a_ramp_and_its_gradient_stays_in_the_rois():
    """Eq. 4 as a mean: on a norm map equal to its column index, RoIAlign (exact on a linear map) gives the box
    centre's column, x·(7/224) − 0.5: a box on x = 112 gives −3; cells no bin touches get no gradient."""
    ramp = torch.arange(7.0).expand(1, 1, 7, 7).clone().requires_grad_(True)
    box = torch.tensor([92.0, 92.0, 132.0, 132.0]).view(1, 1, 1, 4).expand(1, 2, 2, 4)
    loss = localisation_loss(ramp, box, 7 / 224, ROI)
    assert loss.item() == pytest.approx(-3.0, abs=1e-5)
    loss.backward()
    assert ramp.grad[0, 0, 0].abs().sum() == 0 and ramp.grad[0, 0, :, 0].abs().sum() == 0 and ramp.grad.sum() < 0
    flat = torch.ones(1, 1, 7, 7)
    moved = flat.clone()
    moved[0, 0, 3, 3] += 5  # feature norm moved into the RoI
    assert localisation_loss(moved, box, 7 / 224, ROI) < localisation_loss(flat, box, 7 / 224, ROI)
    assert localisation_loss(2 * flat, box, 7 / 224, ROI, mode="normalized").item() == pytest.approx(-1.0)


def test_activation_loss_on_hand_numbers():
    """Eq. 5 as a mean: Σ m(1 − 2y)s / Σ m = ((−1)(0.5) + (+1)(−0.2)) / 2 with the third entry masked."""
    means = torch.tensor([[0.5, -0.2, 0.1]])
    value = activation_loss(means, torch.tensor([[1, 0, 1]]), torch.tensor([[1, 1, 0]]))
    assert value.item() == pytest.approx(-0.35)
    up_active, up_inactive = means + torch.tensor([[0.1, 0, 0]]), means + torch.tensor([[0, 0.1, 0]])
    assert activation_loss(up_active, torch.tensor([[1, 0, 1]]), torch.tensor([[1, 1, 0]])) < value
    assert activation_loss(up_inactive, torch.tensor([[1, 0, 1]]), torch.tensor([[1, 1, 0]])) > value


def test_local_to_global_loss_on_hand_numbers():
    """Eq. 6: (1/2N) Σ_i Σ_r (l − g)²: RoI means 0.5 and 0.1 around a global 0.3 → (0.04 + 0.04)/2; 0 for a
    constant map; the printed sign −1 negates it."""
    heatmaps = torch.full((1, 1, 2, 2), 0.3)
    bins = torch.tensor([[[[0.5] * 9, [0.1] * 9]]])
    assert local_to_global_loss(bins, heatmaps).item() == pytest.approx(0.04)
    assert local_to_global_loss(bins, heatmaps, sign=-1).item() == pytest.approx(-0.04)
    constant = torch.full((2, 3, 7, 7), 0.7)
    boxes = au_boxes(torch.rand(2, 68, 2) * 150 + 30, centre_weights(dataset_aus(8))[:3], 40.0, 224)
    assert local_to_global_loss(roi_bins(constant, boxes, 7 / 224, ROI), constant).abs().item() < 1e-6


def test_roi_bins_read_each_aus_own_channel():
    maps = torch.stack([torch.full((7, 7), float(i)) for i in range(3)])[None]
    boxes = torch.tensor([0.0, 0.0, 100.0, 100.0]).expand(1, 3, 2, 4)
    bins = roi_bins(maps, boxes, 7 / 224, ROI)
    assert bins.shape == (1, 3, 2, 9)
    assert torch.equal(bins[0, :, :, 0], torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))


# --- Check: confidence gate, GAT, LSTM (eq. 7–11) ---------------------------------------------------------------

def test_confidence_is_zero_when_undecided_and_one_when_certain():
    """Eq. 10 on σ(y'): α(0) = 0, α(ln 3) = |0.75 − 0.5|/0.5 = 0.5, α(±30) ≈ 1, always in [0, 1]."""
    alpha = confidence(torch.tensor([0.0, math.log(3), -math.log(3), 30.0, -30.0]))
    torch.testing.assert_close(alpha, torch.tensor([0.0, 0.5, 0.5, 1.0, 1.0]))


def gate(**changes) -> ConfidenceGatedRelations:
    torch.manual_seed(0)
    return ConfidenceGatedRelations(6, neighbourhood(BP4D, "full"), dataclasses.replace(ModelConfig(), **changes))


def test_gate_keeps_confident_aus_and_rechecks_uncertain_ones():
    """Eq. 11: α = 1 → h' = h exactly; α = 0 → h' = GAT(h); α detached: no gradient reaches y'."""
    relations, nodes = gate(), torch.randn(3, 12, 6)
    certain, undecided = torch.full((3, 12), 1e4), torch.zeros(3, 12)
    assert torch.equal(relations(nodes, certain), nodes)
    torch.testing.assert_close(relations(nodes, undecided), relations.gat(nodes, relations.allowed))
    logits = torch.randn(3, 12, requires_grad=True)
    relations(nodes, logits).sum().backward()
    assert logits.grad is None
    logits = torch.randn(3, 12, requires_grad=True)
    gate(alpha_detach=False)(nodes, logits).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    ungated = gate(confidence_gating=False)
    torch.testing.assert_close(ungated(nodes, certain), ungated.gat(nodes, ungated.allowed))


def test_gat_rows_sum_to_one_over_allowed_nodes_and_the_full_graph_is_equivariant():
    relations, nodes = gate(), torch.randn(2, 12, 6)
    alpha = relations.gat.attention_weights(nodes, relations.allowed)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 1, 12))
    cross = neighbourhood(BP4D, "cross_region")
    alpha = relations.gat.attention_weights(nodes, cross)[:, 0]
    upper = [BP4D.index(au) for au in (1, 2, 4, 7)]
    assert alpha[:, upper[0], upper[1:]].abs().sum() == 0 and (alpha[:, upper[0], upper[0]] > 0).all()
    assert cross[BP4D.index(6), BP4D.index(12)] and not cross[BP4D.index(10), BP4D.index(12)]
    permutation = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    gat = relations.gat
    torch.testing.assert_close(gat(nodes[:, permutation], relations.allowed), gat(nodes, relations.allowed)[:, permutation])
    assert relations.gat.bias is None and count_parameters(relations) == 6 * 6 + 2 * 6  # eq. 9: W and a only


def test_lstm_is_causal_and_shared_by_the_aus():
    model = LAC(12, small()).eval()
    check = model.check
    features, logits = torch.randn(2 * 4, 12, 512), torch.randn(2 * 4, 12)
    with torch.no_grad():
        scores = check(features, logits, clips=2)
        changed = features.clone().view(2, 4, 12, 512)
        changed[:, 2] += 1.0  # frame 2 of every clip
        later = check(changed.flatten(0, 1), logits, clips=2)
    assert scores.shape == (2, 4, 12)
    torch.testing.assert_close(later[:, :2], scores[:, :2])
    assert not torch.allclose(later[:, 2:], scores[:, 2:])
    assert count_parameters(LAC(8, small()).check.temporal) == count_parameters(check.temporal)


# --- the whole model, its switches and the total loss ---------------------------------------------------------

def test_shapes_through_every_module_and_inference_needs_no_landmarks():
    model = LAC(12, small()).eval()
    with torch.no_grad():
        out = model(batch()["image"], intermediates=True)
        plain = model(batch()["image"])
    assert out["first_logits"].shape == out["final_logits"].shape == (2, 4, 12)
    assert out["heatmaps"].shape == (8, 12, 2, 2) and out["feature_norms"].shape == (8, 1, 2, 2)
    assert torch.equal(plain, out["final_logits"])
    with pytest.raises(ModelError, match="expects clips"):
        model(torch.randn(2, 3, 64, 64))


def test_image_mode_predicts_y_prime_for_frames_and_clips():
    """Table IV rows 1, 2, 4, 5 (no ST): the GAP + linear logits are the prediction, frames or clips."""
    model = LAC(12, small(model={"st_module": False})).eval()
    assert model.check is None
    with torch.no_grad():
        frames = model(torch.randn(3, 3, 64, 64), intermediates=True)
        clips = model(batch()["image"])
    assert frames["final_logits"].shape == (3, 12) and torch.equal(frames["final_logits"], frames["first_logits"])
    assert clips.shape == (2, 4, 12)


def test_table_switches_change_the_graph_and_the_sampling():
    full = LAC(12, small())
    assert isinstance(full.check.projection, torch.nn.Linear) and full.check.temporal.hidden_size == 16
    assert LAC(12, small(model={"st_module": False})).check is None
    unprojected = LAC(12, small(model={"st_input_proj": False}))
    assert isinstance(unprojected.check.projection, torch.nn.Identity) and unprojected.check.temporal.hidden_size == 512
    wide = LAC(12, small(model={"st_dim": 16, "lstm_bidirectional": True, "final_head": "shared"}))
    assert wide.check.temporal.bidirectional and wide.check.head.in_features == 32
    assert full.lock.classifier.bias is None and LAC(12, small(model={"loc_head_bias": True})).lock.classifier.bias is not None
    sampling = small(sampler={"window_t": 8, "n_sep": 4}).sampling
    assert sampling == ClipSampling(length=8, sampler="segments", segments=4, fields=("landmarks",))
    image = small(sampler={"temporal_sampling": False}, model={"st_module": False}).sampling
    assert type(image) is FrameSampling and image.fields == ("landmarks",)
    bare = small(losses={"use_l_loc": False, "use_l_act": False, "use_l_l2g": False}).sampling
    assert bare.fields == ()


def test_algorithm_1_windows_for_given_lengths():
    """§III-C with the spec's corrections: a subject of two tasks (300 + 200 frames), t = 16, N_sep = 4: one
    16-frame window inside each 125-frame segment, none across the task boundary at 300; 100 frames give
    ⌊100/16⌋ = 6 windows."""
    draws = np.random.default_rng(0)
    for _ in range(200):
        windows = segment_windows([("S_T1", 300), ("S_T2", 200)], 16, 4, draws)
        starts = [start + (300 if key == "S_T2" else 0) for key, start, _ in windows]
        assert len(windows) == 4
        for segment, start in enumerate(starts):
            assert segment * 125 <= start <= (segment + 1) * 125 - 16
            assert not 300 - 16 < start < 300
    assert len(segment_windows([("S", 100)], 16, 12, draws)) == 6


def terms_for(config: LACConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = LAC(12, config).train()
    return lac_step(model, LACLoss(config, RATES), batch()).terms


def test_total_loss_is_eq17_and_each_switch_removes_its_terms():
    """L = 0.5 L_loc + 0.5 L_act + 0.01 L_l2g + 0.5 L_cls(y') + 1.0 L_cls(y''), each a named term."""
    config = small()
    torch.manual_seed(0)
    model = LAC(12, config).train()
    loss = LACLoss(config, RATES)
    data = batch()
    outputs = model(data["image"], intermediates=True)
    terms = loss(outputs, data["target"], data["mask"], data["landmarks"])
    assert list(terms) == ["localisation", "activation", "local_to_global", "first_stage", "final"]
    boxes = au_boxes(data["landmarks"].flatten(0, 1), centre_weights(BP4D), 40 * 64 / 224, 64)
    bins = roi_bins(outputs["heatmaps"], boxes, 2 / 64, config.roi)
    torch.testing.assert_close(terms["localisation"], 0.5 * localisation_loss(outputs["feature_norms"], boxes, 2 / 64, config.roi))
    torch.testing.assert_close(terms["activation"], 0.5 * activation_loss(bins.mean((2, 3)), data["target"], data["mask"]))
    torch.testing.assert_close(terms["local_to_global"], 0.01 * local_to_global_loss(bins, outputs["heatmaps"]))
    reference = WeightedAsymmetricLoss(loss.classification.au_weights.clone())
    torch.testing.assert_close(terms["first_stage"], 0.5 * reference(torch.sigmoid(outputs["first_logits"]), data["target"], data["mask"]))
    torch.testing.assert_close(terms["final"], reference(torch.sigmoid(outputs["final_logits"]), data["target"], data["mask"]))
    assert set(terms_for(small(losses={"use_l_loc": False}))) == {"activation", "local_to_global", "first_stage", "final"}
    assert set(terms_for(small(losses={"use_l_act": False, "use_l_l2g": False}))) == {"localisation", "first_stage", "final"}
    assert set(terms_for(small(model={"st_module": False}))) == {"localisation", "activation", "local_to_global",
                                                                  "first_stage"}


def test_classification_loss_of_table7():
    """bce: unit weights and no asymmetric factor; wa: the static normalised inverse rates; dwa: the same start,
    dynamic, with hooks."""
    bce, wa, dwa = (LACLoss(small(losses={"cls_loss": name}), RATES).classification for name in ("bce", "wa", "dwa"))
    assert not bce.asymmetric and torch.equal(bce.au_weights, torch.ones(12))
    assert wa.asymmetric and not isinstance(wa, DynamicWeightedAsymmetricLoss)
    assert isinstance(dwa, DynamicWeightedAsymmetricLoss) and torch.equal(wa.au_weights, dwa.au_weights)
    config = small(losses={"cls_loss": "wa"})
    assert type(lac_hooks(config, None, LACLoss(config, RATES))) is not LACHooks


def test_a_training_step_gives_finite_terms_and_gradients_reach_every_trainable_parameter():
    config = small()
    torch.manual_seed(0)
    model = LAC(12, config).train()
    output = lac_step(model, LACLoss(config, RATES), batch())
    assert output.scores.shape == (2, 4, 12)
    assert all(torch.isfinite(term) and term.dim() == 0 for term in output.terms.values())
    sum(output.terms.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in METHOD.trainable(model))
    frozen = LAC(12, small(train_backbone=False))
    assert not any(p.requires_grad for p in frozen.trunk.parameters())
    with pytest.raises(ModelError, match="landmarks"):
        lac_step(model, LACLoss(config, RATES), {k: v for k, v in batch().items() if k != "landmarks"})


def test_dwa_hook_updates_once_per_epoch_and_round_trips():
    """Eq. 13–15 through the trainer's hooks: weights fixed within an epoch, one update per epoch from the
    recall of y'' and the epoch's labels; state_dict → a new hook restores identical weights."""
    config = small()
    loss = LACLoss(config, RATES)
    hooks = lac_hooks(config, None, loss)
    dwa = loss.classification
    start = dwa.au_weights.clone()
    torch.manual_seed(0)
    model = LAC(12, config).train()
    hooks.on_epoch_start(0)
    for seed in range(2):
        lac_step(model, loss, batch(seed=seed))
        assert torch.equal(dwa.au_weights, start)
    assert dwa.positives.sum() == sum(batch(seed=s)["target"].sum() for s in range(2))
    hooks.on_epoch_end(0, {})
    assert not torch.equal(dwa.au_weights, start) and int(dwa.updates) == 1
    restored_loss = LACLoss(config, RATES)
    restored = lac_hooks(config, None, restored_loss)
    restored.load_state_dict(hooks.state_dict())
    for name in LACHooks.STATE:
        assert torch.equal(getattr(restored_loss.classification, name), getattr(dwa, name))
    assert not [name for name, _ in loss.named_parameters()]


# --- cost at the paper's configuration (Table VIII) -------------------------------------------------------------

def test_parameters_at_the_papers_configuration_match_the_derived_counts():
    """§3.7: w_c 24,576 + projection 1,049,088 + GAT 263,168 + LSTM 2,101,248 + per-AU head 6,156 = 3,444,236
    over ResNet-50's 23,508,032 (paper: +3.7 M, 27.2 M in all)."""
    with torch.device("meta"):
        model = LAC(12, LACConfig(pretrained=False))
    assert count_parameters(model.trunk) == 23_508_032
    assert count_parameters(model.lock) == 24_576
    check = model.check
    assert (count_parameters(check.projection), count_parameters(check.relations),
            count_parameters(check.temporal), count_parameters(check.head)) == (1_049_088, 263_168, 2_101_248, 6_156)
    extra = count_parameters(model) - count_parameters(model.trunk)
    assert extra == 3_444_236 and 3.3e6 <= extra <= 3.8e6


def test_macs_over_resnet50_for_a_16_frame_clip():
    """Table VIII: +0.7 G for 16 frames over ResNet-50 (spec §3.7: ≈ 0.69 G, 43.3 M per frame), the LSTM
    counted by the flop counter on the meta device."""
    cost = paper_cost()
    with torch.device("meta"):
        trunk = ResNetTrunk(build_resnet("resnet50"))
        trunk_macs = count_macs(trunk, torch.zeros(16, 3, 224, 224, device="meta"), include_batchnorm=True)
    extra = cost["macs_per_frame"] * 16 - trunk_macs
    assert extra == pytest.approx(0.69e9, abs=0.1e9)
    assert cost["parameters"] == 26_952_268


def test_paper_defaults_and_rejections():
    config = LACConfig()
    assert (config.backbone, config.sampler.window_t, config.sampler.n_sep, config.roi.box_size_px) == (
        "resnet50", 16, 12, 40.0)
    losses = config.losses
    assert (losses.eta_loc, losses.eta_act, losses.eta_l2g, losses.eta_cls_first, losses.eta_cls_final) == (
        0.5, 0.5, 0.01, 0.5, 1.0)
    assert (losses.dwa.beta_diff, losses.dwa.beta_dist, losses.dwa.delta, losses.cls_loss) == (0.9, 0.9, 0.5, "dwa")
    for changes, message in (({"backbone": "vgg16"}, "is not one of"),
                             ({"pretrained": True, "init_from": "baseline"}, "choose one"),
                             ({"sampler": {"temporal_sampling": False}}, "temporal_sampling: true"),
                             ({"losses": {"dwa": {"beta_diff": 1.0}}}, "beta_diff"),
                             ({"losses": {"l2g_sign": 2}}, "is not one of"),
                             ({"losses": {"eta_loc": -1.0}}, "eta"),
                             ({"model": {"gat_adjacency": "local"}}, "is not one of"),
                             ({"model": {"lstm_layer": 2}}, "did you mean 'lstm_layers'")):
        with pytest.raises(ConfigError, match=message):
            small(**changes)
    with pytest.raises(ConfigError, match="BP4D"):
        LAC(5, small())


def test_params_section_holds_the_papers_values_and_every_table_row_has_its_switches():
    """params.yaml's `lac` section is the paper's configuration (= the config's defaults), and each column of
    Tables II and IV–VII (report/papers/lac.yaml) names a variant whose config has that column's switches."""
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params = apply_profile({**raw, "profile": "paper"})
    _, config, optim, _ = method_configs(params, "lac")
    assert config == LACConfig()
    assert (optim.optimizer, optim.lr, optim.weight_decay, optim.schedule, optim.epochs, optim.batch_size) == (
        "adamw", 0.0001, 0.0005, "cosine", 200, 8)
    variants = {f"lac_{row}": overrides for row, overrides in params["variants"]["lac"].items()}
    assert len(variants) == 7 + 6 + 6 + 3
    for table, columns in load_paper("lac")["ours"].items():
        for column, entry in columns.items():
            name = entry["run"] if isinstance(entry["run"], str) else entry["run"][0]
            resolved = config if name == "lac" else method_configs(params, "lac", variants[name])[1]
            for dotted, wanted in entry["switches"].items():
                value = resolved
                for part in dotted.split("."):
                    value = getattr(value, part)
                assert value == wanted, (table, column, dotted)


def test_training_resumes_after_sigkill_mid_epoch_to_identical_predictions_and_dwa_weights(tmp_path):
    """Issue: a LAC run killed in the middle of epoch 2 resumes from its last checkpoint to the predictions
    and DWA state (weights, both momentum averages, update count) of an uninterrupted run."""
    def run_dir(name: str) -> Path:
        root = tmp_path / name
        store = AlignedStore.open(make_landmark_store(root / "data" / "aligned", frames=40))
        labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
        write_json(root / "data" / "folds.json", build_fold_table("synthau", store.aus, labels, seed=0))
        params = {"train": {"seed": 0, "input_size": 32, "epochs": 3, "batch_size": 8, "num_workers": 0},
                  "lac": {"backbone": "resnet18", "pretrained": False, "sampler": {"window_t": 4, "n_sep": 4},
                          "model": {"st_dim": 16}, "optim": {"lr": 0.001}},
                  "runs": {"scratch": [{"name": "lac", "method": "lac", "key": "lac"}]}}
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        return root

    def train(cwd: Path, *python_args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        environment = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1",
                       **(env or {})}
        command = [sys.executable, *python_args, str(TRAIN_STAGE), "lac", "--fold", "1"]
        return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)

    def state(cwd: Path) -> dict:
        return torch.load(cwd / "models" / "lac" / "fold1" / "checkpoint.pt", weights_only=False)

    def predictions(cwd: Path) -> np.ndarray:
        with np.load(cwd / "predictions" / "lac" / "fold1.npz") as data:
            return data["probabilities"]

    reference, interrupted = run_dir("reference"), run_dir("interrupted")
    done = train(reference)
    assert done.returncode == 0, done.stderr[-3000:]
    hooks = state(reference)["hooks"]
    assert int(hooks["updates"]) == 3
    killed = train(interrupted, "-c", KILLER, env={"KILL_AT_FORWARD": "7"})  # 4 steps an epoch: epoch 2's 3rd
    assert killed.returncode == -9, killed.stderr[-3000:]
    partial = state(interrupted)
    assert partial["epoch"] == 1 and not partial["finished"] and int(partial["hooks"]["updates"]) == 1
    resumed = train(interrupted)
    assert resumed.returncode == 0 and "resuming after epoch 1" in resumed.stderr, resumed.stderr[-3000:]
    np.testing.assert_array_equal(predictions(reference), predictions(interrupted))
    for name, value in hooks.items():
        torch.testing.assert_close(state(interrupted)["hooks"][name], value, rtol=0, atol=0)
