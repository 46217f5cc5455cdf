"""The DirecFormer chapter on a real dataset: one variant trained with the paper's recipe.

The same model, losses (Eq. 14) and analyses as :mod:`vidattn.papers.direcformer.experiment`,
read from a real dataset through :func:`vidattn.engine.real_data.open_real`: top-1 and
top-5 over the paper's test views (1 clip x 3 crops), top-1 on reversed and shuffled
clips, OrderAcc (Eq. 15) of the three decoders on uniformly permuted single-view clips,
and the order head's accuracy. Pair accuracy needs the synthetic suites' reversal pairs
and is not computed. Weights come from a local ImageNet ViT checkpoint when the config
names one (``weights``), as the paper starts from ImageNet.
"""
from __future__ import annotations

from typing import Any

import torch

from vidattn.core.registry import Run, experiment
from vidattn.engine.flops import count_macs
from vidattn.engine.real_data import fit_and_score, open_real, run_device
from vidattn.engine.train import seed_everything
from vidattn.papers.direcformer.experiment import DECODERS, _loss_fn, permuted_pass
from vidattn.papers.direcformer.model import DirecFormer, DirecFormerConfig, LossWeights, load_vit_weights
from vidattn.papers.direcformer.order_decoding import order_accuracy, path_to_order
from vidattn.papers.direcformer.permutations import order_table, permutation_set, uniform_orders


@experiment("direcformer/real", version=1, uses=("data/real",), distributed=True)
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Train one variant on real data (config: data, variant, time_embed, l_ord, l_self, perm_rule,
    n_perms, model, train, weights, seed, device)."""
    data = open_real(config["data"], config["seed"])
    if data.multi_label:
        raise ValueError(f"{data.dataset} is multi-label, and DirecFormer's class loss (Eq. 14) is single-label: "
                         "this chapter trains on single-label datasets (ucf101, hmdb51, kinetics400/600, ssv1, "
                         "ssv2, jester, single-label lists)")
    s = data.train.sampling
    # no order head without L_ord: under DDP every parameter must receive a gradient
    perms = order_table(permutation_set(s.frames, config["n_perms"], config["perm_rule"], seed=0))
    seed_everything(config["seed"])
    model = DirecFormer(DirecFormerConfig(num_classes=len(data.classes), variant=config["variant"], img_size=s.size,
                                          frames=s.frames, num_orders=len(perms) if config["l_ord"] else 0,
                                          time_embed=config["time_embed"],
                                          **config["model"]))
    if config.get("weights"):
        load_vit_weights(model, config["weights"]["path"])
    device = run_device(config["device"])
    weights = LossWeights(cls=1.0, ord=float(config["l_ord"]), self=float(config["l_self"]))
    metrics, per_clip, res = fit_and_score(model, data, config, run, _loss_fn(perms, weights), device)
    orders = uniform_orders(len(data.probe), s.frames, seed=1)
    order_logits, per_block, _ = permuted_pass(model, data.probe, orders, device, batch_size=8)
    for name, decode in DECODERS.items():
        o_hat = path_to_order(decode(per_block[-1].numpy()))
        metrics[f"order_acc_{name}"] = order_accuracy(o_hat, orders.numpy())
    if config["l_ord"]:  # the order head on its own permutation set (class 0 = identity)
        target = torch.randint(len(perms), (len(data.probe),), generator=torch.Generator().manual_seed(1))
        order_logits, _, _ = permuted_pass(model, data.probe, perms[target], device, batch_size=8)
        metrics["order_head_top1"] = 100.0 * (order_logits.argmax(1) == target).float().mean().item()
    model.cpu()
    metrics["macs"] = float(count_macs(model, torch.zeros(1, 3, s.frames, s.size, s.size)))
    metrics["train_clips_per_second"] = res.clips_per_second
    curves = {k: [h[f"train_{k}"] for h in res.history] for k in ("loss", "cls", "ord", "self", "acc")
              if f"train_{k}" in res.history[0]}
    return {"metrics": metrics, "curves": curves, "per_clip": per_clip}
