"""Baselines shared by every chapter.

* :class:`FrameAverage` is the "bag of frames": a 2-D CNN applied to every frame, its
  4x4 feature maps averaged over time (so where things are stays visible), then a
  linear classifier. Averaging is invariant to
  any permutation of the frames, so on a suite whose reversed clips are distributed
  as their partner class it must sit at chance within each reversal pair.
* :class:`TinyC3D` is a minimal spatio-temporal CNN (3x3x3 convolutions) that can see
  order; it is the positive control for the same premise.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _conv_bn(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> nn.Sequential:
    pad = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride, pad, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class FrameAverage(nn.Module):
    """Per-frame CNN (1x3x3 kernels only), temporal mean of a 4x4 map, linear head."""

    def __init__(self, num_classes: int, width: int = 16, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(in_channels, width, (1, 3, 3), (1, 2, 2)),
            _conv_bn(width, 2 * width, (1, 3, 3), (1, 2, 2)),
            _conv_bn(2 * width, 4 * width, (1, 3, 3), (1, 2, 2)),
        )
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Linear(4 * width * 16, num_classes)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 4*width, T, H/8, W/8)."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.feature_map(x).mean(2)  # average over time: order is invisible from here on
        return self.head(self.pool(f).flatten(1))


class TinyC3D(nn.Module):
    """Three 3x3x3 conv blocks, global average pooling, linear head."""

    def __init__(self, num_classes: int, width: int = 16, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(in_channels, width, (3, 3, 3), (1, 2, 2)),
            _conv_bn(width, 2 * width, (3, 3, 3), (1, 2, 2)),
            _conv_bn(2 * width, 4 * width, (3, 3, 3), (1, 2, 2)),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_map(x).mean(dim=(2, 3, 4)))
