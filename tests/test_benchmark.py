"""The throughput benchmark runs on the CPU and reports no utilisation without a known peak."""
import math

import torch

from vidattn.engine.benchmark import benchmark_training


def test_benchmark_training_on_cpu():
    model = torch.nn.Linear(4, 2)
    x = torch.randn(8, 4)
    out = benchmark_training(model, lambda m: m(x).pow(2).mean(), clips_per_step=8, macs_per_clip=8.0, device="cpu",
                             steps=3, warmup=1)
    assert out["clips_per_second"] > 0 and math.isnan(out["mfu_percent"]) and math.isnan(out["peak_memory_gib"])
