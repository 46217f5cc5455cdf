"""The CIDC chapter on a real dataset: the paper's two stages with its recipe.

Stage 1 trains the backbone with a pooled head (the I3D baseline row), starting from a
local ImageNet ResNet-50 inflated into I3D when the config names one (``weights``), and
caches it keyed like a record, so every head of a seed shares it. Stage 2 freezes the
backbone, computes its res3-res5 features of the training clips once, and trains the
head on them. The whole network is then scored on the paper's test views (clips x 3
crops): top-1/top-5 (mAP/wAP on a multi-label dataset) and top-1 on reversed and
shuffled clips. The maps of Fig. 1 and 4 are scored against the synthetic suites'
actor masks, which real datasets do not have: they are not computed here.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from vidattn.core.identity import declare
from vidattn.core.registry import Run, experiment
from vidattn.data.real import RealData
from vidattn.engine.flops import count_macs, count_params
from vidattn.engine.real_data import classify_loss, label_loss, open_real, run_device, score
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.models.inflate import load_resnet50_inflated
from vidattn.models.resnet3d import ResNet3d50
from vidattn.papers.cidc.experiment import FeatureSet, build_backbone
from vidattn.papers.cidc.model import GAPHead, VideoClassifier, build_head

STAGE1_FIELDS = ("data", "backbone", "backbone_train", "weights", "dropout", "seed", "device")
STAGE1 = "cidc/real-backbone"  # the stage-1 cache: a versioned computation of its own
declare(STAGE1, 1, uses=("data/real",))


def trained_backbone(config: dict[str, Any], run: Run, data: RealData, device: str
                     ) -> tuple[VideoClassifier, dict[str, Any]]:
    """Stage 1: backbone + GAP head on the training set, from the cache ``cidc/real-backbone``
    keyed by the config fields of :data:`STAGE1_FIELDS` (data fingerprint and weight hash included)."""
    seed_everything(config["seed"])
    backbone = build_backbone(config["backbone"])
    if config.get("weights"):
        if not isinstance(backbone, ResNet3d50):
            raise ValueError(f"weights inflate a ResNet-50 into I3D; backbone {config['backbone']['name']!r} "
                             "is not one (use i3d or r2d)")
        load_resnet50_inflated(backbone, config["weights"]["path"])
    model = VideoClassifier(backbone, GAPHead(backbone.channels, len(data.classes), config.get("dropout", 0.6)))

    def make() -> dict[str, Any]:
        res = fit(model, data.train, TrainConfig(**config["backbone_train"], seed=config["seed"]),
                  loss_fn=classify_loss, device=device, checkpoint=run.checkpoint("backbone"))
        model.cpu()
        return {"model": model.state_dict(), "clips_per_second": res.clips_per_second,
                "train_loss": torch.tensor([h["train_loss"] for h in res.history], dtype=torch.float64)}

    state = run.cached(STAGE1, {k: config.get(k) for k in STAGE1_FIELDS}, make)
    model.load_state_dict(state["model"])
    return model, {"train_loss": state["train_loss"].tolist(), "clips_per_second": state["clips_per_second"]}


class _IndexAsLabel(Dataset):
    """A dataset whose items carry their index as label, so FeatureSet can hold any label."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**self.dataset[i], "label": torch.tensor(i)}


def features(backbone: nn.Module, data: RealData, device: str) -> FeatureSet:
    """Frozen res3-res5 features of one training view per clip, with its label (multi-hot on Charades)."""
    feats = FeatureSet(backbone, _IndexAsLabel(data.train), device, batch_size=8)
    feats.labels = torch.stack([data.train.target(int(i)) for i in feats.labels])
    return feats


def head_loss(net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    logits = net([batch["res3"], batch["res4"], batch["res5"]])
    return label_loss(logits, batch["label"]), {}


@experiment("cidc/real", version=1, uses=("cidc/real-backbone",), distributed=True)
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """One row on real data (config: data, backbone, backbone_train, weights, head, head_train, seed, device)."""
    data = open_real(config["data"], config["seed"])
    device = run_device(config["device"])
    model, stage1 = trained_backbone(config, run, data, device)
    head_spec = dict(config["head"])
    name = head_spec.pop("name")
    curves = {"backbone_loss": stage1["train_loss"]}
    metrics = {"backbone_clips_per_second": float(stage1["clips_per_second"])}
    if name != "gap":
        seed_everything(config["seed"])
        model.backbone.eval()
        with torch.no_grad():
            T = model.backbone(data.probe[0]["video"][None])[-1].shape[2]
        head = build_head(name, model.backbone.channels, T, len(data.classes), dropout=config.get("dropout", 0.6),
                          **head_spec)
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        res = fit(head, features(model.backbone, data, device),
                  TrainConfig(**config["head_train"], seed=config["seed"]), loss_fn=head_loss, device=device,
                  checkpoint=run.checkpoint("head"))
        model = VideoClassifier(model.backbone, head)
        curves["head_loss"] = [h["train_loss"] for h in res.history]
        metrics["head_clips_per_second"] = res.clips_per_second
    scores, per_clip = score(model, data, device)
    metrics.update(scores)
    model.cpu()
    metrics["params"] = float(count_params(model))
    metrics["head_params"] = float(count_params(model.head))
    metrics["macs"] = float(count_macs(model, data.probe[0]["video"][None]))
    return {"metrics": metrics, "curves": curves, "per_clip": per_clip}
