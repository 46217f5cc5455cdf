"""Experiments of the SIFA chapter: a tiny C2D network with one temporal module, trained on a motion suite.

A run trains :class:`~vidattn.models.c2d.TinyC2D` with a temporal module (none, temporal
conv, TSM, correlation, difference or SIFA in one of its forms) and measures:

* top-1 on ordered, reversed and shuffled test clips, pair accuracy on the direction
  suite, whose reversed clips belong to the opposite class (a pilot scores its
  validation clips instead, :func:`vidattn.data.validation.held_out`);
* for every SIFA block with an offset predictor, how far the offsets move the taps
  (mean |offset| in feature pixels) and the share of taps that land outside the frame;
* where the first SIFA block looks (the chapter's Fig. 5): for a query at the centre of
  each moving object in frame t, the share of the attention weight |w_r| whose sampling
  point lies on the *same* object in frame t + 1, with the predicted offsets and with a
  regular window at the same place;
* a few sampling points, weights and motion-saliency maps to draw.

The offset predictor can learn at a fraction of the network's learning rate
(``offset_lr``), applied by scaling its gradient (with SGD and momentum this is a lower
learning rate for the loss term; weight decay still acts at the full rate).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from vidattn.core.registry import Run, experiment
from vidattn.data.clips import ClipDataset, SuiteArrays
from vidattn.data.validation import held_out
from vidattn.data.suites.motion import MotionSuiteConfig, load_motion_split, motion_suite
from vidattn.engine.evaluate import order_robustness, per_clip_outcomes, predict
from vidattn.engine.flops import count_macs, count_params
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.models.c2d import TinyC2D
from vidattn.papers.sifa.op import SIFABlock, motion_saliency, sample_taps, tap_grid

PROBE_CLIPS = 200  # test clips used for the offset and localisation statistics


def suite_of(config: dict[str, Any]) -> MotionSuiteConfig:
    return motion_suite(config["suite"], **config.get("suite_overrides", {}))


def scale_gradients(module: nn.Module, factor: float) -> None:
    """Multiply the gradient of every parameter of ``module`` by ``factor`` (a relative learning rate)."""
    for p in module.parameters():
        p.register_hook(lambda g, f=factor: g * f)


@torch.no_grad()
def block_inputs(model: TinyC2D, video: torch.Tensor) -> list[torch.Tensor]:
    """The feature map each SIFA block of ``model`` reads, for a batch of clips."""
    seen: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(i[0].detach())) for b in model.sifa_blocks()]
    try:
        model(video)
    finally:
        for h in hooks:
            h.remove()
    return seen


def key_samples(block: SIFABlock, x: torch.Tensor, regular: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For query frames t = 0..T-2 of ``x`` (B, C, T, H, W): the sampling points (B, T-1, k^2, 2, H, W)
    in (row, col) feature pixels, the weights w_r (B, T-1, k^2, H, W) of Eq. 1, and the MSM (B, T-1, H, W)."""
    B, C, T, H, W = x.shape
    k = block.k
    off = None if regular else block.offsets(x)
    keys = x[:, :, 1:].transpose(1, 2).reshape(-1, C, H, W)
    key_off = None if off is None else off[:, :, 1:].transpose(1, 2).reshape(-1, 2 * k * k, H, W)
    S = sample_taps(keys, key_off, k).view(B, T - 1, C, k * k, H, W)
    scale = 1.0 / C if block.semantics == "code" else 1.0
    w = torch.einsum("btchw,btcjhw->btjhw", x[:, :, :-1].transpose(1, 2), S) * scale
    dy, dx = tap_grid(k)
    rows = torch.arange(H)[None, None, None, :, None] + dy[None, None, :, None, None]
    cols = torch.arange(W)[None, None, None, None, :] + dx[None, None, :, None, None]
    pts = torch.stack([rows.expand(B, T - 1, k * k, H, W), cols.expand(B, T - 1, k * k, H, W)], 3).float()
    if key_off is not None:
        pts = pts + key_off.view(B, T - 1, k * k, 2, H, W)
    msm = motion_saliency(x, block.semantics)[:, :, 1:].mean(1)
    return pts, w, msm


def on_object(points: torch.Tensor, corner: np.ndarray, n: int, size: int, stride: int) -> torch.Tensor:
    """Whether feature-pixel points (..., 2) fall on an n x n object with top-left ``corner`` on a torus."""
    pix = (points + 0.5) * stride - 0.5  # feature-pixel centre -> input pixel
    rel = torch.remainder(pix - torch.tensor(corner, dtype=pix.dtype), size)
    return ((rel >= -0.5) & (rel < n - 0.5)).all(-1)


