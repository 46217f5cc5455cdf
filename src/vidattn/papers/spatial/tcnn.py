"""T-CNN, the spatial-attention paper's backbone (its Table 1), in the spec's factorised reading.

The paper lists 36 convolutions in 7 stages, 9 of them temporal with dilation ("D(d)"),
and no strides. Our reading (spec Sec. 3), stated once here:

* a plain layer is a spatial 1 x 3 x 3 convolution; ``D(d)`` is a temporal 3 x 1 x 1
  convolution with dilation d and padding d; the very first layer is a 3 x 3 x 3 stem;
* every layer is conv - BN - ReLU, with an identity skip where input and output shapes
  agree (an assumption; skips cost nothing in the count);
* spatial stride 2 at the first layer of stages 1, 2, 3, 4 and 6 (224 -> 112, 56, 28,
  14, 14, 7, 7); "frame selection" keeps every other frame at the start of stages 4 and
  6 (16 -> 16, 16, 16, 8, 8, 4, 4);
* GAP, dropout 0.5, FC.

Read so, T-CNN-F costs 15.49 GMACs per 16 x 224² clip (the paper: 15.78) with 15.9 M
parameters. :data:`TCNN_S` is the chapter's CPU-sized network in the same grammar.
:func:`trace` lists every layer's shapes, parameters and multiply-adds.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class Layer:
    stage: int
    cout: int
    dilation: int = 0  # 0: spatial 1x3x3 (3x3x3 for the stem); d > 0: temporal 3x1x1 with dilation d
    stride: int = 1  # spatial
    select: bool = False  # keep every other frame before this layer


def _stage(stage: int, spec: str, stride_first: bool, select_first: bool) -> list[Layer]:
    """Parse "c c D4 c" (c<width> spatial, D<d>@<width> temporal) into layers."""
    out = []
    for i, tok in enumerate(spec.split()):
        if tok.startswith("D"):
            d, width = tok[1:].split("@")
            layer = Layer(stage, int(width), int(d))
        else:
            layer = Layer(stage, int(tok))
        if i == 0:
            layer = Layer(layer.stage, layer.cout, layer.dilation, 2 if stride_first else 1, select_first)
        out.append(layer)
    return out


# Table 1: 2 + 2 + 2 + 11 + 7 + 8 + 4 = 36 layers, 9 of them temporal
TCNN_F = (
    _stage(1, "32 32", True, False)
    + _stage(2, "64 64", True, False)
    + _stage(3, "96 96", True, False)
    + _stage(4, "160 160 160 D4@160 160 D4@160 160 D4@160 160 160 160", True, True)
    + _stage(5, "D4@160 224 224 224 D2@224 224 D4@224", False, False)
    + _stage(6, "288 288 288 D2@288 288 D2@288 288 288", True, True)
    + _stage(7, "512 512 512 D2@512", False, False)
)
# the CPU network: 64² x 8 frames -> 8² x 4 frames, widths 16/24/32/48/48/64, temporal D2/D2/D1
TCNN_S = (
    _stage(1, "16", True, False)
    + _stage(2, "24", True, False)
    + _stage(3, "32 D2@32", True, False)
    + _stage(4, "48 D2@48", False, True)
    + _stage(5, "48 D1@48", False, False)
    + _stage(6, "64", False, False)
)


class ConvLayer(nn.Module):
    def __init__(self, cin: int, layer: Layer, stem: bool):
        super().__init__()
        self.layer = layer
        if layer.dilation:
            d = layer.dilation
            conv = nn.Conv3d(cin, layer.cout, (3, 1, 1), padding=(d, 0, 0), dilation=(d, 1, 1), bias=False)
        else:
            kt = 3 if stem else 1
            conv = nn.Conv3d(cin, layer.cout, (kt, 3, 3), stride=(1, layer.stride, layer.stride),
                             padding=(kt // 2, 1, 1), bias=False)
        self.conv, self.bn, self.relu = conv, nn.BatchNorm3d(layer.cout), nn.ReLU(inplace=True)
        self.skip = cin == layer.cout and layer.stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer.select:
            x = x[:, :, ::2]
        y = self.relu(self.bn(self.conv(x)))
        return x + y if self.skip else y


class TCNN(nn.Module):
    """T-CNN from a layer table (:data:`TCNN_F` or :data:`TCNN_S`); ``features`` gives the last map."""

    def __init__(self, layers: list[Layer] = TCNN_F, num_classes: int = 400, dropout: float = 0.5):
        super().__init__()
        blocks, cin = [], 3
        for i, layer in enumerate(layers):
            blocks.append(ConvLayer(cin, layer, stem=i == 0))
            cin = layer.cout
        self.layers = nn.Sequential(*blocks)
        self.channels = cin
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x).mean((2, 3, 4))))


def trace(model: TCNN, clip_shape: tuple[int, ...]) -> list[dict[str, object]]:
    """Every convolution of ``model`` on one clip (C, T, H, W): stage, kind, output shape, parameters
    and multiply-adds C_in C_out k_t k_h k_w T' H' W' (BN, ReLU and skips not counted)."""
    rows: list[dict[str, object]] = []

    def hook(module: ConvLayer, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        conv, layer = module.conv, module.layer
        k = conv.kernel_size
        macs = conv.in_channels * conv.out_channels * k[0] * k[1] * k[2] * output[0, 0].numel()
        rows.append({"stage": layer.stage, "kind": f"D({layer.dilation})" if layer.dilation else "conv",
                     "out": tuple(output.shape[1:]), "params": conv.weight.numel(), "macs": macs})

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, ConvLayer)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *clip_shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return rows
