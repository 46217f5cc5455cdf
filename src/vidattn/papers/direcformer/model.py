"""DirecFormer (Truong et al., CVPR 2022) and its TimeSformer baseline.

A divided space-time transformer: every block runs temporal attention (each patch
position attends over the T frames, Eq. 6-7), then spatial attention (each frame's
patches plus a per-frame copy of the class token attend over the frame, Eq. 8-10),
then an MLP (Eq. 11). The attention *kind* is chosen per dimension:

* ``softmax``: ``softmax(q k^T / sqrt(d_h))`` (TimeSformer),
* ``cosine``: the directed attention of Eq. 5, raw cosine similarities in [-1, 1]
  with no temperature and no normalisation over keys.

Variant names read *temporal-spatial*: ``S-S`` is TimeSformer, ``C-S`` the released
DirecFormer code, ``S-C`` and ``C-C`` the paper's other rows. Module names follow timm's
ViT (``blocks.i.attn.qkv`` ...) so an ImageNet ViT checkpoint loads directly
(:func:`load_vit_weights`).

Two deliberate choices follow the official code rather than the paper's text (the
chapter discusses both): temporal attention runs on patch tokens only (no class-token
key, against Eq. 6-7), and one final LayerNorm is shared by both heads (Eq. 12 has two).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidattn.core.files import load_tensors
from vidattn.papers.direcformer.permutations import order_signs, permute_frames

ATTENTION_KINDS = ("softmax", "cosine")
VARIANTS: dict[str, tuple[str, str]] = {
    "S-S": ("softmax", "softmax"),
    "S-C": ("softmax", "cosine"),
    "C-S": ("cosine", "softmax"),
    "C-C": ("cosine", "cosine"),
}


def cosine_scores(q: torch.Tensor, k: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 5: ``a[i, j] = cos(q_i, k_j)``, computed in fp32 (signed, rows do not sum to 1).

    The paper's ``1/sqrt(D)`` on ``q`` is dropped: cosine is scale-invariant, so it is
    a no-op. ``eps`` keeps a zero vector from producing NaN (the official code has none).
    """
    qn = F.normalize(q.float(), dim=-1, eps=eps)
    kn = F.normalize(k.float(), dim=-1, eps=eps)
    return qn @ kn.transpose(-2, -1)


