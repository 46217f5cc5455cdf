"""GlyphHold-10, the spatial-attention chapter's suite: a small held object decides the class.

An "actor" (a 12 x 22 px ellipse) walks about 1 px per frame across a 64 x 64 frame of
low-frequency noise and clutter. At a fixed "hand" offset beside it, it holds a glyph:
one of 10 fixed 5 x 5 patterns with 12 lit pixels each, so brightness carries no class
signal. The glyphs come in 5 confusable pairs (Hamming distance 4 inside a pair, at
least 8 across pairs). The actor's direction depends on the *pair* only, so context
(the actor, its motion) can reach at most about 50 % and the rest must be read from a
few pixels: the case that zooming should help.

* Colours: the glyph's lit pixels take a colour from the clutter palette, so colour
  carries nothing either.
* Clutter: 12 moving decoys (5 x 5 patterns that are not glyphs, squares, discs) in
  palette colours.
* Occlusion: in each frame the glyph is covered by a grey occluder with probability
  0.25 (at least 2 frames stay visible). Per-frame predictions on occluded frames can
  only guess from context (the chapter's H4).
* Masks: ``masks`` marks the visible glyph's box per frame; ``meta`` holds the glyph
  box corners, the visible flags and the actor's centres.

The control suite ``glyph_large`` draws the same glyphs at 12 x 12 (each glyph pixel a
2 x 2 block plus a 1 px margin), big enough to read without zooming; everything else
(decoys included) is as in ``glyph``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from vidattn.core.identity import declare
from vidattn.data.cache import cached_split
from vidattn.data.clips import SuiteArrays
from vidattn.data.suites import named_suite

declare("suite/glyph", 1)

PALETTE = np.array([[0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.25, 0.4, 0.95], [0.95, 0.85, 0.2],
                    [0.8, 0.3, 0.85], [0.2, 0.85, 0.85]])
CARD = 0.05  # the dark card behind a glyph or a pattern decoy
PAIRS = 5
GLYPH_ON = 12
ACTOR = (22, 12)  # ellipse height, width (px)
HAND = (2, 9)  # glyph box centre relative to the actor's centre (rows, cols)


@dataclass(frozen=True)
class GlyphSuiteConfig:
    """Everything that determines a GlyphHold suite's clips. Same config and index, same bytes."""

    name: str
    frames: int = 8
    size: int = 64
    glyph_scale: int = 1  # 1: 5 x 5 glyphs; 2: 12 x 12 (the control)
    decoys: int = 12
    pattern_decoys: bool = True  # False: decoys are squares and discs only
    cards: bool = True  # glyphs and pattern decoys drawn on a dark card
    occlusion: float = 0.25
    min_visible: int = 2
    speed: float = 1.0  # actor, px/frame
    noise: float = 0.03
    n_train: int = 800
    n_test: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.glyph_scale not in (1, 2):
            raise ValueError(f"glyph_scale must be 1 (5 x 5) or 2 (12 x 12), got {self.glyph_scale}")
        if not 0 <= self.occlusion < 1 or not 1 <= self.min_visible <= self.frames:
            raise ValueError(f"need 0 <= occlusion < 1 and 1 <= min_visible <= frames, got {self}")
        if self.size < 48:
            raise ValueError(f"size must be at least 48 px (the actor and its glyph), got {self.size}")

    @property
    def num_classes(self) -> int:
        return 2 * PAIRS

    @property
    def class_names(self) -> list[str]:
        return [f"glyph {c // 2}{'ab'[c % 2]}" for c in range(self.num_classes)]

    @property
    def box(self) -> int:
        """Side of the glyph's box in pixels."""
        return 5 if self.glyph_scale == 1 else 12

    def with_(self, **kw: Any) -> "GlyphSuiteConfig":
        return replace(self, **kw)


GLYPH_SUITES: dict[str, GlyphSuiteConfig] = {
    "glyph": GlyphSuiteConfig("glyph"),
    "glyph_large": GlyphSuiteConfig("glyph_large", glyph_scale=2),
}


def glyph_suite(name: str, **overrides: Any) -> GlyphSuiteConfig:
    """The registered GlyphHold suite ``name`` with field ``overrides`` (a clear error if unknown)."""
    return named_suite(GLYPH_SUITES, "glyph", name, overrides)


@lru_cache(maxsize=1)
def glyphs() -> np.ndarray:
    """The 10 class glyphs (10, 5, 5) bool: 5 pairs; 12 lit pixels each; Hamming 4 within a
    pair, >= 8 across pairs. Found by a seeded search, so every machine draws the same set."""
    rng = np.random.default_rng(20220426)
    out: list[np.ndarray] = []
    while len(out) < 2 * PAIRS:
        a = np.zeros(25, bool)
        a[rng.choice(25, GLYPH_ON, replace=False)] = True
        b = a.copy()
        b[rng.choice(np.flatnonzero(a), 2, replace=False)] = False
        b[rng.choice(np.flatnonzero(~a), 2, replace=False)] = True
        if all((a != g).sum() >= 8 and (b != g).sum() >= 8 for g in out):
            out += [a, b]
    return np.stack(out).reshape(-1, 5, 5)


def decoy_pattern(rng: np.random.Generator, patterns: bool = True) -> tuple[np.ndarray, bool]:
    """A 5 x 5 clutter shape and whether it is a pattern: a square, a disc or (with
    ``patterns``) a non-glyph random pattern of 12 lit pixels (>= 6 from every glyph)."""
    kind = rng.integers(3) if patterns else 1 + rng.integers(2)
    if kind == 1:
        return np.ones((5, 5), bool), False
    if kind == 2:
        r, c = np.mgrid[:5, :5]
        return np.hypot(r - 2, c - 2) <= 2.3, False
    while True:
        p = np.zeros(25, bool)
        p[rng.choice(25, GLYPH_ON, replace=False)] = True
        if ((glyphs().reshape(-1, 25) != p).sum(1) >= 6).all():
            return p.reshape(5, 5), True


