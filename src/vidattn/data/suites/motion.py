"""The SIFA chapter's suites: features that must be followed to where the motion took them.

Two tasks, both on a torus (objects leaving one edge re-enter at the other, so position
carries no information), over a smooth random background with pixel noise:

* ``binding`` ("binding under large displacement"): two 7 x 7 objects move at
  ``speed`` px/frame in random directions. Even frames show an *even* pattern
  E in {horizontal stripes, vertical stripes}, odd frames an *odd* pattern
  O in {checkerboard, ring}. Object 1 shows (E_a, O_b) and object 2 (E_{1-a}, O_{1-b});
  the label is [a = b]. Every clip shows all four patterns, so a model that pools
  frames independently is at chance *by construction*: the label needs frame t's
  features bound to frame t + 1's at the *displaced* location. Reversing a clip keeps
  its label (the binding does not depend on direction); shuffling it breaks the
  frame-to-frame correspondence.
  ``binding_slow`` is the same task at 0.5-1.5 px/frame, where a same-location
  temporal model can bind (the control that shows a failure is due to displacement).
* ``direction``: one disc moves at ``speed`` px/frame in one of 8 directions (the class)
  among static look-alike discs. Reversal maps a class to the opposite direction
  (its partner), so a model blind to order is at chance within each pair.

Clips come as :class:`vidattn.data.suites.SuiteArrays` (uint8 videos, masks of the
moving objects, labels) and are cached on disk like the other suites, keyed by the
config and this module's code.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vidattn.core.identity import declare
from vidattn.data.cache import cached_split
from vidattn.data.clips import SuiteArrays
from vidattn.data.suites import named_suite

declare("suite/motion", 1)

TASKS = ("binding", "direction")
EVEN_PATTERNS = ("horizontal stripes", "vertical stripes")
ODD_PATTERNS = ("checkerboard", "ring")


@dataclass(frozen=True)
class MotionSuiteConfig:
    """Everything that determines a motion suite's clips. Same config and index, same bytes."""

    name: str
    task: str
    frames: int = 8
    size: int = 32
    speed: tuple[float, float] = (4.0, 6.0)  # px/frame, uniform
    object_size: int = 7
    distractors: int = 3  # static look-alikes (direction task)
    background: float = 0.25  # amplitude of the smooth background
    noise: float = 0.05  # std of the pixel noise
    n_train: int = 2000
    n_test: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown motion task {self.task!r}; known: {TASKS}")
        if self.object_size % 2 == 0 or self.object_size >= self.size:
            raise ValueError(f"object_size must be odd and smaller than size, got {self.object_size}")

    @property
    def num_classes(self) -> int:
        return 2 if self.task == "binding" else 8

    @property
    def class_names(self) -> list[str]:
        if self.task == "binding":
            return ["h-stripes with ring", "h-stripes with checkerboard"]
        return [f"{45 * c} deg" for c in range(8)]

    @property
    def partner(self) -> list[int | None]:
        """The class a reversed clip belongs to, when it differs (direction: the opposite one)."""
        return [None, None] if self.task == "binding" else [(c + 4) % 8 for c in range(8)]

    def with_(self, **kw: Any) -> "MotionSuiteConfig":
        return replace(self, **kw)


MOTION_SUITES: dict[str, MotionSuiteConfig] = {
    "binding": MotionSuiteConfig("binding", "binding"),
    "binding_slow": MotionSuiteConfig("binding_slow", "binding", speed=(0.5, 1.5)),
    "direction": MotionSuiteConfig("direction", "direction"),
}


def motion_suite(name: str, **overrides: Any) -> MotionSuiteConfig:
    """The registered motion suite ``name`` with field ``overrides`` (a clear error if unknown)."""
    if "speed" in overrides:
        overrides["speed"] = tuple(overrides["speed"])
    return named_suite(MOTION_SUITES, "motion", name, overrides)


