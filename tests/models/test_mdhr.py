"""MDHR against its paper (CVPR 2024, §3, eq. 1–12) and the authors' released architecture: hand-worked
numbers for each formula, shapes through every module, the ablation switches, parameter counts and MACs."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import StochasticDepth

from aubench.config import from_mapping
from aubench.errors import ConfigError, ModelError
from aubench.eval.efficiency import count_parameters
from aubench.eval.efficiency_report import model_cost
from aubench.losses.asymmetric import WeightedAsymmetricLoss, normalised_inverse_rates
from aubench.models.blocks.graph import MaskedGraphAttention
from aubench.models.mdhr import (
    BP4D_GROUPS,
    DISFA_GROUPS,
    MDHR,
    AdaptiveScaleWeights,
    MDHRConfig,
    MDHRLoss,
    PerAUTemporalConv,
    StepConv,
    TappedSwin,
    combination_index,
    decode_bits,
    group_indices,
    METHOD,
    mdhr_predict,
    mdhr_step,
    slice_rows,
    temporal_average,
    temporal_differences,
)
from aubench.report.papers.mdhr import paper_cost

BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)


def small(**changes) -> MDHRConfig:
    """ResNet-18 at 64 px (taps 16, 8, 4, 2: step kernels 8, 4, 2, 1), narrow features, short clips."""
    mapping = {"backbone": "resnet18", "pretrained": False, "feat_dim": 16, "clip_length": 4,
               "mfd": {"k": 2}, **changes}
    return from_mapping(MDHRConfig, mapping, "mdhr")


def clips(batch: int = 2, frames: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- labels: combination indices (§2.6) ---------------------------------------------------------------------

def test_combination_index_is_msb_first_and_round_trips():
    positions = group_indices(BP4D_GROUPS, 12)
    only_10_and_12 = torch.zeros(12)
    only_10_and_12[[BP4D_AUS.index(10), BP4D_AUS.index(12)]] = 1
    assert [int(combination_index(only_10_and_12, p)) for p in positions] == [0, 0, 4, 8]
    assert [int(combination_index(torch.ones(12), p)) for p in positions] == [15, 1, 7, 15]
    disfa_up = torch.tensor([1.0, 1.0, 0.0, 0, 0, 0, 0, 0])  # AU1, AU2 on, AU4 off → 0b110
    assert int(combination_index(disfa_up, group_indices(DISFA_GROUPS, 8)[0])) == 6
    assert F.one_hot(torch.tensor(6), 8).tolist() == [0, 0, 0, 0, 0, 0, 1, 0]  # Fig. 2's "00000010", read right to left
    for width in (1, 3, 4):
        index = torch.arange(2 ** width)
        assert torch.equal(combination_index(decode_bits(index, width).float(), list(range(width))), index)
    assert [g.classes for g in BP4D_GROUPS] == [16, 2, 8, 16] and [g.classes for g in DISFA_GROUPS] == [8, 4, 8]


# --- MFD (§3.2, eq. 1–5) --------------------------------------------------------------------------------------

def test_differences_of_a_ramp_are_ones_and_of_a_static_clip_zeros():
    ramp = torch.arange(5.0).view(1, 5, 1, 1, 1).expand(2, 5, 3, 2, 2).flatten(0, 1)  # x^t = t
    differences = temporal_differences(ramp, 5)
    assert differences.shape == (2 * 4, 3, 2, 2) and torch.equal(differences, torch.ones_like(differences))
    assert not temporal_differences(torch.ones(10, 3, 2, 2), 5).any()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_temporal_average_spreads_an_impulse_over_2k_frames_with_divisor_2k(k):
    frames = 8
    for j in range(frames - 1):  # an impulse at difference j
        differences = torch.zeros(frames - 1, 1, 1, 1)
        differences[j] = 1.0
        out = temporal_average(differences, frames, k).flatten()
        assert out.shape == (frames,)
        expected = torch.tensor([1 / (2 * k) if t - k <= j <= t + k - 1 else 0.0 for t in range(frames)])
        torch.testing.assert_close(out, expected)


def test_step_convolutions_reduce_every_scale_to_the_last_grid_and_fail_fast_otherwise():
    model = MDHR(12, small())
    assert [conv[0].kernel_size[0] for conv in model.mfd.step_convs] == [8, 4, 2, 1]
    assert [conv[0].stride[0] for conv in model.mfd.step_convs] == [8, 4, 2, 1]
    taps, _ = model.backbone(clips().flatten(0, 1))
    assert [tuple(t.shape[1:]) for t in taps] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    for tap, conv in zip(taps, model.mfd.step_convs):
        assert conv(temporal_differences(tap, 4)).shape == (2 * 3, 512, 2, 2)
    with pytest.raises(ModelError, match=r"stage 1's \(12, 12\) map is not 8 × the last stage's \(2, 2\)"):
        model.eval()(clips(size=48))  # 48 px: taps 12, 6, 3, 2


def test_padding_to_the_grid_keeps_each_cell_over_its_own_rows():
    """`pad_to_grid` (a 48-px input: stages of 12, 6, 3, 2 px): each difference map is zero-padded at the
    bottom/right to 8, 4, 2 × 2 cells, so a cell of the step convolution covers the rows of its stage-4 cell."""
    model = MDHR(12, small(mfd={"k": 2, "pad_to_grid": True})).eval()
    assert model(clips(size=48)).shape == (2, 4, 12)
    differences = torch.zeros(3, 1, 12, 12)
    differences[..., 9, 9] = 1.0  # in stage-4 cell (1, 1): rows 8–15 at kernel 8
    padded = model.mfd.on_grid(differences, 1, 8, (2, 2))
    assert padded.shape == (3, 1, 16, 16) and padded[..., 9, 9].eq(1).all() and padded.sum() == 3
    assert torch.equal(model.mfd.on_grid(torch.ones(3, 1, 16, 16), 1, 8, (2, 2)), torch.ones(3, 1, 16, 16))


def test_step_convolution_equals_a_strided_conv2d_with_the_same_weights():
    torch.manual_seed(0)
    step = StepConv(6, 5, 4)
    reference = torch.nn.Conv2d(6, 5, 4, stride=4)
    reference.load_state_dict(step.state_dict())
    x = torch.randn(3, 6, 8, 12, requires_grad=True)
    torch.testing.assert_close(step(x), reference(x), rtol=1e-5, atol=1e-5)
    (gradient,) = torch.autograd.grad(step(x).square().sum(), x)
    (expected,) = torch.autograd.grad(reference(x).square().sum(), x)
    torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=1e-5)


def test_adaptive_weights_are_a_per_pixel_softmax_over_scales():
    torch.manual_seed(0)
    weights = AdaptiveScaleWeights(8, 3, 16).eval()([torch.randn(5, 8, 4, 4) for _ in range(3)])
    assert weights.shape == (5, 3, 4, 4) and (weights >= 0).all() and (weights <= 1).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(5, 4, 4))
    assert weights[0, 0].std() > 0  # per pixel, not one weight per map
    literal = AdaptiveScaleWeights(8, 3, 0)  # the paper's single 1×1 convolution on the concatenation
    assert literal.squeeze is None and literal.logits.in_channels == 24


@pytest.mark.parametrize("fusion", ["adaptive", "sum", "concat"])
def test_fusions_give_g_of_the_same_shape(fusion):
    model = MDHR(12, small(mfd={"k": 2, "fusion": fusion})).eval()
    assert model(clips(), intermediates=True)["g"].shape == (8, 2, 2, 16)
    assert (model.mfd.weights is None) == (fusion != "adaptive")
    assert model.mfd.projection[0].in_channels == (4 * 512 if fusion == "concat" else 512)


def test_without_mfd_g_is_the_static_projection_and_layers_and_k_change_only_their_parts():
    model = MDHR(12, small(mfd={"enabled": False})).eval()
    x = clips()
    _, last = model.backbone(x.flatten(0, 1))
    torch.testing.assert_close(model(x, intermediates=True)["g"].flatten(1, 2),
                               model.static_projection(last.flatten(2).transpose(1, 2)))
    two = MDHR(12, small(mfd={"k": 2, "layers": [2, 4]}))
    assert len(two.mfd.step_convs) == 2 and two.mfd.weights.logits.out_channels == 2
    assert count_parameters(MDHR(12, small(mfd={"k": 1}))) == count_parameters(MDHR(12, small(mfd={"k": 3})))


# --- HSR stage 1 (eq. 7–8) -------------------------------------------------------------------------------------

def test_row_slices_of_a_seven_row_map_overlap_on_rows_two_and_four():
    rows = torch.arange(7.0).view(1, 7, 1, 1).expand(1, 7, 7, 4)
    taken = {name: sorted(set(rows[:, slice_rows(name, 7)].flatten(1, 2)[..., 0].flatten().tolist()))
             for name in ("up", "mid", "low")}
    assert taken == {"up": [0, 1, 2], "mid": [2, 3, 4], "low": [4, 5, 6]}
    assert all(rows[:, slice_rows(name, 7)].flatten(1, 2).shape[1] == 21 for name in taken)
    assert [slice_rows(name, 2) for name in ("up", "mid", "low")] == [slice(0, 1), slice(0, 2), slice(1, 2)]


def test_each_au_feature_sees_only_its_region_rows():
    model = MDHR(12, small(hsr={"crm": {"enabled": False}}, tcn={"enabled": False})).eval()
    g = torch.randn(1, 7, 7, 16, requires_grad=True)
    nodes, _ = model.local(g)
    for au, rows in ((1, range(0, 3)), (6, range(2, 5)), (12, range(4, 7)), (24, range(4, 7))):
        (gradient,) = torch.autograd.grad(nodes[0, BP4D_AUS.index(au)].sum(), g, retain_graph=True)
        outside = [r for r in range(7) if r not in rows]
        assert not gradient[0, outside].any() and gradient[0, list(rows)].abs().sum() > 0, au
    whole = MDHR(12, small(hsr={"afe": False, "aux": False, "crm": {"enabled": False}})).eval()
    (gradient,) = torch.autograd.grad(whole.local(g)[0][0, 0].sum(), g)
    assert (gradient[0].abs().sum((1, 2)) > 0).all()  # without AFE: the whole map


def test_combination_heads_and_region_transforms_follow_the_dataset():
    bp4d, disfa = MDHR(12, small()), MDHR(8, small())
    assert [head.out_features for head in bp4d.local.heads] == [16, 2, 8, 16]
    assert [head.out_features for head in disfa.local.heads] == [8, 4, 8]
    assert all(not isinstance(t, torch.nn.Identity) for t in bp4d.local.transforms)
    assert all(isinstance(t, torch.nn.Identity) for t in disfa.local.transforms)
    one = MDHR(12, small(hsr={"bp4d_one_lower_group": True}))
    assert [head.out_features for head in one.local.heads] == [16, 2, 128]
    with pytest.raises(ConfigError, match="BP4D .12 AUs. and DISFA .8 AUs."):
        MDHR(5, small())


# --- HSR stage 2 (eq. 9) ---------------------------------------------------------------------------------------

APPENDIX_A_BP4D_ROW_AU10 = [1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0]
APPENDIX_A_BP4D_ROW_AU6 = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1]


def test_static_adjacency_is_appendix_a():
    s = MDHR(12, small()).cross.other_region
    assert torch.equal(s, s.T) and not s.diagonal().any()
    assert s[BP4D_AUS.index(10)].int().tolist() == APPENDIX_A_BP4D_ROW_AU10
    assert s[BP4D_AUS.index(6)].int().tolist() == APPENDIX_A_BP4D_ROW_AU6
    assert s[BP4D_AUS.index(12), BP4D_AUS.index(10)]  # low1 ↔ low2 are different regions (groups)
    by_slice = MDHR(12, small(hsr={"crm": {"region_key": "slice"}})).cross.other_region
    assert not by_slice[BP4D_AUS.index(12), BP4D_AUS.index(10)]
    disfa = MDHR(8, small()).cross.other_region
    assert disfa.int().tolist()[3] == [1, 1, 1, 0, 0, 1, 1, 1]  # AU6 row


def test_attention_reaches_only_active_aus_of_other_regions_and_itself():
    torch.manual_seed(0)
    model = MDHR(12, small()).eval()
    cross = model.cross
    logits = [torch.randn(6, g.classes) for g in BP4D_GROUPS]
    active = cross.activations(logits, 12)
    allowed = cross.neighbourhood(logits, 6, 12)
    alpha = cross.gat.attention_weights(torch.randn(6, 12, 16), allowed)[:, 0]  # the one head
    torch.testing.assert_close(alpha.sum(-1), torch.ones(6, 12))
    eye = torch.eye(12, dtype=torch.bool)
    expected = eye | (cross.other_region & active[:, None, :])
    assert torch.equal(alpha > 0, expected)
    for g, members in zip(logits, group_indices(BP4D_GROUPS, 12)):  # a is the decoded arg-max, MSB first
        assert torch.equal(active[:, members], decode_bits(g.argmax(-1), len(members)).bool())


def test_with_nothing_active_the_gat_output_is_elu_of_w_v_plus_v_plus_bias():
    torch.manual_seed(1)
    gat = MaskedGraphAttention(8)
    with torch.no_grad():
        gat.bias.uniform_(-1, 1)
    nodes = torch.randn(3, 5, 8)
    out = gat(nodes, torch.eye(5, dtype=torch.bool).expand(3, 5, 5))
    torch.testing.assert_close(out, F.elu(gat.weight(nodes) + nodes + gat.bias))


def test_gat_scores_on_hand_numbers():
    gat = MaskedGraphAttention(2, negative_slope=0.2)
    with torch.no_grad():
        gat.weight.weight.copy_(torch.eye(2))
        gat.attention.copy_(torch.tensor([[1.0], [0.0], [0.0], [1.0]]))  # r1 = (1, 0), r2 = (0, 1)
    nodes = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    # e_nm = LeakyReLU(v_n[0] + v_m[1]): e00 = 1, e01 = 3, e10 = 0, e11 = 2
    alpha = gat.attention_weights(nodes, torch.ones(1, 2, 2, dtype=torch.bool))
    expected = torch.softmax(torch.tensor([[1.0, 3.0], [0.0, 2.0]]), dim=-1)
    torch.testing.assert_close(alpha[0, 0], expected)


def test_edge_modes_and_the_activation_source():
    logits = [torch.randn(4, g.classes) for g in BP4D_GROUPS]
    eye = torch.eye(12, dtype=torch.bool)
    masks = {mode: MDHR(12, small(hsr={"crm": {"edge_mode": mode}})).cross.neighbourhood(logits, 4, 12)
             for mode in ("cross_region_all", "local", "full")}
    s = MDHR(12, small()).cross.other_region
    assert torch.equal(masks["cross_region_all"][0], s | eye)
    assert torch.equal(masks["local"][0], ~s)
    assert masks["full"].all()
    with pytest.raises(ConfigError, match="cross_region_activated reads the combination heads"):
        small(hsr={"aux": False})
    model = MDHR(12, small()).eval()
    x = clips()
    out = model(x, intermediates=True)
    assert not model.cross.activations([t.requires_grad_() for t in out["aux_logits"]], 12).requires_grad
    batch = {"image": x, "target": torch.ones(2, 4, 12), "mask": torch.ones(2, 4, 12, dtype=torch.bool)}
    other = {**batch, "target": torch.zeros(2, 4, 12)}
    loss = MDHRLoss(model.config, np.full(12, 0.3))
    torch.testing.assert_close(mdhr_step(model, loss, batch).scores, mdhr_step(model, loss, other).scores)


# --- TCN, SC, loss (§3.4, eq. 10–12) ---------------------------------------------------------------------------

def test_tcn_mixes_only_the_same_au_within_two_frames():
    torch.manual_seed(0)
    tcn = PerAUTemporalConv(3, 4, 5).eval()
    x = torch.randn(2, 9, 3, 4)
    changed = x.clone()
    changed[0, 4, 1] += 1.0
    difference = (tcn(changed) - tcn(x)).abs().sum(-1)
    assert difference[1].sum() == 0  # the other clip
    assert difference[0][:, [0, 2]].sum() == 0  # the other AUs
    assert (difference[0][:, 1] > 0).tolist() == [False, False, True, True, True, True, True, False, False]
    assert count_parameters(PerAUTemporalConv(12, 512, 5)) == 36_888
    # then BatchNorm over the N AU channels (statistics over frames and features) and ReLU: shifting one
    # AU's running mean silences that AU only
    before = tcn(x)
    with torch.no_grad():
        tcn.norm.running_mean[1] = 1e3
    after = tcn(x)
    assert tcn.norm.num_features == 3 and not after[..., 1, :].any() and after[..., 1, :].shape == (2, 9, 4)
    torch.testing.assert_close(after[..., [0, 2], :], before[..., [0, 2], :])


def test_tcn_switches_share_the_convolution_or_mix_channels():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 3, 4)
    x[..., 2, :] = x[..., 0, :]  # AUs 0 and 2 carry the same sequence
    shared = PerAUTemporalConv(3, 4, 5, per_au=False).eval()
    out = shared(x)
    torch.testing.assert_close(out[..., 2, :], out[..., 0, :])  # one convolution for every AU
    assert count_parameters(shared) == 4 * 5 + 4 + 2 * 3
    own = PerAUTemporalConv(3, 4, 5).eval()
    full = PerAUTemporalConv(3, 4, 5, depthwise=False).eval()
    for tcn in (own, full):
        torch.nn.init.constant_(tcn.conv.bias, 50.0)  # positive pre-activations: ReLU hides no difference
    assert not torch.allclose(*own(x)[..., [0, 2], :].unbind(-2))
    changed = x.clone()
    changed[0, 4, 1, 0] += 1.0
    difference = (full(changed) - full(x)).abs()
    assert (difference[0, 4, 1] > 0).all() and difference[0, :, [0, 2]].sum() == 0  # all channels, one AU
    assert count_parameters(full) == 3 * (4 * 4 * 5 + 4) + 2 * 3


def test_step_convolutions_without_bn_relu_are_the_convolutions_alone():
    plain = MDHR(12, small(mfd={"k": 2, "step_conv_bn_relu": False}))
    assert all(len(conv) == 1 and isinstance(conv[0], StepConv) for conv in plain.mfd.step_convs)
    assert count_parameters(MDHR(12, small())) - count_parameters(plain) == 4 * 2 * 512  # BN per scale
    differences = torch.randn(2, 64, 16, 16)
    assert (plain.mfd.step_convs[0](differences) < 0).any()


def test_classifier_outputs_cosines_in_unit_interval():
    model = MDHR(12, small()).eval()
    out = model(clips() * 10, intermediates=True)
    p = out["probabilities"]
    assert p.shape == (2, 4, 12) and (p >= 0).all() and (p <= 1).all()
    expected = F.cosine_similarity(F.relu(out["temporal"]), F.relu(model.classifier.prototypes), dim=-1)
    torch.testing.assert_close(p, expected.clamp(max=1.0), atol=1e-6, rtol=1e-5)


def test_weighted_asymmetric_loss_on_hand_numbers_and_its_gradient():
    p = torch.tensor([[0.8, 0.3, 0.6], [0.1, 0.9, 0.5]], requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    w = torch.tensor([1.0, 2.0, 0.5])
    loss = WeightedAsymmetricLoss(w)(p, y, torch.ones_like(y))
    entries = [-1.0 * np.log(0.8), -2.0 * 0.3 * np.log(0.7), -0.5 * np.log(0.6),
               -1.0 * 0.1 * np.log(0.9), -2.0 * np.log(0.9), -0.5 * 0.5 * np.log(0.5)]
    assert loss.item() == pytest.approx(np.mean(entries), rel=1e-6)
    loss.backward()
    # a negative entry's gradient is w·p̃/(1−p) (p̃ detached), over 6 entries: not d/dp of p·log(1−p)
    assert p.grad[0, 1].item() == pytest.approx(2.0 * 0.3 / 0.7 / 6, rel=1e-5)
    assert p.grad[0, 0].item() == pytest.approx(-1.0 / 0.8 / 6, rel=1e-5)
    tiny = WeightedAsymmetricLoss(torch.ones(1))(torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    assert tiny.item() == pytest.approx(-np.log(1e-8))  # the log clamp
    masked = WeightedAsymmetricLoss(w)(p.detach(), y, torch.tensor([[1, 0, 0], [0, 0, 0]]))
    assert masked.item() == pytest.approx(-np.log(0.8), rel=1e-6)


def test_au_weights_are_normalised_inverse_rates():
    rates = np.array([0.5, 0.25, 0.25])
    weights = normalised_inverse_rates(rates)  # 1/r = 2, 4, 4 → ×3/10
    torch.testing.assert_close(weights, torch.tensor([0.6, 1.2, 1.2]))
    assert weights.sum().item() == pytest.approx(3.0)


def test_total_loss_adds_a_hundredth_of_the_mean_group_cross_entropy():
    torch.manual_seed(0)
    config = small()
    loss = MDHRLoss(config, np.full(12, 0.25))
    targets = (torch.rand(2, 4, 12) > 0.5).float()
    mask = torch.ones_like(targets, dtype=torch.bool)
    logits = [torch.randn(8, g.classes) for g in BP4D_GROUPS]
    outputs = {"probabilities": torch.rand(2, 4, 12), "aux_logits": logits}
    terms = loss(outputs, targets, mask)
    flat = targets.flatten(0, 1)
    expected = np.mean([F.cross_entropy(g, combination_index(flat, p)).item()
                        for g, p in zip(logits, group_indices(BP4D_GROUPS, 12))])
    assert terms["aux"].item() == pytest.approx(0.01 * expected, rel=1e-5)
    assert terms["au"].item() == pytest.approx(WeightedAsymmetricLoss(torch.ones(12))(
        outputs["probabilities"], targets, mask).item(), rel=1e-5)  # equal rates: unit weights
    mask[0, 0, BP4D_AUS.index(6)] = False  # an unknown label drops that frame from its group's CE only
    partial = loss(outputs, targets, mask)["aux"].item()
    mid = group_indices(BP4D_GROUPS, 12)[1]
    ce_mid = F.cross_entropy(logits[1][1:], combination_index(flat[1:], mid)).item()
    others = [F.cross_entropy(g, combination_index(flat, p)).item()
              for i, (g, p) in enumerate(zip(logits, group_indices(BP4D_GROUPS, 12))) if i != 1]
    assert partial == pytest.approx(0.01 * np.mean([*others[:1], ce_mid, *others[1:]]), rel=1e-5)
    assert set(MDHRLoss(small(hsr={"aux": False, "crm": {"edge_mode": "full"}}), np.full(12, 0.25))(
        {**outputs, "aux_logits": []}, targets, mask)) == {"au"}
    summed = MDHRLoss(small(hsr={"aux_reduction": "sum"}), np.full(12, 0.25))(outputs, targets, mask)["aux"]
    assert summed.item() == pytest.approx(4 * partial, rel=1e-5)  # BP4D's four groups


# --- end to end, switches, cost --------------------------------------------------------------------------------

def test_end_to_end_shapes_for_bp4d_and_disfa():
    for num_aus, classes in ((12, [16, 2, 8, 16]), (8, [8, 4, 8])):
        out = MDHR(num_aus, small()).eval()(clips(), intermediates=True)
        assert out["probabilities"].shape == (2, 4, num_aus)
        assert [tuple(t.shape) for t in out["aux_logits"]] == [(8, c) for c in classes]
        assert out["nodes"].shape == out["relations"].shape == (8, num_aus, 16)


def test_table3_switches_remove_their_modules():
    full = MDHR(12, small())
    bare = MDHR(12, small(mfd={"enabled": False}, hsr={"afe": False, "aux": False, "crm": {"enabled": False}},
                          tcn={"enabled": False}))
    assert bare.mfd is None and bare.cross is None and bare.tcn is None and bare.local.heads is None
    assert count_parameters(bare) < count_parameters(full)
    assert bare.eval()(clips()).shape == (2, 4, 12)
    terms = mdhr_step(full.train(), MDHRLoss(full.config, np.full(12, 0.3)),
                      {"image": clips(), "target": torch.ones(2, 4, 12), "mask": torch.ones(2, 4, 12)}).terms
    assert set(terms) == {"au", "aux"} and all(torch.isfinite(t) for t in terms.values())


def test_parameters_at_the_papers_configuration_match_the_derived_counts():
    """Spec §5.5: the BP4D / ResNet-50 model counts ≈ 93.2 M (the authors' model: 93.23 M)."""
    model = MDHR(12, MDHRConfig(pretrained=False))
    assert count_parameters(model.backbone) == 23_508_032
    assert count_parameters(model.mfd.step_convs) == 62_939_136
    assert count_parameters(model.mfd.weights) == 131_524
    assert count_parameters(model.mfd.projection) == count_parameters(model.static_projection) == 1_050_112
    assert count_parameters(model.local) == 4_240_426
    assert count_parameters(model.cross) == 263_680
    assert count_parameters(model.classifier) == 6_144
    assert count_parameters(model) == pytest.approx(93.23e6, rel=0.01)
    assert count_parameters(MDHR(8, MDHRConfig(pretrained=False)).local) == 2_119_700


def test_swin_b_parameters_and_macs_match_the_derived_counts():
    """Spec §5.5, Swin-B column: backbone ≈ 86.7 M, step convs 15,740,928, AW 65,988, each projection 525,824
    (C_L = 1024), the rest as with ResNet-50; whole model ≈ 108.1 M, ≈ 16.2 G MACs per frame."""
    with torch.device("meta"):
        model = MDHR(12, MDHRConfig(backbone="swin_b", pretrained=False))
    assert count_parameters(model.backbone) == 86_743_224
    assert count_parameters(model.mfd.step_convs) == 15_740_928
    assert count_parameters(model.mfd.weights) == 65_988
    assert count_parameters(model.mfd.projection) == count_parameters(model.static_projection) == 525_824
    assert (count_parameters(model.local), count_parameters(model.cross)) == (4_240_426, 263_680)
    cost = paper_cost(backbone="swin_b")
    assert cost["parameters"] == count_parameters(model) == pytest.approx(108.1e6, rel=0.01)
    assert cost["macs_per_frame"] == pytest.approx(16.2e9, rel=0.02)


def test_swin_taps_are_the_stage_inputs_or_outputs_and_x_l_the_normed_last_stage():
    """Spec §3.1 / A6: the code taps what enters each stage (the patch embedding, then each merging); x_L is
    the LayerNorm'd stage-4 output, i.e. torchvision's own path to its pooled features."""
    torch.manual_seed(0)
    frames = torch.randn(2, 3, 64, 64)
    swin = TappedSwin("swin_b", pretrained=False, trainable=True, tap="stage_inputs", drop_path=0.5).eval()
    with torch.no_grad():
        taps, last = swin(frames)
        swin.tap = "stage_outputs"
        out_taps, out_last = swin(frames)
        assert [tuple(tap.shape) for tap in taps] == [(2, 128, 16, 16), (2, 256, 8, 8), (2, 512, 4, 4),
                                                      (2, 1024, 2, 2)]
        assert [tap.shape for tap in out_taps] == [tap.shape for tap in taps]
        for stage, tap in enumerate(taps):  # input of stage s: features[:2s+1]; its output: features[:2s+2]
            torch.testing.assert_close(tap, swin.features[:2 * stage + 1](frames).permute(0, 3, 1, 2))
            torch.testing.assert_close(out_taps[stage], swin.features[:2 * stage + 2](frames).permute(0, 3, 1, 2))
        torch.testing.assert_close(last, swin.norm(swin.features(frames)).permute(0, 3, 1, 2))
        torch.testing.assert_close(out_last, last)
        assert not torch.allclose(out_taps[3], taps[3])


def test_swin_imagenet_weights_come_only_from_the_local_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelError, match=r"swin_b-68c6b09e\.pth.*not cached.*pretrained: false"):
        MDHR(12, MDHRConfig(backbone="swin_b"))


