"""What every chapter's real-data experiment shares: the dataset from a run's config, the
device of a ``torchrun`` rank, a loss for single- and multi-label targets, and the scores.

A real-data run's config carries a ``data`` entry (built by
:func:`vidattn.core.profiles.RunContext.data_spec`)::

    {"root": "/data/ssv2", "dataset": "ssv2", "split": "", "fingerprint": "<sha256 of
     the annotation files>", "on_bad_video": "error", "train": {sampling}, "test": {sampling}}

so a changed split file gives a new record key. Scores follow the papers: top-1 and
top-5 over the multi-view test set (logits averaged over views), or mAP and wAP for a
multi-label dataset (Charades), plus top-1 on reversed and shuffled clips (the order
question every chapter asks). Bad test videos skipped under ``on_bad_video="skip"`` are
dropped from every score and counted.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from vidattn.core.files import load_tensors
from vidattn.data.real import RealData, Sampling, open_dataset
from vidattn.engine.evaluate import predict, topk_accuracy
from vidattn.engine.flops import count_params
from vidattn.engine.train import TrainConfig, fit


def open_real(spec: dict[str, Any], seed: int = 0) -> RealData:
    """The dataset a run's ``data`` entry names, with its training and test sampling."""
    return open_dataset(Path(spec["root"]), spec.get("dataset", ""), spec.get("split") or None,
                        train_sampling=Sampling(**spec["train"]), test_sampling=Sampling(**spec["test"]),
                        on_bad_video=spec.get("on_bad_video", "error"), seed=seed)


def run_device(device: str) -> str:
    """The device of this process: ``cuda:LOCAL_RANK`` for a CUDA run under ``torchrun``."""
    if device.startswith("cuda") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def label_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class indices; binary cross-entropy for multi-hot targets (Charades)."""
    if labels.dim() == 2:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def batch_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 for class indices; for multi-hot targets, whether the top class is a true one."""
    top = logits.argmax(-1)
    if labels.dim() == 2:
        return labels.gather(1, top[:, None]).float().mean().item()
    return (top == labels).float().mean().item()


def classify_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """The trainer's loss function for a classifier on real data (single- or multi-label)."""
    logits = model(batch["video"])
    return label_loss(logits, batch["label"]), {"acc": batch_accuracy(logits, batch["label"])}


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """mAP (the mean over classes of average precision) and wAP (weighted by each class's
    positives, Charades' second metric), in percent, over classes with a positive."""
    y, s = targets.numpy(), scores.float().numpy()
    keep = y.sum(0) > 0
    if not keep.any():
        raise ValueError("no test video has a positive label: average precision is undefined")
    return {"mAP": 100.0 * float(average_precision_score(y[:, keep], s[:, keep], average="macro")),
            "wAP": 100.0 * float(average_precision_score(y[:, keep], s[:, keep], average="weighted"))}


def score(model: nn.Module, data: RealData, device: str, orders: tuple[str, ...] = ("ordered", "reversed",
                                                                                    "shuffled")
          ) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Scores of ``model`` on the test views, for each order transform, and per-clip outcomes.

    Single-label: ``<order>_top1`` (and ``ordered_top5``). Multi-label: ``<order>_mAP`` and
    ``<order>_wAP``. Videos skipped as bad are left out and counted in ``bad_test_videos``.
    """
    metrics: dict[str, float] = {}
    per_clip: dict[str, list[int]] = {}
    s = data.test.sampling
    views = s.clips * (3 if s.three_crop else 1)
    for order in orders:  # about 16 clips per forward pass, whatever the number of views
        logits, labels = predict(model, data.test, device=device, order=order, batch_size=max(1, 16 // views))
        keep = torch.tensor([i not in data.test.bad for i in range(len(labels))])
        logits, labels = logits[keep], labels[keep]
        if data.multi_label:
            for k, v in average_precision(logits, labels).items():
                metrics[f"{order}_{k}"] = v
        else:
            acc = topk_accuracy(logits, labels, (1, 5) if order == "ordered" else (1,))
            metrics.update({f"{order}_{k}": v for k, v in acc.items()})
            if order == "ordered":
                per_clip["ordered_top1"] = (logits.argmax(1) == labels).int().tolist()
    metrics["test_videos_scored"] = float(int(keep.sum()))
    metrics["bad_test_videos"] = float(len(data.test.bad))
    metrics["bad_train_videos"] = float(bad_count(data.train.bad))
    return metrics, per_clip


def bad_count(bad: dict[int, str]) -> int:
    """Distinct bad training videos met by every rank (summed over a ``torchrun`` group)."""
    if dist.is_available() and dist.is_initialized():
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, sorted(bad))
        return len(set().union(*map(set, gathered)))
    return len(bad)



def fit_and_score(model: nn.Module, data: RealData, config: dict[str, Any], run: Any, loss_fn: Any, device: str
                  ) -> tuple[dict[str, float], dict[str, list], Any]:
    """What every real-data experiment does once its model is built: train it on the training
    set with the config's recipe (resuming from ``run``'s checkpoint), score it on the test set
    (:func:`score`), and count its parameters. Returns (metrics, per-clip outcomes, the
    :class:`~vidattn.engine.train.TrainResult`); the model stays on ``device``."""
    res = fit(model, data.train, TrainConfig(**config["train"], seed=config["seed"]), loss_fn=loss_fn,
              device=device, checkpoint=run.checkpoint())
    metrics, per_clip = score(model, data, device)
    metrics["params"] = float(count_params(model))
    metrics["train_clips_per_second"] = res.clips_per_second
    return metrics, per_clip, res


def load_except_classifier(module: nn.Module, path: str, classifiers: tuple[str, ...], what: str) -> None:
    """A pretrained state dict into ``module`` where only the classifier (keys starting with one of
    ``classifiers``) may differ, e.g. another dataset's classes; anything else that does not fit
    is a one-line error naming the file."""
    state = {k: v for k, v in load_tensors(path, f"{what} weights").items() if not k.startswith(classifiers)}
    missing, unexpected = module.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith(classifiers)] + list(unexpected)
    if bad:
        raise ValueError(f"weights {path} do not fit {what}: {len(bad)} tensors, e.g. {bad[:4]}")
