"""Dynamic Top-K graphs over node features and the GNN layer that runs on them.

The recipe is ME-GraphAU's (Luo et al., IJCAI 2022, `model/ANFL.py`, class `GNN`, `metric='cosine'`),
which STF reuses for both its spatial and its temporal graph (STF eq. 1–3):

1. `cosine_similarity_graph`: A = Norm(x)·Norm(x)ᵀ on detached features (stop-gradient).
2. `topk_adjacency`: keep each row's K largest entries → binary A'.
3. `normalise_adjacency`: A'' = D^-1/2 A' D^-1/2 with row-sum degrees (= A'/K when every row has K ones).
4. `TopKGraphLayer`: x_gnn = ReLU(BN(V(x) + A''·U(x))).

Shapes: node features are (batch, nodes, dim); graphs are (batch, nodes, nodes), row j holding node j's
neighbours. Any number of leading batch dimensions works for the functions.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aubench.errors import ConfigError

TOPK_IMPLS = ("index", "threshold")
BN_AXES = ("node", "feature")


def cosine_similarity_graph(x: torch.Tensor, detach: bool = True, eps: float = 1e-12) -> torch.Tensor:
    """Pairwise cosine similarities of the node features: (..., n, d) → (..., n, n) in [−1, 1].

    Rows are L2-normalised with `eps` (as `F.normalize`), so a zero vector has similarity 0 with every
    node, itself included, and produces no NaN. With `detach` (the default, STF §1.3 / ME-GraphAU) the
    result carries no autograd graph: no gradient flows into the neighbour selection.
    """
    if detach:
        x = x.detach()
    unit = F.normalize(x, p=2, dim=-1, eps=eps)
    return unit @ unit.transpose(-1, -2)


def topk_adjacency(similarity: torch.Tensor, k: int, include_self: bool = True,
                   impl: str = "index") -> torch.Tensor:
    """Binary adjacency A' (..., n, n): row j marks the `k` nodes most similar to node j.

    `include_self=True` always keeps node j in its own Top-K (its cosine self-similarity, 1, is the
    row maximum anyway; forcing it only matters for zero vectors, whose row is all ties), so K=3
    means the node plus 2 neighbours. `include_self=False` never selects the node itself.

    `impl="index"` takes `topk` indices and scatters ones: exactly `k` ones per row, ties broken
    arbitrarily. `impl="threshold"` (ME-GraphAU's code) keeps every entry ≥ the row's k-th largest
    value, so ties can give more than `k` ones. The result never requires grad.
    """
    if impl not in TOPK_IMPLS:
        raise ConfigError(f"topk_impl: {impl!r} is not one of {', '.join(TOPK_IMPLS)}")
    nodes = similarity.shape[-1]
    available = nodes if include_self else nodes - 1
    if not 1 <= k <= available:
        raise ConfigError(f"top_k: {k} is out of range for a graph of {nodes} nodes "
                          f"(include_self={include_self}); use 1..{available}")
    scores = similarity.detach().clone()
    diagonal = torch.eye(nodes, dtype=torch.bool, device=scores.device)
    scores.masked_fill_(diagonal, math.inf if include_self else -math.inf)
    if impl == "index":
        indices = scores.topk(k, dim=-1).indices
        return torch.zeros_like(scores).scatter_(-1, indices, 1.0)
    kth_largest = scores.topk(k, dim=-1).values[..., -1:]
    return (scores >= kth_largest).to(scores.dtype)


def normalise_adjacency(adjacency: torch.Tensor) -> torch.Tensor:
    """A'' = D^-1/2 A' D^-1/2 with D = diag(row sums of A') (ME-GraphAU `normalize_digraph`).

    With exactly K ones per row this equals A'/K. Rows without any edge stay zero (no inf/NaN).
    """
    degrees = adjacency.sum(-1)
    inverse_sqrt = torch.where(degrees > 0, degrees.clamp(min=1e-12).rsqrt(), torch.zeros_like(degrees))
    return inverse_sqrt.unsqueeze(-1) * adjacency * inverse_sqrt.unsqueeze(-2)


class TopKGraphLayer(nn.Module):
    """One GNN layer on a dynamic Top-K cosine graph (STF eq. 2, ME-GraphAU `GNN`).

    x_gnn = ReLU(BN(V(x) + A''·U(x))), with A'' the normalised Top-K graph of the input itself.
    `self_fc` is V (applied to each node) and `nbr_fc` is U (applied to the neighbours before
    aggregation), both Linear(dim, dim) with weights ~ N(0, sqrt(2/dim)) and PyTorch's default biases.

    `bn_axis="node"` normalises with BatchNorm1d(num_nodes) over the node axis (ME-GraphAU);
    `"feature"` with BatchNorm1d(dim) over the feature axis. `residual=True` gives ME-GraphAU's
    ReLU(x + BN(...)); the default follows eq. 2 (no residual).

    Input and output: (batch, num_nodes, dim).
    """

    def __init__(self, dim: int, num_nodes: int, top_k: int, *, include_self: bool = True,
                 topk_impl: str = "index", bn_axis: str = "node", residual: bool = False,
                 detach: bool = True) -> None:
        super().__init__()
        if bn_axis not in BN_AXES:
            raise ConfigError(f"bn_axis: {bn_axis!r} is not one of {', '.join(BN_AXES)}")
        if topk_impl not in TOPK_IMPLS:
            raise ConfigError(f"topk_impl: {topk_impl!r} is not one of {', '.join(TOPK_IMPLS)}")
        available = num_nodes if include_self else num_nodes - 1
        if not 1 <= top_k <= available:
            raise ConfigError(f"top_k: {top_k} is out of range for a graph of {num_nodes} nodes "
                              f"(include_self={include_self}); use 1..{available}")
        self.num_nodes = num_nodes
        self.top_k = top_k
        self.include_self = include_self
        self.topk_impl = topk_impl
        self.bn_axis = bn_axis
        self.residual = residual
        self.detach = detach
        self.self_fc = nn.Linear(dim, dim)  # V in eq. 2
        self.nbr_fc = nn.Linear(dim, dim)   # U in eq. 2
        for linear in (self.self_fc, self.nbr_fc):
            nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / dim))
        self.norm = nn.BatchNorm1d(num_nodes if bn_axis == "node" else dim)

    def graph(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised Top-K adjacency A'' (batch, n, n) of node features x (batch, n, dim)."""
        similarity = cosine_similarity_graph(x, detach=self.detach)
        return normalise_adjacency(topk_adjacency(similarity, self.top_k, self.include_self, self.topk_impl))

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """x (batch, n, dim) → (batch, n, dim); `adjacency` (a normalised A'') overrides the Top-K graph."""
        if adjacency is None:
            adjacency = self.graph(x)
        update = self.self_fc(x) + adjacency @ self.nbr_fc(x)
        if self.bn_axis == "node":
            update = self.norm(update)
        else:
            update = self.norm(update.transpose(1, 2)).transpose(1, 2)
        if self.residual:
            update = x + update
        return F.relu(update)


