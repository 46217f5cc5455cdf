"""One trunk with a temporal slot, and the registry of what can fill it (in the manner of timm's
``create_model``: a name maps to a constructor over shared layers).

The trunk is the SIFA chapter's :class:`~vidattn.models.c2d.TinyC2D`: 2-D convolutions per frame,
three stages. A mechanism fills one of two slots, with the package's own modules:

* **in the blocks** of stages 2 and 3, after the first convolution (SIFA's placement): the
  temporal convolution, TSM, the SIFA block, plain temporal self-attention (TimeSformer's
  softmax) or DirecFormer's directed (cosine) attention, which also trains with its order
  losses (Eq. 14: L_ord through an order head, L_self on the attention);
* **as the head** over the stage features: average pooling (the bag of frames when no block
  has a temporal module), the CIDC head (its multi-scale directional streams), or the
  interaction-aware pyramid attention pooling.

The spatial-attention chapter's class-peak zoom is not in the registry: it is a second pass
over a re-sampled input driven by a trained backbone's class activations, not a module of a
one-pass network (:data:`NOT_IN_SLOT`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidattn.models.c2d import TinyC2D
from vidattn.models.temporal import TemporalAttention
from vidattn.papers.cidc.model import CIDCHead
from vidattn.papers.direcformer.model import DirecFormerOutput
from vidattn.papers.pyramid.attention import PyramidAttention
from vidattn.papers.sifa.op import SIFABlock

STAGES = (2, 3)  # the stages whose blocks hold a temporal module (SIFA's: not the highest resolution)
HEADS = ("mean", "cidc", "pyramid")


@dataclass(frozen=True)
class Mechanism:
    """What fills the slot: a temporal module for the blocks (``{"name": "none"}`` for none), a head,
    whether it trains with DirecFormer's order losses, and the offset predictor's relative learning
    rate (SIFA's deformable offsets)."""

    source: str  # the chapter it comes from, or "baseline"
    temporal: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    head: str = "mean"
    order_losses: bool = False
    offset_lr: float = 1.0


MECHANISMS: dict[str, Mechanism] = {
    "bag of frames": Mechanism("baseline"),
    "temporal conv": Mechanism("baseline", {"name": "tconv"}),
    "TSM": Mechanism("baseline", {"name": "tsm"}),
    "temporal self-attention": Mechanism("baseline", {"name": "attention", "kind": "softmax"}),
    "directed attention": Mechanism("DirecFormer", {"name": "attention", "kind": "cosine"}, order_losses=True),
    "CIDC": Mechanism("CIDC", head="cidc"),
    "SIFA": Mechanism("SIFA", {"name": "sifa", "k": 3, "offsets": "saliency", "semantics": "code"}, offset_lr=0.1),
    "pyramid attention": Mechanism("pyramid attention", head="pyramid"),
}
BASELINES = tuple(n for n, m in MECHANISMS.items() if m.source == "baseline")
NOT_IN_SLOT = {"class-peak zoom (spatial attention)": (
    "a second pass over an input re-sampled where a trained backbone's class activations peak, with "
    "its own two-stage training: not a module of a one-pass network, so it has no slot here")}


class SlotNet(nn.Module):
    """:class:`TinyC2D` with one mechanism of :data:`MECHANISMS` in its slot (module docstring)."""

    def __init__(self, mechanism: str, num_classes: int, frames: int, size: int,
                 widths: tuple[int, ...] = (8, 16, 32), num_orders: int = 0, dropout: float = 0.0):
        super().__init__()
        if mechanism not in MECHANISMS:
            raise ValueError(f"unknown mechanism {mechanism!r}; known: {list(MECHANISMS)}")
        m = MECHANISMS[mechanism]
        temporal = dict(m.temporal)
        if temporal["name"] == "attention":
            temporal["frames"] = frames
        self.trunk = TinyC2D(num_classes, temporal, stages=STAGES, widths=widths, dropout=dropout)
        self.head_kind = m.head
        top = size // 2 ** len(widths)  # stride 2 in the stem and in every stage but the first
        if m.head == "cidc":
            self.head: nn.Module = CIDCHead(list(widths), frames, num_classes, dropout=dropout)
        elif m.head == "pyramid":
            self.head = PyramidAttention(list(widths), (top, top))
        if m.head == "cidc":  # CIDC's head has its own classifier
            self.trunk.fc = nn.Identity()
        self.order_head = nn.Linear(widths[-1], num_orders) if num_orders else None

    def attention_modules(self) -> list[TemporalAttention]:
        return [m for m in self.modules() if isinstance(m, TemporalAttention)]

    def sifa_blocks(self) -> list[SIFABlock]:
        return self.trunk.sifa_blocks()

    def pooled_and_logits(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clip's pooled top-stage features (B, C) and its class logits."""
        feats = self.trunk.stage_features(video)
        pooled = feats[-1].mean((2, 3, 4))
        if self.head_kind == "cidc":
            return pooled, self.head(feats)
        if self.head_kind == "pyramid":
            M, _ = self.head([f.permute(0, 2, 1, 3, 4) for f in feats])  # (B, T, C, H, W) per scale
            return pooled, self.trunk.fc(self.trunk.drop(F.relu(M).mean((2, 3))))
        return pooled, self.trunk.fc(self.trunk.drop(pooled))

    def forward(self, video: torch.Tensor, return_all: bool = False) -> torch.Tensor | DirecFormerOutput:
        pooled, logits = self.pooled_and_logits(video)
        if not return_all:
            return logits
        order_logits = self.order_head(pooled) if self.order_head is not None else None
        return DirecFormerOutput(logits, order_logits, [m.weights for m in self.attention_modules()], [])


def create_mechanism(mechanism: str, num_classes: int, frames: int, size: int, **kwargs: Any) -> SlotNet:
    """The trunk with ``mechanism`` in its slot (a one-line error for an unknown name)."""
    return SlotNet(mechanism, num_classes, frames, size, **kwargs)
