"""Experiments of the spatial-attention chapter: T-CNN-S with and without zoom branches on GlyphHold.

Two stages, as the paper's "pretrained T-CNN" implies (spec Sec. 4):

1. ``spatial/pretrain``: T-CNN-S alone (the O branch) trained on the suite, cached on
   disk under a key made like a record's (config, code, environment), with its per-epoch
   held-out accuracy (the chapter's gate reads these curves).
2. ``spatial/train``: a :class:`~vidattn.papers.spatial.model.ZoomNetwork` in one of
   Table 4's modes starts from that backbone (the O, D and C heads from its classifier,
   the total head fresh) and trains with Eq. 8's loss. The "O" mode trains the same
   epochs without zoom, so every row has seen the same data for as long.

A ``spatial/train`` run measures, with the mean-field saliency unless stated:

* top-1 of every branch and of the total head, and the total under the other evaluation
  rules (phi = 0.5, the max/min-peak rule, the mean of 4 seeded random splits; H5);
* where the zoom goes (H2): the share of visible frames whose top peak lies in the glyph's
  box (dilated by one cell) against the box's share of the grid, and the warped glyph
  area relative to the original in the D and C branches;
* the entropy switch at evaluation (H3): the total and D top-1 with delta = 0 (always
  top-5), 0.2, 0.5 and above ln 5 (always top-1), and how often each rule picks top-1;
* per-frame predictions of the O head on visible and occluded frames against the clip's
  (H4); top-1 on reversed and shuffled clips (order robustness);
* the kernel widths beta per epoch, and the per-clip outcomes for paired tests.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from vidattn.core.identity import declare
from vidattn.core.registry import Run, experiment
from vidattn.data.clips import ClipDataset, SuiteArrays
from vidattn.data.suites.glyph import GlyphSuiteConfig, glyph_suite, load_glyph_split
from vidattn.data.validation import cache_fields, held_out
from vidattn.engine.evaluate import predict, topk_accuracy
from vidattn.engine.flops import count_params
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.papers.spatial.class_peaks import class_activation_maps, normalise, peak_table, response_map, top5_entropy
from vidattn.papers.spatial.model import ZoomNetwork, zoom_loss
from vidattn.papers.spatial.sampler import SaliencySampler
from vidattn.papers.spatial.tcnn import TCNN, TCNN_F, TCNN_S

BACKBONES = {"S": TCNN_S, "F": TCNN_F}
STAGE1_FIELDS = ("suite", "suite_overrides", "backbone", "stage1", "seed")
EVAL_SPLITS = ("meanfield", "half", "maxmin")
MC_DRAWS = 4
DELTAS = {"0 (top-5)": 0.0, "0.2": 0.2, "0.5": 0.5, "> ln 5 (top-1)": math.log(5) + 1}


def suite_of(config: dict[str, Any]) -> GlyphSuiteConfig:
    return glyph_suite(config["suite"], **config.get("suite_overrides", {}))


STAGE1 = "spatial/backbone"  # the stage-1 cache: a versioned computation of its own
declare(STAGE1, 1, uses=("suite/glyph",))


def pretrained(config: dict[str, Any], run: Run, train_set: ClipDataset, test: ClipDataset
               ) -> tuple[TCNN, dict[str, list[float]]]:
    """Stage 1: T-CNN-S trained alone, with its held-out top-1 per epoch (module docstring),
    from the cache ``spatial/backbone`` keyed by the config fields of :data:`STAGE1_FIELDS`."""
    cfg = suite_of(config)
    seed_everything(config["seed"])
    model = TCNN(BACKBONES[config["backbone"]], cfg.num_classes)

    def held_out(m: nn.Module, epoch: int) -> dict[str, float]:
        out = {"test_top1": topk_accuracy(*predict(m, test, device=config["device"]), (1,))["top1"]}
        m.train()
        return out

    def make() -> dict[str, Any]:
        res = fit(model, train_set, TrainConfig(**config["stage1"], seed=config["seed"]), device=config["device"],
                  checkpoint=run.checkpoint("backbone"), epoch_end=held_out)
        model.cpu()
        return {"model": model.state_dict(), **{k: torch.tensor([h[k] for h in res.history], dtype=torch.float64)
                                                for k in ("train_loss", "test_top1")}}

    state = run.cached(STAGE1, cache_fields(config, STAGE1_FIELDS), make)
    model.load_state_dict(state["model"])
    return model, {k: state[k].tolist() for k in ("train_loss", "test_top1")}


def datasets(config: dict[str, Any]) -> tuple[GlyphSuiteConfig, SuiteArrays, ClipDataset, ClipDataset]:
    """The suite, the held-out arrays, and the training and held-out datasets. The held-out split
    is the test split, or for a pilot (config ``validation`` = n) the last n training clips, which
    it then does not train on: a pilot never reads the test split."""
    cfg = suite_of(config)
    train_arrays, test_arrays = held_out(config, load_glyph_split(cfg, "train"), lambda: load_glyph_split(cfg, "test"))
    return cfg, test_arrays, ClipDataset(train_arrays), ClipDataset(test_arrays)


@experiment("spatial/pretrain", version=1, uses=("spatial/backbone",))
def pretrain(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Stage 1 on its own (config: the fields of :data:`STAGE1_FIELDS` and device)."""
    _, _, train_set, test = datasets(config)
    model, curves = pretrained(config, run, train_set, test)
    return {"metrics": {"top1": curves["test_top1"][-1], "params": float(count_params(model))}, "curves": curves}


