"""Experiments of the CIDC chapter: a backbone trained with a pooled head, then a temporal head on its features.

The paper trains in two stages: the backbone first, then the CIDC network on top. We do
the same. Stage 1 trains backbone + GAP head (this *is* the baseline row of every table)
and caches the weights on disk, keyed by the stage-1 config and the code, so every head
of a seed shares one backbone. Stage 2 freezes the backbone, caches its three stage
outputs for the training clips, and trains the head on them. Every head is then scored as
one network, clip in, logits out: top-1 and pair accuracy on ordered, reversed and
shuffled clips, per-class accuracy, and, on suites with an actor mask, where the maps
of Fig. 1 and 4 point.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from vidattn.core.identity import declare
from vidattn.core.registry import Run, experiment
from vidattn.data.clips import ClipDataset
from vidattn.data.suites.order import SuiteConfig, load_split, suite_config
from vidattn.engine.evaluate import (
    mass_in_mask,
    order_robustness,
    per_class_accuracy,
    per_clip_outcomes,
    pointing_game,
    predict,
)
from vidattn.engine.flops import count_macs, count_params
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.models.resnet3d import ResNet3d50, TinyI3D
from vidattn.papers.cidc.model import CIDCHead, GAPHead, VideoClassifier, build_head, spatial_attention


def suite_of(config: dict[str, Any]) -> SuiteConfig:
    """The suite of a run (JSON lists in the overrides become the tuples the generator expects)."""
    over = dict(config.get("suite_overrides", {}))
    for key in ("programs", "controls"):
        if key in over:
            over[key] = tuple(tuple(p) for p in over[key])
    return suite_config(config["suite"], **over)


def build_backbone(spec: dict[str, Any]) -> nn.Module:
    """``{"name": "tiny", "width": 16, "temporal_stem": True}`` or ``{"name": "i3d"|"r2d", "non_local": bool}``."""
    spec = dict(spec)
    name = spec.pop("name")
    if name == "tiny":
        return TinyI3D(**spec)
    if name in ("i3d", "r2d"):
        return ResNet3d50(inflated=name == "i3d", **spec)
    raise ValueError(f"unknown backbone {name!r}; known: tiny, i3d, r2d")


def event_swap_partners(cfg: SuiteConfig) -> list[int | None]:
    """For each class A->B, the class B->A (None if the suite has none): the look-alike pairs of Table 6."""
    names = [c.name for c in cfg.classes]
    out = []
    for n in names:
        parts = n.split("->")
        swapped = "->".join(reversed(parts))
        out.append(names.index(swapped) if swapped != n and swapped in names else None)
    return out


STAGE1_FIELDS = ("suite", "suite_overrides", "backbone", "backbone_train", "dropout", "seed", "device")


STAGE1 = "cidc/backbone"  # the stage-1 cache: a versioned computation of its own
declare(STAGE1, 1, uses=("suite/synthetic",))


def control_classes(cfg: SuiteConfig) -> list[int]:
    """Indices of the order-free control classes (no reversal partner)."""
    return [i for i, c in enumerate(cfg.classes) if c.partner is None]


def pretrained_backbone(config: dict[str, Any], run: Run, cfg: SuiteConfig, train_set: Dataset, test: Dataset
                        ) -> tuple[VideoClassifier, dict[str, Any]]:
    """Stage 1: backbone + GAP head trained on ``train_set``, from the cache ``cidc/backbone``
    keyed by the config fields of :data:`STAGE1_FIELDS` (``run.cached``).

    Every epoch also scores the test clips (top-1, and top-1 on the order-free controls), the
    learning curve the chapter's gate reads. The cache holds weights and curves only.
    """
    seed_everything(config["seed"])
    backbone = build_backbone(config["backbone"])
    model = VideoClassifier(backbone, GAPHead(backbone.channels, cfg.num_classes, config.get("dropout", 0.6)))
    controls = control_classes(cfg)

    def held_out(m: nn.Module, epoch: int) -> dict[str, float]:
        logits, labels = predict(m, test, device=config["device"])
        acc = per_class_accuracy(logits, labels, cfg.num_classes)
        m.train()
        return {"test_top1": float((logits.argmax(1) == labels).float().mean() * 100),
                "test_control_top1": float(np.mean(acc[controls]))}

    def make() -> dict[str, Any]:
        tcfg = TrainConfig(**config["backbone_train"], seed=config["seed"])
        res = fit(model, train_set, tcfg, device=config["device"], checkpoint=run.checkpoint("backbone"),
                  epoch_end=held_out)
        model.cpu()
        return {"model": model.state_dict(), "clips_per_second": res.clips_per_second,
                **{k: torch.tensor([h[k] for h in res.history], dtype=torch.float64)
                   for k in ("train_loss", "test_top1", "test_control_top1")}}

    state = run.cached(STAGE1, {k: config.get(k) for k in STAGE1_FIELDS}, make)
    model.load_state_dict(state["model"])
    return model, {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in state.items() if k != "model"}


class FeatureSet(Dataset):
    """Frozen backbone outputs of every clip of a dataset: items ``res3``, ``res4``, ``res5``, ``label``."""

    def __init__(self, backbone: nn.Module, dataset: Dataset, device: str, batch_size: int = 100):
        backbone.eval().to(device)
        feats: list[list[torch.Tensor]] = [[], [], []]
        labels = []
        with torch.no_grad():
            for s in range(0, len(dataset), batch_size):
                items = [dataset[i] for i in range(s, min(s + batch_size, len(dataset)))]
                out = backbone(torch.stack([it["video"] for it in items]).to(device))
                for acc, f in zip(feats, out):
                    acc.append(f.cpu())
                labels.extend(int(it["label"]) for it in items)
        self.feats = [torch.cat(f) for f in feats]
        self.labels = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"res3": self.feats[0][i], "res4": self.feats[1][i], "res5": self.feats[2][i], "label": self.labels[i]}


def head_loss(net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of a head on cached features."""
    logits = net([batch["res3"], batch["res4"], batch["res5"]])
    loss = F.cross_entropy(logits.float(), batch["label"])
    return loss, {"acc": (logits.argmax(-1) == batch["label"]).float().mean().item()}


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    """Min-max per clip and time step, so maps of different models are shown and scored alike."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    return (maps - lo) / (hi - lo + 1e-12)


@torch.no_grad()
def activation_maps(model: VideoClassifier, video: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fig. 1/4's maps per output step, (N, T, h, w), min-max normalised.

    ``res5``: sigma(mean_c) of the backbone's last map (what the baseline pools);
    ``propagated``: Eq. 3's attention from res4 as applied to res3 (CIDC heads only);
    ``cidc``: sigma(mean_c) of the CIDC output, the two directions averaged (CIDC heads only).
    """
    model.eval()
    feats = model.backbone(video)
    out = {"res5": _normalise(torch.sigmoid(feats[-1].mean(1)))}
    if isinstance(model.head, CIDCHead):
        out["propagated"] = _normalise(spatial_attention(feats[1], tuple(feats[0].shape[-2:]))[:, 0])
        streams = model.head.stream_outputs(feats)
        out["cidc"] = _normalise(torch.stack([torch.sigmoid(s.mean(1)) for s in streams]).mean(0))
    return out


