"""SIFA-Net at full size: a ResNet-50/101 with inter-frame attention, as the paper describes it and as released.

``design="paper"`` (Sec. 3.3, Fig. 4a): a 2-D ResNet applied to every frame (C2D, every
kernel 1 x k x k), with a SIFA block (k = 3, offsets from the motion saliency map) after
the 3 x 3 convolution of *every* bottleneck of the listed stages (res3-res5 by default:
4 + 6 + 3 = 13 blocks in R50, 4 + 23 + 3 = 30 in R101); GAP, dropout, FC.

``design="released"`` (the official ``c2d_sifa_resnet.py``, the spec's D4-D9):

* the stem is a Conv3d of kernel (4, 7, 7) and stride (4, 2, 2): a 16-frame clip
  becomes 4 time steps, so SIFA links tubelets 4 frames apart (D6);
* in res3-res5, bottlenecks alternate: even index a *global-context* bottleneck (an
  additive MLP C -> C/16 -> C on the (T, H, W) mean of the BN3 output, D7), odd index a
  SIFA bottleneck (2 + 3 + 1 SIFA blocks in R50, 2 + 11 + 1 in R101, D5), in the code's
  semantics (1/C weights, last frame not aggregated, (1 + sigma) MSM) with Kaiming-
  initialised offsets (D4);
* a *dual* res5 (D8): the res4 output, max-pooled x2 in time, goes through a second
  res5 of stride 1 with its own SIFA block and classifier. In training the forward
  returns both heads' logits stacked (2, B, K) (the loss is their summed cross-entropy);
  in evaluation it returns the log of the two softmaxes' mean, as the official test.

BN3's scale starts at zero in every bottleneck (the released init), so each residual
block starts as the identity. :func:`load_resnet_weights` starts either design from a
local torchvision ImageNet ResNet-50/101 checkpoint, as the official code does.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from vidattn.models.inflate import load_mapped
from vidattn.papers.sifa.op import SIFABlock

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
DESIGNS = ("paper", "released")


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, (1, k, k), stride=(1, stride, stride), padding=(0, k // 2, k // 2), bias=False)


class GlobalContext(nn.Module):
    """x + MLP(mean_{T,H,W} x), the MLP C -> C/16 -> C (the released ``GBottleneck``'s context term)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv3d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
                                 nn.Conv3d(channels // reduction, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(x.mean((2, 3, 4), keepdim=True))


class Bottleneck(nn.Module):
    """1x1 - 3x3 - [SIFA] - 1x1 (+ global context) with a residual (Fig. 4a)."""

    def __init__(self, cin: int, width: int, stride: int, sifa: dict[str, Any] | None, context: bool):
        super().__init__()
        cout = 4 * width
        self.conv1, self.bn1 = _conv(cin, width), nn.BatchNorm3d(width)
        self.conv2, self.bn2 = _conv(width, width, 3, stride), nn.BatchNorm3d(width)
        self.sifa = SIFABlock(width, **sifa) if sifa is not None else None
        self.conv3, self.bn3 = _conv(width, cout), nn.BatchNorm3d(cout)
        nn.init.zeros_(self.bn3.weight)
        self.context = GlobalContext(cout) if context else None
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm3d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        if self.sifa is not None:
            h = self.sifa(h)
        h = self.bn3(self.conv3(h))
        if self.context is not None:
            h = self.context(h)
        return self.relu(h + (x if self.down is None else self.down(x)))


class SIFANet(nn.Module):
    """SIFA-Net R50/R101 (module docstring). ``sifa_stages`` lists the res stages (2-5) with SIFA;
    ``sifa`` overrides the SIFA block's arguments (k, offsets, ...); ``sifa_stages=()`` is the
    2-D ResNet baseline of the same design."""

    def __init__(self, depth: int = 50, design: str = "paper", num_classes: int = 400, frames: int = 16,
                 sifa_stages: tuple[int, ...] = (3, 4, 5), sifa: dict[str, Any] | None = None, dropout: float = 0.5):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"unknown depth {depth}; known: {sorted(DEPTHS)}")
        if design not in DESIGNS:
            raise ValueError(f"unknown design {design!r}; known: {DESIGNS}")
        released = design == "released"
        if released and frames % 8:
            raise ValueError(f"the released design needs a multiple of 8 frames (stride-4 stem, then x2 "
                             f"pooling for the dual branch), got {frames}")
        block = {"k": 3, "offsets": "saliency", "semantics": "code" if released else "paper",
                 "zero_init": not released, **(sifa or {})}
        self.design = design
        kt, st = (4, 4) if released else (1, 1)
        self.stem = nn.Sequential(
            nn.Conv3d(3, 64, (kt, 7, 7), stride=(st, 2, 2), padding=(0, 3, 3), bias=False), nn.BatchNorm3d(64),
            nn.ReLU(inplace=True), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))

        def stage(index: int, cin: int, blocks: int, stride: int) -> nn.Sequential:
            width, layers = 64 * 2 ** (index - 2), []
            for i in range(blocks):
                with_sifa = index in sifa_stages and (not released or i % 2 == 1)
                context = released and index >= 3 and i % 2 == 0
                layers.append(Bottleneck(cin, width, stride if i == 0 else 1, block if with_sifa else None, context))
                cin = 4 * width
            return nn.Sequential(*layers)

        n = DEPTHS[depth]
        self.res2, self.res3 = stage(2, 64, n[0], 1), stage(3, 256, n[1], 2)
        self.res4, self.res5 = stage(4, 512, n[2], 2), stage(5, 1024, n[3], 2)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)
        self.res5_dual = stage(5, 1024, n[3], 1) if released else None
        self.fc_dual = nn.Linear(2048, num_classes) if released else None
        offset_convs = {id(m.offset_conv) for m in self.modules() if isinstance(m, SIFABlock)}
        for m in self.modules():  # the offset predictors keep their own init (zero, or Kaiming when released)
            if isinstance(m, nn.Conv3d) and id(m) not in offset_convs:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of the main head (and the dual head in the released design)."""
        h4 = self.res4(self.res3(self.res2(self.stem(x))))
        out = [self.fc(self.drop(self.res5(h4).mean((2, 3, 4))))]
        if self.res5_dual is not None:
            pooled = nn.functional.max_pool3d(h4, (2, 1, 1), (2, 1, 1))
            out.append(self.fc_dual(self.drop(self.res5_dual(pooled).mean((2, 3, 4)))))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.heads(x)
        if len(out) == 1:
            return out[0]
        if self.training:
            return torch.stack(out)
        return torch.stack([o.softmax(-1) for o in out]).mean(0).log()


def torchvision_names(model: SIFANet) -> dict[str, str]:
    """Model key -> torchvision ResNet key for every tensor the image model has (the dual res5
    reads ``layer4`` as well, as the official code copies it)."""
    out = {}
    own = model.state_dict()
    for mine, theirs in (("stem.0.", "conv1."), ("stem.1.", "bn1.")):
        out.update({k: theirs + k[len(mine):] for k in own if k.startswith(mine)})
    for mine, theirs in (("res2.", "layer1."), ("res3.", "layer2."), ("res4.", "layer3."), ("res5.", "layer4."),
                         ("res5_dual.", "layer4.")):
        for k in own:
            if not k.startswith(mine) or ".sifa." in k or ".context." in k:
                continue
            rest = k[len(mine):].replace(".down.", ".downsample.")
            out[k] = theirs + rest
    return out


def centre_tap(weight: torch.Tensor, kt: int) -> torch.Tensor:
    """(C_out, C_in, k, k) -> (C_out, C_in, kt, k, k): the 2-D kernel at tap kt // 2, zeros elsewhere."""
    out = weight.new_zeros(*weight.shape[:2], kt, *weight.shape[2:])
    out[:, :, kt // 2] = weight
    return out


def load_resnet_weights(model: SIFANet, path: str) -> dict[str, list[str]]:
    """Initialise ``model`` from a torchvision ResNet checkpoint of the same depth.

    Per-frame kernels take the 2-D weights as they are; the released stem's kernel of
    temporal size 4 takes them at tap 2 and zeros elsewhere (the official inflation, D6),
    so a clip of identical frames gives the image model's stem output. The offset
    predictors, the global-context MLPs and the classifiers keep their initial values
    (returned as ``initial``). A missing file, a key, or a shape that does not fit is an
    error naming the file.
    """
    return load_mapped(model, path, torchvision_names(model), "ResNet", centre_tap)
