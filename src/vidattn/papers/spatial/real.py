"""The spatial-attention chapter on a real dataset: T-CNN and T-CNN + spatial attention at full size.

The rows are Tables 2-3's "T-CNN" (the O branch alone) and "T-CNN+spatial" (O + C + D)
with T-CNN-F (our reading of Table 1) and the 31 x 31 sampler. The paper starts from a
Kinetics-400 T-CNN; its weights were never released, so both rows train from scratch
(or from a file the config names) with the paper's recipe: SGD, single-cycle cosine,
wd 4e-5, batch 16, dropout 0.5, Eq. 8's loss; 16 consecutive frames at 224 px; tested on
10 clips x 3 crops with the mean-field saliency (the split of Eq. 5 has no test-time
rule in the paper). Scored as every chapter's real data: top-1/top-5 and top-1 on
reversed and shuffled clips.
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
from vidattn.papers.spatial.model import ZoomNetwork
from vidattn.papers.spatial.sampler import SaliencySampler
from vidattn.papers.spatial.tcnn import TCNN, TCNN_F


class TotalPrediction(nn.Module):
    """A :class:`ZoomNetwork` that returns the total head's logits (mean-field saliency) in
    evaluation, for the shared scorer; in training the loss reads every branch."""

    def __init__(self, net: ZoomNetwork):
        super().__init__()
        self.net = net

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video, split="meanfield")["total"]


def zoom_real_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 8 with each branch's loss as the data's label loss (cross-entropy, or BCE multi-label)."""
    net = model.module.net if hasattr(model, "module") else model.net
    out = net(batch["video"])
    loss = sum(label_loss(v, batch["label"]) for v in out.values())
    return loss, {"acc": batch_accuracy(out["total"], batch["label"])}


@experiment("spatial/real", version=1, uses=("data/real",), distributed=True)
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """One row on real data (config: data, mode, zoom, weights, train, seed, device)."""
    data = open_real(config["data"], config["seed"])
    seed_everything(config["seed"])
    z = config["zoom"]
    backbone = TCNN(TCNN_F, len(data.classes))
    if config.get("weights"):
        load_except_classifier(backbone, config["weights"]["path"], ("fc.",), "T-CNN-F")
    net = ZoomNetwork(backbone, len(data.classes), config["mode"], SaliencySampler(z["grid"], z["pad"], z["fwhm"]),
                      tuple(z["beta"]), z["base"], z["delta"])
    net.set_beta_lr(float(z["beta_lr"]))
    model = TotalPrediction(net)
    device = run_device(config["device"])
    metrics, per_clip, res = fit_and_score(model, data, config, run, zoom_real_loss, device)
    model.cpu()
    metrics["beta_dis"], metrics["beta_com"] = (float(b) for b in net.beta.detach())
    return {"metrics": metrics, "curves": {"loss": [h["train_loss"] for h in res.history]}, "per_clip": per_clip}
