"""Same-location temporal models, the baselines of SIFA's Table 1e, shared by every chapter.

Each acts on a (B, C, T, H, W) feature map and keeps its shape:

* :class:`TemporalConv`: a convolution over time, kernel 3, channel-wise (depthwise) or
  dense (every channel reads every channel: the (2+1)D "temporal conv" of SIFA's
  Table 1e), started as the identity so that inserting it leaves a network unchanged;
* :func:`tsm_shift`: TSM's zero-cost shift of 1/``fold`` of the channels one frame back
  and another 1/``fold`` one frame forward (zeros enter at the ends);
* :func:`local_correlation`: the k x k correlation volume between frame t and frame
  t + 1 (scaled by 1/C), a feature map of k^2 channels (zero for the last frame), and
  :class:`CorrelationFeature`, which adds it back through a 1 x 1 x 1 convolution
  (SIFA_C: correlation used as a feature, not as attention weights);
* :func:`temporal_difference`: f_{t+1} - f_t (zero for the last frame), and
  :class:`DifferenceFeature`, which adds it back through a 3 x 3 convolution (the
  temporal-difference row of Table 1e, in the manner of TDN);
* :class:`TemporalAttention`: self-attention over the frames at every position, with the
  DirecFormer chapter's attention (softmax as in TimeSformer, or cosine: directed, Eq. 5).

Every time shift is built with ``torch.cat``: an overlapping in-place slice copy such
as ``x[:, :, 1:] = x[:, :, :-1]`` is not a shift (it can copy frame 0 everywhere; the
SIFA spec's pitfall 1, shown in the tests).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from vidattn.papers.direcformer.model import Attention
from vidattn.papers.sifa.op import sample_taps


class TemporalConv(nn.Module):
    """Temporal convolution, kernel (3, 1, 1), channel-wise or ``dense``; the identity at initialisation."""

    def __init__(self, channels: int, kernel: int = 3, dense: bool = False):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"the temporal kernel must be odd, got {kernel}")
        self.conv = nn.Conv3d(channels, channels, (kernel, 1, 1), padding=(kernel // 2, 0, 0),
                              groups=1 if dense else channels, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            idx = torch.arange(channels)
            self.conv.weight[idx, 0 if not dense else idx, kernel // 2] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def tsm_shift(x: torch.Tensor, fold: int = 8) -> torch.Tensor:
    """TSM: channels [0, C/fold) take frame t + 1's values, [C/fold, 2C/fold) frame t - 1's."""
    C = x.shape[1]
    n = C // fold
    if n == 0:
        raise ValueError(f"{C} channels cannot be split in folds of 1/{fold}")
    zero = torch.zeros_like(x[:, :n, :1])
    back = torch.cat([x[:, :n, 1:], zero], 2)  # frame t sees frame t + 1
    forward = torch.cat([zero, x[:, n : 2 * n, :-1]], 2)  # frame t sees frame t - 1
    return torch.cat([back, forward, x[:, 2 * n :]], 1)


def local_correlation(x: torch.Tensor, k: int = 3) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, k^2, T, H, W): <x_t(p), x_{t+1}(p + r)> / C for each window offset r."""
    B, C, T, H, W = x.shape
    keys = x[:, :, 1:].transpose(1, 2).reshape(B * (T - 1), C, H, W)
    S = sample_taps(keys, None, k).view(B, T - 1, C, k * k, H, W)
    corr = torch.einsum("btchw,btcjhw->bjthw", x[:, :, :-1].transpose(1, 2), S) / C
    return torch.cat([corr, torch.zeros_like(corr[:, :, :1])], 2)


class CorrelationFeature(nn.Module):
    """x + Conv1x1x1(local_correlation(x)): the correlation volume as a feature (SIFA_C).

    ``zero_init`` starts the projection at zero (the block is then the identity); the
    SIFA spec's prototype found that start did not learn in 6 epochs, so it is optional.
    """

    def __init__(self, channels: int, k: int = 3, zero_init: bool = False):
        super().__init__()
        self.k = k
        self.proj = nn.Conv3d(k * k, channels, 1, bias=False)
        if zero_init:
            nn.init.zeros_(self.proj.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(local_correlation(x, self.k))


def temporal_difference(x: torch.Tensor) -> torch.Tensor:
    """f_{t+1} - f_t at time t (zero for the last frame)."""
    diff = x[:, :, 1:] - x[:, :, :-1]
    return torch.cat([diff, torch.zeros_like(diff[:, :, :1])], 2)


class DifferenceFeature(nn.Module):
    """x + Conv(1x3x3)(f_{t+1} - f_t): the frame difference as a feature (Table 1e's row)."""

    def __init__(self, channels: int):
        super().__init__()
        self.proj = nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(temporal_difference(x))


class TemporalAttention(nn.Module):
    """``x + proj(attention(LN(x_t + e_t)))`` over the T frames at every position of a (B, C, T, H, W) map.

    The attention is :class:`~vidattn.papers.direcformer.model.Attention` of ``kind`` ``softmax``
    (TimeSformer's temporal attention) or ``cosine`` (DirecFormer's directed attention, Eq. 5); a
    learned time embedding e_t (drawn with ``time_embed_std``, the DirecFormer chapter's pilot) tells
    the frames apart. Its output projection starts at zero, so the module starts as the identity, as
    DirecFormer's zero-initialised ``temporal_fc`` does. ``weights`` keeps the last forward's
    attention, (B, H W, heads, T, T), for Eq. 13's L_self.
    """

    def __init__(self, channels: int, frames: int, kind: str = "softmax", heads: int = 2,
                 time_embed_std: float = 0.2):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attn = Attention(channels, heads, kind)
        self.time = nn.Parameter(torch.randn(frames, channels) * time_embed_std)
        nn.init.zeros_(self.attn.proj.weight)
        nn.init.zeros_(self.attn.proj.bias)
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        if T != self.time.shape[0]:
            raise ValueError(f"temporal attention built for {self.time.shape[0]} frames, got {T}")
        tokens = x.permute(0, 3, 4, 2, 1).reshape(B * H * W, T, C)
        out, a = self.attn(self.norm(tokens + self.time))
        self.weights = a.view(B, H * W, *a.shape[1:])
        return x + out.view(B, H, W, T, C).permute(0, 4, 3, 1, 2)
