"""Experiments of the pyramid-attention chapter on SynthAct-10 (spec Sec. 5).

Two stages, so every row of a seed starts from the same trunk:

1. ``pyramid/pretrain``: the RGB trunk with a linear classifier trained on single frames
   (TSN with one segment, no attention): our stand-in for ImageNet initialisation. The
   weights and per-epoch training loss are cached under a key made like a record's.
2. ``pyramid/train``: one row. An RGB row starts its trunk from stage 1; a flow row
   starts from it by cross-modality initialisation (Sec. 4); attention fusion starts both.
   The classifier and the pyramid layer start fresh. Rows train with TSN's segment
   sampling (K segments, one random frame or flow stack from each, random flips; a
   flipped flow stack negates its x parts) and Eq. 12's loss.

A row measures on the test split (K uniform frames; a pilot, whose config has ``validation``
= n, on the last n training clips instead, its trunk and row trained on the rest):

* top-1 at the test K (24, every frame) with per-clip outcomes, predictions and class
  probabilities (late fusion and Fig. 5 are computed from these);
* top-1 for test K in :data:`TEST_KS` (Fig. 4B, C12);
* for attention rows: where attention goes (C11, Figs. 6-7), at test K = 5 on 100 clips:
  the attention mass (a unit column's squares sum to 1) on sources whose 4 x 4-px cell
  touches the actor's box, against those cells' share; the share of selected sources in
  the box under the absolute rule a > 0.5 (when it selects any) and a relative rule
  a > half the column's maximum; the column sums 1^T a; the auxiliary losses;
* top-1 on reversed and shuffled clips (order robustness): the frames are reordered
  *before* sampling, and a flow stream reads flow re-estimated on the reordered frames.

Flow is estimated with OpenCV (``flow["method"]``: dis, farneback or tvl1) or, as an
oracle, is the renderer's exact flow (``"exact"``). The exact flow exists only for the
frames in their rendered order, so oracle rows measure no order robustness.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from vidattn.core.identity import declare
from vidattn.core.registry import Run, experiment
from vidattn.data.clips import SuiteArrays
from vidattn.data.suites.flow import compensate, estimate_flow, flow_stack, quantise
from vidattn.data.suites.synthact import SynthActConfig, exact_flow, load_synthact_split, synthact_suite
from vidattn.data.validation import cache_fields, held_out
from vidattn.engine.evaluate import shuffle_permutation, topk_accuracy
from vidattn.engine.flops import count_params
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.papers.pyramid.attention import pyramid_loss
from vidattn.papers.pyramid.net import AttentionFusion, SegmentNet, cross_modality_init

STAGE1_FIELDS = ("suite", "suite_overrides", "pretrain", "seed")
declare("pyramid/flow", 1, uses=("suite/synthact",))
STAGE1 = "pyramid/trunk"  # the stage-1 cache: a versioned computation of its own
declare(STAGE1, 1, uses=("suite/synthact",))
TEST_KS = (1, 3, 5, 10, 15, 20, 24)
CELL = 4  # px per cell of the 8 x 8 top map on 32 x 32 frames
LOCALISATION_CLIPS = 100


def suite_of(config: dict[str, Any]) -> SynthActConfig:
    return synthact_suite(config["suite"], **config.get("suite_overrides", {}))


# ---------------------------------------------------------------- data


def flows_of(run: Run, cfg: SynthActConfig, split: str, arrays: SuiteArrays, flow: dict[str, Any],
             order: str = "ordered") -> np.ndarray:
    """Quantised flow (N, T - 1, H, W, 2) uint8 of a split, estimated with ``flow["method"]``
    or the renderer's (``"exact"``, frames in rendered order only), compensated if
    ``flow["compensate"]``, from the cache ``pyramid/flow`` (the same on any device)."""
    exact = flow["method"] == "exact"
    if exact and order != "ordered":
        raise ValueError(f"exact flow exists only for the rendered frame order, not {order!r}")

    def make() -> dict[str, Any]:
        out = []
        for i, video in enumerate(arrays.videos):
            f = exact_flow(cfg, split, i) if exact else estimate_flow(reorder(video, order, i), flow["method"])
            out.append(quantise(compensate(f) if flow.get("compensate") else f))
        return {"flow": torch.from_numpy(np.stack(out))}

    spec = {"suite": cfg.__dict__, "split": split, "flow": flow, "order": order}
    return run.cached("pyramid/flow", spec, make, per_device=False)["flow"].numpy()


def reorder(video: np.ndarray, order: str, index: int) -> np.ndarray:
    """A clip's frames ``ordered``, ``reversed`` or in the shared seeded shuffle of the book."""
    if order == "ordered":
        return video
    if order == "reversed":
        return video[::-1].copy()
    if order == "shuffled":
        return video[shuffle_permutation(index, len(video)).numpy()]
    raise ValueError(f"unknown order {order!r}; known: ordered, reversed, shuffled")


