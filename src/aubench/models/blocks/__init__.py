"""Building blocks shared by the graph-based AU methods (STF, and later MDHR/LAC/ME-GraphAU-like ones).

- `graph`: cosine similarity graphs, Top-K adjacency, symmetric normalisation, the Top-K GNN layer, and a
  graph attention layer over a given neighbourhood (MDHR's cross-regional GAT).
- `classifier`: the cosine classifier with learnable per-AU prototypes, and a per-AU linear score.
- `heads`: the MLP projector/predictor heads of self-supervised pretraining (MC-SFAU) and the token-wise
  Linear + BN + ReLU block (MDHR's projections and AU feature extractors).
- `temporal`: frame differences, the T−1 → T restore-length pooling, a small Transformer encoder.
"""
from aubench.models.blocks.classifier import CosineClassifier, PerClassLinear
from aubench.models.blocks.heads import TokenLinearBlock, mlp_head
from aubench.models.blocks.graph import (
    MaskedGraphAttention,
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

__all__ = [
    "CosineClassifier",
    "MaskedGraphAttention",
    "PerClassLinear",
    "TemporalTransformer",
    "TokenLinearBlock",
    "TopKGraphLayer",
    "cosine_similarity_graph",
    "forward_difference",
    "mlp_head",
    "normalise_adjacency",
    "restore_length_pool",
    "sinusoidal_positions",
    "topk_adjacency",
]