def test_swin_drop_path_and_a_fixed_swin_backbone():
    model = MDHR(12, small(backbone="swin_b", swin_drop_path=0.2, train_backbone=False)).train()
    rates = [module.p for module in model.backbone.modules() if isinstance(module, StochasticDepth)]
    assert rates[0] == 0.0 and max(rates) == pytest.approx(0.2) and rates == sorted(rates)  # linear, as torchvision
    assert not model.backbone.training and not any(p.requires_grad for p in model.backbone.parameters())
    assert model(clips(batch=1, frames=3)).shape == (1, 3, 12)


def test_cost_at_the_papers_configuration_as_the_tables_report_it():
    """Counted on the meta device by the report: 93.2 M parameters and, per frame, ≈ 4.1 G MACs for the
    backbone plus ≈ 2.9 G of amortised step convolutions (15 differences for 16 frames) ≈ 7.0 G."""
    cost = paper_cost()
    assert cost["parameters"] == pytest.approx(93.23e6, rel=0.01)
    assert cost["macs_per_frame"] == pytest.approx(7.0e9, rel=0.05)
    assert paper_cost(8)["parameters"] == pytest.approx(91.1e6, rel=0.01)  # DISFA's 8 AUs


def test_paper_defaults_and_rejections():
    config = MDHRConfig()
    assert (config.backbone, config.clip_length, config.mfd.k, config.feat_dim) == ("resnet50", 16, 5, 512)
    assert (config.mfd.pad_to_grid, config.mfd.fusion, config.mfd.aw_hidden) == (False, "adaptive", 16)
    assert (config.hsr.aux_weight, config.hsr.crm.edge_mode, config.tcn.kernel_size) == (
        0.01, "cross_region_activated", 5)
    for changes, message in (({"tcn": {"kernel_size": 4}}, "must be odd"),
                             ({"mfd": {"layers": [3, 1]}}, "increasing backbone stages"),
                             ({"backbone": "vgg16"}, "is not one of"),
                             ({"backbone": "swin_b", "pretrained": False, "init_from": "baseline"},
                              "copies a ResNet trunk"),
                             ({"swin_tap": "stage_middles"}, "swin_tap"),
                             ({"pretrained": True, "init_from": "baseline"}, "choose one")):
        with pytest.raises(ConfigError, match=message):
            small(**changes)
    assert dataclasses.replace(config, pretrained=False).pretrained is False


