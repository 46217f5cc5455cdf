"""Procedural video suites: seeded, deterministic clips with labels, masks and metadata.

A clip is built from composable factors:

* an **object** (geometric shape, random glyph, or a real handwritten digit),
* a **program**: a sequence of motion primitives (translate, scale, rotate, deform,
  fade, and the palindromic controls oscillate/pulse),
* a **timing**: the primitives either share the clip evenly (``continuous``) or run as
  ``event, pause, event`` with still margins and random jitter,
* a **background** (flat, smooth texture, clutter, or a panning texture),
* **distractors**: look-alike objects on random walks that carry no label,
* pixel **noise**, per-frame **occlusion**, and an optional **arrow-of-time** cue.

Time-reversal pairs are exact by construction: the reversed member of a pair is the
forward member's clip, drawn from the same seed, with every per-frame quantity flipped
in time. Without the arrow-of-time cue a reversed clip of class ``c`` therefore has
exactly the distribution of its partner, and any model that is invariant to frame order
(for example one that averages frames) is at chance within each pair. The arrow cue is
a class-independent global brightness ramp added in displayed time *after* the flip,
so true order becomes recoverable from content.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vidattn.core.identity import declare
from vidattn.data.cache import cached_split
from vidattn.data.clips import ClipParts, SuiteArrays
from vidattn.data.suites import named_suite, render

# Each primitive maps progress u in [0, 1] to additive increments of the actor's state:
# (dx, dy) in units of ``travel`` pixels, log-scale, angle (rad), log-aspect, alpha.
_STATE_KEYS = ("dx", "dy", "dlogscale", "dangle", "dlogaspect", "dalpha")


def _prim(**fn: Any):
    return fn


PRIMITIVES: dict[str, dict[str, Any]] = {
    "right": _prim(dx=lambda u: u),
    "left": _prim(dx=lambda u: -u),
    "down": _prim(dy=lambda u: u),
    "up": _prim(dy=lambda u: -u),
    "grow": _prim(dlogscale=lambda u: 0.7 * u),
    "shrink": _prim(dlogscale=lambda u: -0.7 * u),
    "rotate_ccw": _prim(dangle=lambda u: 0.5 * np.pi * u),
    "rotate_cw": _prim(dangle=lambda u: -0.5 * np.pi * u),
    "squash": _prim(dlogaspect=lambda u: 0.6 * u),
    "stretch": _prim(dlogaspect=lambda u: -0.6 * u),
    "disappear": _prim(dalpha=lambda u: -u),
    # palindromic controls: u -> 1 - u leaves them unchanged
    "oscillate": _prim(dx=lambda u: 0.5 * np.sin(np.pi * u)),
    "pulse": _prim(dlogscale=lambda u: 0.6 * np.sin(np.pi * u)),
}


@dataclass(frozen=True)
class ClassDef:
    """One class: a program of primitives, optionally shown time-reversed."""

    name: str
    program: tuple[str, ...]
    reversed: bool = False
    partner: int | None = None  # index of the time-reversal partner class, if any


@dataclass(frozen=True)
class SuiteConfig:
    """Everything that determines a suite's clips. Same config and seed, same bytes.

    ``programs`` lists forward programs; each yields a reversal pair of classes
    (forward, reversed). ``controls`` lists palindromic programs that yield one class
    each (a reversed clip of a control class is still that class).
    """

    name: str
    programs: tuple[tuple[str, ...], ...]
    controls: tuple[tuple[str, ...], ...] = ()
    frames: int = 8
    size: int = 32
    n_train: int = 1000
    n_test: int = 400
    timing: str = "continuous"  # or "event_pause_event"
    event_frames: int = 6
    pause_frames: int = 10
    margin_frames: int = 5
    objects: str = "shape"  # shape | glyph | digit
    object_size: tuple[float, float] = (0.25, 0.35)  # fraction of the canvas side
    travel: float = 0.35  # translation amplitude, fraction of the canvas side
    background: str = "texture"  # flat | texture | clutter | pan
    pan_speed: float = 1.0  # pixels per frame for background="pan"
    distractors: int = 0
    distractor_speed: float = 1.0  # pixels per frame (random walk)
    noise: float = 0.03  # std of i.i.d. Gaussian pixel noise
    occlusion: float = 0.0  # probability that a frame has an occluding bar
    arrow_of_time: float = 0.0  # amplitude of the global brightness ramp
    seed: int = 0

    def __post_init__(self) -> None:
        for prog in self.programs + self.controls:
            for p in prog:
                if p not in PRIMITIVES:
                    raise ValueError(f"suite {self.name!r}: unknown primitive {p!r}; known: {sorted(PRIMITIVES)}")
        if self.timing not in ("continuous", "event_pause_event"):
            raise ValueError(f"suite {self.name!r}: unknown timing {self.timing!r}")
        if self.background not in ("flat", "texture", "clutter", "pan"):
            raise ValueError(f"suite {self.name!r}: unknown background {self.background!r}")
        if self.objects not in ("shape", "glyph", "digit"):
            raise ValueError(f"suite {self.name!r}: unknown object family {self.objects!r}")
        if self.timing == "event_pause_event":
            for prog in self.programs + self.controls:
                if len(prog) != 2:
                    raise ValueError("event_pause_event timing needs programs of exactly two primitives")
            need = 2 * self.event_frames + self.pause_frames + 2 * self.margin_frames
            if need > self.frames:
                raise ValueError(f"event_pause_event needs at least {need} frames, config has {self.frames}")

    @property
    def classes(self) -> list[ClassDef]:
        out: list[ClassDef] = []
        for prog in self.programs:
            i = len(out)
            out.append(ClassDef("->".join(prog), prog, False, i + 1))
            rev = tuple(_reverse_name(p) for p in reversed(prog))
            out.append(ClassDef("->".join(rev), prog, True, i))
        out.extend(ClassDef("->".join(p), p) for p in self.controls)
        return out

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def with_(self, **changes: Any) -> "SuiteConfig":
        return replace(self, **changes)


_INVERSE = {
    "right": "left", "left": "right", "down": "up", "up": "down", "grow": "shrink", "shrink": "grow",
    "rotate_ccw": "rotate_cw", "rotate_cw": "rotate_ccw", "squash": "stretch", "stretch": "squash",
    "disappear": "appear", "oscillate": "oscillate", "pulse": "pulse",
}


def _reverse_name(p: str) -> str:
    return _INVERSE[p]


@dataclass
class Clip:
    """One generated clip. ``video`` is uint8 (T, H, W, 3); ``mask`` is bool (T, H, W)."""

    video: np.ndarray
    mask: np.ndarray
    label: int
    meta: dict[str, Any] = field(default_factory=dict)


_SHAPES = ("disc", "square", "triangle", "cross", "ring")
_PALETTE = np.array(
    [[0.95, 0.3, 0.25], [0.25, 0.85, 0.35], [0.3, 0.45, 0.98], [0.98, 0.85, 0.2], [0.9, 0.35, 0.9], [0.2, 0.9, 0.9]],
    np.float32,
)


def _segments(cfg: SuiteConfig, n_prims: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Start and end frame of each primitive in forward time."""
    T = cfg.frames
    if cfg.timing == "continuous":
        edges = np.linspace(0, T - 1, n_prims + 1)
        return [(float(edges[k]), float(edges[k + 1])) for k in range(n_prims)]
    slack = T - (2 * cfg.event_frames + cfg.pause_frames + 2 * cfg.margin_frames)
    cuts = np.sort(rng.integers(0, slack + 1, size=2))
    lead = cfg.margin_frames + int(cuts[0])
    pause = cfg.pause_frames + int(cuts[1] - cuts[0])
    a = (float(lead), float(lead + cfg.event_frames - 1))
    b0 = a[1] + 1 + pause
    return [a, (b0, b0 + cfg.event_frames - 1)]


