"""Training throughput, peak memory and model-FLOPs utilisation of one model (the ``full`` profile's GPU check)."""
from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn as nn

# dense bf16 tensor-core peaks in FLOP/s, from the vendors' data sheets
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_flops(device: torch.device) -> float | None:
    """The bf16 peak of a known CUDA device, else None (no utilisation is reported)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def benchmark_training(model: nn.Module, step_loss: Callable[[nn.Module], torch.Tensor], clips_per_step: int,
                       macs_per_clip: float, device: str | torch.device, steps: int = 10, warmup: int = 3
                       ) -> dict[str, float]:
    """Time ``steps`` optimiser steps (after ``warmup``) under bf16 autocast on CUDA.

    Model FLOPs utilisation counts 3 x forward FLOPs per clip (forward + backward, 2 FLOPs per
    multiply-add) against the device's bf16 peak.
    """
    device = torch.device(device)
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = step_loss(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    clips_per_second = steps * clips_per_step / seconds
    out = {"clips_per_second": clips_per_second,
           "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")}
    peak = peak_flops(device)
    out["mfu_percent"] = 100 * 3 * 2 * macs_per_clip * clips_per_second / peak if peak else float("nan")
    return out
