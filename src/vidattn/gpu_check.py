"""The full recipes' training speed on a GPU, through the real loaders: one prepared script.

    python -m vidattn.gpu_check --out gpu_check.json [--steps 200] [--clips 256]

It exports a synthetic suite to the UCF101 layout at 224² (MPEG-4 ``.avi`` files, as a
real dataset arrives), opens it with the loaders and the sampling each chapter's
``full`` profile uses, and trains DirecFormer (C-S, ViT-B/16, both passes of Eq. 14)
CIDC's stage 1 (I3D-ResNet-50 + GAP), SIFA-Net (the released R50, 16 consecutive
frames, both heads' losses), T-CNN-F alone and with the spatial-attention chapter's
three zoom branches (Eq. 8's four losses), and Inception-ResNet-V2 at 299 px without and
with the pyramid chapter's 3-scale temporal layer on 25 segments, with the paper's recipes for ``--steps`` optimiser steps
under bf16 autocast, through the engine's own trainer. It records clips per second
(decoding included: the trainer reads clips in its own process), peak memory, and
model-FLOPs utilisation against the device's bf16 peak, with the device's name. It also
times SIFA's op alone at res3 of that model (forward and backward, peak memory): the
dense path that keeps all k^2 samples against the low-memory path (one tap at a time
under checkpoints). ``--size``, ``--frames`` and ``--batch`` shrink it for a test on a
CPU.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from vidattn.data.real import Sampling, export_ucf101, open_dataset
from vidattn.data.suites.order import generate_split, suite_config
from vidattn.engine.benchmark import peak_flops
from vidattn.engine.flops import count_macs
from vidattn.engine.real_data import classify_loss
from vidattn.engine.train import TrainConfig, fit
from vidattn.papers.cidc import rows as cidc_rows
from vidattn.papers.cidc.experiment import build_backbone
from vidattn.papers.cidc.model import GAPHead, VideoClassifier
from vidattn.papers.direcformer import rows as direcformer_rows
from vidattn.papers.direcformer.model import DirecFormer, DirecFormerConfig, LossWeights, direcformer_loss
from vidattn.papers.direcformer.permutations import order_table, permutation_set
from vidattn.papers.pyramid import rows as pyramid_rows
from vidattn.papers.pyramid.placements import PyramidBackbone
from vidattn.papers.pyramid.real import pyramid_real_loss
from vidattn.papers.sifa import rows as sifa_rows
from vidattn.papers.sifa.net import SIFANet
from vidattn.papers.sifa.op import inter_frame_attention
from vidattn.papers.sifa.real import dual_head_loss
from vidattn.papers.spatial import rows as spatial_rows
from vidattn.papers.spatial.model import ZoomNetwork
from vidattn.papers.spatial.real import TotalPrediction, zoom_real_loss
from vidattn.papers.spatial.sampler import SaliencySampler
from vidattn.papers.spatial.tcnn import TCNN, TCNN_F


def export_suite(root: Path, clips: int, size: int, frames: int) -> Path:
    """``clips`` clips of the ``order`` suite at ``size``² in the UCF101 layout (all for training)."""
    cfg = suite_config("order", size=size, frames=frames, n_train=clips, n_test=1)
    data = generate_split(cfg, "train", clips)
    export_ucf101(data.videos, data.labels, [c.name for c in cfg.classes], root, train=np.ones(clips, bool))
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text(
        (root / "ucfTrainTestlist" / "trainlist01.txt").read_text().split()[0] + "\n")
    return root


def measure(name: str, model: torch.nn.Module, train_set, tcfg: TrainConfig, loss_fn, macs: float, passes: int,
            device: torch.device) -> dict[str, float | str]:
    """One epoch of ``fit`` over ``train_set``: clips/s, peak memory and MFU."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    res = fit(model, train_set, tcfg, loss_fn=loss_fn, device=device)
    seconds = time.perf_counter() - t0
    peak = peak_flops(device)
    return {
        "model": name, "steps": tcfg.epochs * (len(train_set) // tcfg.batch_size), "batch": tcfg.batch_size,
        "clips_per_second": res.clips_per_second, "seconds": seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "mfu_percent": 100 * 3 * 2 * macs * passes * res.clips_per_second / peak if peak else None,
        "gmacs_per_clip_pass": macs / 1e9,
    }


def time_sifa_op(batch: int, size: int, device: torch.device, repeats: int = 5) -> list[dict[str, float | str]]:
    """SIFA's op at res3 of the released 16-frame R50 (C 128, 4 steps, size/8 square), k = 3, random
    offsets: seconds per forward + backward and peak memory, dense against low-memory."""
    side = max(1, size // 8)
    x = torch.randn(batch, 128, 4, side, side, device=device).relu_().requires_grad_(True)
    off = (2 * torch.randn(batch, 18, 4, side, side, device=device)).requires_grad_(True)
    out = []
    for name, low in (("dense (all k^2 samples kept)", False), ("low-memory (one tap at a time)", True)):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            inter_frame_attention(x, off, 3, "code", low_memory=low).square().mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append({"op": name, "shape": list(x.shape), "seconds_per_pass": (time.perf_counter() - t0) / repeats,
                    "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30
                    if device.type == "cuda" else None})
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8, help="clips per step (the recipes' per-GPU batch)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--frames", type=int, default=32, help="frames per exported video")
    ap.add_argument("--clips", type=int, default=256, help="videos exported (re-read every epoch)")
    ap.add_argument("--pyramid-backbone", default="irv2", help="the pyramid chapter's backbone (irv2: 299 px)")
    ap.add_argument("--pyramid-frames", type=int, default=25, help="segments per clip for the pyramid rows")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                     "torch": torch.__version__, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = export_suite(Path(tmp) / "ucf", args.clips, args.size, args.frames)
        n = args.steps * args.batch
        epochs = max(1, -(-n // args.clips))  # enough epochs over the exported clips for the steps
        # DirecFormer: 8 TSN segments, ViT-B/16, C-S with both losses, SGD as in the paper
        train, test = direcformer_rows.real_sampling("ucf101", args.size)
        data = open_dataset(root, train_sampling=Sampling(**train), test_sampling=Sampling(**test))
        perms = order_table(permutation_set(8, 30, "max"))
        model = DirecFormer(DirecFormerConfig(num_classes=len(data.classes), variant="C-S", img_size=args.size,
                                              num_orders=len(perms), patch_size=16 if args.size % 16 == 0 else 8))
        macs = float(count_macs(model, torch.zeros(1, 3, 8, args.size, args.size)))
        recipe = {**direcformer_rows.FULL_TRAIN, "batch_size": args.batch, "epochs": epochs}
        loss = partial(direcformer_loss, orders=perms, weights=LossWeights(1.0, 1.0, 1.0))
        results["runs"].append(measure("DirecFormer C-S (ViT-B/16, 8x224, both passes)", model, data.train,
                                       TrainConfig(**recipe), loss, macs, 2, device))
        del model
        # CIDC stage 1: I3D-ResNet-50 + GAP, 32 frames every other frame, SGD as in the paper
        train, test = cidc_rows.REAL_SAMPLING["full"]
        train = {**train, "size": args.size}
        data = open_dataset(root, train_sampling=Sampling(**train), test_sampling=Sampling(**{**train, **test}))
        backbone = build_backbone(cidc_rows.PROFILE_SETTINGS["full"]["backbone"])
        model = VideoClassifier(backbone, GAPHead(backbone.channels, len(data.classes)))
        macs = float(count_macs(model, torch.zeros(1, 3, 32, args.size, args.size)))
        recipe = {**cidc_rows.PAPER_TRAIN, "batch_size": args.batch, "epochs": epochs}
        results["runs"].append(measure("CIDC stage 1 (I3D-ResNet-50 + GAP, 32x224)", model, data.train,
                                       TrainConfig(**recipe), classify_loss, macs, 1, device))
        del model
        # SIFA-Net: the released R50 on 16 consecutive frames, both heads' losses, SGD as in the paper
        train = {"mode": "dense", "frames": 16, "stride": 1, "size": args.size}
        data = open_dataset(root, train_sampling=Sampling(**train), test_sampling=Sampling(**train))
        model = SIFANet(50, "released", len(data.classes), 16)
        macs = float(count_macs(model, torch.zeros(1, 3, 16, args.size, args.size), sampling=True))
        recipe = {**sifa_rows.PAPER_TRAIN, "batch_size": args.batch, "epochs": epochs}
        results["runs"].append(measure("SIFA-Net R50 (released, 16x224, dual head)", model, data.train,
                                       TrainConfig(**recipe), dual_head_loss, macs, 1, device))
        del model
        # T-CNN-F alone and with the three zoom branches (the spatial-attention chapter's Tables 2-3),
        # 16 consecutive frames, the 31 x 31 sampler, Eq. 8's loss, SGD as in the paper
        for name, mode in spatial_rows.REAL_ROWS.items():
            net = ZoomNetwork(TCNN(TCNN_F, len(data.classes)), len(data.classes), mode, SaliencySampler())
            model = TotalPrediction(net)
            macs = float(count_macs(model, torch.zeros(1, 3, 16, args.size, args.size), sampling=True))
            recipe = {**spatial_rows.PAPER_TRAIN, "batch_size": args.batch, "epochs": epochs}
            results["runs"].append(measure(f"{name} (T-CNN-F, 16x{args.size}, mode {mode})", model, data.train,
                                           TrainConfig(**recipe), zoom_real_loss, macs, 1, device))
            del model, net
        # the pyramid chapter: the backbone without (TSN) and with the 3-scale temporal layer, K segments
        # per clip (Sec. 5 tests on 25), Eq. 12's loss, SGD as in the paper; IRv2 at its own 299 px
        size = 299 if args.pyramid_backbone == "irv2" and args.size == 224 else args.size
        K = args.pyramid_frames
        train = {"mode": "tsn", "frames": K, "size": size}
        data = open_dataset(root, train_sampling=Sampling(**train), test_sampling=Sampling(**train))
        for name, scales in pyramid_rows.REAL_ROWS.items():
            model = PyramidBackbone(args.pyramid_backbone, len(data.classes), scales, image_size=size)
            macs = float(count_macs(model, torch.zeros(1, 3, K, size, size)))
            recipe = {**pyramid_rows.PAPER_TRAIN, "batch_size": args.batch, "epochs": epochs}
            losses = pyramid_rows.PAPER_LOSSES if scales else pyramid_rows.NO_LOSSES
            results["runs"].append(measure(f"{args.pyramid_backbone} {name} ({K}x{size})", model, data.train,
                                           TrainConfig(**recipe), pyramid_real_loss(losses["beta"],
                                                                                    losses["gamma"], K),
                                           macs, 1, device))
            del model
        results["sifa_op"] = time_sifa_op(args.batch, args.size, device)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
