"""The pyramid layer placed in full-size backbones (spec Sec. 2), for Table 10 and real data.

:class:`PyramidBackbone` runs a 2-D backbone on every one of K frames, taps the pyramid's
scales with forward hooks, pools the taps to the top layer's size and turns the K frames
into one map with the temporal layer (Eq. 13), which the backbone's remaining layers then
read unchanged. ``scales = 0`` is TSN (the remaining layers on every frame, scores
averaged). The placements (:data:`PLACEMENTS`):

* ``irv2``: timm's Inception-ResNet-V2. Top: ``block8`` (no ReLU), 8^2 x 2080 at 299 px;
  B and A are the *pre-ReLU* outputs of the last Block17 / Block35 (forward-pre-hooks on
  their ``act``), 17^2 x 1088 and 35^2 x 320; the 4th scale is Conv2d_4a before its ReLU,
  71^2 x 192 (the paper prints 92). The layer sits before ``conv2d_7b``.
* ``vgg16``: torchvision's VGG16; pre-ReLU conv3_3 / conv4_3 / conv5_3 (56^2 x 256,
  28^2 x 512, 14^2 x 512 at 224 px), all max-pooled to pool5's 7 x 7; the layer's output
  goes through ReLU (max-pooling commutes with it) into fc6.
* ``googlenet``: torchvision's GoogLeNet, the channel counts the paper prints for
  "BN-Inception" (3b 28^2 x 480, 4e 14^2 x 832, 5b 7^2 x 1024; outputs, which are
  post-ReLU concatenations).
* ``resnet50`` / ``resnet50_tsm``: torchvision's ResNet-50, stages 3-5 (layer2-4 outputs,
  post-ReLU: the last ReLU is shared within a block, so no pre-activation tap exists
  without rewriting it); ``_tsm`` shifts 1/8 of the channels each way in time before every
  bottleneck's first convolution (TSM's residual shift).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn

from vidattn.models.temporal import tsm_shift
from vidattn.papers.pyramid.attention import PyramidAttention


@dataclass(frozen=True)
class Placement:
    """Where the pyramid goes: tap modules (finest first, top last) and how each is read
    (``pre``: the module's input, ``out``: its output), the children that run before the
    layer and after it, and the input size the paper uses."""

    taps: tuple[tuple[str, str], ...]
    trunk: tuple[str, ...]
    rest: tuple[str, ...]
    image_size: int
    paper_scales: int = 3  # the paper's pyramid; the taps before them are extra, finer scales


def _timm_irv2(num_classes: int) -> nn.Module:
    import timm

    return timm.create_model("inception_resnet_v2", pretrained=False, num_classes=num_classes)


def _tv(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        import torchvision.models as tvm

        kw: dict[str, Any] = {"num_classes": num_classes}
        if name == "googlenet":
            kw.update(aux_logits=False, init_weights=True)
        return getattr(tvm, name)(**kw)
    return build


IRV2_TRUNK = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a",
              "mixed_5b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "repeat_2", "block8")
PLACEMENTS: dict[str, Placement] = {
    "irv2": Placement((("conv2d_4a.bn.act", "pre"), ("repeat.9.act", "pre"), ("repeat_1.19.act", "pre"),
                       ("block8", "out")), IRV2_TRUNK, ("conv2d_7b", "global_pool", "head_drop", "classif"), 299),
    "vgg16": Placement((("features.15", "pre"), ("features.22", "pre"), ("features.29", "pre")),
                       ("features",), ("avgpool", "flatten", "classifier"), 224),
    "googlenet": Placement((("inception3b", "out"), ("inception4e", "out"), ("inception5b", "out")),
                           ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b",
                            "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
                            "maxpool4", "inception5a", "inception5b"), ("avgpool", "flatten", "dropout", "fc"), 224),
    "resnet50": Placement((("layer2", "out"), ("layer3", "out"), ("layer4", "out")),
                          ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"),
                          ("avgpool", "flatten", "fc"), 224),
}
PLACEMENTS["resnet50_tsm"] = PLACEMENTS["resnet50"]
BUILDERS: dict[str, Callable[[int], nn.Module]] = {"irv2": _timm_irv2, "vgg16": _tv("vgg16"),
                                                   "googlenet": _tv("googlenet"), "resnet50": _tv("resnet50"),
                                                   "resnet50_tsm": _tv("resnet50")}


class PyramidBackbone(nn.Module):
    """A 2-D backbone over K frames with the temporal pyramid layer at its placement (module
    docstring). ``scales`` counts from the top (1: top only, 3: the paper's pyramid);
    ``backbone`` may be given ready-built (weights loaded), else it is built untrained."""

    def __init__(self, name: str, num_classes: int, scales: int = 3, fusion: str = "product",
                 image_size: int | None = None, backbone: nn.Module | None = None, dropout: float | None = None):
        super().__init__()
        if name not in PLACEMENTS:
            raise ValueError(f"unknown backbone {name!r}; known: {sorted(PLACEMENTS)}")
        place = PLACEMENTS[name]
        if not 0 <= scales <= len(place.taps):
            raise ValueError(f"{name} has {len(place.taps)} tappable scales, asked for {scales}")
        self.name, self.place, self.scales = name, place, scales
        self.net = backbone if backbone is not None else BUILDERS[name](num_classes)
        if dropout is not None:
            for m in self.net.modules():
                if isinstance(m, nn.Dropout):
                    m.p = dropout
        self.frames = 1
        self._taps: dict[str, torch.Tensor] = {}
        used = place.taps[len(place.taps) - scales :] if scales else place.taps[-1:]
        for path, how in used:
            module = self.net.get_submodule(path)
            if how == "pre":
                module.register_forward_pre_hook(self._keep(path, pre=True))
            else:
                module.register_forward_hook(self._keep(path, pre=False))
        self.tap_names = [p for p, _ in used]
        if name.endswith("_tsm"):
            for block in (m for m in self.net.modules() if type(m).__name__ == "Bottleneck"):
                block.conv1.register_forward_pre_hook(lambda _m, args: (self._shift(args[0]),))
        size = image_size or place.image_size
        was_training = self.net.training
        self.net.eval()  # a dry run for the tap shapes (batch norm cannot train on one 1 x 1 map)
        with torch.no_grad():
            shapes = [t.shape[1:] for t in self._tapped(torch.zeros(1, 3, size, size))]
        self.net.train(was_training)
        self.channels = [int(s[0]) for s in shapes]
        self.size = tuple(int(v) for v in shapes[-1][1:])
        if name == "vgg16":  # pool5's size: the layer writes what fc6 reads
            self.size = tuple(v // 2 for v in self.size)
        self.pyramid = PyramidAttention(self.channels, self.size, fusion) if scales else None

    def _keep(self, path: str, pre: bool) -> Callable[..., None]:
        """A hook that keeps the module's input (``pre``) or output under ``path``, cloned: an
        in-place ReLU would overwrite a kept input."""
        if pre:
            return lambda _m, args: self._taps.__setitem__(path, args[0].clone())
        return lambda _m, _args, out: self._taps.__setitem__(path, out.clone())

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        """TSM's shift on (B K, C, H, W) frames, along the K frames of each clip."""
        t = x.view(-1, self.frames, *x.shape[1:]).transpose(1, 2)
        return tsm_shift(t).transpose(1, 2).flatten(0, 1)

    def _tapped(self, frames: torch.Tensor) -> list[torch.Tensor]:
        self._taps = {}
        x = frames
        for child in self.place.trunk:
            x = self.net.get_submodule(child)(x)
        self._top_input = x
        return [self._taps[p] for p in self.tap_names]

    def _rest(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.place.rest:
            x = torch.flatten(x, 1) if child == "flatten" else self.net.get_submodule(child)(x)
        return x

    def attend(self, video: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """(B, C, K, H, W) clips -> logits, and A, Y, X of the layer (empty for TSN)."""
        B, C, K = video.shape[:3]
        self.frames = K
        taps = self._tapped(video.transpose(1, 2).flatten(0, 1))
        if self.pyramid is None:
            return self._rest(self._top_input).view(B, K, -1).mean(1), {}
        maps = [t.view(B, K, *t.shape[1:]) for t in taps]
        M, aux = self.pyramid(maps)
        if self.name == "vgg16":
            M = torch.relu(M)
        return self._rest(M), aux

    def forward(self, video: torch.Tensor, with_aux: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """Logits, or (logits, what the losses read) with ``with_aux`` (through a DDP wrapper)."""
        logits, aux = self.attend(video)
        return (logits, aux) if with_aux else logits


def irv2_tf_slim_params(num_classes: int = 101) -> dict[str, int]:
    """Inception-ResNet-V2's parameter count as TF-slim has it (spec Sec. 2): timm's count,
    less the BN scales gamma (TF-slim's BN has only beta), plus the AuxLogits head
    (avg-pool 5/3, 1x1 conv 1088 -> 128 + beta, 5x5 conv 128 -> 768 + beta, FC -> classes)."""
    with torch.device("meta"):
        model = _timm_irv2(num_classes)
        aux = nn.ModuleList([nn.Conv2d(1088, 128, 1, bias=False), nn.Conv2d(128, 768, 5, bias=False),
                             nn.Linear(768, num_classes)])
    timm_params = sum(p.numel() for p in model.parameters())
    gammas = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    aux_params = sum(p.numel() for p in aux.parameters()) + 128 + 768  # the two BN betas
    return {"timm": timm_params, "bn_gamma": gammas, "aux_logits": aux_params,
            "tf_slim": timm_params - gammas + aux_params}
