"""Temporal building blocks: frame differences, restore-length pooling, a small Transformer encoder.

Used by STF's TRM (eq. 3: differences → temporal graph → average pooling back to T steps) and by its
Transformer-TRM variant (STF Table 3).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aubench.errors import ConfigError

POSITIONAL_ENCODINGS = ("sinusoidal", "none")


def forward_difference(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """x[t+1] − x[t] along `dim`: length L → L−1 (STF §1.4; the sign is our choice). Needs L ≥ 2."""
    length = x.shape[dim]
    if length < 2:
        raise ValueError(f"forward_difference needs at least 2 steps along dim {dim}, got {length}")
    return x.narrow(dim, 1, length - 1) - x.narrow(dim, 0, length - 1)


def restore_length_pool(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Average pooling that turns L steps into L+1 along `dim` (STF §1.4, TRM: T−1 → T; docs/methods/stf.md).

    `AvgPool1d(kernel_size=2, stride=1, padding=1, count_include_pad=False)`, identical to
    `adaptive_avg_pool1d(·, L+1)`. With g the input: out[0] = g[0], out[t] = (g[t−1] + g[t]) / 2 for
    0 < t < L, out[L] = g[L−1] (frame t gets the mean of its incoming and outgoing motion).
    """
    moved = x.movedim(dim, -1)
    lead = moved.shape[:-1]
    pooled = F.avg_pool1d(moved.reshape(1, -1, moved.shape[-1]), kernel_size=2, stride=1, padding=1,
                          count_include_pad=False)
    return pooled.reshape(*lead, pooled.shape[-1]).movedim(-1, dim)


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The fixed sine/cosine position table (length, dim) of Vaswani et al. (2017)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32)
                          * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table.to(dtype)


class TemporalTransformer(nn.Module):
    """A standard Transformer encoder over time: (batch, T, dim) → (batch, T, dim).

    PyTorch's `TransformerEncoder` (ReLU feed-forward, post-LN unless `norm_first`) with a fixed
    sinusoidal positional encoding added to the input (`positional_encoding="none"` to omit it).
    STF's Transformer-TRM variant (Table 3; the paper gives no configuration, see docs/methods/stf.md) uses
    1 layer, 8 heads, feed-forward 2048, dropout 0.1.
    """

    def __init__(self, dim: int, num_layers: int = 1, num_heads: int = 8, feedforward_dim: int = 2048,
                 dropout: float = 0.1, norm_first: bool = False,
                 positional_encoding: str = "sinusoidal") -> None:
        super().__init__()
        if positional_encoding not in POSITIONAL_ENCODINGS:
            raise ConfigError(f"positional_encoding: {positional_encoding!r} is not one of "
                              f"{', '.join(POSITIONAL_ENCODINGS)}")
        if dim % num_heads:
            raise ConfigError(f"num_heads: {num_heads} does not divide the feature width {dim}")
        layer = nn.TransformerEncoderLayer(dim, num_heads, feedforward_dim, dropout, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.positional_encoding = positional_encoding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.positional_encoding == "sinusoidal":
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device, x.dtype)
        return self.encoder(x)