def softmax_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Standard scaled dot-product weights ``softmax(q k^T / sqrt(d))`` (rows sum to 1)."""
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)


class Attention(nn.Module):
    """Multi-head attention with a fused ``qkv`` projection (Eq. 4) and weights of ``kind``."""

    def __init__(self, dim: int, heads: int, kind: str):
        super().__init__()
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention kind {kind!r}; known: {ATTENTION_KINDS}")
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads, self.kind = heads, kind
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) -> output (B, L, D) and weights (B, heads, L, L) before ``@ v``."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = cosine_scores(q, k) if self.kind == "cosine" else softmax_scores(q, k)
        out = (a.to(v.dtype) @ v).transpose(1, 2).reshape(B, L, D)
        return self.proj(out), a


class Mlp(nn.Module):
    """Eq. 11's phi: Linear(D, rD) -> GELU -> Linear(rD, D)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class DividedBlock(nn.Module):
    """One block: temporal attention (Eq. 6-7), spatial attention (Eq. 8-10), MLP (Eq. 11)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, temporal: str, spatial: str, drop_path: float,
                 zero_temporal_fc: bool):
        super().__init__()
        self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_attn = Attention(dim, heads, temporal)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, spatial)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.zero_temporal_fc = zero_temporal_fc

    def forward(self, cls: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """cls (B, 1, D), patches x (B, N, T, D) -> cls, x, temporal (B, N, h, T, T), spatial (B, T, h, N+1, N+1)."""
        B, N, T, D = x.shape
        # Eq. 6-7: every patch position attends over time; gamma = proj, DropPath, temporal_fc
        s_time, a_time = self.temporal_attn(self.temporal_norm1(x.reshape(B * N, T, D)))
        x = x + self.temporal_fc(self.drop_path(s_time)).view(B, N, T, D)
        # Eq. 8-10: every frame attends over space, with its own copy of the class token
        frames = torch.cat([cls.expand(B, T, D).reshape(B * T, 1, D), x.transpose(1, 2).reshape(B * T, N, D)], 1)
        s_space, a_space = self.attn(self.norm1(frames))
        s_space = self.drop_path(s_space).view(B, T, N + 1, D)
        cls = cls + s_space[:, :, :1].mean(1)  # the T class-token outputs are averaged
        x = x + s_space[:, :, 1:].transpose(1, 2)
        # Eq. 11: pre-norm MLP on every token
        cls = cls + self.drop_path(self.mlp(self.norm2(cls)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return cls, x, a_time.view(B, N, *a_time.shape[1:]), a_space.view(B, T, *a_space.shape[1:])


@dataclass(frozen=True)
class DirecFormerConfig:
    """Architecture. ``num_orders`` = ``|P| + 1`` order classes (0 = identity); 0 means no order head."""

    num_classes: int
    variant: str = "C-S"
    img_size: int = 224
    patch_size: int = 16
    frames: int = 8
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    drop_path: float = 0.1
    num_orders: int = 31
    time_embed: bool = True
    time_embed_std: float = 0.0  # 0 as the official code (a bag of frames at initialisation)
    in_chans: int = 3

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown DirecFormer variant {self.variant!r}; known: {sorted(VARIANTS)}")
        if self.img_size % self.patch_size:
            raise ValueError(f"image size {self.img_size} is not a multiple of the patch size {self.patch_size}")
        if self.time_embed_std < 0:
            raise ValueError(f"time_embed_std must be non-negative, got {self.time_embed_std}")

    @property
    def patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2


def full_size(num_classes: int, variant: str = "C-S", num_orders: int = 31) -> DirecFormerConfig:
    """The paper's model: ViT-B/16 at 8 x 224^2, 12 blocks (TimeSformer-divST-8x224)."""
    return DirecFormerConfig(num_classes=num_classes, variant=variant, num_orders=num_orders)


@dataclass
class DirecFormerOutput:
    logits: torch.Tensor  # (B, K)
    order_logits: torch.Tensor | None  # (B, |P|+1)
    temporal_attention: list[torch.Tensor]  # per block (B, N, heads, T, T): query frame -> key frame
    spatial_attention: list[torch.Tensor]  # per block (B, T, heads, N+1, N+1); index 0 = class token


