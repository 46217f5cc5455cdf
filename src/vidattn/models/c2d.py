"""A tiny C2D ResNet with a temporal module in each block: the SIFA chapter's test bed.

Every convolution is per frame (kernel 1 x k x k); time is touched only by the temporal
module placed after the first 3 x 3 convolution of a block (the paper's placement in
its bottlenecks, Fig. 4a) and, optionally, by a learnable temporal stem. Features are
post-ReLU where the module reads them, as in SIFA-Net. Layout::

    stem  conv 1x3x3 (or kt x 3 x 3), stride 2      -> widths[0] @ size/2
    stage i: conv3x3 - BN - ReLU - [temporal] - conv3x3 - BN - (+ shortcut) - ReLU
             widths (8, 16, 32) at size/2, /4, /8
    global (T, H, W) average pool -> dropout -> FC

With no temporal module and a one-frame stem the network is a bag of frames: its
logits are the mean over frames of a per-frame function, blind to frame order.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from vidattn.models.temporal import CorrelationFeature, DifferenceFeature, TemporalAttention, TemporalConv, tsm_shift
from vidattn.papers.sifa.op import SIFABlock

TEMPORAL = ("none", "tconv", "tsm", "correlation", "difference", "sifa", "attention")


class TSM(nn.Module):
    """TSM's shift as a module (1/``fold`` of the channels each way)."""

    def __init__(self, fold: int = 8):
        super().__init__()
        self.fold = fold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tsm_shift(x, self.fold)


def temporal_module(spec: dict[str, Any], channels: int) -> nn.Module:
    """``{"name": "sifa", "k": 3, "offsets": "saliency", ...}`` -> the module (``"none"`` is the identity).

    Names: none, tconv (dense, identity start), tsm, correlation (SIFA_C), difference,
    sifa (the rest of the spec goes to :class:`~vidattn.papers.sifa.op.SIFABlock`), attention
    (:class:`~vidattn.models.temporal.TemporalAttention`; the spec gives ``frames`` and ``kind``).
    """
    spec = dict(spec)
    name = spec.pop("name")
    if name not in TEMPORAL:
        raise ValueError(f"unknown temporal module {name!r}; known: {TEMPORAL}")
    builders = {
        "none": lambda: nn.Identity(),
        "tconv": lambda: TemporalConv(channels, dense=True, **spec),
        "tsm": lambda: TSM(**spec),
        "correlation": lambda: CorrelationFeature(channels, **spec),
        "difference": lambda: DifferenceFeature(channels, **spec),
        "sifa": lambda: SIFABlock(channels, **spec),
        "attention": lambda: TemporalAttention(channels, **spec),
    }
    return builders[name]()


def conv2d(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    """A per-frame 3 x 3 convolution."""
    return nn.Conv3d(cin, cout, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, temporal: dict[str, Any]):
        super().__init__()
        self.conv1, self.bn1 = conv2d(cin, cout, stride), nn.BatchNorm3d(cout)
        self.temporal = temporal_module(temporal, cout)
        self.conv2, self.bn2 = conv2d(cout, cout), nn.BatchNorm3d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv3d(cin, cout, 1, stride=(1, stride, stride), bias=False), nn.BatchNorm3d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.temporal(self.relu(self.bn1(self.conv1(x))))
        return self.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class TinyC2D(nn.Module):
    """The chapter's tiny network; ``stages`` lists the stages (1-based) that get the temporal module."""

    def __init__(self, num_classes: int, temporal: dict[str, Any] | None = None, stages: tuple[int, ...] = (1, 2, 3),
                 widths: tuple[int, ...] = (8, 16, 32), temporal_stem: int = 1, dropout: float = 0.0):
        super().__init__()
        if temporal_stem < 1 or temporal_stem % 2 == 0:
            raise ValueError(f"temporal_stem must be an odd kernel length >= 1, got {temporal_stem}")
        if any(not 1 <= s <= len(widths) for s in stages):
            raise ValueError(f"stages {stages} outside 1..{len(widths)}")
        spec = temporal or {"name": "none"}
        self.stem = nn.Sequential(
            nn.Conv3d(3, widths[0], (temporal_stem, 3, 3), stride=(1, 2, 2), padding=(temporal_stem // 2, 1, 1),
                      bias=False),
            nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths, 1):
            blocks.append(BasicBlock(cin, w, 1 if i == 1 else 2, spec if i in stages else {"name": "none"}))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output, (B, widths[i], T, H_i, W_i), first stage first."""
        out, h = [], self.stem(x)
        for block in self.blocks:
            h = block(h)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x).mean((2, 3, 4))))

    def sifa_blocks(self) -> list[SIFABlock]:
        return [m for m in self.modules() if isinstance(m, SIFABlock)]
