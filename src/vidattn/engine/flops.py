"""Parameters and FLOPs in the papers' convention: one multiply-add counts as one FLOP.

``torch.utils.flop_counter`` counts 2 FLOPs per multiply-add and, on the CPU, skips the
fused attention kernels (``_scaled_dot_product_flash_attention_for_cpu`` and the
``_native_multi_head_attention`` fast path of ``nn.MultiheadAttention``). We register
formulas for those kernels and halve the total, so attention matmuls are counted:
ViT-B/16 at 224² gives 17.6 GMACs (instead of 16.9 without attention, or 11.3 when the
fast path hides the projections too). Elementwise work (softmax, norms, activations) is
not counted, as in fvcore.

``torch.utils.flop_counter`` has no formula for ``grid_sampler_2d`` either, so it counts
deformable sampling (SIFA's keys, the saliency sampler) as free. fvcore, which the SIFA
paper's numbers come from, counts 4 multiply-adds per sampled output element (the four
bilinear taps): :func:`count_macs` takes ``sampling=True`` for that rule, and leaves
sampling out by default, as fvcore sees the official CUDA op (a Python autograd function
it skips).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten


def _sdpa_flops(query_shape, key_shape, value_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    """(B, H, L, d) queries against (B, H, S, d) keys: QK^T and AV, 2 FLOPs per MAC."""
    *batch, L, d = query_shape
    S, dv = key_shape[-2], value_shape[-1]
    b = 1
    for n in batch:
        b *= n
    return 2 * b * L * S * (d + dv)


def _native_mha_flops(query_shape, key_shape, value_shape, embed_dim, num_heads, *args: Any, out_shape=None,
                      **kwargs: Any) -> int:
    """``nn.MultiheadAttention`` fast path: in-projections, QK^T, AV and the out-projection."""
    B, L, E = query_shape
    S = key_shape[1]
    macs = B * L * E * E + 2 * B * S * E * E  # q, k, v projections
    macs += 2 * B * L * S * E  # QK^T and AV over all heads
    macs += B * L * E * E  # output projection
    return 2 * macs


def _grid_sampler_flops(input_shape, grid_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    """(N, C, H, W) input sampled at an (N, Ho, Wo, 2) grid: 4 MACs per output element, 2 FLOPs per MAC."""
    N, C = input_shape[:2]
    Ho, Wo = grid_shape[1:3]
    return 2 * 4 * N * C * Ho * Wo


CUSTOM_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops,
    aten._native_multi_head_attention: _native_mha_flops,
}


def count_macs(model: nn.Module, *inputs: torch.Tensor, sampling: bool = False) -> int:
    """Multiply-adds of one forward pass of ``model(*inputs)`` (no gradients); ``sampling``
    counts bilinear sampling (4 per output element, the fvcore rule; module docstring)."""
    formulas = {**CUSTOM_FORMULAS, **({aten.grid_sampler_2d: _grid_sampler_flops} if sampling else {})}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=formulas) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Parameters of ``model`` (only those that train, with ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