OUT_ACTIVATIONS = {"elu": F.elu, "relu": F.relu, "none": lambda x: x}


class MaskedGraphAttention(nn.Module):
    """Graph attention over nodes with a given neighbourhood (MDHR eq. 9; Veličković et al., 2018).

    Head h of `heads` (width d/heads): e_nm = LeakyReLU(r₁ʰ·W_h v_n + r₂ʰ·W_h v_m), α = softmax over the
    allowed m of each row, messages Σ_m α_nm W_h v_m concatenated over the heads; then
    v̂_n = φ(message + v_n + b) with `residual` (the identity), else φ(message + b), φ = `activation`
    (elu, as MDHR's code; relu; none). W has no bias; W and r are Xavier-uniform; b starts at zero
    (`bias: false`: no b, as LAC eq. 9).
    `allowed` (..., n, n) is boolean, row n listing the nodes n may attend to; a row that allows no node
    gets α = 0 (the node hears nothing) instead of an empty softmax. Nodes (..., n, d) → (..., n, d).
    """

    def __init__(self, dim: int, negative_slope: float = 0.2, dropout: float = 0.0, heads: int = 1,
                 residual: bool = True, activation: str = "elu", bias: bool = True) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ConfigError(f"graph attention heads: {heads} must be a positive divisor of the width {dim}")
        if activation not in OUT_ACTIVATIONS:
            raise ConfigError(f"graph attention activation: {activation!r} is not one of {', '.join(OUT_ACTIVATIONS)}")
        self.weight = nn.Linear(dim, dim, bias=False)
        self.attention = nn.Parameter(torch.empty(2 * dim // heads, heads))  # column h = [r₁ʰ; r₂ʰ]
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None
        self.negative_slope, self.heads, self.residual = negative_slope, heads, residual
        self.activation = OUT_ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.weight.weight)
        nn.init.xavier_uniform_(self.attention)

    def split_heads(self, nodes: torch.Tensor) -> torch.Tensor:
        """W v for every head: (..., n, d) → (..., heads, n, d/heads)."""
        return self.weight(nodes).unflatten(-1, (self.heads, -1)).transpose(-2, -3)

    def attention_weights(self, nodes: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """α (..., heads, n, n): each row sums to 1 over its allowed nodes and is 0 elsewhere."""
        return self._attention(self.split_heads(nodes), allowed)

    def _attention(self, projected: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        source, target = self.attention.T.unsqueeze(-1).split(projected.shape[-1], dim=1)  # (heads, d/heads, 1)
        scores = F.leaky_relu(projected @ source + (projected @ target).transpose(-1, -2), self.negative_slope)
        allowed = allowed.unsqueeze(-3)
        isolated = ~allowed.any(-1, keepdim=True)
        alpha = torch.softmax(scores.masked_fill(~allowed, float("-inf")).masked_fill(isolated, 0.0), dim=-1)
        return alpha.masked_fill(isolated, 0.0)

    def forward(self, nodes: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        projected = self.split_heads(nodes)
        alpha = self.dropout(self._attention(projected, allowed))
        messages = (alpha @ projected).transpose(-2, -3).flatten(-2)
        updated = messages + nodes if self.residual else messages
        return self.activation(updated + self.bias if self.bias is not None else updated)
