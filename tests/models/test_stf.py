"""STF model: shape trace (§1.2–1.6), module semantics (eq. 1–5), ablation switches (§2.3, Table 1), registry;
choices where the paper is silent as docs/methods/stf.md records them."""
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from aubench.config import from_mapping
from aubench.data.samples import ClipSampling
from aubench.errors import ConfigError, ModelError
from aubench.eval.efficiency import count_parameters
from aubench.losses.weighted_bce import WeightedBCELoss
from aubench.models.blocks import graph as graph_module
from aubench.models.blocks.graph import TopKGraphLayer
from aubench.models.stf import (
    ACM,
    METHOD,
    SFF,
    SRM,
    STF,
    TRM,
    AUProjection,
    STFConfig,
    SumFusion,
    TransformerTRM,
    build_loss,
    build_model,
)

# A cheap configuration for behaviour tests: T=4 clips of 64×64 frames, d=32.
SMALL = STFConfig(clip_length=4, d=32)


def small_clips(batch=2, frames=4, size=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=generator)


def modules(use_srm, use_trm, use_sff, base=STFConfig()):
    """`base` with the SRM, TRM and SFF switched on or off (the √/× columns of Table 1)."""
    return dataclasses.replace(base, use_srm=use_srm, use_trm=use_trm, use_sff=use_sff)


# --- configuration ---------------------------------------------------------------------------------------

def test_config_rejects_typos_and_bad_values():
    """Configs reject unknown keys (with a hint) and out-of-range switches with a ConfigError naming the key."""
    assert from_mapping(STFConfig, {"srm_top_k": 4, "sff_reduction": 1}, "stf").srm_top_k == 4
    with pytest.raises(ConfigError, match="srm_topk.*srm_top_k"):
        from_mapping(STFConfig, {"srm_topk": 4}, "stf")
    for bad in ({"trm_variant": "lstm"}, {"topk_impl": "sorted"}, {"bn_axis": "channel"},
                {"sff_gate_target": "both"}, {"au_proj_type": "mlp"}, {"ablation_replacement": "zero"},
                {"backbone": "vgg16"}, {"d": 0}, {"trm_top_k": 16}, {"clip_length": 3, "trm_top_k": 3},
                {"trm_variant": "transformer", "d": 100}):
        with pytest.raises(ConfigError):
            STFConfig(**bad)
    assert STFConfig(clip_length=3, use_trm=False).clip_length == 3  # only the TRM needs T−1 ≥ K


def test_split_gating_needs_r_equal_one():
    """Eq. 4 with r ≠ 1 and gate_target=split is undefined (docs/methods/stf.md) → clear error."""
    with pytest.raises(ConfigError, match="sff_gate_target.*sff_reduction"):
        STFConfig(sff_reduction=0.5)
    assert STFConfig(sff_reduction=0.5, sff_gate_target="input").sff_width == 128
    assert STFConfig(sff_reduction=0.5, use_sff=False).sff_width == 128


def test_srm_top_k_must_fit_the_au_count():
    """K ≤ N for the SRM graph over N AUs (K5 is valid for N = 8 and 12, K = 9 is not for DISFA's 8)."""
    with pytest.raises(ConfigError, match="srm_top_k"):
        STF(8, STFConfig(clip_length=4, d=16, srm_top_k=9))


# --- shapes (§1.2–1.6) -----------------------------------------------------------------------------------

def _trace(model, clips):
    """Run the model, recording the backbone map, both graphs' A'' and every GNN's input."""
    shapes = {"graphs": [], "gnn_inputs": []}
    hooks = [model.backbone.trunk.register_forward_hook(lambda m, a, out: shapes.update(layer4=tuple(out.shape)))]

    def record_graph(layer, args, out):
        shapes["gnn_inputs"].append(tuple(args[0].shape))
        shapes["graphs"].append(tuple(layer.graph(args[0]).shape))

    hooks += [m.register_forward_hook(record_graph) for m in model.modules() if isinstance(m, TopKGraphLayer)]
    if isinstance(model.sff, SFF):
        hooks.append(model.sff.fusion_fc.register_forward_hook(
            lambda m, a, out: shapes.update(concat=tuple(a[0].shape), x_st=tuple(out.shape))))
    stages = model.forward_intermediates(clips)
    for hook in hooks:
        hook.remove()
    shapes.update({name: tuple(value.shape) for name, value in stages.items()})
    return shapes


