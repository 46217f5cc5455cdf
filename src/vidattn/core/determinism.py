"""What the engine fixes so that a run's numbers do not depend on the caller's settings.

On the CPU a result depends on the number of intra-op threads (reductions are split
differently), on whether deterministic kernels are enforced, and on the default dtype.
:func:`fixed_numerics` sets all three for the duration of one run (one thread,
deterministic algorithms, float32) and restores the caller's settings afterwards, so
``OMP_NUM_THREADS`` or a ``torch.set_num_threads`` in the caller changes nothing.
What it cannot fix (the library versions and the CPU's vector instruction set, which
selects different kernels) is part of every record key, see :func:`environment`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torchvision

RUN_THREADS = 1  # intra-op threads of one CPU run; parallelism comes from worker processes


def environment(device_type: str) -> dict[str, object]:
    """Everything outside a config that can change a result: part of every record key."""
    env: dict[str, object] = {
        "torch": torch.__version__.split("+")[0],
        "torchvision": torchvision.__version__.split("+")[0],
        "numpy": np.__version__,
        "device": device_type,
        "dtype": "float32",
        "deterministic": True,
    }
    if device_type == "cpu":
        env["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        env["threads"] = RUN_THREADS
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # DDP splits every batch over ranks: batch statistics and reduction order change
        env["world_size"] = world
    return env


@contextmanager
def fixed_numerics(device_type: str = "cpu") -> Iterator[None]:
    """Run the body with one intra-op thread (CPU), deterministic kernels and float32."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_dtype = torch.get_default_dtype()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if device_type == "cpu":
        torch.set_num_threads(RUN_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.set_default_dtype(prev_dtype)