def enlarge(pattern: np.ndarray, scale: int) -> np.ndarray:
    """A 5 x 5 pattern at ``scale`` 1 (as is) or 2 (2 x 2 blocks with a 1 px margin: 12 x 12)."""
    if scale == 1:
        return pattern
    return np.pad(np.kron(pattern, np.ones((2, 2), bool)), 1)


def low_frequency_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) colour noise of a few low spatial frequencies in [0.15, 0.45]."""
    coarse = rng.uniform(0, 1, (size // 16 + 2, size // 16 + 2, 3))
    x = np.linspace(0, coarse.shape[0] - 1, size)
    i = np.clip(x.astype(int), 0, coarse.shape[0] - 2)
    f = (x - i)[:, None]
    rows = coarse[i] * (1 - f[..., None]) + coarse[i + 1] * f[..., None]
    cols = rows[:, i] * (1 - f[None, :, :]) + rows[:, i + 1] * f[None, :, :]
    return 0.15 + 0.3 * cols


def stamp(frame: np.ndarray, pattern: np.ndarray, top: int, left: int, colour: np.ndarray,
          card: bool = False) -> None:
    """Paint ``colour`` where ``pattern`` is true at (top, left), clipped to the frame; with
    ``card``, on a dark card that fills the pattern's box."""
    h, w = pattern.shape
    S = frame.shape[0]
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + h, S), min(left + w, S)
    if r0 >= r1 or c0 >= c1:
        return
    sub = pattern[r0 - top : r1 - top, c0 - left : c1 - left]
    if card:
        frame[r0:r1, c0:c1] = CARD
    frame[r0:r1, c0:c1][sub] = colour


def direction(pair: int) -> np.ndarray:
    """The actor's unit step for a class pair: 5 directions, 72 degrees apart."""
    theta = 2 * np.pi * pair / PAIRS + 0.3
    return np.array([np.sin(theta), np.cos(theta)])


def generate(cfg: GlyphSuiteConfig, split: str, index: int) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
    """Clip ``index`` of ``split``: video (T, H, W, 3) uint8, glyph mask (T, H, W), label, metadata."""
    stream = {"train": 0, "test": 1}[split]
    rng = np.random.default_rng([cfg.seed, 7, stream, index])
    T, S, box = cfg.frames, cfg.size, cfg.box
    label = int(rng.integers(cfg.num_classes))
    glyph = enlarge(glyphs()[label], cfg.glyph_scale)
    step = cfg.speed * direction(label // 2)
    ah, aw = ACTOR
    hand = np.array(HAND) * [1, 1 + (box - 5) / 9]  # the hand moves out with a larger glyph
    lo = np.array([ah // 2 + 1, aw // 2 + 1])
    hi = S - np.array([ah // 2 + 1, hand[1] + box // 2 + 2])
    span = step * (T - 1)
    start = rng.uniform(lo + np.maximum(-span, 0), hi - np.maximum(span, 0))
    centres = start + np.arange(T)[:, None] * step
    visible = rng.uniform(size=T) >= cfg.occlusion
    while visible.sum() < cfg.min_visible:
        visible[rng.integers(T)] = True
    colour, actor_colour = rng.choice(len(PALETTE), 2, replace=False)
    decoys = [(*decoy_pattern(rng, cfg.pattern_decoys), PALETTE[rng.integers(len(PALETTE))],
               rng.uniform(0, S - 5, 2), rng.uniform(-1.5, 1.5, 2)) for _ in range(cfg.decoys)]
    background = low_frequency_noise(rng, S)
    r, c = np.mgrid[:S, :S]
    video = np.empty((T, S, S, 3))
    mask = np.zeros((T, S, S), bool)
    corners = []
    for t in range(T):
        frame = background.copy()
        for pattern, textured, col, pos, vel in decoys:
            top, left = np.round(pos + t * vel).astype(int)
            stamp(frame, pattern, int(top), int(left), col, cfg.cards and textured)
        cy, cx = centres[t]
        body = ((r - cy) / (ah / 2)) ** 2 + ((c - cx) / (aw / 2)) ** 2 <= 1
        frame[body] = 0.6 * PALETTE[actor_colour] + 0.2
        top, left = (np.round(centres[t] + hand) - box // 2).astype(int)
        corners.append([int(top), int(left)])
        if visible[t]:
            stamp(frame, glyph, int(top), int(left), PALETTE[colour], cfg.cards)
            mask[t, top : top + box, left : left + box] = True
        else:
            stamp(frame, np.ones((box, box), bool), int(top), int(left), np.full(3, 0.5))
        video[t] = frame
    video = video + cfg.noise * rng.standard_normal(video.shape)
    meta = {"corners": corners, "visible": visible.tolist(), "actor": np.round(centres, 2).tolist()}
    return (np.clip(video, 0, 1) * 255).round().astype(np.uint8), mask, label, meta


def load_glyph_split(cfg: GlyphSuiteConfig, split: str, cache: bool = True) -> SuiteArrays:
    """Read ``split`` of ``cfg`` from the cache, generating and caching it on a miss."""
    n = cfg.n_train if split == "train" else cfg.n_test
    return cached_split("suite/glyph", cfg, split, lambda: [generate(cfg, split, i) for i in range(n)], cache)
