"""CIDC: channel-independent directional convolution and the multi-scale CIDC network (Li et al., ECCV 2020).

Equation numbers are the paper's.

* Eq. 1: every channel c has its own T'xT temporal kernel W^c; output step t is
  sum_s W^c_ts F_c[s] at every pixel (1x1 spatial filters, as in the paper).
* Eq. 4-5: W^c is a softmax over the allowed entries of each row of learnable logits,
  with the strict upper triangle masked, so output t only reads inputs s <= t (causal).
  The paper then "linearly normalises" W to [-1, 1]; that sentence has three readings
  (:data:`NORMALISATIONS`), the literal min-max one (``n1``) being our default.
* T' != T: the strict upper indicator is resized to T'xT bilinearly with
  ``align_corners=True`` and every entry it touches is masked (:func:`allowed_mask`).
* Eq. 3: attention from a later stage, sigma(mean over channels), is resized per time
  step and multiplies an earlier stage: F'_x = att * F_x + F_x.
* Eq. 2: the backbone's last map F and the CIDC output are fused by concatenation along
  t (the paper's choice), along c, or a sum, then pooled and classified.

The grouped-convolution implementation and the einsum form are the same map (the chapter
and the tests check it against a naive loop).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMALISATIONS = ("n0", "n1", "n2")  # none | per-channel min-max over allowed entries | 2W - 1
DIRECTIONS = ("non", "uni", "bi")
FUSIONS = ("concat_t", "concat_c", "sum")
EPS = 1e-6


def allowed_mask(t_out: int, t_in: int) -> torch.Tensor:
    """Bool (t_out, t_in): which inputs each output step may read.

    For t_out == t_in this is the lower triangle with the diagonal (s <= t). Otherwise the
    strict upper 0/1 indicator is resized to (t_out, t_in) with ``align_corners=True`` and
    every entry with a positive resized value is masked: the first row keeps input 0 only,
    the last row keeps every input, and the rows in between form a staircase.
    """
    if t_out < 1 or t_in < 1:
        raise ValueError(f"kernel sizes must be positive, got t_out={t_out}, t_in={t_in}")
    upper = torch.ones(t_in, t_in).triu(diagonal=1)
    if t_out != t_in:
        upper = F.interpolate(upper[None, None], size=(t_out, t_in), mode="bilinear", align_corners=True)[0, 0]
    return upper <= EPS


def directional_kernel(logits: torch.Tensor, allowed: torch.Tensor, norm: str = "n1") -> torch.Tensor:
    """Eq. 4-5 and the normalisation: logits (C, T', T) -> kernel (C, T', T), zero where not allowed.

    Computed in float32 whatever the autocast dtype (the mask uses -inf).
    """
    if norm not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {norm!r}; known: {NORMALISATIONS}")
    k = logits.float().masked_fill(~allowed, float("-inf"))
    w = torch.softmax(k, dim=-1)  # masked entries are exactly 0
    if norm == "n0":
        return w
    if norm == "n2":
        return (2 * w - 1) * allowed
    big = torch.finfo(w.dtype).max
    lo = w.masked_fill(~allowed, big).amin(dim=(1, 2), keepdim=True)
    hi = w.masked_fill(~allowed, -big).amax(dim=(1, 2), keepdim=True)
    return (2 * (w - lo) / (hi - lo + EPS) - 1) * allowed  # re-mask: the affine map moves the zeros


class DirectionalTemporalConv(nn.Module):
    """Eq. 1 with the kernel of Eq. 4-5: per-channel T -> T' temporal mixing, as one grouped 2-D conv.

    ``masked=False`` gives the paper's "non-direction" unit: a softmax over every input.
    Logits start at zero, so under ``n0`` the unit starts as a running mean of the prefix.
    """

    def __init__(self, channels: int, t_in: int, t_out: int | None = None, masked: bool = True, norm: str = "n1"):
        super().__init__()
        t_out = t_in if t_out is None else t_out
        self.channels, self.t_in, self.t_out, self.norm = channels, t_in, t_out, norm
        self.logits = nn.Parameter(torch.zeros(channels, t_out, t_in))
        allowed = allowed_mask(t_out, t_in) if masked else torch.ones(t_out, t_in, dtype=torch.bool)
        self.register_buffer("allowed", allowed, persistent=False)
        directional_kernel(self.logits, self.allowed, norm)  # validates ``norm`` now

    def kernel(self) -> torch.Tensor:
        """W (C, T', T)."""
        return directional_kernel(self.logits, self.allowed, self.norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, T, H, W = x.shape
        if (C, T) != (self.channels, self.t_in):
            raise ValueError(f"expected {self.channels} channels x {self.t_in} steps, got {C} x {T}")
        weight = self.kernel().to(x.dtype).reshape(C * self.t_out, T, 1, 1)
        # channel-major reshape: group c holds channel c's T frames (a T-major layout would mix channels)
        y = F.conv2d(x.reshape(N, C * T, H, W), weight, groups=C)
        return y.view(N, C, self.t_out, H, W)


class CIDCUnit(nn.Module):
    """Directional temporal conv, then the channel-mixing 1x1x1 conv (Fig. 2), BN and ReLU."""

    def __init__(self, channels: int, t_in: int, t_out: int | None = None, masked: bool = True, norm: str = "n1"):
        super().__init__()
        self.temporal = DirectionalTemporalConv(channels, t_in, t_out, masked, norm)
        self.mix = nn.Conv3d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.mix(self.temporal(x))))