@pytest.mark.parametrize("num_aus", [12, 8])
def test_shape_trace_at_paper_size(num_aus):
    """B=2, T=16, 256×256, d=256 (run on the meta device: shapes only, no compute)."""
    with torch.device("meta"):
        model = STF(num_aus, STFConfig())
        clips = torch.empty(2, 16, 3, 256, 256)
    shapes = _trace(model, clips)
    n = num_aus
    assert shapes["layer4"] == (32, 512, 8, 8)
    assert shapes["tokens"] == (32, 64, 512)
    assert shapes["x_linear"] == shapes["x_space"] == shapes["x_time"] == shapes["f_st"] == (2, 16, n, 256)
    assert shapes["gnn_inputs"] == [(32, n, 256), (2 * n, 15, 256)]  # SRM (B·T, N, d); TRM diff (B·N, T−1, d)
    assert shapes["graphs"] == [(32, n, n), (2 * n, 15, 15)]
    assert shapes["concat"] == shapes["x_st"] == (2, 16, n, 512)
    assert shapes["probabilities"] == (2, 16, n)


def test_forward_values_and_gradients_at_reduced_size():
    """A real forward/backward (B=2, T=4, 64×64): finite probabilities; every parameter gets a gradient.

    (Their values, eq. 5's cosine scores, are checked against the formula in
    test_acm_is_the_cosine_score_without_sigmoid.)
    """
    torch.manual_seed(0)
    model = STF(12, SMALL)
    probabilities = model(small_clips())
    assert probabilities.shape == (2, 4, 12)
    assert torch.isfinite(probabilities).all()
    probabilities.sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_clip_length_must_match_the_built_model():
    """The TRM's BN is sized T−1, so clips of another length are refused with a ModelError."""
    model = STF(12, SMALL)
    with pytest.raises(ModelError, match="clip_length"):
        model(small_clips(frames=5))
    with pytest.raises(ModelError, match=r"\(B, T, 3, H, W\)"):
        model(torch.randn(2, 3, 64, 64))


# --- per-AU projections (§1.3) ------------------------------------------------------------------------

def test_tokenwise_projection_equals_projection_of_the_pooled_vector():
    """Token-wise Linear^(i) (docs/methods/stf.md, "Architecture") then token mean == Linear^(i) of the mean token."""
    torch.manual_seed(0)
    tokens = torch.randn(6, 64, 512)
    tokenwise = AUProjection(512, 12, 256, apply_on="tokens")
    pooled = AUProjection(512, 12, 256, apply_on="pooled")
    pooled.load_state_dict(tokenwise.state_dict())
    out = tokenwise(tokens)
    assert out.shape == (6, 12, 256)
    torch.testing.assert_close(out, pooled(tokens), atol=1e-5, rtol=1e-5)
    # AU i's slice is its own Linear^(i): rows i·d .. (i+1)·d of the stacked weight.
    weight, bias = tokenwise.linear.weight[3 * 256:4 * 256], tokenwise.linear.bias[3 * 256:4 * 256]
    torch.testing.assert_close(out[:, 3], tokens.mean(1) @ weight.T + bias, atol=1e-5, rtol=1e-5)
    assert count_parameters(tokenwise) == 1_575_936  # 12 × Linear(512, 256)


def test_linear_bn_relu_projection_option():
    """Option au_proj_type=linear_bn_relu (ME-GraphAU block): non-negative before pooling, adds one BN."""
    torch.manual_seed(0)
    projection = AUProjection(16, 3, 8, proj_type="linear_bn_relu")
    out = projection(torch.randn(4, 5, 16))
    assert out.shape == (4, 3, 8) and out.min() >= 0
    assert count_parameters(projection) == 16 * 24 + 24 + 2 * 24


# --- SRM / TRM (eq. 1–3) --------------------------------------------------------------------------------

