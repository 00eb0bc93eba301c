"""Shared graph, classifier and temporal blocks on hand-worked numbers (STF eq. 1–5; the choices where the paper
is silent are in docs/methods/stf.md)."""
import math

import pytest
import torch
import torch.nn.functional as F

from aubench.errors import ConfigError
from aubench.models.blocks import graph as graph_module
from aubench.models.blocks.classifier import CosineClassifier
from aubench.models.blocks.graph import (
    TopKGraphLayer,
    cosine_similarity_graph,
    normalise_adjacency,
    topk_adjacency,
)
from aubench.models.blocks.temporal import (
    TemporalTransformer,
    forward_difference,
    restore_length_pool,
    sinusoidal_positions,
)

BN_SCALE = 1 / math.sqrt(1 + 1e-5)  # a fresh BatchNorm in eval mode: y / sqrt(1 + eps)


# --- eq. 1: cosine similarity on detached features -------------------------------------------------

def test_cosine_similarity_graph_hand_values_and_zero_vector():
    """Eq. 1, transposed (docs/methods/stf.md): A = Norm(x)·Norm(x)ᵀ is N×N; a zero vector gives similarity 0, no NaN."""
    x = torch.tensor([[[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]]])
    similarity = cosine_similarity_graph(x)
    expected = torch.tensor([[[1.0, 0.6, 0.0], [0.6, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    assert similarity.shape == (1, 3, 3)
    torch.testing.assert_close(similarity, expected)


def test_similarity_is_detached_by_default():
    """STF §1.3: the similarity carries no autograd graph (stop-gradient), unless detach=False."""
    x = torch.randn(2, 5, 8, requires_grad=True)
    detached = cosine_similarity_graph(x)
    assert detached.grad_fn is None and not detached.requires_grad
    attached = cosine_similarity_graph(x, detach=False)
    assert attached.grad_fn is not None


# --- Top-K (A') ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(32, 12, 64), (24, 15, 64)])  # SRM (B·T, N, d) and TRM (B·N, T−1, d)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_topk_index_keeps_exactly_k_per_row_with_self(shape, k):
    """Eq. 2's Top-K: every row of A' has exactly K ones and, with include_self, a diagonal of ones."""
    similarity = cosine_similarity_graph(torch.randn(shape))
    adjacency = topk_adjacency(similarity, k)
    assert adjacency.shape == (shape[0], shape[1], shape[1])
    assert set(adjacency.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(adjacency.sum(-1) == k)
    assert torch.all(torch.diagonal(adjacency, dim1=-2, dim2=-1) == 1)


def test_topk_index_on_all_ties_still_gives_exactly_k():
    """All-zero features (every entry tied) → exactly K ones per row, self kept, no NaN."""
    similarity = cosine_similarity_graph(torch.zeros(3, 6, 4))
    assert not torch.isnan(similarity).any()
    adjacency = topk_adjacency(similarity, 3)  # the default impl is "index"
    assert torch.all(adjacency.sum(-1) == 3)
    assert torch.all(torch.diagonal(adjacency, dim1=-2, dim2=-1) == 1)


def test_topk_threshold_can_keep_more_than_k_on_ties():
    """Ties (docs/methods/stf.md, "Graphs"): ME-GraphAU's `A >= kth value` keeps every tied entry; the index form
    keeps exactly K."""
    similarity = torch.tensor([[1.0, 0.5, 0.5, 0.5],
                               [0.5, 1.0, 0.2, 0.1],
                               [0.5, 0.2, 1.0, 0.3],
                               [0.5, 0.1, 0.3, 1.0]])
    threshold = topk_adjacency(similarity, 2, impl="threshold")
    index = topk_adjacency(similarity, 2, impl="index")
    assert threshold[0].tolist() == [1.0, 1.0, 1.0, 1.0]  # three-way tie at the 2nd place
    assert index[0].sum() == 2 and index[0, 0] == 1
    assert torch.equal(threshold[1:], index[1:])  # no ties elsewhere: both agree


def test_topk_selects_the_most_similar_nodes_hand_example():
    """4 unit vectors at 0°, 10°, 50°, 120°; row j marks the K=3 nodes most similar to j."""
    angles = torch.deg2rad(torch.tensor([0.0, 10.0, 50.0, 120.0]))
    x = torch.stack([angles.cos(), angles.sin()], dim=-1).unsqueeze(0)
    adjacency = topk_adjacency(cosine_similarity_graph(x), 3)[0]
    expected = torch.tensor([[1.0, 1.0, 1.0, 0.0],   # 0°: itself, 10° (10° apart), 50° (50°)
                             [1.0, 1.0, 1.0, 0.0],   # 10°: 0° (10°), itself, 50° (40°); 120° is 110° away
                             [1.0, 1.0, 1.0, 0.0],   # 50°: 10° (40°), 0° (50°), 120° is 70° away
                             [0.0, 1.0, 1.0, 1.0]])  # 120°: 50° (70°), 10° (110°), 0° is 120° away
    assert torch.equal(adjacency, expected)


def test_topk_without_self_excludes_the_diagonal():
    """Option include_self=False (docs/methods/stf.md): the node is never its own neighbour, still K ones per row."""
    adjacency = topk_adjacency(cosine_similarity_graph(torch.randn(4, 6, 8)), 2, include_self=False)
    assert torch.all(torch.diagonal(adjacency, dim1=-2, dim2=-1) == 0)
    assert torch.all(adjacency.sum(-1) == 2)


def test_topk_rejects_k_out_of_range():
    """K must fit in the graph: K ≤ N with self, K ≤ N−1 without."""
    similarity = torch.eye(3).unsqueeze(0)
    with pytest.raises(ConfigError, match="top_k"):
        topk_adjacency(similarity, 4)
    with pytest.raises(ConfigError, match="top_k"):
        topk_adjacency(similarity, 3, include_self=False)
    with pytest.raises(ConfigError, match="topk_impl"):
        topk_adjacency(similarity, 1, impl="sorted")


# --- A'' normalisation -----------------------------------------------------------------------------

def test_normalised_adjacency_is_a_over_k_when_every_row_has_k_ones():
    """The normalised graph A'': D^-1/2 A' D^-1/2 with row-sum degrees equals A'/K; rows sum to 1."""
    adjacency = topk_adjacency(cosine_similarity_graph(torch.randn(5, 12, 16)), 3)
    normalised = normalise_adjacency(adjacency)
    torch.testing.assert_close(normalised, adjacency / 3)
    torch.testing.assert_close(normalised.sum(-1), torch.ones(5, 12))


def test_normalisation_hand_example_with_unequal_degrees_and_empty_row():
    """D^-1/2 A D^-1/2 on a 3-node graph with degrees 2, 1, 0: a_ij / sqrt(d_i d_j); an empty row stays 0."""
    adjacency = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    expected = torch.tensor([[0.5, 1 / math.sqrt(2), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(normalise_adjacency(adjacency), expected)


# --- eq. 2: the GNN layer --------------------------------------------------------------------------

def _hand_layer(residual=False):
    """d=2, 3 nodes, K=2: V = identity (bias 0); U = [[1, 1], [0, 1]] with bias (0, −1)."""
    layer = TopKGraphLayer(2, 3, 2, residual=residual).eval()
    with torch.no_grad():
        layer.self_fc.weight.copy_(torch.eye(2))
        layer.self_fc.bias.zero_()
        layer.nbr_fc.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        layer.nbr_fc.bias.copy_(torch.tensor([0.0, -1.0]))
    return layer


HAND_X = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]]])
# cos(x0,x1)=0, cos(x0,x2)=2/√5, cos(x1,x2)=1/√5 → Top-2 with self: {0,2}, {1,2}, {2,0}; A'' = A'/2.
# U(x) = (1,−1), (1,0), (3,0); aggregates: (2,−0.5), (2,0), (2,−0.5); plus V(x) = x:
HAND_PRE_BN = torch.tensor([[[3.0, -0.5], [2.0, 1.0], [4.0, 0.5]]])


def test_gnn_eq2_hand_worked_example():
    """Eq. 2: x_gnn = ReLU(BN(V(x) + A''·U(x))) on a hand-set 3-node graph (BN in eval mode = y/sqrt(1+eps))."""
    layer = _hand_layer()
    expected_graph = torch.tensor([[[0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]])
    torch.testing.assert_close(layer.graph(HAND_X), expected_graph)
    torch.testing.assert_close(layer(HAND_X), F.relu(HAND_PRE_BN * BN_SCALE))


def test_gnn_adds_no_residual_unless_asked():
    """Eq. 2 has no residual; the option gives ME-GraphAU's ReLU(x + BN(...))."""
    torch.testing.assert_close(_hand_layer(residual=True)(HAND_X), F.relu(HAND_X + HAND_PRE_BN * BN_SCALE))
    assert not torch.allclose(_hand_layer()(HAND_X), _hand_layer(residual=True)(HAND_X))


def test_gnn_with_k1_and_self_is_nodewise():
    """K=1 with include_self gives A'' = I, so the layer is ReLU(BN(V x + U x)) node-wise."""
    torch.manual_seed(0)
    layer = TopKGraphLayer(8, 5, 1).eval()
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(layer.graph(x), torch.eye(5).expand(3, 5, 5))
    expected = F.relu(layer.norm(layer.self_fc(x) + layer.nbr_fc(x)))
    torch.testing.assert_close(layer(x), expected)


def test_gnn_gradient_does_not_flow_through_the_graph(monkeypatch):
    """STF §1.3: the graph is built from detached features; gradients w.r.t. x are unchanged by the detach."""
    seen = []
    original = graph_module.cosine_similarity_graph

    def recording(x, detach=True, eps=1e-12):
        similarity = original(x, detach=detach, eps=eps)
        seen.append(similarity.requires_grad)
        return similarity

    monkeypatch.setattr(graph_module, "cosine_similarity_graph", recording)
    torch.manual_seed(0)
    layer = TopKGraphLayer(6, 4, 2)
    x = torch.randn(3, 4, 6, requires_grad=True)
    layer(x).pow(2).sum().backward()
    grad_detached = x.grad.clone()
    assert seen == [False]
    assert layer.graph(x).grad_fn is None

    layer.detach = False  # the same layer, similarity now attached to x's graph
    x.grad = None
    layer(x).pow(2).sum().backward()
    assert seen[-1] is True
    # Top-K is a piecewise-constant mask and the degree K a constant: no gradient reaches x through them.
    torch.testing.assert_close(x.grad, grad_detached)


def test_gnn_weight_init_and_batchnorm_axis():
    """U, V ~ N(0, sqrt(2/d)); BN over the node axis by default, feature axis as option (docs/methods/stf.md)."""
    torch.manual_seed(0)
    layer = TopKGraphLayer(256, 12, 3)
    for weight in (layer.self_fc.weight, layer.nbr_fc.weight):
        assert weight.mean().abs() < 0.005
        assert weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.03)
    assert layer.norm.num_features == 12
    assert TopKGraphLayer(256, 12, 3, bn_axis="feature").norm.num_features == 256
    assert sum(p.numel() for p in layer.parameters()) == 2 * (256 * 256 + 256) + 2 * 12


def test_gnn_batchnorm_axes_normalise_different_groups():
    """Node-axis BN standardises each node over (batch, features); feature-axis BN each feature over (batch, nodes)."""
    torch.manual_seed(0)
    x = torch.randn(16, 4, 8) * 3 + 1
    for axis, reduce_dims in (("node", (0, 2)), ("feature", (0, 1))):
        layer = TopKGraphLayer(8, 4, 2, bn_axis=axis, residual=False).train()
        captured = {}
        layer.norm.register_forward_hook(lambda m, a, out: captured.update(out=out))
        layer(x)
        out = captured["out"] if axis == "node" else captured["out"].transpose(1, 2)
        torch.testing.assert_close(out.mean(reduce_dims), torch.zeros(out.shape[1 if axis == "node" else 2]),
                                   atol=1e-5, rtol=0)


# --- eq. 5: cosine classifier -------------------------------------------------------------------------

def test_cosine_classifier_eq5_hand_values():
    """Eq. 5: ŷ = ⟨ReLU(F), ReLU(s)⟩ / (‖ReLU(F)‖‖ReLU(s)‖); F=(1,2,−3), s=(2,−1,1) → (1,2,0)·(2,0,1)/(√5√5) = 0.4."""
    classifier = CosineClassifier(2, 3)
    with torch.no_grad():
        classifier.prototypes.copy_(torch.tensor([[2.0, -1.0, 1.0], [1.0, 1.0, 0.0]]))
    features = torch.tensor([[1.0, 2.0, -3.0], [0.0, 0.0, 0.0]])  # AU 1 scored against s_1, AU 2 against s_2
    scores = classifier(features)
    torch.testing.assert_close(scores, torch.tensor([0.4, 0.0]))
    negative = classifier(torch.tensor([[1.0, 2.0, -3.0], [-1.0, -5.0, -0.5]]))
    assert negative[1].item() == 0.0 and not torch.isnan(negative).any()


def test_cosine_classifier_matches_eq5_scale_invariance_and_init():
    """Eq. 5 on random features against a float64 reference written out term by term; scaling F by c>0 leaves Ŷ
    unchanged; prototypes xavier-uniform; a feature equal to its prototype scores 1 (up to rounding)."""
    torch.manual_seed(0)
    classifier = CosineClassifier(12, 64)
    features = torch.randn(2, 4, 12, 64)
    scores = classifier(features)
    assert scores.shape == (2, 4, 12)
    f = features.double().clamp(min=0)  # ReLU(F)
    s = classifier.prototypes.detach().double().clamp(min=0)  # ReLU(s)
    expected = (f * s).sum(-1) / (f.pow(2).sum(-1).sqrt() * s.pow(2).sum(-1).sqrt())
    torch.testing.assert_close(scores.double(), expected, atol=1e-6, rtol=0)
    assert 0.05 < scores.min() and scores.max() < 0.95  # random vectors: the reference is not at the clamp bounds
    torch.testing.assert_close(classifier(features * 7.5), scores)
    bound = math.sqrt(6 / (12 + 64))
    assert classifier.prototypes.abs().max() <= bound
    assert classifier.prototypes.abs().max() > 0.9 * bound  # uniform over the whole range, not a narrow init
    with torch.no_grad():
        classifier.prototypes.copy_(features[0, 0] * 2.0)  # s_i = 2 F_i: ReLU(s_i) ∥ ReLU(F_i)
    torch.testing.assert_close(classifier(features[0, 0]), torch.ones(12), atol=1e-6, rtol=0)


# --- TRM helpers: differences, restore-length pooling ---------------------------------------------------

def test_forward_difference_hand_values():
    """Eq. 3's frame differences: x[t+1] − x[t], length T−1; identical frames give zeros."""
    x = torch.tensor([[0.0, 1.0, 3.0, 6.0]]).unsqueeze(-1)  # (1, T=4, 1)
    torch.testing.assert_close(forward_difference(x, dim=1), torch.tensor([[[1.0], [2.0], [3.0]]]))
    assert torch.count_nonzero(forward_difference(torch.ones(2, 5, 3), dim=1)) == 0
    with pytest.raises(ValueError):
        forward_difference(torch.ones(1, 1, 3), dim=1)


def test_restore_length_pool_hand_values():
    """STF §1.4's average pooling back to T steps: out[0]=g[0], out[t]=(g[t−1]+g[t])/2, out[T−1]=g[T−2]."""
    g = torch.tensor([2.0, 4.0, 10.0]).view(1, 3, 1)  # (batch, T−1 = 3, d = 1)
    pooled = restore_length_pool(g, dim=1)
    torch.testing.assert_close(pooled.flatten(), torch.tensor([2.0, 3.0, 7.0, 10.0]))


def test_restore_length_pool_equals_adaptive_average_pool_along_any_dim():
    """AvgPool1d(2,1,1,count_include_pad=False) ≡ adaptive_avg_pool1d(·, T), applied along the given dim."""
    g = torch.randn(2, 3, 15, 8)  # (B, N, T−1, d)
    pooled = restore_length_pool(g, dim=2)
    assert pooled.shape == (2, 3, 16, 8)
    reference = F.adaptive_avg_pool1d(g.movedim(2, -1).reshape(-1, 15), 16).reshape(2, 3, 8, 16).movedim(-1, 2)
    torch.testing.assert_close(pooled, reference)


# --- Transformer-TRM encoder -------------------------------------------------------------------------------

def test_sinusoidal_positions_hand_values():
    """Fixed sinusoidal encoding: pe[t, 2i] = sin(t/10000^(2i/d)), pe[t, 2i+1] = cos(same)."""
    table = sinusoidal_positions(3, 4)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(table[2], torch.tensor([math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)]))


def test_temporal_transformer_shape_params_and_position_encoding():
    """Table 3 variant (docs/methods/stf.md, "Ablations"): 1 layer, 8 heads, FF 2048 → 1,315,072 params at d=256;
    PE makes order matter."""
    assert sum(p.numel() for p in TemporalTransformer(256).parameters()) == 1_315_072
    torch.manual_seed(0)
    encoder = TemporalTransformer(32, num_heads=4, feedforward_dim=64).eval()
    x = torch.randn(3, 6, 32)
    out = encoder(x)
    assert out.shape == (3, 6, 32)
    flipped = encoder(x.flip(1)).flip(1)
    assert not torch.allclose(out, flipped, atol=1e-4)  # with positions, reversing time changes the result
    encoder.positional_encoding = "none"
    torch.testing.assert_close(encoder(x.flip(1)).flip(1), encoder(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError):
        TemporalTransformer(30, num_heads=4)
