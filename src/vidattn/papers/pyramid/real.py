"""The pyramid-attention chapter on a real dataset: a 2-D backbone with and without the layer.

The rows are Table 9's "without" (TSN: the backbone on each segment, scores averaged)
and "with" (the 3-scale temporal pyramid layer at the paper's placement,
:mod:`vidattn.papers.pyramid.placements`), RGB stream, with the paper's recipe: SGD
momentum 0.9, wd 4e-5, dropout 0.5, batch 64, lr 1e-3 divided by 10 every third of the
run (the paper's 4k of 12k iterations); Eq. 12's loss with beta = gamma = 1e-4 for the
"with" row; K = 3 TSN segments in training, 25 frames at test. Weights come from a local
ImageNet checkpoint of the backbone when the config names one (its classifier is
dropped; any other mismatch is named). Scored as every chapter's real data:
top-1/top-5 (mAP/wAP for Charades) and top-1 on reversed and shuffled clips.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from vidattn.core.registry import Run, experiment
from vidattn.engine.real_data import (
    batch_accuracy,
    fit_and_score,
    label_loss,
    load_except_classifier,
    open_real,
    run_device,
)
from vidattn.engine.train import seed_everything
from vidattn.papers.pyramid.attention import attention_loss, interaction_loss
from vidattn.papers.pyramid.placements import PyramidBackbone

CLASSIFIERS = ("classif.", "fc.", "classifier.6.")


def load_backbone_weights(model: PyramidBackbone, path: str) -> None:
    """An ImageNet state dict of the backbone into ``model.net``; only the classifier may differ."""
    load_except_classifier(model.net, path, CLASSIFIERS, model.name)


def pyramid_real_loss(beta: float, gamma: float, frames: int):
    """Eq. 12 with the data's label loss (cross-entropy, or BCE multi-label for Charades)."""
    def step(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits, aux = model(batch["video"], with_aux=True)  # through DDP's forward when distributed
        loss = label_loss(logits, batch["label"])
        if aux and beta:
            loss = loss + beta * interaction_loss(aux["X"], aux["A"])
        if aux and gamma:
            loss = loss + gamma * attention_loss(aux["A"], aux["Y"], frames)
        return loss, {"acc": batch_accuracy(logits, batch["label"])}
    return step


@experiment("pyramid/real", version=1, uses=("data/real",), distributed=True)
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """One row on real data (config: data, model, losses, weights, train, seed, device)."""
    data = open_real(config["data"], config["seed"])
    s = data.train.sampling
    seed_everything(config["seed"])
    m = config["model"]
    model = PyramidBackbone(m["backbone"], len(data.classes), m["scales"], m["fusion"], image_size=s.size,
                            dropout=m["dropout"])
    if config.get("weights"):
        load_backbone_weights(model, config["weights"]["path"])
    device = run_device(config["device"])
    losses = config["losses"]
    metrics, per_clip, res = fit_and_score(model, data, config, run,
                                           pyramid_real_loss(losses["beta"], losses["gamma"], s.frames), device)
    model.cpu()
    metrics["pyramid_params"] = float(model.pyramid.extra_params() if model.pyramid else 0)
    return {"metrics": metrics, "curves": {"loss": [h["train_loss"] for h in res.history]}, "per_clip": per_clip}