def test_srm_and_trm_both_consume_x_linear():
    """SRM and TRM run in parallel (docs/methods/stf.md): an identity SRM leaves x_time bit-identical, and vice
    versa."""
    torch.manual_seed(0)
    model = STF(12, SMALL).eval()
    clips = small_clips()
    with torch.no_grad():
        reference = model.forward_intermediates(clips)
        srm, trm = model.srm, model.trm
        model.srm = nn.Identity()
        without_srm = model.forward_intermediates(clips)
        model.srm, model.trm = srm, nn.Identity()
        without_trm = model.forward_intermediates(clips)
    assert torch.equal(without_srm["x_time"], reference["x_time"])
    assert torch.equal(without_srm["x_space"], reference["x_linear"])
    assert torch.equal(without_trm["x_space"], reference["x_space"])
    assert torch.equal(without_trm["x_time"], reference["x_linear"])


def test_trm_differences_then_pools_per_au_hand_example():
    """Eq. 3 wiring on hand numbers, with the GNN replaced by identity: per AU, diffs x[t+1]−x[t] then pooling.

    AU 1: 0, 1, 3, 6 → diffs 1, 2, 3 → pooled 1, 1.5, 2.5, 3. AU 2: 0, 0, 0, 10 → 0, 0, 10 → 0, 0, 5, 10.
    """
    trm = TRM(1, 2, 4, 3, STFConfig(clip_length=4, d=1))
    trm.gnns[0] = nn.Identity()
    x_linear = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 10.0]]).view(1, 4, 2, 1)  # (B, T, N, d)
    expected = torch.tensor([[1.0, 0.0], [1.5, 0.0], [2.5, 5.0], [3.0, 10.0]]).view(1, 4, 2, 1)
    torch.testing.assert_close(trm(x_linear), expected)


def test_trm_runs_the_gnn_on_the_difference_graph():
    """Eq. 3: x_time = pool(GNN(diff)), one (B·N, T−1, d) batch of per-(clip, AU) graphs; static clips stay finite."""
    torch.manual_seed(0)
    config = STFConfig(clip_length=6, d=8)
    trm = TRM(8, 3, 6, 3, config).eval()
    x_linear = torch.randn(2, 6, 3, 8)
    differences = (x_linear[:, 1:] - x_linear[:, :-1]).transpose(1, 2).reshape(6, 5, 8)
    gnn_out = trm.gnns[0](differences).view(2, 3, 5, 8)
    pooled = torch.cat([gnn_out[:, :, :1], (gnn_out[:, :, 1:] + gnn_out[:, :, :-1]) / 2, gnn_out[:, :, -1:]], dim=2)
    torch.testing.assert_close(trm(x_linear), pooled.transpose(1, 2))
    static = trm(torch.ones(2, 6, 3, 8))  # zero differences → all-tied graph, no NaN
    assert torch.isfinite(static).all()


def test_srm_k1_is_nodewise():
    """SRM with K=1 and include_self has A'' = I: x_space = ReLU(BN(V x + U x)) per node."""
    torch.manual_seed(0)
    srm = SRM(16, 6, 4, 1, STFConfig(clip_length=4, d=16, srm_top_k=1)).eval()
    x_linear = torch.randn(2, 4, 6, 16)
    layer = srm.gnns[0][0]
    flat = x_linear.reshape(8, 6, 16)
    expected = torch.relu(layer.norm(layer.self_fc(flat) + layer.nbr_fc(flat))).view(2, 4, 6, 16)
    torch.testing.assert_close(srm(x_linear), expected)


def test_graphs_are_built_from_detached_features(monkeypatch):
    """§1.3 (and the TRM too, as docs/methods/stf.md reads §1.4): SRM and TRM similarities carry no gradient
    (unless detach_graph=False)."""
    seen = []
    original = graph_module.cosine_similarity_graph

    def recording(x, detach=True, eps=1e-12):
        similarity = original(x, detach=detach, eps=eps)
        seen.append((tuple(similarity.shape), similarity.requires_grad))
        return similarity

    monkeypatch.setattr(graph_module, "cosine_similarity_graph", recording)
    model = STF(12, SMALL)
    model(small_clips())
    assert seen == [((8, 12, 12), False), ((24, 3, 3), False)]  # SRM (B·T, N, N), TRM (B·N, T−1, T−1)
    seen.clear()
    STF(12, dataclasses.replace(SMALL, detach_graph=False))(small_clips())
    assert [requires_grad for _, requires_grad in seen] == [True, True]