def build_network(config: dict[str, Any], backbone: TCNN, num_classes: int) -> ZoomNetwork:
    """Table 4's network for ``config["mode"]`` around a trained backbone (module docstring)."""
    z = config["zoom"]
    sampler = SaliencySampler(z["grid"], z["pad"], z["fwhm"])
    net = ZoomNetwork(backbone, num_classes, config["mode"], sampler, tuple(z["beta"]), z["base"], z["delta"],
                      attention=z.get("attention", "cam"))
    for head in net.heads.values():
        head.load_state_dict(backbone.fc.state_dict())
    net.set_beta_lr(float(z["beta_lr"]))
    return net


def branch_logits(net: ZoomNetwork, test: ClipDataset, split: str, generator_seed: int | None = None,
                  batch_size: int = 50) -> dict[str, torch.Tensor]:
    """Logits of every branch and the total head on ``test`` under an evaluation ``split``."""
    net.eval()
    g = None if generator_seed is None else torch.Generator().manual_seed(generator_seed)
    out: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for s in range(0, len(test), batch_size):
            video = torch.stack([test[i]["video"] for i in range(s, min(s + batch_size, len(test)))])
            for k, v in net(video, split=split, generator=g).items():
                out.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in out.items()}


def labels_of(test: ClipDataset) -> torch.Tensor:
    return torch.as_tensor(test.arrays.labels)


@torch.no_grad()
def zoom_statistics(net: ZoomNetwork, arrays: SuiteArrays, cfg: GlyphSuiteConfig, clips: int) -> dict[str, float]:
    """H2 on the first ``clips`` test clips' visible frames (module docstring)."""
    data = ClipDataset(arrays)
    video = torch.stack([data[i]["video"] for i in range(clips)])
    G, T, S = net.sampler.grid_size, cfg.frames, cfg.size
    q_dis, q_com = net.saliency(net.backbone.features(video), T, split="meanfield")
    masks = torch.as_tensor(arrays.masks[:clips]).float()  # (N, T, S, S), the visible glyph's box
    visible = masks.flatten(2).amax(-1) > 0
    cell = S / G
    hits, ratios = [], {"D": [], "C": []}
    for i in range(clips):
        for t in range(T):
            if not visible[i, t]:
                continue
            top, left = arrays.meta[i]["corners"][t]
            peak = torch.nonzero(q_dis[i, t] == q_dis[i, t].max())[0].float()
            centre = (peak + 0.5) * cell  # the top cell's centre in pixels
            lo = torch.tensor([top, left], dtype=torch.float32) - cell
            hi = lo + cfg.box + 2 * cell
            hits.append(bool(((centre >= lo) & (centre <= hi)).all()))
    chance = (cfg.box / cell + 2) ** 2 / G**2
    for branch, q in (("D", q_dis), ("C", q_com)):
        warped = net.sampler.warp_clip(masks[:, None], q)[:, 0]  # (N, T, S, S)
        area = warped.flatten(2).sum(-1)[visible] / masks.flatten(2).sum(-1)[visible]
        ratios[branch] = area.tolist()
    return {"top_peak_in_box": 100.0 * float(np.mean(hits)), "top_peak_chance": 100.0 * min(chance, 1.0),
            "area_ratio_D": float(np.median(ratios["D"])), "area_ratio_C": float(np.median(ratios["C"]))}