def spatial_attention(later: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Eq. 3's attention: sigma(mean_c F) of a later stage, resized per time step (2-D bilinear) to ``size``.

    (N, C, T, h, w) -> (N, 1, T, H, W), ready to broadcast over an earlier stage's channels.
    """
    N, _, T, h, w = later.shape
    att = torch.sigmoid(later.mean(1))  # (N, T, h, w)
    att = F.interpolate(att.reshape(N * T, 1, h, w), size=size, mode="bilinear", align_corners=False)
    return att.view(N, 1, T, *size)


def propagate_attention(earlier: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
    """Eq. 3: F'_x = att(F) * F_x + F_x, with F the later stage."""
    if earlier.shape[2] != later.shape[2]:
        raise ValueError(f"stages differ in time ({earlier.shape[2]} vs {later.shape[2]} steps)")
    return spatial_attention(later, tuple(earlier.shape[-2:])) * earlier + earlier


class CIDCStream(nn.Module):
    """One direction of the multi-scale CIDC network G (Fig. 3, as the spec reconstructs it).

    One branch per scale, each ``units`` CIDC units. Earlier branches are aggregated into
    later ones (2x2 average pool, 1x1x1 conv + BN, added after the later branch's first
    unit). With ``attention``, res3 and res4 enter through Eq. 3 with the attention of the
    next stage; res5 enters raw. The output has res5's shape.
    """

    def __init__(self, channels: Sequence[int], frames: int, scales: int = 3, units: int = 2,
                 attention: bool = True, masked: bool = True, norm: str = "n1"):
        super().__init__()
        if scales not in (1, 2, 3) or units < 1:
            raise ValueError(f"scales must be 1-3 and units positive, got scales={scales}, units={units}")
        self.channels = tuple(channels)[-scales:]
        self.attention = attention
        self.branches = nn.ModuleList(
            nn.ModuleList(CIDCUnit(c, frames, frames, masked, norm) for _ in range(units)) for c in self.channels)
        self.aggregate = nn.ModuleList(
            nn.Sequential(nn.AvgPool3d((1, 2, 2)), nn.Conv3d(a, b, 1, bias=False), nn.BatchNorm3d(b))
            for a, b in zip(self.channels[:-1], self.channels[1:]))

    def inputs(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The branch inputs: Eq. 3 on every scale but the last."""
        feats = list(feats)[-len(self.channels):]
        if not self.attention:
            return feats
        return [propagate_attention(f, g) for f, g in zip(feats[:-1], feats[1:])] + [feats[-1]]

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        out = None
        for i, (x, units) in enumerate(zip(self.inputs(feats), self.branches)):
            y = units[0](x)
            if out is not None:
                y = y + self.aggregate[i - 1](out)
            for unit in units[1:]:
                y = unit(y)
            out = y
        return out


def time_reverse(x: torch.Tensor) -> torch.Tensor:
    """R: reverse the time axis (dim 2) of (N, C, T, H, W)."""
    return x.flip(2)


class CIDCHead(nn.Module):
    """The CIDC network on backbone features and the fusion of Eq. 2, then GAP, dropout and FC.

    ``direction``: ``non`` (one stream, no mask), ``uni`` (one causal stream) or ``bi``
    (a causal stream and an unshared one run on the time-reversed features and flipped
    back: prefix and suffix summaries). ``fusion`` combines [F, streams...].
    """

    def __init__(self, channels: Sequence[int], frames: int, num_classes: int, direction: str = "bi",
                 scales: int = 3, units: int = 2, attention: bool = True, fusion: str = "concat_t",
                 norm: str = "n1", dropout: float = 0.6):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; known: {DIRECTIONS}")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; known: {FUSIONS}")
        self.direction, self.fusion = direction, fusion
        n = 2 if direction == "bi" else 1
        self.streams = nn.ModuleList(
            CIDCStream(channels, frames, scales, units, attention, direction != "non", norm) for _ in range(n))
        c = channels[-1]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c * (n + 1) if fusion == "concat_c" else c, num_classes)

    def stream_outputs(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """[G_f(F)] or [G_f(F), R G_b(R F)], each with res5's shape."""
        outs = [self.streams[0](feats)]
        if self.direction == "bi":
            outs.append(time_reverse(self.streams[1]([time_reverse(f) for f in feats])))
        return outs

    def fuse(self, f: torch.Tensor, outs: list[torch.Tensor]) -> torch.Tensor:
        """Eq. 2 followed by global average pooling: (N, C) or (N, (n+1) C)."""
        parts = [f, *outs]
        if self.fusion == "concat_t":
            return torch.cat(parts, dim=2).mean(dim=(2, 3, 4))
        if self.fusion == "concat_c":
            return torch.cat([p.mean(dim=(2, 3, 4)) for p in parts], dim=1)
        return torch.stack(parts).sum(0).mean(dim=(2, 3, 4))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.dropout(self.fuse(feats[-1], self.stream_outputs(feats))))


class GAPHead(nn.Module):
    """The baseline: global average pooling of res5, dropout, FC (order-blind in time)."""

    def __init__(self, channels: Sequence[int], num_classes: int, dropout: float = 0.6):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.dropout(feats[-1].mean(dim=(2, 3, 4))))