def test_gnn_switches_reach_both_graph_modules():
    """Shared graph conventions (docs/methods/stf.md, "Graphs"): K, include_self, impl, BN axis, residual, layers."""
    config = STFConfig(clip_length=6, d=16, srm_top_k=2, trm_top_k=4, topk_impl="threshold", bn_axis="feature",
                       gnn_residual=True, include_self=False, gnn_layers=2)
    model = STF(5, config)
    srm_layers = [m for m in model.srm.modules() if isinstance(m, TopKGraphLayer)]
    trm_layers = [m for m in model.trm.modules() if isinstance(m, TopKGraphLayer)]
    assert len(srm_layers) == len(trm_layers) == 2
    assert {(m.top_k, m.num_nodes) for m in srm_layers} == {(2, 5)}
    assert {(m.top_k, m.num_nodes) for m in trm_layers} == {(4, 5)}
    assert all(m.topk_impl == "threshold" and m.bn_axis == "feature" and m.residual and not m.include_self
               for m in srm_layers + trm_layers)
    follows = STF(5, dataclasses.replace(config, trm_top_k_follows_srm=True))
    assert {m.top_k for m in follows.trm.modules() if isinstance(m, TopKGraphLayer)} == {2}


def test_topk_ablation_changes_only_the_srm():
    """Tables 4/5: srm_top_k ∈ {1..5} changes the SRM's K; the TRM stays at K = 3; params unchanged."""
    for k in (1, 2, 4, 5):
        with torch.device("meta"):
            model = STF(12, STFConfig(srm_top_k=k))
        assert model.srm.gnns[0][0].top_k == k
        assert model.trm.gnns[0][0].top_k == 3
        assert count_parameters(model) == 13_348_214


def test_weight_sharing_options():
    """One GNN shared by all AUs (TRM) / frames (SRM) by default; options give N / T copies (docs/methods/stf.md).

    Shared TRM = 2(d²+d) + 2(T−1) = 131,614 params; N=12 copies = 1,579,368, so the full
    model grows to 14,795,968 (about +1.45 M, far from Table 1's 13.31 M).
    """
    with torch.device("meta"):
        shared = STF(12)
        separate_trm = STF(12, STFConfig(trm_share_weights=False))
        separate_srm = STF(12, STFConfig(srm_share_weights=False))
    assert count_parameters(shared.trm) == 131_614
    assert count_parameters(shared.srm) == 131_608
    assert len(separate_trm.trm.gnns) == 12 and count_parameters(separate_trm.trm) == 12 * 131_614
    assert count_parameters(separate_trm) == 14_795_968
    assert len(separate_srm.srm.gnns) == 16 and count_parameters(separate_srm.srm) == 16 * 131_608
    torch.manual_seed(0)
    model = STF(4, STFConfig(clip_length=4, d=16, trm_share_weights=False, srm_share_weights=False)).eval()
    assert model(small_clips()).shape == (2, 4, 4)


# --- SFF (eq. 4) -------------------------------------------------------------------------------------------

def _hand_sff(**options):
    """d=1: fusion FC [[1, 1], [1, −1]] (bias 0) and gate FC weight 1, bias 0; BN in eval mode ≈ identity."""
    sff = SFF(1, 1, **options).eval()
    with torch.no_grad():
        sff.fusion_fc.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        sff.fusion_fc.bias.zero_()
        for fc in sff.gate_fcs:
            fc.weight.fill_(1.0)
            fc.bias.zero_()
    return sff