@torch.no_grad()
def entropy_switch(net: ZoomNetwork, test: ClipDataset, labels: torch.Tensor) -> dict[str, float]:
    """H3 at evaluation: total and D top-1 under each delta, and the share of frames taking top-1."""
    out = {}
    kept = net.delta
    try:
        for name, delta in DELTAS.items():
            net.delta = delta
            logits = branch_logits(net, test, "meanfield")
            out[f"delta {name}: total"] = topk_accuracy(logits["total"], labels, (1,))["top1"]
            if "D" in logits:
                out[f"delta {name}: D"] = topk_accuracy(logits["D"], labels, (1,))["top1"]
    finally:
        net.delta = kept
    video = torch.stack([test[i]["video"] for i in range(min(100, len(test)))])
    feats = net.backbone.features(video)
    Y = feats.transpose(1, 2).flatten(0, 1)
    entropy = top5_entropy(net.heads["O"](Y.mean((2, 3))))
    for name, delta in DELTAS.items():
        out[f"delta {name}: top-1 share"] = 100.0 * float((entropy < delta).float().mean())
    return out


@torch.no_grad()
def per_frame(net: ZoomNetwork, arrays: SuiteArrays, test: ClipDataset) -> dict[str, float]:
    """H4: the O head on each input frame's feature slice, on visible and on occluded frames (each
    measured only where the test clips have such frames: a suite without occlusion has none)."""
    net.eval()
    right: dict[str, list[bool]] = {"visible": [], "occluded": []}
    for s in range(0, len(test), 50):
        idx = range(s, min(s + 50, len(test)))
        video = torch.stack([test[i]["video"] for i in idx])
        feats = net.backbone.features(video)
        T, Tf = video.shape[2], feats.shape[2]
        logits = net.heads["O"](feats.mean((3, 4)).transpose(1, 2))  # (B, T', classes)
        for b, i in enumerate(idx):
            for t in range(T):
                pred = int(logits[b, (t * Tf) // T].argmax())
                key = "visible" if arrays.meta[i]["visible"][t] else "occluded"
                right[key].append(pred == int(arrays.labels[i]))
    return {f"frame_top1_{k}": 100.0 * float(np.mean(v)) for k, v in right.items() if v}


@torch.no_grad()
def fig2_example(net: ZoomNetwork, arrays: SuiteArrays, index: int = 0, t: int = 0) -> dict[str, Any]:
    """For Fig. 2: one frame, its normalised response map and peaks, Q_dis and Q_com, the
    warped frames and the warped glyph mask (mean-field saliency)."""
    data = ClipDataset(arrays)
    video = data[index]["video"][None]
    feats = net.backbone.features(video)
    T, Tf, G = video.shape[2], feats.shape[2], net.sampler.grid_size
    Y = feats[:, :, (t * Tf) // T]
    head = net.heads["O"]
    maps = normalise(response_map(class_activation_maps(Y, head.weight, head.bias, G), head(Y.mean((2, 3))),
                                  net.delta))
    peaks = peak_table(maps)
    q_dis, q_com = net.saliency(feats, T, split="meanfield")
    mask = torch.as_tensor(arrays.masks[index : index + 1, t : t + 1]).float()[None]
    out = {"frame": arrays.videos[index, t].tolist(), "map": maps[0].tolist(),
           "peaks": peaks["cell"].tolist(), "values": peaks["value"].tolist(),
           "corner": arrays.meta[index]["corners"][t], "label": int(arrays.labels[index])}
    for name, q in (("dis", q_dis), ("com", q_com)):
        warped = net.sampler.warp_clip(video, q)[0, :, t]
        out[f"q_{name}"] = q[0, t].tolist()
        out[f"warped_{name}"] = ((warped.permute(1, 2, 0) + 0.5).clamp(0, 1) * 255).round().byte().tolist()
        out[f"mask_{name}"] = net.sampler.warp_clip(mask, q[:, t : t + 1])[0, 0, 0].tolist()
    return out


def zoom_step(net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 8 on a batch (the random split of Eq. 5 draws from torch's seeded, checkpointed generator)."""
    out = net(batch["video"])
    acc = float((out["total"].argmax(-1) == batch["label"]).float().mean())
    return zoom_loss(out, batch["label"]), {"acc": acc}


def log_beta(net: ZoomNetwork) -> Callable[[nn.Module, int], dict[str, float]]:
    def at_epoch_end(_: nn.Module, epoch: int) -> dict[str, float]:
        b = net.beta.detach()
        return {"beta_dis": float(b[0]), "beta_com": float(b[1])}
    return at_epoch_end


@experiment("spatial/train", version=1, uses=("spatial/backbone",))
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """One of Table 4's rows (config: suite, suite_overrides, backbone, stage1, mode, zoom, train, seed, device)."""
    cfg, test_arrays, train_set, test = datasets(config)
    backbone, stage1_curves = pretrained(config, run, train_set, test)
    seed_everything(config["seed"] + 1)
    net = build_network(config, backbone, cfg.num_classes)
    res = fit(net, train_set, TrainConfig(**config["train"], seed=config["seed"]), loss_fn=zoom_step,
              device=config["device"], checkpoint=run.checkpoint(), epoch_end=log_beta(net))
    net.cpu().eval()
    labels = labels_of(test)
    logits = branch_logits(net, test, "meanfield")
    metrics = {f"{k}_top1": topk_accuracy(v, labels, (1,))["top1"] for k, v in logits.items()}
    per_clip = {f"{k}_top1": (v.argmax(1) == labels).int().tolist() for k, v in logits.items()}
    if net.branches != ["O"]:
        for split in EVAL_SPLITS[1:]:
            split_logits = branch_logits(net, test, split)["total"]
            metrics[f"total_top1_{split}"] = topk_accuracy(split_logits, labels, (1,))["top1"]
        draws = [branch_logits(net, test, "random", generator_seed=d)["total"] for d in range(MC_DRAWS)]
        accs = [topk_accuracy(d, labels, (1,))["top1"] for d in draws]
        mean_probs = torch.stack([d.softmax(1) for d in draws]).mean(0)
        metrics["total_top1_mc_mean"] = topk_accuracy(mean_probs, labels, (1,))["top1"]
        metrics["total_top1_mc_std"] = float(np.std(accs))
        metrics.update(zoom_statistics(net, test_arrays, cfg, min(100, len(test))))
        metrics.update(entropy_switch(net, test, labels))
    metrics.update(per_frame(net, test_arrays, test))
    for order in ("reversed", "shuffled"):
        lg, _ = predict(net, test, order=order, forward=lambda m, v: m(v, split="meanfield")["total"])
        metrics[f"{order}_top1"] = topk_accuracy(lg, labels, (1,))["top1"]
    metrics["params"] = float(count_params(net))
    metrics["train_clips_per_second"] = res.clips_per_second
    curves = {"loss": [h["train_loss"] for h in res.history], "acc": [h["train_acc"] for h in res.history],
              "beta_dis": [h["beta_dis"] for h in res.history], "beta_com": [h["beta_com"] for h in res.history],
              "stage1_test_top1": stage1_curves["test_top1"]}
    result: dict[str, Any] = {"metrics": metrics, "curves": curves, "per_clip": per_clip}
    if config.get("examples") and net.branches != ["O"]:
        result["examples"] = [fig2_example(net, test_arrays, i) for i in range(2)]
    return result
