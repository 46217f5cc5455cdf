"""The chapters' suites at one resolution and frame count: what each isolates, and how to load it.

Each chapter built a suite that isolates one temporal structure. Here every suite is drawn at
:data:`SIZE` pixels and :data:`FRAMES` frames (the glyph suite needs 48 px for its actor and
glyph, so every suite gets 48), with the overrides that keep its structure at that length
(CIDC's event-pause-event timing shrinks to 2-frame events, a 2-frame pause and 1-frame margins).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from vidattn.data.clips import SuiteArrays
from vidattn.data.suites.glyph import glyph_suite, load_glyph_split
from vidattn.data.suites.motion import load_motion_split, motion_suite
from vidattn.data.suites.order import load_split, suite_config
from vidattn.data.suites.synthact import PAIRS, load_synthact_split, synthact_suite

SIZE, FRAMES = 48, 8


@dataclass(frozen=True)
class Suite:
    """A chapter's suite: the structure it isolates, the chapter, its family's lookup and loader, and
    the overrides that bring it to the common size and length."""

    structure: str
    chapter: str
    family: str
    name: str
    overrides: dict[str, Any]


SUITES: dict[str, Suite] = {
    "order": Suite("order without an arrow of time", "DirecFormer", "order", "order",
                   {"background": "flat", "objects": "glyph"}),
    "events": Suite("event order across a pause", "CIDC", "order", "order_events",
                    {"event_frames": 2, "pause_frames": 2, "margin_frames": 1}),
    "binding": Suite("binding under displacement", "SIFA", "motion", "binding", {}),
    "glyph": Suite("a small cue held over time", "spatial attention", "glyph", "glyph",
                   {"decoys": 0, "occlusion": 0.0}),
    "actor": Suite("a multi-scale actor among distractors", "pyramid attention", "synthact", "synthact", {}),
}
FAMILIES: dict[str, tuple[Callable[..., Any], Callable[..., SuiteArrays]]] = {
    "order": (suite_config, load_split),
    "motion": (motion_suite, load_motion_split),
    "glyph": (glyph_suite, load_glyph_split),
    "synthact": (synthact_suite, load_synthact_split),
}


def suite_cfg(name: str, n_train: int, n_test: int) -> Any:
    """The registered suite behind ``name`` at :data:`SIZE` and :data:`FRAMES` with ``n_train`` and
    ``n_test`` clips (a one-line error for an unknown name)."""
    if name not in SUITES:
        raise ValueError(f"unknown head-to-head suite {name!r}; known: {list(SUITES)}")
    s = SUITES[name]
    lookup, _ = FAMILIES[s.family]
    return lookup(s.name, size=SIZE, frames=FRAMES, n_train=n_train, n_test=n_test, **s.overrides)


def load(name: str, cfg: Any, split: str) -> SuiteArrays:
    """``split`` of suite ``name`` drawn with ``cfg`` (:func:`suite_cfg`)."""
    return FAMILIES[SUITES[name].family][1](cfg, split)


def classes(name: str, cfg: Any) -> tuple[int, list[int | None]]:
    """The number of classes and each class's reversal partner (None: reversal keeps the class)."""
    family = SUITES[name].family
    if family == "order":
        return cfg.num_classes, [c.partner for c in cfg.classes]
    if family == "motion":
        return cfg.num_classes, list(cfg.partner)
    if family == "synthact":
        partner: list[int | None] = [None] * cfg.num_classes
        for a, b in PAIRS:
            partner[a], partner[b] = b, a
        return cfg.num_classes, partner
    return cfg.num_classes, [None] * cfg.num_classes
