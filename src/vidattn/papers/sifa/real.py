"""The SIFA chapter on a real dataset: SIFA-Net and its 2-D ResNet baseline, as released.

The rows are the released R50 design (:class:`~vidattn.papers.sifa.net.SIFANet`, stride-4
stem, alternating global-context and SIFA bottlenecks, dual res5) with and without its
SIFA blocks: the 2D-ResNet and SIFA rows of Table 1 and the SIFA-Net row of Tables 2-4.
Training follows the paper's recipe (SGD, cosine after a linear warm-up, wd 1e-4,
dropout 0.5), with the official loss: the main and the dual head's cross-entropies
summed. Weights come from a local torchvision ImageNet ResNet when the config names one.
Scores over the test views as every chapter's: top-1/top-5 (mAP/wAP multi-label) and
top-1 on reversed and shuffled clips.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from vidattn.core.registry import Run, experiment
from vidattn.engine.flops import count_macs
from vidattn.engine.real_data import (
    batch_accuracy,
    fit_and_score,
    label_loss,
    open_real,
    run_device,
)
from vidattn.engine.train import seed_everything
from vidattn.papers.sifa.net import SIFANet, load_resnet_weights


def dual_head_loss(net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the main head plus the dual head's (the official loss, D8); one head
    for the paper's design. In training, :class:`SIFANet` returns (heads, B, K)."""
    logits = net(batch["video"])
    heads = logits if logits.dim() == 3 else logits[None]
    loss = sum(label_loss(h, batch["label"]) for h in heads)
    return loss, {"acc": batch_accuracy(heads.mean(0), batch["label"])}


@experiment("sifa/real", version=1, uses=("data/real",), distributed=True)
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """One row on real data (config: data, model, weights, train, seed, device)."""
    data = open_real(config["data"], config["seed"])
    s = data.train.sampling
    seed_everything(config["seed"])
    model = SIFANet(num_classes=len(data.classes), frames=s.frames, **config["model"])
    if config.get("weights"):
        load_resnet_weights(model, config["weights"]["path"])
    device = run_device(config["device"])
    metrics, per_clip, res = fit_and_score(model, data, config, run, dual_head_loss, device)
    model.cpu()
    metrics["macs"] = float(count_macs(model, torch.zeros(1, 3, s.frames, s.size, s.size), sampling=True))
    return {"metrics": metrics, "curves": {"loss": [h["train_loss"] for h in res.history]}, "per_clip": per_clip}
