"""Experiments of the data chapter: the order premise and actor localisation."""
from __future__ import annotations

from typing import Any

import torch

from vidattn.core.registry import Run, experiment
from vidattn.data.clips import ClipDataset
from vidattn.data.suites.order import load_split, suite_config
from vidattn.engine.evaluate import (
    mass_in_mask,
    order_robustness,
    per_clip_outcomes,
    pointing_game,
    predict,
    topk_accuracy,
)
from vidattn.engine.flops import count_macs, count_params
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.models import build_model


def _setup(config: dict[str, Any]):
    cfg = suite_config(config["suite"], **config.get("suite_overrides", {}))
    train = ClipDataset(load_split(cfg, "train"))
    test = ClipDataset(load_split(cfg, "test"))
    seed_everything(config["seed"])
    model = build_model(config["model"], num_classes=cfg.num_classes, width=config.get("width", 16))
    tcfg = TrainConfig(**config["train"], seed=config["seed"])
    return cfg, train, test, model, tcfg


def _cost(model: torch.nn.Module, sample: torch.Tensor) -> dict[str, float]:
    return {"params": float(count_params(model)), "macs": float(count_macs(model, sample[None]))}


@experiment("data/premise", version=1, uses=("suite/synthetic",))
def premise(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Train ``model`` on an order suite; accuracy on ordered, reversed, shuffled clips."""
    cfg, train, test, model, tcfg = _setup(config)
    res = fit(model, train, tcfg, device=config["device"], checkpoint=run.checkpoint())
    partner = [c.partner for c in cfg.classes]
    metrics = order_robustness(model, test, partner, device=config["device"])
    per_clip = per_clip_outcomes(*predict(model, test, device=config["device"]), partner)
    metrics.update(_cost(model.cpu(), test[0]["video"]))
    metrics["train_clips_per_second"] = res.clips_per_second
    curves = {k: [h[k] for h in res.history] for k in ("train_loss", "train_acc")}
    return {"metrics": metrics, "curves": curves, "per_clip": per_clip}


def activation_maps(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, T', h, w): channel mean of the last feature map's magnitude."""
    with torch.no_grad():
        return model.feature_map(video).abs().mean(1)


@experiment("data/localisation", version=1, uses=("suite/synthetic",))
def localisation(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Train on the actor-vs-distractor suite and score where the last features fire."""
    cfg, train, test, model, tcfg = _setup(config)
    res = fit(model, train, tcfg, device=config["device"], checkpoint=run.checkpoint())
    logits, labels = predict(model, test, device=config["device"])
    model.eval().cpu()
    maps, masks = [], []
    for i in range(len(test)):
        item = test[i]
        maps.append(activation_maps(model, item["video"][None])[0])
        masks.append(item["mask"])
    maps_t, masks_t = torch.stack(maps), torch.stack(masks)
    if maps_t.shape[1] != masks_t.shape[1]:
        raise ValueError("the feature map must keep the clip's time resolution to be scored per frame")
    # a centre-prior map (a Gaussian at the frame centre) is the no-information baseline
    h, w = maps_t.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    centre = torch.exp(-(xx**2 + yy**2) / (2 * (h / 4) ** 2)).expand_as(maps_t)
    metrics = {
        **topk_accuracy(logits, labels, (1,)),
        "pointing": pointing_game(maps_t, masks_t, tolerance=1),
        "pointing_centre_prior": pointing_game(centre, masks_t, tolerance=1),
        **mass_in_mask(maps_t, masks_t),
        "mass_in_mask_centre_prior": mass_in_mask(centre, masks_t)["mass_in_mask"],
        "train_clips_per_second": res.clips_per_second,
    }
    return {"metrics": metrics, "curves": {"train_loss": [h["train_loss"] for h in res.history]},
            "examples": {"maps": maps_t[:3].round(decimals=4).tolist()}}
