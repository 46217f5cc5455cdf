"""Interaction-aware spatio-temporal pyramid attention (Hu et al.; spec ``pyramid_attention.md``).

The layer pools K frames x N scales of feature maps into one map at the top layer's size:

* Eq. 1: every lower layer j is max-pooled to the top layer's W x H (adaptive, so the
  non-integer ratios of Inception-ResNet-V2's 35 -> 8 and 17 -> 8 are defined); the inputs
  are pre-activation maps. Flattened, scale j is ``X_j`` (C_j x KS): one column per
  *source* (frame t, position k).
* Eq. 2 / 13: scores ``Y_j = X_j^T W_j + b_j`` (KS x S); ``W_j`` (C_j x S) has one weight
  vector per *target* position m, so a score depends on the source's content and the
  target's index only (the layer has no positional term and is invariant to permuting
  sources or frames).
* Eq. 3: the scales' raw scores are fused elementwise (max, sum or product), softmaxed
  over the KS sources of each target, then each column is L2-normalised, so
  1 <= 1^T a_m <= sqrt(KS).
* Eq. 4: ``M = X_i A`` (C_i x S), reshaped to the top layer's map and fed on unchanged.

Losses: Eq. 8's interaction loss via ``M^T M`` (never the KS x KS Gram), Eq. 9-10 / 14-15's
attention loss with the clamped square root, and Eq. 12's total (sign typo fixed).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

FUSIONS = ("max", "sum", "product", "softmax_product", "uniform")


class PyramidAttention(nn.Module):
    """Eq. 1-4 / 13 for scales with ``channels`` (top layer last) onto ``size`` = (H, W).

    ``fusion`` is Eq. 3's U over the scales' raw scores (``max``, ``sum``, ``product``),
    ``softmax_product``, the ablation that multiplies per-scale softmaxes instead, or
    ``uniform``, the control that ignores the scores: every source weighs the same, so the
    layer pools without reading content, with the same parameters. The
    forward takes one (B, K, C_j, H_j, W_j) tensor per scale and returns M as
    (B, C_i, H, W) and what the losses and figures read: A (B, KS, S), the per-scale
    scores Y_j (B, KS, S) and the top layer's sources X_i (B, C_i, KS).
    """

    def __init__(self, channels: list[int], size: tuple[int, int], fusion: str = "product",
                 init_std: float | None = None):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; known: {FUSIONS}")
        if not channels:
            raise ValueError("the pyramid needs at least the top layer's channels")
        self.channels, self.size, self.fusion = list(channels), tuple(size), fusion
        S = size[0] * size[1]
        # the paper states no initialiser; it used TensorFlow, whose default for a variable is
        # Glorot-uniform, U(+-sqrt(6 / (C_j + S))); ``init_std`` gives a normal one instead
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(c, S)) for c in channels])
        for w in self.weights:
            if init_std is None:
                nn.init.xavier_uniform_(w)
            else:
                nn.init.normal_(w, std=init_std)
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(S)) for _ in channels])

    @property
    def positions(self) -> int:
        return self.size[0] * self.size[1]

    def sources(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Eq. 1 and the flattening of Eq. 13: each (B, K, C_j, H_j, W_j) map -> X_j (B, C_j, KS)."""
        if len(maps) != len(self.channels):
            raise ValueError(f"expected {len(self.channels)} scales, got {len(maps)}")
        out = []
        for j, x in enumerate(maps):
            if x.dim() != 5 or x.shape[2] != self.channels[j]:
                raise ValueError(f"scale {j}: expected (B, K, {self.channels[j]}, H, W), got {tuple(x.shape)}")
            B, K, C = x.shape[:3]
            if tuple(x.shape[-2:]) != self.size:
                x = F.adaptive_max_pool2d(x.flatten(0, 1), self.size).view(B, K, C, *self.size)
            out.append(x.permute(0, 2, 1, 3, 4).reshape(B, C, -1))  # source index = t * S + k
        return out

    def scores(self, X: list[torch.Tensor]) -> list[torch.Tensor]:
        """Eq. 2 / 13: ``Y_j = X_j^T W_j + b_j``, (B, KS, S) per scale."""
        return [torch.einsum("bcn,cm->bnm", x, w) + b for x, w, b in zip(X, self.weights, self.biases)]

    def attention(self, Y: list[torch.Tensor]) -> torch.Tensor:
        """Eq. 3: fuse the raw scores, softmax over the sources of each target, L2 per column."""
        if self.fusion == "softmax_product":
            p = torch.stack([y.softmax(1) for y in Y]).prod(0)
            a = p / p.sum(1, keepdim=True)
        else:
            stacked = torch.stack(Y)
            fused = {"max": lambda s: s.amax(0), "sum": lambda s: s.sum(0), "product": lambda s: s.prod(0),
                     "uniform": lambda s: torch.zeros_like(s[0])}
            a = fused[self.fusion](stacked).softmax(1)
        return F.normalize(a, dim=1)

    def forward(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        X = self.sources(maps)
        Y = self.scores(X)
        A = self.attention(Y)
        M = torch.bmm(X[-1], A)  # Eq. 4: (B, C_i, S)
        return M.view(M.shape[0], M.shape[1], *self.size), {"A": A, "Y": Y, "X": X[-1]}

    def extra_params(self) -> int:
        """Delta P = sum_j (C_j + 1) S (spec Sec. 2), counted from the parameters."""
        return sum(p.numel() for p in self.parameters())


def delta_params(channels: list[int], positions: int) -> int:
    """The cost formula of spec Sec. 2, for set-beside-Table-10 arithmetic: sum_j (C_j + 1) S."""
    return sum((c + 1) * positions for c in channels)


def interaction_loss(X_top: torch.Tensor, A: torch.Tensor, stop_gradient: bool = True) -> torch.Tensor:
    """Eq. 8, batch mean: ``-||X A||_F^2 + sum_{m != n} (a_m^T a_n)^2``.

    The first term is computed as the trace of ``M^T M`` with ``M = X A``, so nothing of
    size KS x KS is formed. It is unbounded below and grows with the backbone's
    activations (spec pitfall 3); with ``stop_gradient`` (our default, stated in the
    chapter) X is detached in it, so the loss shapes the attention and not the features.
    """
    X = X_top.detach() if stop_gradient else X_top
    M = torch.bmm(X, A)
    G = torch.bmm(A.transpose(1, 2), A)  # (B, S, S) = A^T A
    off = G - torch.diag_embed(torch.diagonal(G, dim1=1, dim2=2))
    return (-(M**2).sum((1, 2)) + (off**2).sum((1, 2))).mean()


def attention_distances(A: torch.Tensor, Y: list[torch.Tensor], frames: int) -> torch.Tensor:
    """Eq. 9 / 15: ``delta^j_{m,t} = ||a_{m,t} - softmax(y^j_m)_t||``, (N_scales, B, K, S).

    The softmax of each scale runs over all KS sources jointly, then frame t's block of S
    sources is sliced out (our reading of Eq. 15)."""
    B, KS, S = A.shape
    out = []
    for y in Y:
        diff = (A - y.softmax(1)).view(B, frames, KS // frames, S)
        out.append(diff.norm(dim=2))
    return torch.stack(out)


def attention_loss(A: torch.Tensor, Y: list[torch.Tensor], frames: int, eps: float = 1e-8) -> torch.Tensor:
    """Eq. 10 / 14, batch mean: ``sqrt(max(0, sum_{j,m,t} (1 - delta^2)) + eps)``.

    delta reaches sqrt(2), so the sum can go negative; the clamp and eps keep the square
    root real and its gradient finite (spec pitfall 4)."""
    delta = attention_distances(A, Y, frames)
    inner = (1 - delta**2).sum((0, 2, 3))
    return torch.sqrt(inner.clamp_min(0) + eps).mean()


def pyramid_loss(logits: torch.Tensor, labels: torch.Tensor, X_top: torch.Tensor, A: torch.Tensor,
                 Y: list[torch.Tensor], frames: int, beta: float = 1e-4, gamma: float = 1e-4
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 12 without its weight-decay term (the optimiser's ``weight_decay`` applies it):
    ``L_class + beta L_int + gamma L_attn``, with the printed ``-L_class`` read as a typo."""
    ce = F.cross_entropy(logits, labels)
    terms = {"ce": float(ce.detach())}
    loss = ce
    if beta:
        li = interaction_loss(X_top, A)
        loss = loss + beta * li
        terms["l_int"] = float(li.detach())
    if gamma:
        la = attention_loss(A, Y, frames)
        loss = loss + gamma * la
        terms["l_attn"] = float(la.detach())
    return loss, terms