def test_sff_eq4_hand_worked_example():
    """Eq. 4: x_ST = ReLU(FC[x_space, x_time]); F_ST = σ(BN(G x_s))·x_s + σ(BN(G x_t))·x_t.

    x_space = 2, x_time = 1 → x_ST = ReLU(3, 1) = (3, 1) → F_ST = σ(3/s)·3 + σ(1/s)·1, s = sqrt(1 + 1e-5).
    """
    s = math.sqrt(1 + 1e-5)
    x_space, x_time = torch.full((1, 1, 1, 1), 2.0), torch.full((1, 1, 1, 1), 1.0)
    expected = torch.sigmoid(torch.tensor(3 / s)) * 3 + torch.sigmoid(torch.tensor(1 / s)) * 1
    torch.testing.assert_close(_hand_sff()(x_space, x_time).flatten(), expected.view(1))
    # gate_target=input gates x_space and x_time instead of the split halves: σ(3/s)·2 + σ(1/s)·1.
    expected_input = torch.sigmoid(torch.tensor(3 / s)) * 2 + torch.sigmoid(torch.tensor(1 / s)) * 1
    torch.testing.assert_close(_hand_sff(gate_target="input")(x_space, x_time).flatten(), expected_input.view(1))


def test_sff_separate_gate_fcs_are_independent():
    """Option gate_fc_shared=false (docs/methods/stf.md): two gate FCs; changing only the temporal one changes only
    W_time's term."""
    sff = _hand_sff(gate_fc_shared=False)
    assert len(sff.gate_fcs) == 2
    with torch.no_grad():
        sff.gate_fcs[1].weight.fill_(-1.0)
    s = math.sqrt(1 + 1e-5)
    expected = torch.sigmoid(torch.tensor(3 / s)) * 3 + torch.sigmoid(torch.tensor(-1 / s)) * 1
    torch.testing.assert_close(sff(torch.full((1, 1, 1, 1), 2.0), torch.full((1, 1, 1, 1), 1.0)).flatten(),
                               expected.view(1))


def test_sff_shapes_gates_and_parameter_counts():
    """Eq. 4: x_ST width 2dr; gates strictly in (0,1); SFF +329,472 (shared) / +395,264 (separate)."""
    torch.manual_seed(0)
    sff = SFF(16, 16)
    gates, pre_activations, fused = [], [], []
    sff.gate_activation.register_forward_hook(lambda m, a, out: gates.append(out.view(2, 4, 3, 16)))
    for norm in sff.gate_norms:
        norm.register_forward_hook(lambda m, a, out: pre_activations.append(out))
    sff.fusion_fc.register_forward_hook(lambda m, a, out: fused.append(out))
    out = sff(torch.randn(2, 4, 3, 16), torch.randn(2, 4, 3, 16))
    assert out.shape == (2, 4, 3, 16) and [x.shape[-1] for x in fused] == [32]
    # The module's own gates W_space, W_time: strictly inside (0, 1) although their BN inputs are not ...
    assert len(gates) == 2 and all(((g > 0) & (g < 1)).all() for g in gates)
    assert all((p.min() < 0) and (p.max() > 0) for p in pre_activations)
    # ... and they are the weights F_ST is made of: F_ST = W_space ⊙ x_s + W_time ⊙ x_t.
    x_s, x_t = fused[0].relu().split(16, dim=-1)
    torch.testing.assert_close(out, gates[0] * x_s + gates[1] * x_t)
    assert count_parameters(SFF(256, 256)) == 329_472
    assert count_parameters(SFF(256, 256, gate_fc_shared=False)) == 395_264
    reduced = SFF(16, 8, gate_target="input")
    assert reduced(torch.randn(2, 4, 3, 16), torch.randn(2, 4, 3, 16)).shape == (2, 4, 3, 16)
    assert reduced.fusion_fc.out_features == 16 and reduced.gate_fcs[0].in_features == 8
    with pytest.raises(ConfigError):
        SFF(16, 8, gate_target="split")


def test_without_sff_fusion_is_the_sum():
    """§2.3: with SFF off, F_ST = x_space + x_time (a parameter-free SumFusion)."""
    torch.manual_seed(0)
    model = STF(12, dataclasses.replace(SMALL, use_sff=False)).eval()
    with torch.no_grad():
        stages = model.forward_intermediates(small_clips())
    assert isinstance(model.sff, SumFusion) and count_parameters(model.sff) == 0
    assert torch.equal(stages["f_st"], stages["x_space"] + stages["x_time"])


