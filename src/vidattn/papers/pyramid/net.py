"""The pyramid-attention chapter's CPU networks (spec Sec. 5): a tiny trunk, one stream, two streams.

* :class:`TinyTrunk`: four stages of conv 3x3 + BN (+ ReLU), widths 8/16/32/64, max-pools
  after stages 1 and 2; on 32 x 32 frames the stages are 32^2 x 8, 16^2 x 16, 8^2 x 32 and
  8^2 x 64. It returns every stage's *pre-activation* map (Sec. 5.1.1's "without
  activation") and runs ReLU on its own path.
* :class:`SegmentNet`: one stream over K sampled frames (RGB, or 2L-channel flow stacks).
  With ``scales = 0`` it is TSN: per-frame top map -> ReLU -> pool -> classifier, scores
  averaged over the K segments. With ``scales = n`` the last n stages (top last; the 4th
  scale is stage 1, "too fine") feed a temporal :class:`PyramidAttention` that turns the
  K frames into one 8 x 8 map (Eq. 13), then ReLU -> pool -> dropout -> classifier.
* :class:`AttentionFusion`: the two streams' top-and-pyramid maps as 2K sources of one
  temporal layer (our reading of Sec. 4's attention fusion).
* :func:`cross_modality_init`: a flow trunk from an RGB one (conv1 averaged over the 3
  colour channels and replicated to 2L, the rest copied).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidattn.papers.pyramid.attention import PyramidAttention

WIDTHS = (8, 16, 32, 64)
POOL_AFTER = (True, True, False, False)
MAX_SCALES = len(WIDTHS)


class TinyTrunk(nn.Module):
    """Spec Sec. 5's backbone; :meth:`taps` returns the four pre-ReLU stage maps."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        chans = (in_channels, *widths)
        self.stages = nn.ModuleList(nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                                                  nn.BatchNorm2d(chans[i + 1])) for i in range(len(widths)))
        self.widths = tuple(widths)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for stage, pool in zip(self.stages, POOL_AFTER):
            x = stage(x)
            out.append(x)
            x = F.relu(x)
            if pool:
                x = F.max_pool2d(x, 2)
        return out


def frames_first(video: torch.Tensor) -> torch.Tensor:
    """(B, C, K, H, W), the engine's clip layout, -> (B, K, C, H, W)."""
    if video.dim() != 5:
        raise ValueError(f"expected clips (B, C, K, H, W), got {tuple(video.shape)}")
    return video.transpose(1, 2)


def stage_maps(trunk: TinyTrunk, video: torch.Tensor) -> list[torch.Tensor]:
    """``trunk``'s pre-ReLU map at every stage for each of K frames, (B, K, C_j, H_j, W_j)."""
    x = frames_first(video)
    B, K = x.shape[:2]
    return [t.view(B, K, *t.shape[1:]) for t in trunk.taps(x.flatten(0, 1))]


class SegmentNet(nn.Module):
    """One stream over K segments, TSN (``scales = 0``) or with the temporal pyramid layer.

    ``forward`` returns logits; :meth:`attend` also returns what the losses and figures
    read: the top layer's sources X_i (B, C_i, KS), A (B, KS, S) and the scores Y_j."""

    def __init__(self, num_classes: int, in_channels: int = 3, scales: int = 3, fusion: str = "product",
                 dropout: float = 0.5, size: tuple[int, int] = (8, 8)):
        super().__init__()
        if not 0 <= scales <= MAX_SCALES:
            raise ValueError(f"scales must be 0..{MAX_SCALES}, got {scales}")
        self.trunk = TinyTrunk(in_channels)
        self.scales = scales
        self.pyramid = PyramidAttention(list(WIDTHS[-scales:]), size, fusion) if scales else None
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(WIDTHS[-1], num_classes)

    def attend(self, video: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        maps = stage_maps(self.trunk, video)
        if self.pyramid is None:  # TSN: average consensus of per-frame scores
            top = maps[-1]
            logits = self.fc(self.drop(F.relu(top).mean((3, 4))))
            return logits.mean(1), {}
        M, aux = self.pyramid(maps[-self.scales :])
        return self.fc(self.drop(F.relu(M).mean((2, 3)))), aux

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.attend(video)[0]


class AttentionFusion(nn.Module):
    """Two trunks (RGB, flow) whose pyramid maps enter one temporal layer as 2K sources."""

    def __init__(self, num_classes: int, flow_channels: int, scales: int = 3, fusion: str = "product",
                 dropout: float = 0.5, size: tuple[int, int] = (8, 8)):
        super().__init__()
        if not 1 <= scales <= MAX_SCALES:
            raise ValueError(f"attention fusion needs 1..{MAX_SCALES} scales, got {scales}")
        self.rgb, self.flow = TinyTrunk(3), TinyTrunk(flow_channels)
        self.scales = scales
        self.pyramid = PyramidAttention(list(WIDTHS[-scales:]), size, fusion)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(WIDTHS[-1], num_classes)

    def attend(self, video: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        rgb, fl = stage_maps(self.rgb, video), stage_maps(self.flow, flow)
        maps = [torch.cat([a, b], 1) for a, b in zip(rgb[-self.scales :], fl[-self.scales :])]
        M, aux = self.pyramid(maps)
        return self.fc(self.drop(F.relu(M).mean((2, 3)))), aux

    def forward(self, video: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return self.attend(video, flow)[0]


def cross_modality_init(rgb: TinyTrunk, flow: TinyTrunk) -> None:
    """Sec. 4: copy ``rgb`` into ``flow``; conv1's weights averaged over RGB and replicated."""
    state = {k: v.clone() for k, v in rgb.state_dict().items()}
    w = state["stages.0.0.weight"]
    in_flow = flow.stages[0][0].in_channels
    state["stages.0.0.weight"] = w.mean(1, keepdim=True).expand(-1, in_flow, -1, -1).contiguous()
    flow.load_state_dict(state)
