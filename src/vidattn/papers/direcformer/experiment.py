"""Experiments of the DirecFormer chapter: one training run of a variant, then its evaluation.

A run trains a tiny DirecFormer on an order suite with Eq. 14's losses and measures (on the
test split; a pilot, whose config has ``validation`` = n, trains without the last n training
clips and is scored on them instead, :func:`vidattn.data.validation.held_out`):
class accuracy on ordered, reversed and shuffled clips (the paper's first question);
OrderAcc (Eq. 15) of three decoders on uniformly permuted test clips; the order head's
accuracy; and what L_self did to the temporal attention (its value, antisymmetry, sign
agreement with varsigma), per block.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from vidattn.core.registry import Run, experiment
from vidattn.data.clips import ClipDataset
from vidattn.data.suites.order import load_split, suite_config
from vidattn.data.validation import held_out
from vidattn.engine.evaluate import order_robustness, per_clip_outcomes, predict, topk_accuracy
from vidattn.engine.flops import count_macs, count_params
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.papers.direcformer.model import (
    DirecFormer,
    DirecFormerConfig,
    LossWeights,
    direcformer_loss,
    self_guided_loss,
)
from vidattn.papers.direcformer.order_decoding import (
    borda,
    hamiltonian_path,
    linear_ordering,
    order_accuracy,
    path_to_order,
)
from vidattn.papers.direcformer.permutations import (
    order_signs,
    order_table,
    permutation_set,
    permute_frames,
    uniform_orders,
)

DECODERS = {"hamiltonian": lambda A: hamiltonian_path(A)[0], "linear": lambda A: linear_ordering(A)[0], "borda": borda}


@torch.no_grad()
def permuted_pass(model: DirecFormer, test: ClipDataset, orders: torch.Tensor, device: str,
                  batch_size: int = 100) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Forward every test clip permuted by ``orders`` (n, T): order logits, per-block mean attention, L_self.

    The attention of each block is averaged over patch positions and heads: (n, T, T).
    """
    model.eval().to(device)
    logits, blocks, l_self = [], [], []
    for s in range(0, len(test), batch_size):
        idx = range(s, min(s + batch_size, len(test)))
        video = torch.stack([test[i]["video"] for i in idx]).to(device)
        o = orders[s : s + len(idx)]
        out = model(permute_frames(video, o), return_all=True)
        if out.order_logits is not None:
            logits.append(out.order_logits.float().cpu())
        blocks.append([a.float().mean((1, 2)).cpu() for a in out.temporal_attention])
        l_self.append(torch.stack([self_guided_loss([a], o.to(device)) for a in out.temporal_attention]).cpu()
                      * len(idx))
    per_block = [torch.cat([b[i] for b in blocks]) for i in range(len(blocks[0]))]
    order_logits = torch.cat(logits) if logits else torch.empty(0)
    return order_logits, per_block, torch.stack(l_self).sum(0) / len(test)


def attention_statistics(A: torch.Tensor, orders: torch.Tensor) -> dict[str, float]:
    """Off-diagonal antisymmetry ||A + A^T|| / ||A|| (0 antisymmetric, 2 symmetric) and sign agreement with varsigma."""
    T = A.shape[-1]
    off = ~torch.eye(T, dtype=torch.bool)
    sym = (A + A.transpose(1, 2))[:, off].norm() / A[:, off].norm().clamp_min(1e-12)
    centred = A - A[:, off].mean()  # a constant offset carries no order; compare signs around the mean
    agree = (torch.sign(centred) == order_signs(orders))[:, off].float().mean()
    return {"antisymmetry": float(sym), "sign_agreement": 100.0 * float(agree)}


def _loss_fn(orders: torch.Tensor, weights: LossWeights):
    return partial(direcformer_loss, orders=orders, weights=weights)


@experiment("direcformer/train", version=1, uses=("suite/synthetic",))
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Train one variant (config: suite, variant, time_embed, l_ord, l_self, perm_rule, n_perms, model, train;
    optionally ``validation``, for a pilot)."""
    cfg = suite_config(config["suite"], **config.get("suite_overrides", {}))
    train_arrays, test_arrays = held_out(config, load_split(cfg, "train"), lambda: load_split(cfg, "test"))
    train_set, test = ClipDataset(train_arrays), ClipDataset(test_arrays)
    T = cfg.frames
    perms = order_table(permutation_set(T, config["n_perms"], config["perm_rule"], seed=config.get("perm_seed", 0)))
    seed_everything(config["seed"])
    model = DirecFormer(DirecFormerConfig(num_classes=cfg.num_classes, variant=config["variant"], img_size=cfg.size,
                                          frames=T, num_orders=len(perms), time_embed=config.get("time_embed", True),
                                          **config["model"]))
    weights = LossWeights(cls=1.0, ord=float(config["l_ord"]), self=float(config["l_self"]))
    tcfg = TrainConfig(**config["train"], seed=config["seed"])
    res = fit(model, train_set, tcfg, loss_fn=_loss_fn(perms, weights), device=config["device"],
              checkpoint=run.checkpoint())
    partner = [c.partner for c in cfg.classes]
    metrics: dict[str, float] = order_robustness(model, test, partner, device=config["device"])
    per_clip = per_clip_outcomes(*predict(model, test, device=config["device"]), partner)
    # OrderAcc (Eq. 15): every test clip permuted by its own uniformly drawn order of T frames
    orders = uniform_orders(len(test), T, seed=config.get("test_seed", 1))
    _, per_block, l_self = permuted_pass(model, test, orders, config["device"])
    truth = orders.numpy()
    last = per_block[-1].numpy()
    for name, decode in DECODERS.items():
        o_hat = path_to_order(decode(last))
        metrics[f"order_acc_{name}"] = order_accuracy(o_hat, truth)
        metrics[f"order_acc_{name}_agnostic"] = order_accuracy(o_hat, truth, direction_agnostic=True)
    if config["l_ord"]:  # the order head on the permutation set it was trained on (class 0 = identity)
        g = torch.Generator().manual_seed(config.get("test_seed", 1))
        target = torch.randint(len(perms), (len(test),), generator=g)
        order_logits, _, _ = permuted_pass(model, test, perms[target], config["device"])
        metrics["order_head_top1"] = topk_accuracy(order_logits, target, (1,))["top1"]
    stats = [attention_statistics(A, orders) for A in per_block]
    for i, (s, ls) in enumerate(zip(stats, l_self.tolist()), 1):
        metrics[f"l_self_block{i}"] = ls
        metrics[f"antisymmetry_block{i}"] = s["antisymmetry"]
        metrics[f"sign_agreement_block{i}"] = s["sign_agreement"]
    model.cpu()
    metrics["params"] = float(count_params(model))
    metrics["macs"] = float(count_macs(model, test[0]["video"][None]))
    metrics["train_clips_per_second"] = res.clips_per_second
    curves = {k: [h[f"train_{k}"] for h in res.history] for k in ("loss", "cls", "ord", "self", "acc")
              if f"train_{k}" in res.history[0]}
    examples = {"orders": truth[:8].tolist(), "attention_last": np.round(last[:8], 4).tolist(),
                "attention_blocks": [np.round(A[0].numpy(), 4).tolist() for A in per_block]}
    return {"metrics": metrics, "curves": curves, "examples": examples, "per_clip": per_clip}