# --- ACM (eq. 5) --------------------------------------------------------------------------------------------

def test_acm_is_the_cosine_score_without_sigmoid():
    """Eq. 5: Ŷ = cos(ReLU(F_ST), ReLU(s)) is the probability as is; scaling F_ST by c > 0 changes nothing."""
    torch.manual_seed(0)
    model = STF(12, SMALL).eval()
    with torch.no_grad():
        stages = model.forward_intermediates(small_clips())
        features = torch.nn.functional.normalize(stages["f_st"].relu(), dim=-1)
        prototypes = torch.nn.functional.normalize(model.acm.prototypes.relu(), dim=-1)
        expected = (features * prototypes).sum(-1)
        torch.testing.assert_close(stages["probabilities"], expected)
        torch.testing.assert_close(model.acm(stages["f_st"] * 3.0), stages["probabilities"])
    assert isinstance(model.acm, ACM) and model.acm.prototypes.shape == (12, 32)


# --- ablation switches (Table 1, §2.3) -------------------------------------------------------------------

TABLE1 = {  # Table 1 row → (SRM on, TRM on, SFF on, params of this implementation at d=256)
    "A1_baseline": (False, False, False, 12_755_520),
    "A2_trm_only": (False, True, False, 12_887_134),
    "A3_srm_only": (True, False, False, 12_887_128),
    "A4_sff_only": (False, False, True, 13_084_992),
    "A5_wo_trm": (True, False, True, 13_216_600),
    "A6_wo_srm": (False, True, True, 13_216_606),
    "A7_wo_sff": (True, True, False, 13_018_742),
    "A8_full": (True, True, True, 13_348_214),
}


@pytest.mark.parametrize("name", list(TABLE1))
def test_table1_switches_remove_their_module(name):
    """Table 1 rows / §2.3: w/o SRM → x_space = x_linear, w/o TRM → x_time = x_linear, w/o SFF → sum.

    The removed module is absent (identity / SumFusion), the parameter set is the full model's minus that module's,
    the count matches our hand-derived one, and with the full model's weights the output differs from the full model's.
    """
    use_srm, use_trm, use_sff, expected_params = TABLE1[name]
    with torch.device("meta"):
        assert count_parameters(STF(12, modules(use_srm, use_trm, use_sff))) == expected_params

    config = modules(use_srm, use_trm, use_sff, SMALL)
    torch.manual_seed(0)
    full = STF(12, SMALL).eval()
    model = STF(12, config).eval()
    assert isinstance(model.srm, SRM if use_srm else nn.Identity)
    assert isinstance(model.trm, TRM if use_trm else nn.Identity)
    assert isinstance(model.sff, SFF if use_sff else SumFusion)

    removed = tuple(prefix for prefix, on in (("srm.", use_srm), ("trm.", use_trm), ("sff.", use_sff)) if not on)
    full_names = {n for n, _ in full.named_parameters()}
    assert {n for n, _ in model.named_parameters()} == {n for n in full_names if not n.startswith(removed or ("~",))}
    model.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith(removed or ("~",))})

    with torch.no_grad():
        clips = small_clips()
        stages, reference = model.forward_intermediates(clips), full.forward_intermediates(clips)
    assert torch.equal(stages["x_linear"], reference["x_linear"])
    assert torch.equal(stages["x_space"], reference["x_space"] if use_srm else stages["x_linear"])
    assert torch.equal(stages["x_time"], reference["x_time"] if use_trm else stages["x_linear"])
    if not use_sff:
        assert torch.equal(stages["f_st"], stages["x_space"] + stages["x_time"])
    if name == "A8_full":
        assert torch.equal(stages["probabilities"], reference["probabilities"])
    else:
        assert not torch.allclose(stages["probabilities"], reference["probabilities"])


def test_baseline_row_is_acm_on_x_linear():
    """Table 1 row 1 (docs/methods/stf.md, "Ablations"): with everything off F_ST = 2·x_linear, and the
    scale-invariant ACM makes it ACM(x_linear)."""
    torch.manual_seed(0)
    model = STF(12, modules(False, False, False, SMALL)).eval()
    with torch.no_grad():
        stages = model.forward_intermediates(small_clips())
        torch.testing.assert_close(stages["probabilities"], model.acm(stages["x_linear"]))


