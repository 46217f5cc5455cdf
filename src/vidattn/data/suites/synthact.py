"""SynthAct-10, the pyramid-attention chapter's suite (spec Sec. 5): a textured actor among distractors.

32 x 32 RGB clips of 24 frames over low-frequency colour noise. A 5 x 5 actor with a
1-px checkerboard (a palette colour on black) moves among four 5 x 5 distractors,
solid or 1-px striped, on random walks in the same palette. The texture resolves only
in the trunk's first two stages, so *finding* the actor needs the fine scales while
the class evidence (its motion) is coarse. Ten classes:

* c0-c5: translate right / left / up / down, circle clockwise / anticlockwise. Each
  pair differs only in time order, which an order-invariant pooling of RGB frames cannot
  see; optical flow separates them.
* c6: oscillate (left-right, period 8 frames); c7: size pulse (5 -> 9 -> 5 px).
* c8: the actor carries a red 2 x 2 object (each distractor carries a non-red one).
* c9: the context class: a floor bar across the bottom rows (the MoppingFloor analogue).

In c6-c9 the actor drifts on a slow random walk. The ``synthact_pan`` variant adds a
camera pan of up to 1.5 px/frame (the background and every object shift together).

Every clip also has the renderer's *exact* flow (:func:`exact_flow`): the integer
displacement of each drawn pixel from frame t to t + 1 (objects move by whole pixels;
the size pulse scales about the actor's centre), for checking estimated flow. ``masks``
marks the actor's box per frame and ``meta`` holds the boxes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vidattn.core.identity import declare
from vidattn.data.cache import cached_split
from vidattn.data.clips import SuiteArrays
from vidattn.data.suites import named_suite
from vidattn.data.suites.glyph import PALETTE, low_frequency_noise

declare("suite/synthact", 1)

CLASS_NAMES = ("right", "left", "up", "down", "circle cw", "circle acw", "oscillate", "pulse", "carries red",
               "floor bar")
ACTOR_CLASSES = tuple(range(9))  # c9's evidence is the scene, not the actor
PAIRS = ((0, 1), (2, 3), (4, 5))  # same frames, reversed order
RED = np.array([0.95, 0.1, 0.1])
OBJECTS = PALETTE[1:]  # the distractors' carried objects: any palette colour but red
FLOOR = np.array([0.55, 0.35, 0.15])


@dataclass(frozen=True)
class SynthActConfig:
    """Everything that determines a SynthAct suite's clips. Same config and index, same bytes."""

    name: str
    frames: int = 24
    size: int = 32
    distractors: int = 4
    speed: float = 1.0  # translation, px/frame
    radius: float = 5.0  # circle radius, px
    pan: float = 0.0  # camera pan, up to this many px/frame
    noise: float = 0.02
    n_train: int = 1000
    n_test: int = 400
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 24 or self.frames < 2:
            raise ValueError(f"SynthAct needs size >= 24 px and >= 2 frames, got {self.size} px, {self.frames}")

    @property
    def num_classes(self) -> int:
        return len(CLASS_NAMES)

    @property
    def class_names(self) -> list[str]:
        return list(CLASS_NAMES)

    def with_(self, **kw: Any) -> "SynthActConfig":
        return replace(self, **kw)


SYNTHACT_SUITES: dict[str, SynthActConfig] = {
    "synthact": SynthActConfig("synthact"),
    "synthact_pan": SynthActConfig("synthact_pan", pan=1.5),
}


def synthact_suite(name: str, **overrides: Any) -> SynthActConfig:
    """The registered suite ``name`` with field ``overrides`` (a clear error if unknown)."""
    return named_suite(SYNTHACT_SUITES, "SynthAct", name, overrides)