class LSTMHead(nn.Module):
    """Table 5(a)'s LSTM: a 2-layer LSTM over the spatially pooled res5 steps; its last output
    is concatenated with the pooled features (after pooling) and classified."""

    def __init__(self, channels: Sequence[int], num_classes: int, hidden: int = 64, layers: int = 2,
                 dropout: float = 0.6):
        super().__init__()
        c = channels[-1]
        self.lstm = nn.LSTM(c, hidden, num_layers=layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c + hidden, num_classes)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        seq = feats[-1].mean(dim=(3, 4)).transpose(1, 2)  # (N, T, C)
        out, _ = self.lstm(seq)
        return self.fc(self.dropout(torch.cat([seq.mean(1), out[:, -1]], dim=1)))


class SelfAttentionHead(nn.Module):
    """Table 5(a)'s self-attention: 2 vanilla transformer blocks over res5's THW positions, no
    positional encoding; the output is concatenated with res5 along t before pooling.

    Without positions the blocks are permutation-equivariant, so after pooling the head
    cannot see order at all: the chapter's control.
    """

    def __init__(self, channels: Sequence[int], num_classes: int, layers: int = 2, heads: int = 4,
                 dropout: float = 0.6):
        super().__init__()
        c = channels[-1]
        layer = nn.TransformerEncoderLayer(c, heads, dim_feedforward=2 * c, dropout=0.0, batch_first=True,
                                           norm_first=False)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        f = feats[-1]
        N, C, T, H, W = f.shape
        y = self.blocks(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(N, C, T, H, W)
        return self.fc(self.dropout(torch.cat([f, y], dim=2).mean(dim=(2, 3, 4))))


HEADS = ("gap", "cidc", "lstm", "self_attention")


def build_head(name: str, channels: Sequence[int], frames: int, num_classes: int, **kwargs) -> nn.Module:
    """A head by name (a clear error for unknown names)."""
    if name == "gap":
        return GAPHead(channels, num_classes, **kwargs)
    if name == "cidc":
        return CIDCHead(channels, frames, num_classes, **kwargs)
    if name == "lstm":
        return LSTMHead(channels, num_classes, **kwargs)
    if name == "self_attention":
        return SelfAttentionHead(channels, num_classes, **kwargs)
    raise ValueError(f"unknown head {name!r}; known heads: {HEADS}")


class VideoClassifier(nn.Module):
    """A backbone returning [res3, res4, res5] and a head on them: the whole network, clip in, logits out."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