def test_linear_ablation_replacement_option():
    """Option ablation_replacement=linear (docs/methods/stf.md, "Ablations"): a removed SRM/TRM becomes a fresh
    Linear(d, d)."""
    model = STF(12, dataclasses.replace(SMALL, use_srm=False, use_trm=False, ablation_replacement="linear"))
    assert isinstance(model.srm, nn.Linear) and isinstance(model.trm, nn.Linear)
    assert count_parameters(model.srm) == 32 * 32 + 32
    assert model(small_clips()).shape == (2, 4, 12)


def test_transformer_trm_variant():
    """Table 3 (docs/methods/stf.md, "Ablations"): trm_variant=transformer swaps the whole TRM for a shared
    Transformer encoder over each AU's T steps (no differencing); the model has more parameters than A8 (≈14.53 M)."""
    with torch.device("meta"):
        model = STF(12, STFConfig(trm_variant="transformer"))
    assert isinstance(model.trm, TransformerTRM)
    assert count_parameters(model) == 13_348_214 - 131_614 + 1_315_072 > 13_348_214
    torch.manual_seed(0)
    small = STF(12, dataclasses.replace(SMALL, trm_variant="transformer", transformer_heads=4,
                                        transformer_feedforward=64))
    clips = small_clips()
    probabilities = small(clips)
    assert probabilities.shape == (2, 4, 12)
    probabilities.sum().backward()
    assert all(p.grad is not None for p in small.trm.parameters())
    small.eval()
    with torch.no_grad():
        stages = small.forward_intermediates(clips)
        x = stages["x_linear"].transpose(1, 2).reshape(24, 4, 32)
        expected = small.trm.encoders[0](x).view(2, 12, 4, 32).transpose(1, 2)
    torch.testing.assert_close(stages["x_time"], expected)


# --- registry and loss --------------------------------------------------------------------------------------

def test_registered_method_and_loss():
    """Registry entry (clips → probabilities) and eq. 6 loss: w = N(1 − r); r = [0.5, 0.25, 0.1] → [1.5, 2.25, 2.7].

    Toy T=2, N=3 clip: ŷ = [[0.5, 0.8, 0.1], [0.9, 0.5, 0.5]], y = [[1, 0, 0], [1, 1, 0]]; eq. 6 sums the weighted
    BCE over AUs and averages over frames.
    """
    assert (METHOD.name, METHOD.config_type, METHOD.outputs) == ("stf", STFConfig, "probabilities")
    assert METHOD.top_level == {"k": "srm_top_k"}
    sampling = METHOD.sampling(STFConfig(clip_length=8, clip_sampler="one_clip_per_sequence"))
    assert isinstance(sampling, ClipSampling) and (sampling.length, sampling.sampler) == (8, "one_clip_per_sequence")
    assert sampling.frames_per_sample == 8 and sampling.fields == ()
    assert METHOD.build_model is build_model and METHOD.build_loss is build_loss
    assert isinstance(build_model(SMALL, 8), STF) and build_model(SMALL, 8).num_aus == 8
    loss = build_loss(STFConfig(), np.array([0.5, 0.25, 0.1]))
    assert isinstance(loss, WeightedBCELoss) and loss.inputs == "probabilities"
    torch.testing.assert_close(loss.au_weights, torch.tensor([1.5, 2.25, 2.7]))
    scores = torch.tensor([[[0.5, 0.8, 0.1], [0.9, 0.5, 0.5]]])
    targets = torch.tensor([[[1, 0, 0], [1, 1, 0]]])
    frame1 = -(1.5 * math.log(0.5) + 2.25 * math.log(0.2) + 2.7 * math.log(0.9))
    frame2 = -(1.5 * math.log(0.9) + 2.25 * math.log(0.5) + 2.7 * math.log(0.5))
    value = loss(scores, targets, torch.ones_like(targets, dtype=torch.bool))
    assert value.item() == pytest.approx((frame1 + frame2) / 2, rel=1e-6)