class DirecFormer(nn.Module):
    """Divided space-time transformer with per-dimension attention kinds and two heads (Eq. 2-12)."""

    def __init__(self, cfg: DirecFormerConfig):
        super().__init__()
        self.cfg = cfg
        D, N = cfg.dim, cfg.patches
        temporal, spatial = VARIANTS[cfg.variant]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(cfg.in_chans, D, cfg.patch_size, cfg.patch_size)  # Eq. 3's alpha
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, N + 1, D))
        self.time_embed = nn.Parameter(torch.zeros(1, cfg.frames, D)) if cfg.time_embed else None
        rates = [cfg.drop_path * i / max(1, cfg.depth - 1) for i in range(cfg.depth)]  # linspace(0, p, L)
        self.blocks = nn.ModuleList(
            DividedBlock(D, cfg.heads, cfg.mlp_ratio, temporal, spatial, rates[i], zero_temporal_fc=i > 0)
            for i in range(cfg.depth))
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Linear(D, cfg.num_classes)
        self.order_head = nn.Linear(D, cfg.num_orders) if cfg.num_orders else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ViT initialisation; ``temporal_fc`` of blocks 2..L starts at zero (identity branch).

        The time embedding starts at zero, as in the official code, which fine-tunes from
        an image model. The model is then invariant to frame order at initialisation;
        ``time_embed_std > 0`` draws it like the position embedding instead (a deviation
        for training from scratch, see the chapter's pilot grid).
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.time_embed is not None and self.cfg.time_embed_std > 0:
            nn.init.trunc_normal_(self.time_embed, std=self.cfg.time_embed_std)
        for block in self.blocks:
            if block.zero_temporal_fc:
                nn.init.zeros_(block.temporal_fc.weight)
                nn.init.zeros_(block.temporal_fc.bias)

    def tokens(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 3: (B, C, T, H, W) -> class token (B, 1, D) and patch tokens (B, N, T, D)."""
        cfg = self.cfg
        if video.dim() != 5 or video.shape[1] != cfg.in_chans or video.shape[2] != cfg.frames \
                or video.shape[3] != cfg.img_size or video.shape[4] != cfg.img_size:
            raise ValueError(f"DirecFormer expects clips (B, {cfg.in_chans}, {cfg.frames}, {cfg.img_size}, "
                             f"{cfg.img_size}), got {tuple(video.shape)}")
        B, C, T, H, W = video.shape
        x = self.patch_embed.proj(video.transpose(1, 2).reshape(B * T, C, H, W))  # (B*T, D, h, w)
        x = x.flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]  # (B*T, N, D)
        x = x.view(B, T, -1, cfg.dim).transpose(1, 2)  # (B, N, T, D)
        if self.time_embed is not None:
            x = x + self.time_embed[:, None]  # indexed by slot, not by the frame's true time
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, 1, cfg.dim)
        return cls, x

    def forward(self, video: torch.Tensor, return_all: bool = False) -> torch.Tensor | DirecFormerOutput:
        """Class logits (B, K); with ``return_all``, both heads and every attention map."""
        cls, x = self.tokens(video)
        a_time, a_space = [], []
        for block in self.blocks:
            cls, x, at, asp = block(cls, x)
            a_time.append(at)
            a_space.append(asp)
        z = self.norm(cls[:, 0])  # Eq. 12, one LayerNorm shared by both heads (as the official code)
        order_logits = self.order_head(z) if self.order_head is not None else None
        logits = self.head(z)
        return DirecFormerOutput(logits, order_logits, a_time, a_space) if return_all else logits


def build_direcformer(num_classes: int, **kwargs: Any) -> DirecFormer:
    return DirecFormer(DirecFormerConfig(num_classes=num_classes, **kwargs))


def build_timesformer(num_classes: int, **kwargs: Any) -> DirecFormer:
    """TimeSformer-divST: the S-S variant."""
    return DirecFormer(DirecFormerConfig(num_classes=num_classes, **{**kwargs, "variant": "S-S"}))


def _resize_tokens(w: torch.Tensor, length: int) -> torch.Tensor:
    """(1, L, D) -> (1, length, D) by nearest interpolation along the sequence (as the official code)."""
    return F.interpolate(w.transpose(1, 2), size=length, mode="nearest").transpose(1, 2)


def load_vit_weights(model: DirecFormer, path: str | Path) -> dict[str, list[str]]:
    """Initialise from an image ViT checkpoint in timm's layout (e.g. ``jx_vit_base_p16_224``).

    Spatial ``attn``/``norm1`` weights are also copied into ``temporal_attn``/``temporal_norm1``
    (as the official code does); the position embedding is resized by nearest interpolation
    when the patch count differs; class heads are skipped. Returns the keys loaded and the
    model keys left at their initial value. Raises on a missing file or a shape mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ViT checkpoint {path} not found; no weights can be downloaded here, so pass a "
                                f"local file (timm layout, e.g. jx_vit_base_p16_224)")
    state = load_tensors(path, "ViT checkpoint")
    for wrapper in ("model", "state_dict", "model_state"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(("head.", "fc_norm."))}
    if "pos_embed" in state and state["pos_embed"].shape[1] != model.cfg.patches + 1:
        pe = state["pos_embed"]
        state["pos_embed"] = torch.cat([pe[:, :1], _resize_tokens(pe[:, 1:], model.cfg.patches)], 1)
    for k in list(state):
        if ".attn." in k or ".norm1." in k:
            t = k.replace(".attn.", ".temporal_attn.").replace(".norm1.", ".temporal_norm1.")
            state.setdefault(t, state[k])
    own = model.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    if unexpected:
        raise ValueError(f"checkpoint {path} has keys this model does not (not a ViT in timm layout?): "
                         f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
           if v.shape != own[k].shape]
    if bad:
        raise ValueError(f"checkpoint {path} does not fit this model: " + "; ".join(bad[:5]))
    model.load_state_dict(state, strict=False)
    return {"loaded": sorted(state), "initial": sorted(k for k in own if k not in state)}


def self_guided_loss(temporal_attention: list[torch.Tensor], orders: torch.Tensor,
                     include_diagonal: bool = False) -> torch.Tensor:
    """Eq. 13, L_self: mean over blocks, positions, heads and clips of (1 - a) * varsigma.

    ``temporal_attention``: per block (B, N, heads, T, T); ``orders`` (B, T) in the gather
    convention. By default the diagonal (a frame with itself) is excluded and the sum is
    normalised by T(T-1); the paper's printed form (``include_diagonal=True``) keeps it
    with varsigma = -1 and normalises by T^2, which pushes every self-cosine toward -1.
    """
    signs = order_signs(orders)  # (B, T, T)
    T = signs.shape[-1]
    keep = torch.ones(T, T, device=signs.device)
    if not include_diagonal:
        keep = keep - torch.eye(T, device=signs.device)
    weight = (signs * keep)[:, None, None]  # broadcast over positions and heads
    norm = keep.sum()
    per_block = [((1 - a.float()) * weight.to(a.device)).sum((-2, -1)).mean() / norm for a in temporal_attention]
    return torch.stack(per_block).mean()


@dataclass(frozen=True)
class LossWeights:
    """Eq. 14's lambdas; the paper's values were lost in extraction, so all default to 1."""

    cls: float = 1.0
    ord: float = 0.0
    self: float = 0.0


def direcformer_loss(model: nn.Module, batch: dict[str, torch.Tensor], orders: torch.Tensor,
                     weights: LossWeights) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 14 on one batch: L_cls on the ordered clip; L_ord and L_self on the permuted pass.

    ``orders`` ``(|P|+1, T)`` is the order table; each clip draws its order class uniformly
    (class 0 = identity) from torch's global generator, which the trainer checkpoints.
    When ``weights.ord`` or ``weights.self`` is non-zero the permuted clips are appended to
    the batch, so both passes are one forward call (as DDP requires).
    """
    video, labels = batch["video"], batch["label"]
    B = len(labels)
    permuted = bool(weights.ord or weights.self)
    if permuted:
        target = torch.randint(len(orders), (B,))
        o = orders[target]
        video = torch.cat([video, permute_frames(video, o)])
    out = model(video, return_all=True)
    logits = out.logits[:B]
    l_cls = F.cross_entropy(logits.float(), labels)
    logs = {"cls": l_cls.item(), "acc": (logits.argmax(-1) == labels).float().mean().item()}
    loss = weights.cls * l_cls
    if weights.ord:
        if out.order_logits is None:
            raise ValueError("L_ord needs an order head: build the model with num_orders = |P| + 1")
        order_logits = out.order_logits[B:].float()
        l_ord = F.cross_entropy(order_logits, target.to(order_logits.device))
        loss = loss + weights.ord * l_ord
        logs["ord"] = l_ord.item()
        logs["ord_acc"] = (order_logits.argmax(-1).cpu() == target).float().mean().item()
    if weights.self:
        l_self = self_guided_loss([a[B:] for a in out.temporal_attention], o)
        loss = loss + weights.self * l_self
        logs["self"] = l_self.item()
    return loss, logs
