"""The three-branch network of the spatial-attention paper (Eq. 1-8): original, discriminative, complementary.

One backbone (shared weights and batch norms) sees the clip three times: as it is (O),
warped to magnify its discriminative peaks (D), and warped to magnify the complementary
ones (C). Each branch has its own classifier; a fourth classifier reads the three pooled
features concatenated (the prediction at test time). The loss is unweighted:

    L = CE(F_O) + CE(F_D) + CE(F_C) + CE(F_total)                    (Eq. 8)

The saliency comes from the O branch's class activation maps under ``no_grad``
(:mod:`vidattn.papers.spatial.class_peaks`); input frame tau uses feature slice
floor(tau T' / T). The kernel widths are beta = softplus(rho), learned at the network's
rate; the loss reaches them through the sampler only. ``mode`` keeps a subset of the
branches (Table 4's rows: "O", "O+D", "O+C", "C+D", "O+C+D"). ``split`` chooses how
peaks are divided: ``"random"`` (Eq. 5, phi ~ U(0, 1) per peak, training), ``"half"``
(phi = 0.5), ``"maxmin"`` (the strongest peak discriminative, the weakest
complementary: the reference code's deterministic evaluation) or ``"meanfield"`` (the
expected training saliency: each discriminative kernel weighted by R_i, each
complementary one by 1 - R_i; the chapter's default evaluation). ``attention="random"``
replaces the CAM by a smooth random map (the control that asks whether *where* the
network zooms matters, or only that it zooms).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidattn.papers.spatial.class_peaks import (
    DELTA,
    class_activation_maps,
    normalise,
    peak_table,
    response_map,
    softplus_inverse,
)
from vidattn.papers.spatial.sampler import SaliencySampler, gaussian_saliency
from vidattn.papers.spatial.tcnn import TCNN

MODES = ("O", "O+D", "O+C", "C+D", "O+C+D")
SPLITS = ("random", "half", "maxmin", "meanfield")
ATTENTIONS = ("cam", "random")


class ZoomNetwork(nn.Module):
    """The paper's network (Fig. 2): a T-CNN backbone read at the original frames (O) and at
    frames the saliency sampler zooms on the discriminative (D) and complementary (C) class
    peaks, one linear head per branch and one over the concatenated branches (the total).

    ``mode`` names the branches ("O", "O+D", ..., "O+C+D"); ``beta`` the sampler's spread of
    the two kinds of peak, ``base`` the uniform part of the saliency and ``delta`` the
    response threshold (Eq. 4); ``attention="random"`` replaces the class activation maps
    by smooth random maps (module docstring).
    """

    def __init__(self, backbone: TCNN, num_classes: int, mode: str = "O+C+D", sampler: SaliencySampler | None = None,
                 beta: tuple[float, float] = (0.09, 0.3), base: float = 0.09, delta: float = DELTA,
                 dropout: float = 0.5, attention: str = "cam"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {MODES}")
        if attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {attention!r}; known: {ATTENTIONS}")
        self.attention = attention
        self.backbone, self.mode, self.base, self.delta = backbone, mode, base, delta
        self.branches = mode.split("+")
        self.sampler = sampler or SaliencySampler()
        c = backbone.channels
        self.heads = nn.ModuleDict({b: nn.Linear(c, num_classes) for b in ("O", "D", "C")})
        self.total = nn.Linear(c * len(self.branches), num_classes)
        self.drop = nn.Dropout(dropout)
        self.rho = nn.Parameter(torch.tensor([softplus_inverse(beta[0]), softplus_inverse(beta[1])]))

    def set_beta_lr(self, factor: float) -> None:
        """Learn beta at ``factor`` times the network's rate (its gradient scaled); 0 freezes it."""
        if factor == 0:
            self.rho.requires_grad_(False)
        elif factor != 1:
            self.rho.register_hook(lambda g: g * factor)

    @property
    def beta(self) -> torch.Tensor:
        """(beta_dis, beta_com) = softplus(rho)."""
        return F.softplus(self.rho)

    def saliency(self, features: torch.Tensor, frames: int, split: str = "random",
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Q_dis, Q_com (B, T, G, G) for every input frame from the O branch's last map (B, C, T', h, w).

        ``generator`` draws the random split's phi (default: torch's global generator, which
        the trainer seeds and checkpoints, so a resumed run draws what it would have drawn).
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
        B, C, Tf = features.shape[:3]
        slices = (torch.arange(frames) * Tf) // frames  # frame tau -> slice floor(tau T' / T)
        Y = features[:, :, slices].transpose(1, 2).reshape(B * frames, C, *features.shape[-2:]).detach()
        head, G = self.heads["O"], self.sampler.grid_size
        with torch.no_grad():
            logits = head(Y.mean((2, 3)))
            if self.attention == "cam":
                maps = response_map(class_activation_maps(Y, head.weight, head.bias, G), logits, self.delta)
            else:  # the control: smooth random maps with the CAM's peak statistics, blind to the frame
                coarse = torch.rand(B * frames, 1, 4, 4, generator=generator, dtype=Y.dtype)
                maps = F.interpolate(coarse, size=(G, G), mode="bilinear", align_corners=True)[:, 0]
            maps = normalise(maps)
            peaks = peak_table(maps)
            R = peaks["value"].to(features.dtype)
            top, last = peaks["rank"] == 0, peaks["rank"] == peaks["count"] - 1
            if split == "random":  # Eq. 5: discriminative where R >= phi ~ U(0, 1)
                w_dis = (R >= torch.rand(R.shape, generator=generator, dtype=R.dtype)).to(R.dtype)
                w_com = 1 - w_dis
            elif split == "half":
                w_dis = (R >= 0.5).to(R.dtype)
                w_com = 1 - w_dis
            elif split == "maxmin":  # the strongest peak, and the weakest if there is another
                w_dis, w_com = top.to(R.dtype), (last & ~top).to(R.dtype)
            else:  # mean field: each kernel weighted by its probability of being in the set
                w_dis, w_com = R, 1 - R
        beta_dis, beta_com = self.beta[0], self.beta[1]
        width = R.sqrt() * G
        q_dis = gaussian_saliency(peaks["frame"], peaks["cell"], w_dis * R, beta_dis * width, B * frames, G,
                                  self.base)
        q_com = gaussian_saliency(peaks["frame"], peaks["cell"], w_com / R.clamp_min(1e-3), beta_com * width,
                                  B * frames, G, self.base)
        return q_dis.view(B, frames, G, G), q_com.view(B, frames, G, G)

    def forward(self, video: torch.Tensor, split: str = "random", generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """Logits of each kept branch and of the total head."""
        f_o = self.backbone.features(video)
        pooled = {"O": f_o.mean((2, 3, 4))}
        if any(b in self.branches for b in ("D", "C")):
            q_dis, q_com = self.saliency(f_o, video.shape[2], split, generator)
            for b, q in (("D", q_dis), ("C", q_com)):
                if b in self.branches:
                    pooled[b] = self.backbone.features(self.sampler.warp_clip(video, q.to(video.dtype))).mean((2, 3, 4))
        out = {b: self.heads[b](self.drop(pooled[b])) for b in self.branches}
        out["total"] = self.total(self.drop(torch.cat([pooled[b] for b in self.branches], 1)))
        return out


def zoom_loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Eq. 8: the unweighted sum of every branch's cross-entropy and the total head's."""
    return sum(F.cross_entropy(logits, labels) for logits in outputs.values())
