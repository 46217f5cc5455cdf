"""Class peaks (Zhou et al. 2022, Eq. 1-7): from a frame's class activation maps to the two saliency maps.

* Eq. 1, CAM: M_s(u, v) = sum_c W_{c,s} Y_c(u, v) (+ b_s), a 1 x 1 convolution with the
  classifier's weights, computed without gradients and bilinearly upsampled
  (``align_corners=True``) to a G x G grid (G = 31). Averaged over locations (at the
  features' own resolution) it is the frame's logit: the CAM splits the logit by place.
* Eq. 2-3: the entropy of the top-5 softmax probabilities (not renormalised, so in
  [0, ln 5]) switches between the top-1 class's CAM (entropy < delta) and the sum of
  the top-5 CAMs (otherwise; delta = 0.2 nats).
* Eq. 4: per-frame min-max normalisation (with eps = 1e-6), which removes any positive
  scale and additive constant; a map without contrast (a constant CAM, up to rounding)
  normalises to 0.
* Peaks: 3 x 3 local maxima (the max-pool's index is the location's own; the padding is
  -inf) at or above the map's mean (:func:`peak_table` for a whole batch at once). A map with no contrast (max - min below eps) has no
  peaks: nothing stands out, and the warp is the identity.
* Eq. 5: peak i is discriminative when R_i >= phi_i, phi_i ~ U(0, 1) drawn per peak from
  a seeded generator, so Pr[discriminative] = R_i; the top peak (R = 1) always is.
* Eq. 6-7: :func:`vidattn.papers.spatial.sampler.peak_saliency` for each set.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidattn.papers.spatial.sampler import GRID, peak_saliency

DELTA = 0.2  # nats (the reference code's threshold; the paper gives none)
EPS = 1e-6


@torch.no_grad()
def class_activation_maps(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                          size: int | None = GRID) -> torch.Tensor:
    """Eq. 1: (N, C, h, w) features and an (S, C) classifier -> (N, S, size, size) maps (native
    resolution when ``size`` is None)."""
    cams = F.conv2d(features, weight[:, :, None, None], bias)
    if size is None:
        return cams
    return F.interpolate(cams, size=(size, size), mode="bilinear", align_corners=True)


def top5_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 2: -sum over the 5 largest softmax probabilities of p ln p (not renormalised)."""
    p = logits.float().softmax(-1).topk(min(5, logits.shape[-1]), -1).values
    return -(p * p.clamp_min(1e-30).log()).sum(-1)


def response_map(cams: torch.Tensor, logits: torch.Tensor, delta: float = DELTA) -> torch.Tensor:
    """Eq. 3: the top-1 class's map where the top-5 entropy is below ``delta``, else the top-5 maps' sum."""
    top = logits.topk(min(5, logits.shape[-1]), -1).indices  # (N, 5)
    picked = cams.gather(1, top[:, :, None, None].expand(-1, -1, *cams.shape[-2:]))
    confident = (top5_entropy(logits) < delta)[:, None, None]
    return torch.where(confident, picked[:, 0], picked.sum(1))


def normalise(maps: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Eq. 4 per map: (R - min R) / (max R - min R + eps). A map whose spread is within rounding of
    its size (max - min <= eps (1 + |max|), e.g. a constant CAM after interpolation) has no
    contrast and becomes 0, rather than its rounding noise stretched to [0, 1]."""
    flat = maps.flatten(-2)
    lo, hi = flat.min(-1).values[..., None, None], flat.max(-1).values[..., None, None]
    flat_map = (hi - lo) <= eps * (1 + hi.abs())
    return torch.where(flat_map, torch.zeros_like(maps), (maps - lo) / (hi - lo + eps))


def peak_table(maps: torch.Tensor, eps: float = EPS) -> dict[str, torch.Tensor]:
    """Every peak of a batch of normalised maps (N, G, G) at once, each frame's strongest first.

    Returns ``frame`` (M,), ``cell`` (M, 2) (row, col), ``value`` (M,), ``rank`` (M,) (0 for
    a frame's strongest peak) and ``count`` (M,) (the number of peaks on that frame).
    """
    N, H, W = maps.shape
    _, idx = F.max_pool2d(maps[:, None], 3, stride=1, padding=1, return_indices=True)
    own = torch.arange(H * W, device=maps.device).view(1, 1, H, W)
    flat = maps.flatten(1)
    contrast = (flat.max(1).values - flat.min(1).values >= eps)[:, None, None]
    keep = (idx == own)[:, 0] & (maps >= flat.mean(1)[:, None, None]) & contrast
    frame, row, col = keep.nonzero(as_tuple=True)
    value = maps[frame, row, col]
    order = torch.argsort(frame * 4.0 - value, stable=True)  # by frame, then strongest first (value <= 1)
    frame, row, col, value = frame[order], row[order], col[order], value[order]
    count = torch.bincount(frame, minlength=N)
    start = torch.cumsum(count, 0) - count
    rank = torch.arange(len(frame), device=maps.device) - start[frame]
    return {"frame": frame, "cell": torch.stack([row, col], 1), "value": value, "rank": rank,
            "count": count[frame]}


def find_peaks(maps: torch.Tensor, eps: float = EPS) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Peaks of each normalised map (N, G, G): ((K, 2) (row, col) cells, (K,) values), strongest first."""
    t = peak_table(maps, eps)
    return [(t["cell"][t["frame"] == n], t["value"][t["frame"] == n]) for n in range(len(maps))]


def split_peaks(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Eq. 5: a boolean mask, True where a peak is discriminative (R_i >= phi_i, phi_i ~ U(0, 1))."""
    phi = torch.rand(values.shape, generator=generator, dtype=values.dtype)
    return values >= phi


def saliency_pair(peaks: torch.Tensor, values: torch.Tensor, discriminative: torch.Tensor, beta_dis: torch.Tensor,
                  beta_com: torch.Tensor, grid: int = GRID, base: float = 0.09
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6-7: Q_dis and Q_com (G, G) of one frame from its peaks and their split."""
    dis = peak_saliency(peaks[discriminative], values[discriminative], beta_dis, grid, base)
    com = peak_saliency(peaks[~discriminative], values[~discriminative], beta_com, grid, base, complementary=True)
    return dis, com


def softplus_inverse(beta: float) -> float:
    """rho with softplus(rho) = beta: the parameter behind a positive, learnable kernel width."""
    return beta + math.log(-math.expm1(-beta))
