"""Training memory of a model computed without running it: parameters, gradients, optimiser
state, and the activations autograd keeps for the backward pass.

Everything runs on PyTorch's ``meta`` device, where tensors have shapes and dtypes but
no storage, so a ViT-B or an I3D-ResNet-50 at 224² is sized in a second on any machine.
Activations are the tensors autograd saves during one training forward pass (counted
with :func:`torch.autograd.graph.saved_tensors_hooks`, each saved tensor object once).
It is an estimate: it leaves out the CUDA context, allocator fragmentation and
temporary buffers, and views of one tensor saved as separate objects count twice.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

GIB = 2**30
# optimiser state per parameter, in float32 values
OPTIMIZER_STATES = {"sgd": 1, "adamw": 2}


def saved_bytes(forward: Callable[[], torch.Tensor]) -> int:
    """Bytes autograd saves for the backward of ``forward()`` (each saved tensor object once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen.setdefault(id(t), t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward().sum()
    return sum(seen.values())


def training_memory(build: Callable[[], nn.Module], forward: Callable[[nn.Module], torch.Tensor],
                    optimizer: str, batch: int, activation_bytes_per_value: int = 2) -> dict[str, float]:
    """GiB per GPU for training at ``batch`` clips per GPU.

    ``build`` makes the model (called under the meta device); ``forward`` runs one clip
    through it. Weights and gradients are float32, the optimiser adds
    :data:`OPTIMIZER_STATES` float32 values per parameter, and activations are scaled
    from float32 to ``activation_bytes_per_value`` (2 under bf16 autocast).
    """
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {sorted(OPTIMIZER_STATES)}")
    with torch.device("meta"):
        model = build()
        params = sum(p.numel() for p in model.parameters())
        model.train()
        act = saved_bytes(lambda: forward(model)) * activation_bytes_per_value / 4
    states = (2 + OPTIMIZER_STATES[optimizer]) * 4 * params
    return {"params_m": params / 1e6, "weights_grads_optimizer_gib": states / GIB,
            "activations_per_clip_gib": act / GIB, "total_gib": (states + batch * act) / GIB}
