"""Evaluation: accuracy, multi-view averaging, order robustness and localisation.

Order transforms act on the time axis of (B, C, T, H, W) clips (or (B, V, C, T, H, W)
multi-view clips). ``shuffled`` uses one fixed permutation per clip, drawn from a
generator seeded by the clip's index, so it is reproducible and independent of the
batch size.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

ORDER_TRANSFORMS = ("ordered", "reversed", "shuffled")


def shuffle_permutation(index: int, frames: int, seed: int = 0) -> torch.Tensor:
    """A fixed random permutation of ``frames`` (never the identity when frames > 1)."""
    g = torch.Generator().manual_seed(seed * 7_919 + index)
    while True:
        perm = torch.randperm(frames, generator=g)
        if frames == 1 or not torch.equal(perm, torch.arange(frames)):
            return perm


def apply_order(video: torch.Tensor, indices: torch.Tensor, transform: str, seed: int = 0) -> torch.Tensor:
    """Reverse or shuffle the time axis (dim -3) of a batch of clips."""
    if transform == "ordered":
        return video
    if transform == "reversed":
        return video.flip(-3)
    if transform == "shuffled":
        T = video.shape[-3]
        perms = torch.stack([shuffle_permutation(int(i), T, seed) for i in indices])
        idx = perms.view(video.shape[0], *([1] * (video.dim() - 4)), T, 1, 1).expand_as(video)
        return video.gather(-3, idx)
    raise ValueError(f"unknown order transform {transform!r}; known: {ORDER_TRANSFORMS}")


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    order: str = "ordered",
    view_average: str = "logits",
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and labels (N,) for ``dataset``.

    Clips of shape (V, C, T, H, W) are multi-view: each view is scored and the scores
    are averaged, as raw ``logits`` or as ``softmax`` probabilities (returned as log).
    """
    if view_average not in ("logits", "softmax"):
        raise ValueError(f"unknown view_average {view_average!r}; known: logits, softmax")
    device = torch.device(device)
    model.eval().to(device)
    fwd = forward or (lambda m, x: m(x))
    outs, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
        video = apply_order(batch["video"], batch["index"], order).to(device)
        if video.dim() == 6:
            B, V = video.shape[:2]
            scores = fwd(model, video.flatten(0, 1)).float().view(B, V, -1)
            scores = scores.mean(1) if view_average == "logits" else scores.softmax(-1).mean(1).log()
        else:
            scores = fwd(model, video).float()
        outs.append(scores.cpu())
        labels.append(batch["label"])
    return torch.cat(outs), torch.cat(labels)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy in percent for each k (k larger than the class count is clipped)."""
    out = {}
    for k in ks:
        kk = min(k, logits.shape[1])
        hit = (logits.topk(kk, dim=1).indices == labels[:, None]).any(1)
        out[f"top{k}"] = 100.0 * hit.float().mean().item()
    return out


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    pred = logits.argmax(1)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    cm.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    return cm.numpy()


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Accuracy in percent per true class (NaN for classes absent from ``labels``)."""
    cm = confusion_matrix(logits, labels, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.diag(cm) / cm.sum(1)


def pair_outcomes(logits: torch.Tensor, labels: torch.Tensor, partner: Sequence[int | None]) -> torch.Tensor:
    """For each clip of a paired class (in test order), whether its class outscores its partner."""
    rows = [i for i, y in enumerate(labels.tolist()) if partner[y] is not None]
    if not rows:
        raise ValueError("no clip of a class with a reversal partner")
    y = labels[rows]
    p = torch.tensor([partner[int(c)] for c in y], dtype=torch.long)
    own = logits[rows].gather(1, y[:, None]).squeeze(1)
    other = logits[rows].gather(1, p[:, None]).squeeze(1)
    return own > other


def pair_accuracy(logits: torch.Tensor, labels: torch.Tensor, partner: Sequence[int | None]) -> float:
    """Accuracy in percent on clips of paired classes, choosing only between a class and its partner.

    This isolates order: a model blind to time order scores 50 % in expectation.
    """
    return 100.0 * pair_outcomes(logits, labels, partner).float().mean().item()


def per_clip_outcomes(logits: torch.Tensor, labels: torch.Tensor, partner: Sequence[int | None] | None = None
                      ) -> dict[str, list[int]]:
    """Per test clip, 1 if right: ``ordered_top1`` for every clip and, when ``partner`` is
    given, ``ordered_pair`` for the clips of paired classes (the outcomes behind
    :func:`topk_accuracy` and :func:`pair_accuracy`, for paired tests between models)."""
    out = {"ordered_top1": (logits.argmax(1) == labels).int().tolist()}
    if partner is not None:
        out["ordered_pair"] = pair_outcomes(logits, labels, partner).int().tolist()
    return out


def order_robustness(
    model: nn.Module,
    dataset: Dataset,
    partner: Sequence[int | None],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Top-1 and pair accuracy on ordered, reversed and shuffled clips.

    Also ``reversed_to_partner``: the share of paired clips that, once reversed, are
    classified as the partner class (100 % for a model that reads order perfectly on a
    suite without an arrow of time).
    """
    out: dict[str, float] = {}
    for order in ORDER_TRANSFORMS:
        logits, labels = predict(model, dataset, batch_size=batch_size, device=device, order=order, forward=forward)
        out[f"{order}_top1"] = topk_accuracy(logits, labels, (1,))["top1"]
        out[f"{order}_pair"] = pair_accuracy(logits, labels, partner)
        if order == "reversed":
            rows = [i for i, y in enumerate(labels.tolist()) if partner[y] is not None]
            pred = logits[rows].argmax(1)
            target = torch.tensor([partner[int(labels[i])] for i in rows])
            out["reversed_to_partner"] = 100.0 * (pred == target).float().mean().item()
    return out


def _resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, T, h, w) -> (N, T, H, W) by bilinear interpolation."""
    N, T = maps.shape[:2]
    return F.interpolate(maps.reshape(N * T, 1, *maps.shape[2:]).float(), size=size, mode="bilinear",
                         align_corners=False).view(N, T, *size)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> float:
    """Percent of frames whose map maximum falls inside the (dilated) actor mask.

    ``maps`` (N, T, h, w) are upsampled to the masks' (N, T, H, W) size; frames with an
    empty mask (actor invisible) are skipped. ``tolerance`` dilates the mask by that many
    pixels (the usual pointing-game slack).
    """
    m = masks.float()
    if tolerance > 0:
        k = 2 * tolerance + 1
        m = F.max_pool2d(m.flatten(0, 1)[:, None], k, stride=1, padding=tolerance)[:, 0].view_as(m)
    up = _resize_maps(maps, tuple(masks.shape[-2:]))
    flat = up.flatten(2).argmax(-1)
    hit = m.flatten(2).gather(2, flat[..., None]).squeeze(-1) > 0
    valid = masks.flatten(2).any(-1)
    if not valid.any():
        raise ValueError("every mask is empty: nothing to point at")
    return 100.0 * hit[valid].float().mean().item()


def mass_in_mask(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
    """Share (percent) of non-negative map mass inside the actor mask, and the chance level.

    Chance is the mask's share of the frame: a uniform map scores exactly that.
    Negative map values are clipped to zero first.
    """
    up = _resize_maps(maps, tuple(masks.shape[-2:])).clamp_min(0)
    valid = masks.flatten(2).any(-1)
    inside = (up * masks.float()).flatten(2).sum(-1)
    total = up.flatten(2).sum(-1).clamp_min(1e-12)
    share = inside / total
    area = masks.float().flatten(2).mean(-1)
    return {"mass_in_mask": 100.0 * share[valid].mean().item(), "chance": 100.0 * area[valid].mean().item()}
