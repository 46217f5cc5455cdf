"""What a chapter's training will cost before it trains: one estimator, and the CPU guard.

A chapter lists the work each of its configs does as :class:`Work` items (a model, the
input it sees, how many clips pass through it) and :func:`cpu_seconds` adds them up:
each model's multiply-adds are counted once on PyTorch's meta device (no memory, no
compute), work shared between runs (a stage-1 backbone every head of a seed reuses) is
counted once, and the total is timed at the measured one-thread matrix-multiply speed.
It is a lower bound: elementwise work, data loading and sampling are left out.
:func:`check_cpu_budget` stops ``full`` on a CPU before it trains when the estimate
exceeds :data:`CPU_LIMIT_HOURS`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn

from vidattn.core.determinism import RUN_THREADS
from vidattn.core.fingerprint import canonical_json
from vidattn.core.profiles import RunContext
from vidattn.core.registry import Planned
from vidattn.engine.flops import count_macs

CPU_LIMIT_HOURS = 1.0


@dataclass(frozen=True)
class Work:
    """``clips`` passes of clip-shaped input through one model (forward and backward unless
    ``forward_only``). ``model`` names the model and its input (its count is memoised under
    that name); ``build`` returns the model and its input shape, built on the meta device.
    ``shared`` names work that several runs share (a cached stage-1 backbone): counted once.
    ``sampling`` counts bilinear sampling (:func:`vidattn.engine.flops.count_macs`)."""

    model: str
    build: Callable[[], tuple[nn.Module, tuple[int, ...]]]
    clips: float
    shared: str | None = None
    forward_only: bool = False
    sampling: bool = False


def key(*parts: Any) -> str:
    """A memo key of JSON-able parts (a model spec, an input size)."""
    return canonical_json(list(parts))


def cpu_seconds(runs: Iterable[Planned | dict[str, Any]], workers: int, work: Callable[[dict[str, Any]], list[Work]]
                ) -> float:
    """Estimated one-thread training time of ``runs`` (planned runs or their configs) spread over
    ``workers`` processes, from the :class:`Work` that ``work(config)`` lists for each (module docstring)."""
    macs: dict[str, float] = {}
    seen: set[str] = set()
    forwards = 0.0  # clip passes, in forward-pass equivalents
    for run in runs:
        for w in work(run.config if isinstance(run, Planned) else run):
            if w.shared is not None:
                if w.shared in seen:
                    continue
                seen.add(w.shared)
            if w.model not in macs:
                with torch.device("meta"):
                    model, shape = w.build()
                    macs[w.model] = float(count_macs(model, torch.empty(*shape), sampling=w.sampling))
            forwards += macs[w.model] * w.clips * (1 if w.forward_only else 3)
    return 2 * forwards / (cpu_flops_per_second() * max(1, workers))


def train_shape(config: dict[str, Any], suite: Any = None) -> tuple[int, int, int, int]:
    """(training clips, frames, size, classes) of a run: from its real ``data`` entry (the
    annotation files are read once per dataset), else from its synthetic ``suite`` config."""
    if "data" in config:
        t = config["data"]["train"]
        n, classes = _real_sizes(canonical_json(config["data"]))
        return n, t["frames"], t["size"], classes
    return suite.n_train, suite.frames, suite.size, suite.num_classes


@lru_cache(maxsize=None)
def _real_sizes(spec: str) -> tuple[int, int]:
    """(training clips, classes) of a real dataset's ``data`` entry (JSON)."""
    from vidattn.engine.real_data import open_real

    data = open_real(json.loads(spec))
    return len(data.train), len(data.classes)


def cpu_flops_per_second(seconds: float = 0.3) -> float:
    """Measured float32 matrix-multiply throughput of one thread (an upper bound for training)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(RUN_THREADS)
    try:
        a, b = torch.randn(512, 512), torch.randn(512, 512)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            n += 1
        return 2 * 512**3 * n / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev)


def check_cpu_budget(ctx: RunContext, what: str, seconds: float) -> str:
    """Before ``full`` trains on a CPU: the estimate, and a stop when it exceeds the limit.

    Returns the sentence it printed. Raises ``RuntimeError`` (before anything trains) when
    the estimate exceeds :data:`CPU_LIMIT_HOURS` and ``allow_cpu`` is not set.
    """
    hours = seconds / 3600
    line = (f"estimated CPU time for {what}: {hours:.2g} h ({seconds:.3g} s; from the models' counted FLOPs at "
            "the measured one-thread matrix-multiply speed, a lower bound)")
    if ctx.profile != "full" or ctx.device != "cpu":
        return line
    print(line, flush=True)
    if hours > CPU_LIMIT_HOURS and not ctx.allow_cpu:
        raise RuntimeError(f"profile 'full' on a CPU: {line}. Stopped before training. Run it on a GPU "
                           f"(device=cuda), shrink it with size_override, or pass allow_cpu=True to run anyway.")
    return line