def actor_track(label: int, cfg: SynthActConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Actor centres (T, 2) as (row, col) and sizes (T,) for class ``label``."""
    T, S = cfg.frames, cfg.size
    t = np.arange(T)
    sizes = np.full(T, 5)
    margin = 6.0
    if label < 4:
        step = cfg.speed * np.array([(0, 1), (0, -1), (-1, 0), (1, 0)][label], float)
        span = np.abs(step) * (T - 1)
        lo = margin + np.where(step < 0, span, 0)
        hi = S - margin - np.where(step > 0, span, 0)
        start = rng.uniform(lo, np.maximum(hi, lo + 1e-6))
        return start + t[:, None] * step, sizes
    if label < 6:
        sign = -1.0 if label == 4 else 1.0  # rows grow downwards: -1 turns clockwise on screen
        centre = rng.uniform(margin + cfg.radius, S - margin - cfg.radius, 2)
        phase = rng.uniform(0, 2 * np.pi) + sign * 2 * np.pi * t / min(T, 16)
        return centre + cfg.radius * np.stack([np.sin(phase), np.cos(phase)], 1), sizes
    walk = np.cumsum(rng.uniform(-0.3, 0.3, (T, 2)), 0)
    centre = rng.uniform(margin + 4, S - margin - 4, 2) + walk - walk.mean(0)
    if label == 6:
        centre[:, 1] += 3.0 * np.sin(2 * np.pi * t / 8 + rng.uniform(0, 2 * np.pi))
    if label == 7:
        sizes = 5 + 2 * np.round(1 - np.cos(2 * np.pi * t / 8 + rng.integers(8) * np.pi / 4)).astype(int)
    return np.clip(centre, margin - 2, S - margin + 2), sizes


def checkerboard(size: int, colour: np.ndarray) -> np.ndarray:
    """A (size, size, 3) 1-px checkerboard of ``colour`` on black."""
    r, c = np.mgrid[:size, :size]
    return ((r + c) % 2 == 0)[..., None] * colour


def distractor_sprite(kind: int, colour: np.ndarray) -> np.ndarray:
    """A 5 x 5 distractor: solid, or 1-px horizontal or vertical stripes (palette colour on black)."""
    r, c = np.mgrid[:5, :5]
    on = [np.ones((5, 5), bool), r % 2 == 0, c % 2 == 0][kind]
    return on[..., None] * colour


def paste(frame: np.ndarray, flow: np.ndarray | None, sprite: np.ndarray, top: int, left: int,
          motion: np.ndarray | None = None) -> None:
    """Draw ``sprite`` at (top, left), clipped; where it lands, the flow becomes ``motion`` (H, W, 2 or 2,)."""
    h, w = sprite.shape[:2]
    S = frame.shape[0]
    r0, c0, r1, c1 = max(top, 0), max(left, 0), min(top + h, S), min(left + w, S)
    if r0 >= r1 or c0 >= c1:
        return
    frame[r0:r1, c0:c1] = sprite[r0 - top : r1 - top, c0 - left : c1 - left]
    if flow is not None and motion is not None:
        m = motion if motion.ndim == 1 else motion[r0 - top : r1 - top, c0 - left : c1 - left]
        flow[r0:r1, c0:c1] = m


def render(cfg: SynthActConfig, split: str, index: int, with_flow: bool = False
           ) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any], np.ndarray | None]:
    """Clip ``index`` of ``split``: video (T, H, W, 3) uint8, actor mask (T, H, W), label, metadata,
    and with ``with_flow`` the exact forward flow (T - 1, H, W, 2) as (dx, dy) in pixels."""
    stream = {"train": 0, "test": 1}[split]
    rng = np.random.default_rng([cfg.seed, 11, stream, index])
    T, S = cfg.frames, cfg.size
    label = index % cfg.num_classes
    centres, sizes = actor_track(label, cfg, rng)
    actor_colour = PALETTE[1 + rng.integers(len(PALETTE) - 1)]
    kinds = rng.integers(3, size=cfg.distractors)
    colours = PALETTE[rng.integers(len(PALETTE), size=cfg.distractors)]
    carried = OBJECTS[rng.integers(len(OBJECTS), size=cfg.distractors)]
    walks = rng.uniform(4, S - 9, (cfg.distractors, 1, 2)) + np.cumsum(rng.uniform(-1, 1, (cfg.distractors, T, 2)), 1)
    walks = np.clip(walks, -2, S - 3)
    pan_v = rng.uniform(-cfg.pan, cfg.pan, 2)
    cam = np.round(np.arange(T + 1)[:, None] * pan_v).astype(int)  # camera offset per frame (rows, cols)
    pad = int(np.ceil(cfg.pan * T)) + 1
    background = low_frequency_noise(rng, S + 2 * pad)
    floor = label == 9
    r_img = np.arange(S)
    video = np.empty((T, S, S, 3))
    mask = np.zeros((T, S, S), bool)
    flows = np.zeros((T - 1, S, S, 2)) if with_flow else None
    boxes = []

    def at(p: np.ndarray, t: int) -> np.ndarray:  # world -> image coordinates at frame t
        return np.round(p).astype(int) - cam[t]

    for t in range(T):
        fl = flows[t] if with_flow and t < T - 1 else None
        oy, ox = pad + cam[t]
        frame = background[oy : oy + S, ox : ox + S].copy()
        if fl is not None:
            fl[:] = -(cam[t + 1] - cam[t])[::-1]  # a panning camera moves the background backwards
        if floor:
            y0 = S - 4 - cam[t][0]
            rows = (r_img >= y0) & (r_img < y0 + 3)
            frame[rows] = FLOOR
        for d in range(cfg.distractors):
            top, left = at(walks[d, t], t)
            nxt = at(walks[d, min(t + 1, T - 1)], min(t + 1, T - 1)) if fl is not None else None
            motion = None if nxt is None else (nxt - (top, left))[::-1].astype(float)
            paste(frame, fl, distractor_sprite(int(kinds[d]), colours[d]), int(top), int(left), motion)
            paste(frame, fl, np.broadcast_to(carried[d], (2, 2, 3)), int(top) + 5, int(left) + 2, motion)
        size = int(sizes[t])
        c_img = at(centres[t], t)
        top, left = c_img - size // 2
        motion = None
        if fl is not None:
            c_next = at(centres[t + 1], t + 1)
            rr, cc = np.mgrid[:size, :size] - size // 2
            grow = sizes[t + 1] / size - 1
            motion = np.stack([cc * grow, rr * grow], -1) + (c_next - c_img)[::-1]
        paste(frame, fl, checkerboard(size, actor_colour), int(top), int(left), motion)
        mask[t, max(top, 0) : max(top + size, 0), max(left, 0) : max(left + size, 0)] = True
        boxes.append([int(top), int(left), size, size])
        if label == 8:
            obj_motion = None if fl is None else (at(centres[t + 1], t + 1) - c_img)[::-1].astype(float)
            paste(frame, fl, np.broadcast_to(RED, (2, 2, 3)), int(top) + size, int(left) + size // 2 - 1,
                  obj_motion)
        video[t] = frame
    video = video + cfg.noise * rng.standard_normal(video.shape)
    meta = {"boxes": boxes, "pan": pan_v.tolist()}
    return (np.clip(video, 0, 1) * 255).round().astype(np.uint8), mask, label, meta, flows


def exact_flow(cfg: SynthActConfig, split: str, index: int) -> np.ndarray:
    """The renderer's exact forward flow of one clip, (T - 1, H, W, 2) as (dx, dy) px."""
    return render(cfg, split, index, with_flow=True)[4]


def load_synthact_split(cfg: SynthActConfig, split: str, cache: bool = True) -> SuiteArrays:
    """Read ``split`` of ``cfg`` from the cache, generating and caching it on a miss."""
    n = cfg.n_train if split == "train" else cfg.n_test
    return cached_split("suite/synthact", cfg, split, lambda: [render(cfg, split, i)[:4] for i in range(n)], cache)