def segment_positions(T: int, K: int, train: bool) -> np.ndarray:
    """TSN sampling: K equal segments of T positions; a random one from each (train, torch's
    seeded generator) or each segment's centre (test; K > T repeats positions)."""
    edges = np.arange(K + 1) * T / K
    if train:
        u = torch.rand(K).numpy()
        return np.minimum((edges[:-1] + u * (edges[1:] - edges[:-1])).astype(int), T - 1)
    return np.minimum(((edges[:-1] + edges[1:]) / 2).astype(int), T - 1)


class SegmentClips(Dataset):
    """K segments of each clip as (C, K, H, W) tensors: RGB frames in [-0.5, 0.5] under
    ``video`` and/or 2L-channel flow stacks (the stored 0-255 images, scaled the same) under
    ``flow``. Training draws positions and flips from torch's generator (checkpointed)."""

    def __init__(self, arrays: SuiteArrays, K: int, train: bool, rgb: bool = True,
                 flows: np.ndarray | None = None, length: int = 5, order: str = "ordered"):
        self.arrays, self.K, self.train, self.rgb = arrays, K, train, rgb
        self.flows, self.length, self.order = flows, length, order

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        T = self.arrays.videos.shape[1]
        flip = self.train and bool(torch.rand(()) < 0.5)
        out = {"label": torch.tensor(int(self.arrays.labels[i])), "index": torch.tensor(i)}
        if self.rgb:
            video = reorder(self.arrays.videos[i], self.order, i)
            x = torch.from_numpy(video[segment_positions(T, self.K, self.train)]).float().div_(255).sub_(0.5)
            x = x.permute(3, 0, 1, 2)  # (3, K, H, W)
            out["video"] = x.flip(-1) if flip else x
        if self.flows is not None:
            starts = segment_positions(T - self.length, self.K, self.train)
            stacks = np.stack([flow_stack(self.flows[i], int(s), self.length) for s in starts], 1)
            x = torch.from_numpy(stacks).float().div_(255).sub_(0.5)  # (2L, K, H, W)
            if flip:  # mirrored frames: columns reversed and x motion negated (-(q - 127.5) = 255 - q)
                x = x.flip(-1)
                x[0::2] = -x[0::2]
            out["flow"] = x
        return out


def splits(config: dict[str, Any]) -> tuple[SynthActConfig, SuiteArrays, SuiteArrays]:
    """The suite's training and test splits. A pilot's config has ``validation`` = n: the last n
    training clips stand in for the test split, the rest train, and the test split is never read."""
    cfg = suite_of(config)
    if config.get("validation") and config.get("stream", "rgb") != "rgb":
        raise ValueError(f"a validation split is for RGB pilots only (flow is cached per split), got "
                         f"stream {config['stream']!r}")
    return (cfg, *held_out(config, load_synthact_split(cfg, "train"), lambda: load_synthact_split(cfg, "test")))


# ---------------------------------------------------------------- stage 1


def pretrained_trunk(config: dict[str, Any], run: Run, cfg: SynthActConfig, train: SuiteArrays
                     ) -> tuple[SegmentNet, list[float]]:
    """Stage 1 (module docstring): a K = 1, 0-scale RGB net trained on single frames, from
    the cache ``pyramid/trunk`` keyed by the config fields of :data:`STAGE1_FIELDS`."""
    seed_everything(config["seed"])
    net = SegmentNet(cfg.num_classes, 3, 0)

    def make() -> dict[str, Any]:
        res = fit(net, SegmentClips(train, 1, True), TrainConfig(**config["pretrain"], seed=config["seed"]),
                  device=config["device"], checkpoint=run.checkpoint("trunk"))
        net.cpu()
        return {"model": net.state_dict(),
                "train_loss": torch.tensor([h["train_loss"] for h in res.history], dtype=torch.float64)}

    state = run.cached(STAGE1, cache_fields(config, STAGE1_FIELDS), make)
    net.load_state_dict(state["model"])
    return net, state["train_loss"].tolist()


