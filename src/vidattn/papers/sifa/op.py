"""SIFA's inter-frame attention (Long et al., CVPR 2022) in pure PyTorch.

For a clip ``x`` of shape (B, C, T, H, W), query frame ``t`` at location ``p`` attends
to the k x k window of frame ``t + 1`` around ``p``, each tap displaced by a predicted
offset (Eq. 6, bilinear sampling), with raw features as query, keys and values:

    w_r = s * <x_t(p), x~_{t+1}(p'_r)>          (Eq. 1; s = 1 in the paper, 1/C in the code)
    y_t(p) = x_t(p) + sum_r w_r x~_{t+1}(p'_r)   (Eq. 2-3)

No softmax, no projections. Two semantics are selectable (the spec's D1-D3):

* ``"paper"``: s = 1; the last frame attends to itself (f_L := f_{L-1});
  the motion saliency map is sigma(f_{t+1} - f_t) * f_{t+1} (Eq. 4-5).
* ``"code"``: s = 1/C (the official op's frozen weights); the last frame is not
  aggregated (y = x); the map is (1 + sigma(f_{t+1} - f_t)) * f_{t+1}.

Offsets use torchvision's deformable layout: (dy, dx) of tap j = kh * k + kw in
channels 2j and 2j + 1; offsets at time index t displace the taps of key frame t.
Sampling is ``F.grid_sample`` with pixel-centre normalisation (a point outside the
frame, or a corner of it, counts as zero, as in the official CUDA kernel).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

SEMANTICS = ("paper", "code")


def tap_grid(k: int, dilation: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column displacement of each of the k^2 taps, in tap order j = kh * k + kw."""
    if k < 1 or k % 2 == 0:
        raise ValueError(f"the window size k must be odd and positive, got {k}")
    r = (torch.arange(k) - k // 2) * dilation
    return r.repeat_interleave(k), r.repeat(k)


def sample_taps(x: torch.Tensor, offsets: torch.Tensor | None, k: int, dilation: int = 1) -> torch.Tensor:
    """Eq. 6 for every tap: (N, C, H, W) frames and (N, 2k^2, H, W) offsets -> (N, C, k^2, H, W).

    ``offsets=None`` samples the regular window (SIFA_R).
    """
    N, C, H, W = x.shape
    dy, dx = tap_grid(k, dilation)
    py = torch.arange(H, dtype=x.dtype, device=x.device)[None, None, :, None] + dy.to(x)[None, :, None, None]
    px = torch.arange(W, dtype=x.dtype, device=x.device)[None, None, None, :] + dx.to(x)[None, :, None, None]
    py, px = py.expand(N, k * k, H, W), px.expand(N, k * k, H, W)
    if offsets is not None:
        if offsets.shape != (N, 2 * k * k, H, W):
            raise ValueError(f"offsets must be (N, 2k^2, H, W) = {(N, 2 * k * k, H, W)}, got {tuple(offsets.shape)}")
        py, px = py + offsets[:, 0::2], px + offsets[:, 1::2]
    # pixel centres: p -> (2p + 1) / size - 1 with align_corners=False; the grid's last axis is (x, y)
    grid = torch.stack([(2 * px + 1) / W - 1, (2 * py + 1) / H - 1], dim=-1)
    out = F.grid_sample(x, grid.view(N, k * k * H, W, 2), mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.view(N, C, k * k, H, W)


def _frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B * T, C, H, W)."""
    B, C, T, H, W = x.shape
    return x.transpose(1, 2).reshape(B * T, C, H, W)


def _tap_products(q: torch.Tensor, keys: torch.Tensor, offsets: torch.Tensor | None, k: int, dilation: int,
                  scale: float) -> torch.Tensor:
    """sum_r w_r S_r over the taps, one tap at a time, each under a checkpoint: autograd keeps
    the inputs, never the (N, C, k^2, H, W) samples, and recomputes each tap in the backward."""
    N, C, H, W = keys.shape
    dy, dx = tap_grid(k, dilation)
    if offsets is None:
        offsets = torch.zeros(N, 2 * k * k, H, W, dtype=keys.dtype, device=keys.device)
    out = torch.zeros_like(q)
    for j in range(k * k):

        def one_tap(q_: torch.Tensor, keys_: torch.Tensor, off_: torch.Tensor, j: int = j) -> torch.Tensor:
            shift = torch.stack([dy[j], dx[j]]).to(keys_)[None, :, None, None]
            S = sample_taps(keys_, off_[:, 2 * j : 2 * j + 2] + shift, 1)[:, :, 0]
            return (q_ * S).sum(1, keepdim=True) * scale * S

        out = out + checkpoint(one_tap, q, keys, offsets, use_reentrant=False)
    return out


def inter_frame_attention(x: torch.Tensor, offsets: torch.Tensor | None = None, k: int = 3,
                          semantics: str = "paper", dilation: int = 1, low_memory: bool = False) -> torch.Tensor:
    """Eq. 1-3 (and 6-7 with ``offsets``): every frame attends to the next one.

    ``x`` (B, C, T, H, W); ``offsets`` (B, 2k^2, T, H, W) or None for SIFA_R. Returns y of
    the same shape. Query frame t reads key frame t + 1 with the offsets stored at t + 1.
    ``low_memory`` computes the same sum one tap at a time under checkpoints, so the
    backward keeps O(B C T H W) instead of the k^2 samples (:func:`_tap_products`).
    """
    if semantics not in SEMANTICS:
        raise ValueError(f"unknown semantics {semantics!r}; known: {SEMANTICS}")
    if x.dim() != 5:
        raise ValueError(f"expected (B, C, T, H, W), got {tuple(x.shape)}")
    B, C, T, H, W = x.shape
    if semantics == "paper":  # the last frame attends to itself: f_L := f_{L-1}
        query, keys = x, torch.cat([x[:, :, 1:], x[:, :, -1:]], 2)
        key_off = None if offsets is None else torch.cat([offsets[:, :, 1:], offsets[:, :, -1:]], 2)
    else:  # the last frame is not aggregated
        query, keys = x[:, :, :-1], x[:, :, 1:]
        key_off = None if offsets is None else offsets[:, :, 1:]
    n = keys.shape[2]
    scale = 1.0 / C if semantics == "code" else 1.0
    q = query.transpose(1, 2)  # (B, n, C, H, W)
    key_frames, frame_off = _frames(keys), None if key_off is None else _frames(key_off)
    if low_memory:
        a = _tap_products(q.reshape(B * n, C, H, W), key_frames, frame_off, k, dilation, scale).view(B, n, C, H, W)
    else:
        S = sample_taps(key_frames, frame_off, k, dilation).view(B, n, C, k * k, H, W)
        w = torch.einsum("bnchw,bncjhw->bnjhw", q, S) * scale
        a = torch.einsum("bnjhw,bncjhw->bnchw", w, S)
    y = (q + a).transpose(1, 2)
    return y if semantics == "paper" else torch.cat([y, x[:, :, -1:]], 2)


def both_directions(x: torch.Tensor, offsets: torch.Tensor | None = None, k: int = 3, semantics: str = "paper",
                    low_memory: bool = False) -> torch.Tensor:
    """SIFA*: frame t attends to frame t + 1 and to frame t - 1, the two aggregations summed.

    The previous-frame term is the next-frame term of the time-reversed clip (offsets, indexed
    by key frame, reverse with it): y = SIFA(x) + R SIFA(R x) - x, with R the time reversal.
    """
    fwd = inter_frame_attention(x, offsets, k, semantics, low_memory=low_memory)
    rev = inter_frame_attention(x.flip(2), None if offsets is None else offsets.flip(2), k, semantics,
                                low_memory=low_memory)
    return fwd + rev.flip(2) - x


def previous_frame(x: torch.Tensor) -> torch.Tensor:
    """f_{max(t-1, 0)} at time t: the official code's right shift, built with ``torch.cat``."""
    return torch.cat([x[:, :, :1], x[:, :, :-1]], 2)


def motion_saliency(x: torch.Tensor, semantics: str = "paper") -> torch.Tensor:
    """Eq. 4-5 per key frame t + 1: sigma(f_{t+1} - f_t) * f_{t+1} (paper) or (1 + sigma) * f_{t+1}
    (code), at time index t + 1 of the output; index 0 uses f_0 against itself (as the code's
    shift, which repeats frame 0)."""
    if semantics not in SEMANTICS:
        raise ValueError(f"unknown semantics {semantics!r}; known: {SEMANTICS}")
    gate = torch.sigmoid(x - previous_frame(x))
    return gate * x if semantics == "paper" else (1 + gate) * x


OFFSET_SOURCES = ("regular", "next_frame", "clip", "difference", "saliency")


class SIFABlock(nn.Module):
    """Inter-frame attention with its offset predictor (Sec. 3.2, Table 1b's rows).

    ``offsets`` names what the 3 x 3 offset convolution reads at key frame t + 1:
    ``regular`` nothing (SIFA_R); ``next_frame`` f_{t+1} (Conv2D); ``clip`` the clip
    (Conv3D, 3 x 3 x 3); ``difference`` f_{t+1} - f_t (Conv2D); ``saliency`` the motion
    saliency map of Eq. 5 (Conv2D, the paper's choice; the released code's with
    ``semantics="code"``). The predictor starts at zero (the official code's stated
    init, which its model-wide Kaiming init overwrites: ``zero_init=False`` reproduces
    that), so an untrained block is SIFA_R. ``bound`` squashes the offsets to
    (-bound, bound) pixels with bound * tanh(offset / bound) (one of the chapter's
    remedies for the offsets' collapse); ``both`` makes the block SIFA* (previous and
    next frame, :func:`both_directions`).
    """

    def __init__(self, channels: int, k: int = 3, offsets: str = "saliency", semantics: str = "paper",
                 zero_init: bool = True, low_memory: bool = False, bound: float | None = None,
                 both: bool = False):
        super().__init__()
        if bound is not None and bound <= 0:
            raise ValueError(f"the offset bound must be positive, got {bound}")
        if offsets not in OFFSET_SOURCES:
            raise ValueError(f"unknown offset source {offsets!r}; known: {OFFSET_SOURCES}")
        if semantics not in SEMANTICS:
            raise ValueError(f"unknown semantics {semantics!r}; known: {SEMANTICS}")
        self.k, self.source, self.semantics, self.low_memory = k, offsets, semantics, low_memory
        self.bound, self.both = bound, both
        self.offset_conv: nn.Module | None = None
        if offsets != "regular":
            kt = 3 if offsets == "clip" else 1
            self.offset_conv = nn.Conv3d(channels, 2 * k * k, (kt, 3, 3), padding=(kt // 2, 1, 1), bias=False)
            if zero_init:
                nn.init.zeros_(self.offset_conv.weight)
            else:
                nn.init.kaiming_normal_(self.offset_conv.weight, mode="fan_out", nonlinearity="relu")

    def offsets(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, 2k^2, T, H, W): at index t, the offsets of key frame t's taps."""
        if self.offset_conv is None:
            return None
        if self.source in ("next_frame", "clip"):
            src = x
        elif self.source == "difference":
            src = x - previous_frame(x)
        else:
            src = motion_saliency(x, self.semantics)
        off = self.offset_conv(src)
        return off if self.bound is None else self.bound * torch.tanh(off / self.bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attend = both_directions if self.both else inter_frame_attention
        return attend(x, self.offsets(x), self.k, self.semantics, low_memory=self.low_memory)