# --- the rest of the spec's proposed YAML (§6): video context, GAT options, the oracle, classifier, loss --------

def test_video_context_averages_true_neighbours_without_padding():
    # k = 1, three central frames with one context frame on each side: differences d1..d4 = 1, 2, 3, 4
    differences = torch.arange(1.0, 5.0).view(4, 1, 1, 1)
    out = temporal_average(differences, 5, 1, context=True).flatten()
    torch.testing.assert_close(out, torch.tensor([1.5, 2.5, 3.5]))  # frame t: (d_t + d_(t+1)) / 2
    clip_local = temporal_average(differences, 5, 1).flatten()
    torch.testing.assert_close(clip_local, torch.tensor([0.5, 1.5, 2.5, 3.5, 2.0]))  # zeros beyond the clip


def test_video_context_model_predicts_the_central_frames_and_hears_the_context():
    torch.manual_seed(0)
    model = MDHR(12, small(mfd={"k": 2, "temporal_context": "video"})).eval()
    assert model.config.context == 2 and model.config.clips.loaded_frames == 8
    x = clips(frames=8)
    out = model(x, intermediates=True)
    assert out["probabilities"].shape == (2, 4, 12) and out["g"].shape[0] == 2 * 4
    changed = x.clone()
    changed[:, 0] += 1.0  # the first context frame: only d1, which reaches central frame 0 alone (k = 2)
    g_changed = model(changed, intermediates=True)["g"].unflatten(0, (2, 4))
    moved = (g_changed - out["g"].unflatten(0, (2, 4))).abs().flatten(2).amax(-1)
    assert (moved[:, 0] > 0).all() and not moved[:, 1:].any()
    with pytest.raises(ModelError, match="with T > 4"):
        model(clips(frames=4))
    assert MDHR(12, small(mfd={"k": 2, "temporal_context": "video", "enabled": False})).config.context == 0


