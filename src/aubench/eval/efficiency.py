"""Model size and cost: parameter counts and multiply-accumulates (MACs) for any model and input.

Conventions (those of STF's Table 1; docs/methods/stf.md), so numbers compare with papers that used
thop/fvcore:
- parameters = Σ numel over `model.parameters()` (trainable or not), excluding buffers such as the
  BatchNorm running statistics;
- MACs = FLOPs counted by `torch.utils.flop_counter.FlopCounterMode` / 2, i.e. one per
  multiply-accumulate of convolutions, matrix products and attention; bias additions, activations and
  pooling are not counted. Counting runs in eval mode under `no_grad` (train/eval flags are restored).
  `include_batchnorm=True` adds 2 MACs per BatchNorm output element (thop's convention for an affine
  BN; ResNet-18 at 256×256 has 0.0065 G of them), which is how the figures in docs/methods/stf.md count.
- per-frame cost of a clip model = clip MACs / number of frames in the clip batch.

Models and inputs may live on the `meta` device: shapes are all that counting needs, so a meta model
gives the same count without computing anything.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

aten = torch.ops.aten


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters once; buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    # The CPU flash-attention kernel has no formula in FlopCounterMode's registry; count it like the GPU ones.
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA_FORMULAS = {aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop}


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {module: module.training for module in model.modules()}
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # The fused Transformer fast path is invisible to FlopCounterMode; count the standard path instead.
    torch.backends.mha.set_fastpath_enabled(False)
    model.eval()
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for module, training in modes.items():
            module.training = training


def count_macs(model: nn.Module, example_input: torch.Tensor | Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
               include_batchnorm: bool = False) -> int:
    """Multiply-accumulates of one forward pass of `model` on `example_input` (a tensor, a batch mapping, or a
    tuple of inputs)."""
    inputs = (example_input,) if isinstance(example_input, (torch.Tensor, Mapping)) else tuple(example_input)
    batchnorm_macs = 0

    def count_batchnorm(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal batchnorm_macs
        batchnorm_macs += (2 if module.affine else 1) * output.numel()

    hooks = []
    if include_batchnorm:
        hooks = [module.register_forward_hook(count_batchnorm) for module in model.modules()
                 if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)
    try:
        with _eval_mode(model), torch.no_grad(), counter:
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops() // 2 + batchnorm_macs


def per_frame_macs(model: nn.Module, example_clips: torch.Tensor, include_batchnorm: bool = False) -> float:
    """MACs per frame of a clip model: MACs on clips (B, T, ...) divided by B·T (the paper's FLOPs/frame)."""
    frames = example_clips.shape[0] * example_clips.shape[1]
    return count_macs(model, example_clips, include_batchnorm) / frames
