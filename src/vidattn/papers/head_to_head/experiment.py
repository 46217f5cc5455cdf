"""The head-to-head experiment: one mechanism in the trunk's slot, trained on one chapter's suite.

A run trains :class:`~vidattn.papers.head_to_head.mechanisms.SlotNet` (cross-entropy; DirecFormer's
Eq. 14 with both order losses for directed attention) and measures top-1 on ordered, reversed
and shuffled test clips, pair accuracy where the suite has reversal pairs, its cost (multiply-adds
per clip, parameters) and its training throughput. A pilot (config ``validation`` = n) trains
without the last n training clips and is scored on them (:func:`vidattn.data.validation.held_out`).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch

from vidattn.core.registry import Run, experiment
from vidattn.data.clips import ClipDataset
from vidattn.data.validation import held_out
from vidattn.engine.evaluate import order_robustness, per_clip_outcomes, predict
from vidattn.engine.flops import count_macs, count_params
from vidattn.engine.train import TrainConfig, classification_loss, fit, seed_everything
from vidattn.papers.direcformer.model import LossWeights, direcformer_loss
from vidattn.papers.direcformer.permutations import order_table, permutation_set
from vidattn.papers.head_to_head.mechanisms import MECHANISMS, create_mechanism
from vidattn.papers.head_to_head.suites import classes, load, suite_cfg
from vidattn.papers.sifa.experiment import scale_gradients

N_PERMS = 30  # DirecFormer's permutation set: 30 orders by the far rule, plus the identity


@experiment("h2h/train", version=1, uses=("suite/synthetic", "suite/motion", "suite/glyph", "suite/synthact"))
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Train one mechanism on one suite (config: mechanism, suite, n_train, n_test, widths, train,
    seed, device; optionally ``validation``, for a pilot)."""
    name, mech = config["mechanism"], MECHANISMS[config["mechanism"]]
    cfg = suite_cfg(config["suite"], config["n_train"], config["n_test"])
    train_arrays, test_arrays = held_out(config, load(config["suite"], cfg, "train"),
                                         lambda: load(config["suite"], cfg, "test"))
    train_set, test = ClipDataset(train_arrays), ClipDataset(test_arrays)
    num_classes, partner = classes(config["suite"], cfg)
    seed_everything(config["seed"])
    perms = order_table(permutation_set(cfg.frames, N_PERMS, "max", seed=0)) if mech.order_losses else None
    model = create_mechanism(name, num_classes, cfg.frames, cfg.size, widths=tuple(config["widths"]),
                   num_orders=0 if perms is None else len(perms))
    for block in model.sifa_blocks():
        if block.offset_conv is not None:
            scale_gradients(block.offset_conv, mech.offset_lr)
    loss_fn = (partial(direcformer_loss, orders=perms, weights=LossWeights(1.0, 1.0, 1.0)) if perms is not None
               else classification_loss)
    res = fit(model, train_set, TrainConfig(**config["train"], seed=config["seed"]), loss_fn=loss_fn,
              device=config["device"], checkpoint=run.checkpoint())
    model.cpu().eval()
    paired = any(p is not None for p in partner)
    metrics = order_robustness(model, test, partner) if paired else {}
    if not paired:  # no reversal pairs: reversal keeps the class
        for order in ("ordered", "reversed", "shuffled"):
            logits, labels = predict(model, test, order=order)
            metrics[f"{order}_top1"] = 100.0 * float((logits.argmax(1) == labels).float().mean())
    per_clip = per_clip_outcomes(*predict(model, test), partner if paired else None)
    metrics["params"] = float(count_params(model))
    metrics["macs"] = float(count_macs(model, test[0]["video"][None], sampling=True))
    metrics["train_clips_per_second"] = res.clips_per_second
    curves = {k: [h[f"train_{k}"] for h in res.history] for k in ("loss", "acc")}
    return {"metrics": metrics, "curves": curves, "per_clip": per_clip}