@experiment("pyramid/pretrain", version=1, uses=("pyramid/trunk",))
def pretrain(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Stage 1 on its own (config: the fields of :data:`STAGE1_FIELDS` and device), scored on
    single centre frames of the test split."""
    cfg, train, test = splits(config)
    net, loss = pretrained_trunk(config, run, cfg, train)
    logits, labels = predict_segments(net, SegmentClips(test, 1, False), "rgb")
    return {"metrics": {"top1": top1(logits, labels), "params": float(count_params(net))},
            "curves": {"train_loss": loss}}


# ---------------------------------------------------------------- one row


def build(config: dict[str, Any], cfg: SynthActConfig, trunk: SegmentNet) -> nn.Module:
    """The row's network (config["stream"]: rgb, flow or fusion), its trunks from stage 1."""
    stream, m = config["stream"], config["model"]
    channels = 2 * config["flow"]["length"] if stream != "rgb" else 3
    seed_everything(config["seed"] + 1)
    if stream == "fusion":
        net = AttentionFusion(cfg.num_classes, channels, m["scales"], m["fusion"], m["dropout"]["rgb"])
        net.rgb.load_state_dict(trunk.trunk.state_dict())
        cross_modality_init(trunk.trunk, net.flow)
        return net
    net = SegmentNet(cfg.num_classes, channels, m["scales"], m["fusion"], m["dropout"][stream])
    if stream == "rgb":
        net.trunk.load_state_dict(trunk.trunk.state_dict())
    else:
        cross_modality_init(trunk.trunk, net.trunk)
    return net


def forward(net: nn.Module, batch: dict[str, torch.Tensor], stream: str) -> tuple[torch.Tensor, dict[str, Any]]:
    if stream == "fusion":
        return net.attend(batch["video"], batch["flow"])
    return net.attend(batch["video" if stream == "rgb" else "flow"])


def loss_step(stream: str, K: int, beta: float, gamma: float):
    """Eq. 12 (cross-entropy alone for a 0-scale net) as the engine's loss function."""
    def step(net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits, aux = forward(net, batch, stream)
        acc = float((logits.argmax(-1) == batch["label"]).float().mean())
        if not aux:
            return F.cross_entropy(logits, batch["label"]), {"acc": acc}
        frames = 2 * K if stream == "fusion" else K
        loss, terms = pyramid_loss(logits, batch["label"], aux["X"], aux["A"], aux["Y"], frames, beta, gamma)
        return loss, {"acc": acc, **terms}
    return step


@torch.no_grad()
def predict_segments(net: nn.Module, data: SegmentClips, stream: str, batch_size: int = 100
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    net.eval()
    logits, labels = [], []
    for s in range(0, len(data), batch_size):
        items = [data[i] for i in range(s, min(s + batch_size, len(data)))]
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        logits.append(forward(net, batch, stream)[0])
        labels.append(batch["label"])
    return torch.cat(logits), torch.cat(labels)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return topk_accuracy(logits, labels, (1,))["top1"]


def test_clips(config: dict[str, Any], run: Run, cfg: SynthActConfig, test: SuiteArrays, K: int,
               order: str = "ordered") -> SegmentClips:
    stream = config["stream"]
    flows = flows_of(run, cfg, "test", test, config["flow"], order) if stream != "rgb" else None
    return SegmentClips(test, K, False, rgb=stream != "flow", flows=flows, length=config["flow"]["length"],
                        order=order)


def box_cells(box: list[int], cells: int) -> np.ndarray:
    """(cells, cells) bool: the top map's cells that a (top, left, h, w) pixel box touches."""
    top, left, h, w = box
    out = np.zeros((cells, cells), bool)
    r0, r1 = max(top // CELL, 0), min((top + h - 1) // CELL, cells - 1)
    c0, c1 = max(left // CELL, 0), min((left + w - 1) // CELL, cells - 1)
    out[r0 : r1 + 1, c0 : c1 + 1] = True
    return out


@torch.no_grad()
def localisation(net: SegmentNet, test: SuiteArrays, K: int = 5) -> dict[str, float]:
    """C11: share of selected sources in the actor's cells (module docstring), RGB rows only."""
    data = SegmentClips(test, K, False)
    n = min(LOCALISATION_CLIPS, len(test))
    batch = torch.stack([data[i]["video"] for i in range(n)])
    _, aux = net.attend(batch)
    A = aux["A"]  # (n, K S, S)
    cells = net.pyramid.size[0]
    pos = segment_positions(test.videos.shape[1], K, False)
    inside = np.stack([np.stack([box_cells(test.meta[i]["boxes"][p], cells).ravel() for p in pos]).ravel()
                       for i in range(n)])  # (n, K S)
    inside_t = torch.from_numpy(inside)[:, :, None].expand_as(A)
    # a unit column's squares a_km^2 sum to 1: the share of attention inside the actor's cells
    out = {"cells_share": 100.0 * float(inside.mean()),
           "mass_in_box": 100.0 * float((A**2 * inside_t).sum(1).mean())}
    for name, sel in (("abs", A > 0.5), ("rel", A > 0.5 * A.amax(1, keepdim=True))):
        picked = int(sel.sum())
        out[f"selected_{name}"] = picked / (n * A.shape[2])
        if picked:  # an absolute threshold may select nothing (diffuse columns)
            out[f"in_box_{name}"] = 100.0 * float((sel & inside_t).sum()) / picked
    out["column_sum"] = float(A.sum(1).mean())
    return out


@torch.no_grad()
def attention_example(net: SegmentNet, test: SuiteArrays, index: int, K: int = 5) -> dict[str, Any]:
    """For Figs. 6-7: one clip's K frames, their actor boxes and A (K S x S)."""
    data = SegmentClips(test, K, False)
    _, aux = net.attend(data[index]["video"][None])
    pos = segment_positions(test.videos.shape[1], K, False)
    return {"frames": test.videos[index][pos].tolist(), "boxes": [test.meta[index]["boxes"][p] for p in pos],
            "A": aux["A"][0].tolist(), "label": int(test.labels[index])}


@experiment("pyramid/train", version=1, uses=("pyramid/trunk", "pyramid/flow"))
def train(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """One row (config: suite, suite_overrides, pretrain, stream, model, losses, flow, train_k,
    test_k, train, seed, device)."""
    cfg, train_arrays, test = splits(config)
    trunk, _ = pretrained_trunk(config, run, cfg, train_arrays)
    net = build(config, cfg, trunk)
    stream, K = config["stream"], config["train_k"]
    flows = flows_of(run, cfg, "train", train_arrays, config["flow"]) if stream != "rgb" else None
    data = SegmentClips(train_arrays, K, True, rgb=stream != "flow", flows=flows, length=config["flow"]["length"])
    beta, gamma = config["losses"]["beta"], config["losses"]["gamma"]
    res = fit(net, data, TrainConfig(**config["train"], seed=config["seed"]), loss_fn=loss_step(stream, K, beta, gamma),
              device=config["device"], checkpoint=run.checkpoint())
    net.cpu().eval()
    logits, labels = predict_segments(net, test_clips(config, run, cfg, test, config["test_k"]), stream)
    metrics: dict[str, float] = {"top1": top1(logits, labels)}
    for k in TEST_KS:
        metrics[f"top1_k{k}"] = top1(*predict_segments(net, test_clips(config, run, cfg, test, k), stream))
    for order in ("reversed", "shuffled") if stream == "rgb" or config["flow"]["method"] != "exact" else ():
        metrics[f"{order}_top1"] = top1(*predict_segments(net, test_clips(config, run, cfg, test, config["test_k"],
                                                                          order), stream))
    if stream == "rgb" and config["model"]["scales"]:
        metrics.update(localisation(net, test))
    hist = res.history
    for term in ("l_int", "l_attn"):
        if f"train_{term}" in hist[-1]:
            metrics[f"{term}_first_epoch"], metrics[f"{term}_last_epoch"] = (hist[0][f"train_{term}"],
                                                                             hist[-1][f"train_{term}"])
    metrics["params"] = float(count_params(net))
    metrics["train_clips_per_second"] = res.clips_per_second
    per_clip = {"top1": (logits.argmax(1) == labels).int().tolist(), "pred": logits.argmax(1).tolist(),
                "probs": [[round(p, 5) for p in row] for row in logits.softmax(1).tolist()]}
    result: dict[str, Any] = {"metrics": metrics, "per_clip": per_clip,
                              "curves": {"loss": [h["train_loss"] for h in hist], "acc": [h["train_acc"] for h in hist]}}
    if config.get("examples"):
        result["examples"] = [attention_example(net, test, i) for i in config["examples"]]
    return result


def late_fusion(p_rgb: np.ndarray, p_flow: np.ndarray, weights: tuple[float, float] = (1.0, 1.5)) -> np.ndarray:
    """Late score fusion (Sec. 4): a weighted sum of the streams' class probabilities (TSN's 1 : 1.5)."""
    return weights[0] * np.asarray(p_rgb) + weights[1] * np.asarray(p_flow)
