"""FLOPs of models that sample with ``grid_sample`` (SIFA's deformable keys), in the papers' convention.

:func:`vidattn.flops.count_macs` follows ``torch.utils.flop_counter``, which has no
formula for ``grid_sampler_2d`` and so counts deformable sampling as free. fvcore, which
the SIFA paper's numbers come from, counts 4 FLOPs (multiply-adds) per sampled output
element: the four bilinear taps. :func:`count_macs_with_sampling` adds that formula;
``opaque=True`` leaves sampling out, as fvcore sees the official CUDA op (a Python
autograd function it skips).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from vidattn.flops import count_macs

aten = torch.ops.aten


def _grid_sampler_flops(input_shape, grid_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:
    """(N, C, H, W) input sampled at an (N, Ho, Wo, 2) grid: 4 MACs per output element, 2 FLOPs per MAC."""
    N, C = input_shape[:2]
    Ho, Wo = grid_shape[1:3]
    return 2 * 4 * N * C * Ho * Wo


def count_macs_with_sampling(model: nn.Module, *inputs: torch.Tensor, opaque: bool = False) -> int:
    """Multiply-adds of ``model(*inputs)``, bilinear sampling included (4 per output element) unless ``opaque``."""
    return count_macs(model, *inputs, formulas=None if opaque else {aten.grid_sampler_2d: _grid_sampler_flops})