def localisation(model: VideoClassifier, test: ClipDataset, device: str, n: int = 200
                 ) -> tuple[dict[str, float], dict[str, list]]:
    """Pointing game (1-px tolerance) and mass in mask of every map, against the representative frame of
    each output step (the middle frame of its sub-clip), on the first ``n`` test clips; and the maps of
    the first four clips (for the figures).

    The chance level of the pointing game depends on a map's resolution (a coarse map's
    maximum, upsampled, lands on a cell centre), so each map gets its own: the mean
    score of 10 seeded uniform random maps of the same shape.
    """
    model.to(device)
    idx = range(min(n, len(test)))
    video = torch.stack([test[i]["video"] for i in idx]).to(device)
    masks = torch.stack([test[i]["mask"] for i in idx])
    maps = {k: v.cpu() for k, v in activation_maps(model, video).items()}
    T_out = maps["res5"].shape[1]
    step = masks.shape[1] // T_out
    rep = masks[:, step // 2 :: step][:, :T_out]
    out: dict[str, float] = {}
    g = torch.Generator().manual_seed(0)
    for name, m in maps.items():
        out[f"pointing_{name}"] = pointing_game(m, rep, tolerance=1)
        out[f"pointing_chance_{name}"] = float(np.mean([
            pointing_game(torch.rand(m.shape, generator=g), rep, tolerance=1) for _ in range(10)]))
        mm = mass_in_mask(m, rep)
        out[f"mass_in_mask_{name}"] = mm["mass_in_mask"]
        out["mass_in_mask_chance"] = mm["chance"]
    return out, {k: v[:4].round(decimals=4).tolist() for k, v in maps.items()}


def _metrics(model: VideoClassifier, test: ClipDataset, cfg: SuiteConfig, device: str
             ) -> tuple[dict[str, float], dict[str, list[int]]]:
    partner = [c.partner for c in cfg.classes]
    metrics = order_robustness(model, test, partner, device=device)
    logits, labels = predict(model, test, device=device)
    for i, acc in enumerate(per_class_accuracy(logits, labels, cfg.num_classes)):
        metrics[f"class_acc_{i}"] = float(acc)
    metrics["control_top1"] = float(np.mean([metrics[f"class_acc_{i}"] for i in control_classes(cfg)]))
    return metrics, per_clip_outcomes(logits, labels, partner)


@experiment("cidc/train", version=1, uses=("cidc/backbone",))
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """One row of a CIDC table (config: suite, suite_overrides, backbone, backbone_train, head, head_train, seed).

    ``head`` is ``{"name": "gap"}`` for the stage-1 baseline itself, else a head of
    :func:`vidattn.papers.cidc.model.build_head` with its keyword arguments, trained on frozen
    features with ``head_train``.
    """
    cfg = suite_of(config)
    train_set, test = ClipDataset(load_split(cfg, "train")), ClipDataset(load_split(cfg, "test"))
    device = config["device"]
    model, stage1 = pretrained_backbone(config, run, cfg, train_set, test)
    head_spec = dict(config["head"])
    name = head_spec.pop("name")
    curves: dict[str, Sequence[float]] = {"backbone_loss": stage1["train_loss"],
                                          "backbone_test_top1": stage1["test_top1"],
                                          "backbone_test_control_top1": stage1["test_control_top1"]}
    metrics: dict[str, float] = {"backbone_clips_per_second": stage1["clips_per_second"]}
    if name != "gap":
        seed_everything(config["seed"])
        model.backbone.eval()  # frozen: a train-mode pass would move BatchNorm's running statistics
        with torch.no_grad():
            T = model.backbone(test[0]["video"][None])[-1].shape[2]
        head = build_head(name, model.backbone.channels, T, cfg.num_classes,
                          dropout=config.get("dropout", 0.6), **head_spec)
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        feats = FeatureSet(model.backbone, train_set, device)
        res = fit(head, feats, TrainConfig(**config["head_train"], seed=config["seed"]), loss_fn=head_loss,
                  device=device, checkpoint=run.checkpoint("head"))
        model = VideoClassifier(model.backbone, head)
        curves["head_loss"] = [h["train_loss"] for h in res.history]
        metrics["head_clips_per_second"] = res.clips_per_second
    scores, per_clip = _metrics(model, test, cfg, device)
    metrics.update(scores)
    examples: dict[str, Any] = {}
    if cfg.distractors or cfg.background == "pan":
        scores, examples["maps"] = localisation(model, test, device)
        metrics.update(scores)
    model.cpu()
    sample = test[0]["video"][None]
    metrics["params"] = float(count_params(model))
    metrics["head_params"] = float(count_params(model.head))
    metrics["macs"] = float(count_macs(model, sample))
    if name == "cidc":
        examples["kernels"] = [[u.temporal.kernel()[:8].detach().round(decimals=4).tolist() for u in branch]
                              for branch in model.head.streams[0].branches]
    return {"metrics": metrics, "curves": curves, "examples": examples, "per_clip": per_clip}