def patterns(n: int) -> dict[str, np.ndarray]:
    """The four n x n binary patterns (1-px stripes, a checkerboard, a ring)."""
    r, c = np.mgrid[:n, :n]
    d = np.hypot(r - n // 2, c - n // 2)
    return {"horizontal stripes": (r % 2 == 0), "vertical stripes": (c % 2 == 0),
            "checkerboard": ((r + c) % 2 == 0), "ring": (d >= n / 2 - 1.6) & (d <= n / 2 - 0.4)}


def disc(n: int) -> np.ndarray:
    r, c = np.mgrid[:n, :n]
    return np.hypot(r - n // 2, c - n // 2) <= n / 2


def smooth_background(rng: np.random.Generator, size: int, amplitude: float) -> np.ndarray:
    """A random field of a few low spatial frequencies, in [0, amplitude]."""
    field = rng.standard_normal((size // 8 + 1, size // 8 + 1))
    up = np.kron(field, np.ones((8, 8)))[:size, :size]
    k = np.ones(7) / 7
    for axis in (0, 1):
        up = np.apply_along_axis(lambda v: np.convolve(np.r_[v[-3:], v, v[:3]], k, "valid"), axis, up)
    up = (up - up.min()) / max(np.ptp(up), 1e-9)
    return amplitude * up


def paste(canvas: np.ndarray, patch: np.ndarray, top: int, left: int, value: np.ndarray | float,
          mask: np.ndarray | None = None) -> None:
    """Write ``value`` where ``patch`` is true, at (top, left) on a torus; mark ``mask``."""
    n, size = patch.shape[0], canvas.shape[0]
    rows, cols = (top + np.arange(n)) % size, (left + np.arange(n)) % size
    region = canvas[np.ix_(rows, cols)]
    canvas[np.ix_(rows, cols)] = np.where(patch, value, region)
    if mask is not None:
        mask[np.ix_(rows, cols)] |= patch


def trajectory(rng: np.random.Generator, cfg: MotionSuiteConfig, angle: float | None = None) -> np.ndarray:
    """(T, 2) top-left corners (row, col), rounded, of an object at a uniform speed on the torus."""
    start = rng.uniform(0, cfg.size, 2)
    theta = rng.uniform(0, 2 * np.pi) if angle is None else angle
    speed = rng.uniform(*cfg.speed)
    step = speed * np.array([np.sin(theta), np.cos(theta)])
    return np.round(start + np.arange(cfg.frames)[:, None] * step).astype(int) % cfg.size


def generate(cfg: MotionSuiteConfig, split: str, index: int) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
    """Clip ``index`` of ``split``: video (T, H, W, 3) uint8, mask (T, H, W), label, metadata."""
    stream = {"train": 0, "test": 1}[split]
    rng = np.random.default_rng([cfg.seed, stream, index])
    T, S, n = cfg.frames, cfg.size, cfg.object_size
    frames = np.repeat(smooth_background(rng, S, cfg.background)[None], T, 0)
    mask = np.zeros((T, S, S), bool)
    meta: dict[str, Any] = {}
    if cfg.task == "binding":
        pats = patterns(n)
        a, b = rng.integers(2, size=2)
        shown = [(EVEN_PATTERNS[a], ODD_PATTERNS[b]), (EVEN_PATTERNS[1 - a], ODD_PATTERNS[1 - b])]
        paths = [trajectory(rng, cfg), trajectory(rng, cfg)]
        for t in range(T):
            for (even, odd), path in zip(shown, paths):
                square = np.ones((n, n), bool)
                value = np.where(pats[even if t % 2 == 0 else odd], 1.0, 0.45)
                paste(frames[t], square, *path[t], value, mask[t])
        label = int(a == b)
        meta = {"a": int(a), "b": int(b), "paths": [p.tolist() for p in paths]}
    else:
        label = int(rng.integers(8))
        shape = disc(n)
        path = trajectory(rng, cfg, angle=-label * np.pi / 4)  # rows grow downwards: 90 deg is up
        still = [rng.integers(0, S, 2) for _ in range(cfg.distractors)]
        for t in range(T):
            for corner in still:
                paste(frames[t], shape, *corner, 0.9)
            paste(frames[t], shape, *path[t], 0.9, mask[t])
        meta = {"paths": [path.tolist()]}
    frames = frames + cfg.noise * rng.standard_normal(frames.shape)
    video = np.repeat((np.clip(frames, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, -1)
    return video, mask, label, meta


def load_motion_split(cfg: MotionSuiteConfig, split: str, cache: bool = True) -> SuiteArrays:
    """Read ``split`` of ``cfg`` from the cache, generating and caching it on a miss."""
    n = cfg.n_train if split == "train" else cfg.n_test
    return cached_split("suite/motion", cfg, split, lambda: [generate(cfg, split, i) for i in range(n)], cache)