@torch.no_grad()
def localisation(model: TinyC2D, arrays: SuiteArrays, cfg: MotionSuiteConfig, n_clips: int = PROBE_CLIPS
                 ) -> dict[str, float]:
    """Share of the first SIFA block's |w_r| on the same object one frame later (module docstring)."""
    blocks = model.sifa_blocks()
    if not blocks:
        return {}
    data = ClipDataset(arrays)
    video = torch.stack([data[i]["video"] for i in range(n_clips)])
    x = block_inputs(model, video)[0]
    stride = cfg.size // x.shape[-1]
    out = {}
    for name, regular in (("learned", False), ("regular", True)):
        pts, w, _ = key_samples(blocks[0], x, regular)
        hit, total = 0.0, 0.0
        for i in range(n_clips):
            for path in arrays.meta[i]["paths"]:
                for t in range(cfg.frames - 1):
                    centre = (np.array(path[t]) + cfg.object_size // 2) % cfg.size
                    q = np.clip(centre // stride, 0, x.shape[-1] - 1)
                    p, wt = pts[i, t, :, :, q[0], q[1]], w[i, t, :, q[0], q[1]].abs()
                    inside = on_object(p, np.array(path[t + 1]), cfg.object_size, cfg.size, stride)
                    hit += float((wt * inside).sum())
                    total += float(wt.sum())
        out[f"localisation_{name}"] = 100.0 * hit / max(total, 1e-12)
    return out


@torch.no_grad()
def offset_statistics(model: TinyC2D, video: torch.Tensor) -> dict[str, float]:
    """Per SIFA block with an offset predictor: mean |offset| (feature px) and % of taps off the frame."""
    out = {}
    for i, (block, x) in enumerate(zip(model.sifa_blocks(), block_inputs(model, video)), 1):
        if block.offset_conv is None:
            continue
        pts, _, _ = key_samples(block, x)
        H, W = x.shape[-2:]
        off = block.offsets(x)
        out[f"offset_px_block{i}"] = float(off.abs().mean())
        outside = (pts[:, :, :, 0] <= -1) | (pts[:, :, :, 0] >= H) | (pts[:, :, :, 1] <= -1) | (pts[:, :, :, 1] >= W)
        out[f"offframe_block{i}"] = 100.0 * float(outside.float().mean())
    return out


@torch.no_grad()
def attention_examples(model: TinyC2D, arrays: SuiteArrays, cfg: MotionSuiteConfig, clips: int = 2, t: int = 2
                       ) -> dict[str, Any]:
    """For Fig. 5: frames t and t + 1, the query at object 1's centre, its sampling points and weights
    (input pixels), and the block's MSM, of the first SIFA block on the first ``clips`` test clips."""
    blocks = model.sifa_blocks()
    if not blocks:
        return {}
    data = ClipDataset(arrays)
    video = torch.stack([data[i]["video"] for i in range(clips)])
    x = block_inputs(model, video)[0]
    stride = cfg.size // x.shape[-1]
    pts, w, msm = key_samples(blocks[0], x)
    out: dict[str, Any] = {"stride": stride, "t": t, "clips": []}
    for i in range(clips):
        path = arrays.meta[i]["paths"][0]
        centre = (np.array(path[t]) + cfg.object_size // 2) % cfg.size
        q = np.clip(centre // stride, 0, x.shape[-1] - 1)
        p = (pts[i, t, :, :, q[0], q[1]] + 0.5) * stride - 0.5
        out["clips"].append({
            "frames": arrays.videos[i, t : t + 2, :, :, 0].tolist(),
            "query": ((q + 0.5) * stride - 0.5).tolist(),
            "points": np.round(p.numpy(), 3).tolist(),
            "weights": np.round(w[i, t, :, q[0], q[1]].numpy(), 5).tolist(),
            "msm": np.round(msm[i, t].numpy(), 4).tolist(),
            "next_corner": list(path[t + 1]),
        })
    return out


@experiment("sifa/train", version=1, uses=("suite/motion",))
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Train one variant (config: suite, suite_overrides, model, offset_lr, train, seed, device; optionally
    ``validation``: a pilot, scored on the last n training clips, which it does not train on)."""
    cfg = suite_of(config)
    train_arrays, test_arrays = held_out(config, load_motion_split(cfg, "train"),
                                         lambda: load_motion_split(cfg, "test"))
    train_set, test = ClipDataset(train_arrays), ClipDataset(test_arrays)
    seed_everything(config["seed"])
    model = TinyC2D(cfg.num_classes, **config["model"])
    for block in model.sifa_blocks():
        if block.offset_conv is not None:
            scale_gradients(block.offset_conv, float(config.get("offset_lr", 1.0)))
    res = fit(model, train_set, TrainConfig(**config["train"], seed=config["seed"]), device=config["device"],
              checkpoint=run.checkpoint())
    model.cpu().eval()
    partner = cfg.partner
    if any(p is not None for p in partner):
        metrics = order_robustness(model, test, partner)
    else:  # binding: reversal keeps the label; no pairs to score
        metrics = {}
        for order in ("ordered", "reversed", "shuffled"):
            logits, labels = predict(model, test, order=order)
            metrics[f"{order}_top1"] = 100.0 * float((logits.argmax(1) == labels).float().mean())
    per_clip = per_clip_outcomes(*predict(model, test), partner if any(p is not None for p in partner) else None)
    probe = torch.stack([test[i]["video"] for i in range(min(PROBE_CLIPS, len(test)))])
    metrics.update(offset_statistics(model, probe))
    metrics.update(localisation(model, test_arrays, cfg, min(PROBE_CLIPS, len(test))))
    metrics["params"] = float(count_params(model))
    metrics["macs"] = float(count_macs(model, test[0]["video"][None], sampling=True))
    metrics["train_clips_per_second"] = res.clips_per_second
    curves = {k: [h[f"train_{k}"] for h in res.history] for k in ("loss", "acc")}
    examples = attention_examples(model, test_arrays, cfg)
    return {"metrics": metrics, "curves": curves, "examples": examples, "per_clip": per_clip}