def _program_states(program: tuple[str, ...], segs: list[tuple[float, float]], frames: int) -> dict[str, np.ndarray]:
    t = np.arange(frames, dtype=np.float64)
    state = {k: np.zeros(frames) for k in _STATE_KEYS}
    for prim, (s, e) in zip(program, segs):
        u = np.clip((t - s) / max(e - s, 1e-9), 0.0, 1.0)
        for key, fn in PRIMITIVES[prim].items():
            state[key] = state[key] + fn(u)
    return state


def _pick_object(cfg: SuiteConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    if cfg.objects == "shape":
        ident = _SHAPES[int(rng.integers(len(_SHAPES)))]
        return render.sprite("shape", ident), {"kind": "shape", "id": ident}
    if cfg.objects == "glyph":
        ident = int(rng.integers(64))
        return render.sprite("glyph", ident), {"kind": "glyph", "id": ident}
    ident, inst = int(rng.integers(10)), int(rng.integers(1000))
    return render.sprite("digit", ident, inst), {"kind": "digit", "id": ident, "instance": inst}


def _background(cfg: SuiteConfig, rng: np.random.Generator) -> np.ndarray:
    """Background frames (T, H, W, 3) in forward time."""
    T, S = cfg.frames, cfg.size
    if cfg.background == "flat":
        col = rng.uniform(0.05, 0.4, size=3).astype(np.float32)
        return np.broadcast_to(col, (T, S, S, 3)).copy()
    if cfg.background in ("texture", "clutter"):
        tex = 0.1 + 0.35 * render.smooth_noise(rng, S, S, cells=4)
        if cfg.background == "clutter":
            for _ in range(6):
                alpha = render.place_sprite(
                    render.sprite("shape", _SHAPES[int(rng.integers(len(_SHAPES)))]),
                    S, S, *rng.uniform(0, S, size=2), size=rng.uniform(0.1, 0.2) * S,
                )
                tex = render.composite(tex, alpha, rng.uniform(0.1, 0.5, size=3).astype(np.float32))
        return np.broadcast_to(tex, (T, S, S, 3)).copy()
    # pan: crop a window that slides over a larger texture
    travel = int(np.ceil(cfg.pan_speed * (T - 1)))
    big = 0.1 + 0.35 * render.smooth_noise(rng, S + travel + 1, S + travel + 1, cells=6)
    direction = rng.uniform(0, 2 * np.pi)
    vx, vy = cfg.pan_speed * np.cos(direction), cfg.pan_speed * np.sin(direction)
    x0 = 0 if vx >= 0 else travel
    y0 = 0 if vy >= 0 else travel
    frames = []
    for t in range(T):
        ox, oy = int(round(x0 + vx * t)), int(round(y0 + vy * t))
        frames.append(big[oy : oy + S, ox : ox + S])
    return np.stack(frames)


def _random_walk(cfg: SuiteConfig, rng: np.random.Generator, margin: float) -> np.ndarray:
    """(T, 2) positions of a distractor: smooth random velocity, reflected at the border."""
    S, T = cfg.size, cfg.frames
    pos = rng.uniform(margin, S - margin, size=2)
    heading = rng.uniform(0, 2 * np.pi)
    out = np.zeros((T, 2))
    for t in range(T):
        out[t] = pos
        heading += rng.normal(0, 0.6)
        pos = pos + cfg.distractor_speed * np.array([np.cos(heading), np.sin(heading)])
        for d in range(2):
            if pos[d] < margin or pos[d] > S - margin:
                pos[d] = np.clip(pos[d], margin, S - margin)
                heading += np.pi
    return out


def generate_clip(cfg: SuiteConfig, label: int, rng: np.random.Generator) -> Clip:
    """Render one clip of class ``label`` with all randomness drawn from ``rng``."""
    T, S = cfg.frames, cfg.size
    cls = cfg.classes[label]
    sprite, obj_meta = _pick_object(cfg, rng)
    size = rng.uniform(*cfg.object_size) * S
    colour = _PALETTE[int(rng.integers(len(_PALETTE)))] * rng.uniform(0.85, 1.0)
    segs = _segments(cfg, len(cls.program), rng)
    st = _program_states(cls.program, segs, T)
    travel = cfg.travel * S
    dx, dy = st["dx"] * travel, st["dy"] * travel
    scale = np.exp(st["dlogscale"])
    # keep the whole trajectory (with its largest extent) inside the canvas
    half = 0.5 * size * scale.max() * np.exp(np.abs(st["dlogaspect"]).max()) * 1.2
    lo_x, hi_x = half - dx.min(), S - half - dx.max()
    lo_y, hi_y = half - dy.min(), S - half - dy.max()
    cx0 = rng.uniform(lo_x, hi_x) if hi_x > lo_x else S / 2 - (dx.min() + dx.max()) / 2
    cy0 = rng.uniform(lo_y, hi_y) if hi_y > lo_y else S / 2 - (dy.min() + dy.max()) / 2
    angle0 = rng.uniform(-0.3, 0.3)
    cx, cy = cx0 + dx, cy0 + dy
    angle = angle0 + st["dangle"]
    aspect = np.exp(st["dlogaspect"])
    alpha_gain = np.clip(1.0 + st["dalpha"], 0.0, 1.0)

    frames = _background(cfg, rng)
    d_tracks = []
    for _ in range(cfg.distractors):
        d_sprite, _m = _pick_object(cfg, rng)
        d_size = rng.uniform(*cfg.object_size) * S
        d_colour = _PALETTE[int(rng.integers(len(_PALETTE)))] * rng.uniform(0.85, 1.0)
        track = _random_walk(cfg, rng, margin=d_size / 2)
        d_angle = rng.uniform(-0.3, 0.3)
        d_tracks.append(track)
        for t in range(T):
            a = render.place_sprite(d_sprite, S, S, track[t, 0], track[t, 1], d_size, d_angle)
            frames[t] = render.composite(frames[t], a, d_colour)

    masks = np.zeros((T, S, S), bool)
    occluded = rng.random(T) < cfg.occlusion
    for t in range(T):
        a = alpha_gain[t] * render.place_sprite(sprite, S, S, cx[t], cy[t], size * scale[t], angle[t], aspect[t])
        frames[t] = render.composite(frames[t], a, colour)
        masks[t] = a > 0.5
    occluders = []
    for t in range(T):
        if occluded[t]:
            # a grey vertical bar over part of the actor
            x0 = int(np.clip(cx[t] + rng.uniform(-0.5, 0.1) * size, 0, S - 1))
            w = max(2, int(0.4 * size))
            frames[t, :, x0 : x0 + w] = 0.5
            masks[t, :, x0 : x0 + w] = False
            occluders.append((t, x0, w))
    noise = rng.normal(0.0, cfg.noise, size=frames.shape).astype(np.float32) if cfg.noise > 0 else 0.0
    frames = frames + noise

    meta: dict[str, Any] = {
        "class_name": cls.name,
        "object": obj_meta,
        "segments": [list(s) for s in segs],
        "centre": np.stack([cx, cy], 1).round(3).tolist(),
        "scale": (size * scale).round(3).tolist(),
        "angle": np.asarray(angle).round(4).tolist(),
        "alpha": alpha_gain.round(3).tolist(),
        "distractors": [tr.round(3).tolist() for tr in d_tracks],
        "occluded_frames": [o[0] for o in occluders],
        "reversed": cls.reversed,
    }
    if cls.reversed:
        frames, masks = frames[::-1], masks[::-1]
        for key in ("centre", "scale", "angle", "alpha"):
            meta[key] = meta[key][::-1]
        meta["distractors"] = [track[::-1] for track in meta["distractors"]]
        meta["occluded_frames"] = sorted(T - 1 - t for t in meta["occluded_frames"])
        meta["segments"] = sorted([T - 1 - e, T - 1 - s] for s, e in meta["segments"])
    if cfg.arrow_of_time:
        ramp = cfg.arrow_of_time * (np.arange(T, dtype=np.float32) / max(T - 1, 1) - 0.5)
        frames = frames + ramp[:, None, None, None]
    video = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
    return Clip(np.ascontiguousarray(video), np.ascontiguousarray(masks), label, meta)


SPLITS = {"train": 0, "test": 1}


def clip_rng(cfg: SuiteConfig, split: str, index: int) -> np.random.Generator:
    """The generator for clip ``index`` of ``split``: independent of every other clip."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {sorted(SPLITS)}")
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, SPLITS[split], index]))


def clip_label(cfg: SuiteConfig, index: int) -> int:
    """Labels cycle through the classes, so every split is balanced."""
    return index % cfg.num_classes


def generate(cfg: SuiteConfig, split: str, index: int) -> Clip:
    return generate_clip(cfg, clip_label(cfg, index), clip_rng(cfg, split, index))


declare("suite/synthetic", 1)

_ORDER_PAIRS = (("right",), ("down",), ("grow",), ("rotate_ccw",))
_ORDER_CONTROLS = (("oscillate",), ("pulse",))

SUITES: dict[str, SuiteConfig] = {
    # classes in time-reversal pairs plus palindromic controls; a reversed clip of a
    # class is distributed exactly as its partner (no arrow of time)
    "order": SuiteConfig("order", _ORDER_PAIRS, _ORDER_CONTROLS, frames=8, size=32),
    # the same classes with a class-independent brightness ramp: true order is visible
    "order_arrow": SuiteConfig("order_arrow", _ORDER_PAIRS, _ORDER_CONTROLS, frames=8, size=32, arrow_of_time=0.3),
    # event, pause, event: two short events separated by a still gap (CIDC's premise)
    "order_events": SuiteConfig(
        "order_events",
        (("right", "grow"), ("down", "rotate_ccw"), ("grow", "right"), ("rotate_ccw", "down")),
        (("right", "left"), ("grow", "shrink")),
        frames=32, size=32, timing="event_pause_event", event_frames=5, pause_frames=10, margin_frames=3,
        object_size=(0.22, 0.3), travel=0.3,
    ),
    # a labelled actor among moving look-alikes over a panning background
    "actor_distractor": SuiteConfig(
        "actor_distractor", _ORDER_PAIRS, (), frames=8, size=32, objects="digit", object_size=(0.3, 0.4),
        background="pan", pan_speed=1.0, distractors=2, distractor_speed=1.5, occlusion=0.1,
    ),
}


def suite_config(name: str, **overrides: Any) -> SuiteConfig:
    """The registered config ``name`` with field ``overrides`` (a clear error if unknown)."""
    return named_suite(SUITES, "order", name, overrides)


def generate_split(cfg: SuiteConfig, split: str, n: int | None = None) -> SuiteArrays:
    """``n`` clips (default: the split's size) of ``split``, generated afresh."""
    n = (cfg.n_train if split == "train" else cfg.n_test) if n is None else n
    t0 = time.perf_counter()
    clips = [generate(cfg, split, i) for i in range(n)]
    seconds = time.perf_counter() - t0
    return SuiteArrays(
        np.stack([c.video for c in clips]),
        np.stack([c.mask for c in clips]),
        np.array([c.label for c in clips], np.int64),
        [c.meta for c in clips],
        cfg,
        seconds,
    )


def load_split(cfg: SuiteConfig, split: str, cache: bool = True) -> SuiteArrays:
    """Read ``split`` of order suite ``cfg`` from the cache, generating and caching on a miss."""
    n = cfg.n_train if split == "train" else cfg.n_test

    def make() -> list[ClipParts]:
        return [(c.video, c.mask, c.label, c.meta) for c in (generate(cfg, split, i) for i in range(n))]

    return cached_split("suite/synthetic", cfg, split, make, cache)
