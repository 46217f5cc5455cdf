"""Profiles and the parameters every chapter takes (papermill's ``parameters`` cell).

* ``smoke``: seconds; one seed, tiny suites; what CI and nbval run.
* ``small``: the CPU scaled-down default that regenerates the book on a 2-core machine.
* ``full``: paper-size models and recipes on a GPU, real datasets when ``data_root`` is set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vidattn.engine.determinism import RUN_THREADS

PROFILES = ("smoke", "small", "full")
CHAPTER_PARAMETERS = ("profile", "seeds", "device", "data_root", "output_dir")


@dataclass(frozen=True)
class RunContext:
    """Validated chapter parameters."""

    profile: str
    seeds: tuple[int, ...]
    device: str
    data_root: Path | None
    output_dir: Path

    def pick(self, smoke, small, full):
        """The value for the current profile."""
        return {"smoke": smoke, "small": small, "full": full}[self.profile]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    return device


def setup(profile: str, seeds: int, device: str = "auto", data_root: str = "", output_dir: str = "outputs"
          ) -> RunContext:
    """Validate the chapter parameters (clear errors for unknown values).

    Also fixes the chapter kernel's own numerics as the engine fixes a run's (one intra-op
    thread on the CPU, deterministic kernels), so that what a chapter computes outside the
    records (equation checks, untrained baselines) prints the same on any machine.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer (the number of seeds), got {seeds!r}")
    root = Path(data_root) if data_root else None
    if root is not None and not root.exists():
        raise FileNotFoundError(f"data_root {root} does not exist; leave it empty to use the synthetic suites")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    if dev == "cpu":  # what a chapter computes itself follows the engine's rule for records
        torch.set_num_threads(RUN_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return RunContext(profile, tuple(range(seeds)), dev, root, out)
