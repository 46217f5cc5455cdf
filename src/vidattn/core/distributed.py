"""Process-group set-up for ``torchrun`` (DDP): gloo on CPU, NCCL on CUDA."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def dist_info() -> DistInfo:
    """Rank and world size of the running process group (a single process if none)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init_from_env(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group described by torchrun's environment, if any.

    Returns the rank info and the device this process should use: ``cuda:LOCAL_RANK``
    when CUDA is available (and ``device`` is ``auto`` or ``cuda``), else the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available on this machine")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist_info(), dev


def is_rank0() -> bool:
    """Whether this process writes shared files: rank 0 of the group, or a lone process."""
    return dist_info().rank == 0


def barrier() -> None:
    """Wait for every rank of the group (nothing outside one)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
