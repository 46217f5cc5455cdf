"""3-D ResNet backbones for the CIDC chapter: the paper's I3D/R2D-ResNet-50 and a tiny CPU version.

Every backbone returns the outputs of its last three stages, ``[res3, res4, res5]``, each
of shape (N, C, T, H, W) with the same T (the CIDC network of Li et al. 2020 reads all
three). ``channels`` gives their widths.

The full-size nets follow GluonCV's ``i3d_resnet`` as described in the chapter's spec
(the paper's backbones come from GluonCV): a 5x7x7 stem with stride (2, 2, 2), a (2, 2, 2)
max pool, res2, a (2, 1, 1) max pool, then res3-res5 at T = 4 for a 32-frame clip.
Bottleneck blocks inflate their first 1x1x1 conv to 3x1x1 where the inflation flags say so.
R2D is the same net with no inflation and a 1x7x7 stem. The optional non-local blocks
(NL5) are the embedded-Gaussian blocks of Wang et al. after res3 blocks 1, 3 and res4
blocks 1, 3, 5.

:class:`TinyI3D` keeps the structure a CIDC head needs (three stages at T = 4) at a size
that trains on two CPU cores. Only its stem is temporal, so the temporal receptive field
of every output step is 9 frames: shorter than the 10-frame pause of the event suites.
"""
from __future__ import annotations

import torch
import torch.nn as nn

INFLATE_I3D = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
NL_BLOCKS = ((), (1, 3), (1, 3, 5), ())  # block indices followed by a non-local block, per stage


def _bn(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c)


class NonLocal3d(nn.Module):
    """Embedded-Gaussian non-local block: y = x + BN(W softmax(theta^T phi) g)."""

    def __init__(self, channels: int):
        super().__init__()
        inner = channels // 2
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.out = nn.Conv3d(inner, channels, 1, bias=False)
        self.bn = _bn(channels)
        nn.init.zeros_(self.bn.weight)  # starts as the identity, as in Wang et al.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, T, H, W = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)  # (N, THW, C/2)
        k = self.phi(x).flatten(2)  # (N, C/2, THW)
        v = self.g(x).flatten(2).transpose(1, 2)
        y = torch.softmax(q @ k, dim=-1) @ v
        y = y.transpose(1, 2).reshape(N, -1, T, H, W)
        return x + self.bn(self.out(y))


class Bottleneck3d(nn.Module):
    """ResNet bottleneck; ``inflate`` turns the first 1x1x1 conv into 3x1x1."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, inflate: bool):
        super().__init__()
        cout = planes * self.expansion
        kt = 3 if inflate else 1
        self.conv1 = nn.Conv3d(cin, planes, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv3d(planes, cout, 1, bias=False)
        self.bn3 = _bn(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False), _bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet3d50(nn.Module):
    """I3D-ResNet-50 (``inflated=True``) or R2D-ResNet-50, optionally with the NL5 blocks."""

    channels = (512, 1024, 2048)

    def __init__(self, inflated: bool = True, non_local: bool = False):
        super().__init__()
        kt = 5 if inflated else 1
        self.stem = nn.Sequential(
            nn.Conv3d(3, 64, (kt, 7, 7), (2, 2, 2), (kt // 2, 3, 3), bias=False), _bn(64), nn.ReLU(inplace=True),
            nn.MaxPool3d((2, 3, 3), (2, 2, 2), (0, 1, 1)))
        stages, cin = [], 64
        for i, (blocks, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
            layers: list[nn.Module] = []
            for b in range(blocks):
                inflate = bool(INFLATE_I3D[i][b]) and inflated
                layers.append(Bottleneck3d(cin, planes, 2 if (b == 0 and i > 0) else 1, inflate))
                cin = planes * 4
                if non_local and b in NL_BLOCKS[i]:
                    layers.append(NonLocal3d(cin))
            stages.append(nn.Sequential(*layers))
        self.res2, self.res3, self.res4, self.res5 = stages
        self.pool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f3 = self.res3(self.pool2(self.res2(self.stem(x))))
        f4 = self.res4(f3)
        return [f3, f4, self.res5(f4)]


class BasicBlock2d(nn.Module):
    """Two 1x3x3 convs with a residual: spatial only, so the temporal receptive field does not grow."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn1 = _bn(cout)
        self.conv2 = nn.Conv3d(cout, cout, (1, 3, 3), 1, (0, 1, 1), bias=False)
        self.bn2 = _bn(cout)
        self.relu = nn.ReLU(inplace=True)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False), _bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.short is None else self.short(x)))


class TinyI3D(nn.Module):
    """A CPU-sized "I3D": one 3x3x3 stem (or 1x3x3 for the R2D analogue), then 2-D residual stages.

    32 frames at 32x32 give res3 (32 ch, 4x16x16), res4 (64 ch, 4x8x8), res5 (128 ch, 4x4x4).
    The stem pads by replication, not zeros: a zero frame before the first one would be a
    temporal edge only the first output step sees, telling the model where the clip starts,
    which is order information a pooled baseline must not get for free.
    """

    def __init__(self, width: int = 16, temporal_stem: bool = True):
        super().__init__()
        kt = 3 if temporal_stem else 1
        self.stem = nn.Sequential(
            nn.Conv3d(3, width, (kt, 3, 3), (2, 2, 2), (kt // 2, 1, 1), bias=False, padding_mode="replicate"),
            _bn(width), nn.ReLU(inplace=True), nn.MaxPool3d((2, 1, 1)))
        self.res2 = BasicBlock2d(width, width)
        self.pool2 = nn.MaxPool3d((2, 1, 1))
        self.res3 = BasicBlock2d(width, 2 * width)
        self.res4 = BasicBlock2d(2 * width, 4 * width, stride=2)
        self.res5 = BasicBlock2d(4 * width, 8 * width, stride=2)
        self.channels = (2 * width, 4 * width, 8 * width)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f3 = self.res3(self.pool2(self.res2(self.stem(x))))
        f4 = self.res4(f3)
        return [f3, f4, self.res5(f4)]


def temporal_receptive_field(backbone: nn.Module, frames: int, size: int) -> int:
    """Measured temporal receptive field of the last stage: the most input frames any output step depends on.

    For each output step t, the gradient of its sum with respect to the input is taken in
    eval mode (so batch statistics do not couple clips), and the frames with a nonzero
    gradient are counted.
    """
    was = backbone.training
    backbone.eval()
    x = torch.randn(1, 3, frames, size, size, dtype=torch.float64, requires_grad=True)
    net = backbone.double()
    try:
        out = net(x)[-1]
        widest = 0
        for t in range(out.shape[2]):
            (g,) = torch.autograd.grad(out[:, :, t].sum(), x, retain_graph=True)
            used = g.abs().sum(dim=(0, 1, 3, 4)) > 0
            idx = used.nonzero().flatten()
            widest = max(widest, int(idx.max() - idx.min() + 1))
    finally:
        backbone.float().train(was)
    return widest
