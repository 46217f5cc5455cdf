"""Models: shared baselines here; each paper's modules in its own file."""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from vidattn.models.baselines import FrameAverage, TinyC3D

MODELS: dict[str, Callable[..., nn.Module]] = {
    "frame_average": FrameAverage,
    "tiny_c3d": TinyC3D,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered model by name (a clear error for unknown names)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    return MODELS[name](**kwargs)
