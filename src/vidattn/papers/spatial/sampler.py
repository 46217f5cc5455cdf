"""Saliency-based resampling (Recasens et al. 2018), the zoom of the spatial-attention chapter.

Given a saliency map S on a G x G grid, every output grid point p samples the input at
the saliency-weighted centroid of the source coordinates around it,

    g(p) = sum_p' S(p') k(p, p') p'  /  sum_p' S(p') k(p, p'),

with k a fixed Gaussian. Salient regions draw more samples and are magnified, while
the rest of the frame stays in view. g is a convex combination of coordinates (no
fold-overs) and does not change when S is scaled: only the contrast of S matters.

Implementation, as in the reference code the spec follows: G = 31; S padded by 30 cells
per side with *replication*; coordinate planes that run 0 -> 1 over the inner cells and
extend linearly into the padding (-1 ... 2), so a constant S gives exactly the identity;
a fixed 61 x 61 Gaussian of FWHM 13 cells applied as two separable valid convolutions
(a buffer, not a parameter); the grid mapped to [-1, 1], clamped, bilinearly upsampled to
the frame and passed to ``grid_sample`` with ``align_corners`` given explicitly.

:func:`peak_saliency` builds the saliency of Eq. 6-7 from one frame's peaks: base b plus
one Gaussian per peak of width sigma_i = beta * sqrt(R_i) * G cells and amplitude R_i
(the discriminative branch) or 1 / R_i (the complementary branch);
:func:`gaussian_saliency` does the same for all peaks of a batch of frames at once.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

GRID, PAD, FWHM = 31, 30, 13.0


def gaussian_1d(size: int, fwhm: float) -> torch.Tensor:
    """exp(-4 ln 2 x^2 / fwhm^2) on ``size`` points centred at 0 (peak 1; its scale cancels in g)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return torch.exp(-4 * math.log(2) * x**2 / fwhm**2)


class SaliencySampler(nn.Module):
    """Warp frames (N, C, H, W) by saliency maps (N, G, G) (module docstring)."""

    def __init__(self, grid: int = GRID, pad: int = PAD, fwhm: float = FWHM, align_corners: bool = True):
        super().__init__()
        self.grid_size, self.pad, self.align_corners = grid, pad, align_corners
        # float64 buffers, cast to the input's dtype where used (a float64 input keeps full precision)
        self.register_buffer("kernel", gaussian_1d(2 * pad + 1, fwhm), persistent=False)
        coords = (torch.arange(grid + 2 * pad, dtype=torch.float64) - pad) / (grid - 1)  # 0..1 inside
        self.register_buffer("coords", coords, persistent=False)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed Gaussian as two separable valid convolutions: (N, 1, G + 2P, G + 2P) -> (N, 1, G, G)."""
        k = self.kernel.to(x.dtype)
        x = F.conv2d(x, k.view(1, 1, -1, 1))
        return F.conv2d(x, k.view(1, 1, 1, -1))

    def sampling_grid(self, saliency: torch.Tensor) -> torch.Tensor:
        """(N, G, G) saliency -> (N, G, G, 2) sampling grid in [-1, 1], last axis (x, y)."""
        if saliency.dim() != 3 or saliency.shape[1:] != (self.grid_size, self.grid_size):
            raise ValueError(f"saliency must be (N, {self.grid_size}, {self.grid_size}), got {tuple(saliency.shape)}")
        p = self.pad
        s = F.pad(saliency[:, None], (p, p, p, p), mode="replicate")
        c = self.coords.to(s.dtype)
        cols, rows = c.view(1, 1, 1, -1), c.view(1, 1, -1, 1)
        denom = self._blur(s)
        gx = self._blur(s * cols) / denom
        gy = self._blur(s * rows) / denom
        return torch.stack([gx[:, 0], gy[:, 0]], -1).mul(2).sub(1).clamp(-1, 1)

    def magnification(self, saliency: torch.Tensor, row: int, col: int) -> float:
        """Local area magnification of the warp of one (G, G) map at an inner cell: 1 / det of the
        grid's Jacobian there, relative to the identity's (central differences)."""
        g = self.sampling_grid(saliency[None])[0]
        step = 2 / (self.grid_size - 1)
        dx = (g[row, col + 1] - g[row, col - 1]) / (2 * step)
        dy = (g[row + 1, col] - g[row - 1, col]) / (2 * step)
        return float(1 / (dx[0] * dy[1] - dx[1] * dy[0]))

    def forward(self, frames: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        grid = self.sampling_grid(saliency).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=frames.shape[-2:], mode="bilinear", align_corners=True)
        return F.grid_sample(frames, grid.permute(0, 2, 3, 1), mode="bilinear", align_corners=self.align_corners)

    def warp_clip(self, video: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clips and (B, T, G, G) maps: frames warped as one batch of B * T, time order kept."""
        B, C, T, H, W = video.shape
        frames = video.transpose(1, 2).reshape(B * T, C, H, W)
        out = self(frames, saliency.reshape(B * T, *saliency.shape[2:]))
        return out.view(B, T, C, H, W).transpose(1, 2)


def gaussian_saliency(frame: torch.Tensor, peaks: torch.Tensor, amplitude: torch.Tensor, sigma: torch.Tensor,
                      frames: int, grid: int = GRID, base: float = 0.09) -> torch.Tensor:
    """Eq. 7 for a batch: (frames, G, G) maps b + sum_i a_i exp(-|p - p_i|^2 / (2 sigma_i^2)).

    Peak i lies on frame ``frame[i]`` at cell ``peaks[i]`` (row, col), with amplitude
    ``amplitude[i]`` and width ``sigma[i]`` in cells. A frame without peaks is the uniform b.
    """
    dtype, device = sigma.dtype, sigma.device
    out = torch.full((frames, grid, grid), base, dtype=dtype, device=device)
    if len(peaks) == 0:
        return out + 0 * sigma.sum()  # keeps the graph (and a zero gradient) to beta
    cells = torch.arange(grid, dtype=dtype, device=device)
    p = peaks.to(dtype)
    d2 = (cells[None, :, None] - p[:, 0, None, None]) ** 2 + (cells[None, None, :] - p[:, 1, None, None]) ** 2
    bumps = amplitude[:, None, None] * torch.exp(-d2 / (2 * sigma[:, None, None] ** 2))
    return out.index_add(0, frame.to(device), bumps)


def peak_saliency(peaks: torch.Tensor, values: torch.Tensor, beta: torch.Tensor, grid: int = GRID,
                  base: float = 0.09, complementary: bool = False) -> torch.Tensor:
    """Eq. 6-7 for one frame: b + sum_i A_i on a G x G grid.

    ``peaks`` (K, 2) are (row, col) cells, ``values`` (K,) their normalised responses R_i in
    (0, 1], ``beta`` a scalar in units of the frame's width. A_i has width
    sigma_i = beta sqrt(R_i) G cells and amplitude R_i (discriminative) or 1 / R_i
    (complementary, with R_i clamped at 1e-3). No peak gives the uniform map b (the
    identity warp).
    """
    v = values.to(beta.dtype)
    amplitude = 1.0 / v.clamp_min(1e-3) if complementary else v
    frame = torch.zeros(len(v), dtype=torch.long)
    return gaussian_saliency(frame, peaks, amplitude, beta * v.sqrt() * grid, 1, grid, base)[0]