def test_video_context_costs_the_context_frames():
    clip = model_cost(METHOD, small(), 12, 64)
    video = model_cost(METHOD, small(mfd={"k": 2, "temporal_context": "video"}), 12, 64)
    # per predicted frame: the backbone runs on 8 frames for 4 (×2), the step convolutions on 7 differences for 3
    # (×7/3), the modules after MFD on the 4 alone (×1)
    assert video[0] == clip[0] and 1.8 < video[1] / clip[1] < 7 / 3


def gat_reference(gat: MaskedGraphAttention, nodes: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Eq. 9 per head, written out with loops over heads and nodes."""
    heads, width = gat.heads, nodes.shape[-1] // gat.heads
    projected = gat.weight(nodes)
    out = torch.zeros_like(nodes)
    for h in range(heads):
        wv = projected[..., h * width:(h + 1) * width]
        r1, r2 = gat.attention[:width, h], gat.attention[width:, h]
        for n in range(nodes.shape[-2]):
            e = F.leaky_relu(wv[..., n, None, :] @ r1[:, None] + (wv @ r2[:, None]), gat.negative_slope)[..., 0]
            e = e.masked_fill(~allowed[..., n, :], float("-inf"))
            out[..., n, h * width:(h + 1) * width] = (torch.softmax(e, -1)[..., None] * wv).sum(-2)
    return out


def test_multi_head_attention_concatenates_heads_of_width_d_over_h():
    torch.manual_seed(0)
    nodes, allowed = torch.randn(3, 5, 8), torch.rand(3, 5, 5) < 0.5
    allowed |= torch.eye(5, dtype=torch.bool)
    for heads in (1, 2, 4):
        gat = MaskedGraphAttention(8, heads=heads)
        assert gat.attention.shape == (16 // heads, heads) and count_parameters(gat) == 8 * 8 + 16 + 8
        alpha = gat.attention_weights(nodes, allowed)
        assert alpha.shape == (3, heads, 5, 5) and torch.equal(alpha > 0, allowed[:, None].expand_as(alpha))
        torch.testing.assert_close(gat(nodes, allowed), F.elu(gat_reference(gat, nodes, allowed) + nodes + gat.bias))
    with pytest.raises(ConfigError, match="divisor"):
        MaskedGraphAttention(8, heads=3)
    with pytest.raises(ConfigError, match="heads: 3 must divide feat_dim"):
        small(hsr={"crm": {"heads": 3}})


def test_gat_residual_activation_and_a_node_with_no_neighbour():
    torch.manual_seed(1)
    nodes = torch.randn(2, 4, 6, requires_grad=True)
    eye = torch.eye(4, dtype=torch.bool).expand(2, 4, 4)
    plain = MaskedGraphAttention(6, residual=False, activation="none")
    torch.testing.assert_close(plain(nodes, eye), plain.weight(nodes) + plain.bias)
    relu = MaskedGraphAttention(6, activation="relu")
    torch.testing.assert_close(relu(nodes, eye), F.relu(relu.weight(nodes) + nodes + relu.bias))
    nothing = torch.zeros(2, 4, 4, dtype=torch.bool)  # no self-loop, nothing active: no message, no NaN
    gat = MaskedGraphAttention(6)
    out = gat(nodes, nothing)
    torch.testing.assert_close(out, F.elu(nodes + gat.bias))
    out.sum().backward()
    assert torch.isfinite(nodes.grad).all()
    with pytest.raises(ConfigError, match="activation"):
        MaskedGraphAttention(6, activation="tanh")


def test_self_loop_and_mask_threshold_on_the_effective_adjacency():
    logits = [torch.randn(4, g.classes) for g in BP4D_GROUPS]
    cross = MDHR(12, small()).cross
    active = cross.activations(logits, 12)
    strengths = cross.edge_strengths(active, 4)  # A = S·a + δ
    eye = torch.eye(12)
    torch.testing.assert_close(strengths, cross.other_region.float() * active[:, None, :].float() + eye)
    assert torch.equal(cross.neighbourhood(logits, 4, 12), strengths >= 0.1)
    at_one = MDHR(12, small(hsr={"crm": {"mask_threshold": 1.0}})).cross
    assert torch.equal(at_one.neighbourhood(logits, 4, 12), strengths >= 0.1)  # A's edges are exactly 1
    no_loop = MDHR(12, small(hsr={"crm": {"self_loop": False}})).cross
    allowed = no_loop.neighbourhood(logits, 4, 12)
    assert not allowed.diagonal(dim1=-2, dim2=-1).any() and torch.equal(allowed | eye.bool(), strengths >= 0.1)
    for mode in ("local", "full"):
        without = MDHR(12, small(hsr={"crm": {"edge_mode": mode, "self_loop": False}})).cross
        assert not without.neighbourhood(logits, 4, 12).diagonal(dim1=-2, dim2=-1).any()
    for threshold in (0.0, 1.5):
        with pytest.raises(ConfigError, match="mask_threshold"):
            small(hsr={"crm": {"mask_threshold": threshold}})


def test_the_gt_oracle_reads_known_positive_labels_only_when_asked():
    torch.manual_seed(0)
    oracle = MDHR(12, small(hsr={"aux": False, "crm": {"activation_source": "gt"}})).eval()  # needs no heads
    labels = torch.zeros(2, 4, 12, dtype=torch.bool)
    labels[..., BP4D_AUS.index(12)] = True
    allowed = oracle.cross.neighbourhood([], 8, 12, labels)
    region = oracle.cross.other_region
    assert torch.equal(allowed[0], region & labels[0, 0][None, :] | torch.eye(12, dtype=torch.bool))
    x = clips()
    batch = {"image": x, "target": labels.float(), "mask": torch.ones(2, 4, 12, dtype=torch.bool)}
    assert not torch.equal(mdhr_predict(oracle, batch), mdhr_predict(oracle, {**batch, "target": 1 - batch["target"]}))
    with pytest.raises(ModelError, match="gt reads the frames' labels"):
        oracle(x)
    assert METHOD.predict is mdhr_predict


def test_linear_classifier_is_a_sigmoid_of_a_per_au_score():
    model = MDHR(12, small(classifier="linear")).eval()
    out = model(clips(), intermediates=True)
    head = model.classifier[0]
    expected = torch.sigmoid((out["temporal"] * head.weight).sum(-1) + head.bias)
    torch.testing.assert_close(out["probabilities"], expected)
    assert count_parameters(model.classifier) == 12 * 16 + 12


def test_loss_switches_detach_and_log_clamp():
    p = torch.tensor([[0.3]], requires_grad=True)
    y, known = torch.zeros(1, 1), torch.ones(1, 1)
    WeightedAsymmetricLoss(torch.ones(1), detach_factor=False)(p, y, known).backward()
    assert p.grad.item() == pytest.approx(-np.log(0.7) + 0.3 / 0.7, rel=1e-5)  # d/dp of −p·log(1 − p)
    loss = MDHRLoss(small(loss={"log_clamp_eps": 1e-3, "main": "bce"}), np.full(12, 0.25))
    zero = loss.au_loss(torch.zeros(1, 12), torch.ones(1, 12), torch.ones(1, 12))
    assert zero.item() == pytest.approx(-np.log(1e-3), rel=1e-6)
    assert not MDHRLoss(small(loss={"detach_neg_factor": False}), np.full(12, 0.25)).au_loss.detach_factor
