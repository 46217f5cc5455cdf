"""The procedural suites: order (and its event and actor variants), motion, glyph and SynthAct, with their renderer and optical flow. Each generator is a versioned computation whose splits are cached by :mod:`vidattn.data.cache`."""
from __future__ import annotations

from typing import Any, TypeVar

Config = TypeVar("Config")


def named_suite(suites: dict[str, Config], family: str, name: str, overrides: dict[str, Any]) -> Config:
    """The registered suite ``name`` of a family (``suites``) with field ``overrides``; a one-line
    error for an unknown name or field. Every family's lookup (``suite_config``,
    ``motion_suite``, ``glyph_suite``, ``synthact_suite``) is this one."""
    if name not in suites:
        raise ValueError(f"unknown {family} suite {name!r}; known: {sorted(suites)}")
    cfg = suites[name]
    bad = sorted(set(overrides) - set(cfg.__dataclass_fields__))  # type: ignore[attr-defined]
    if bad:
        raise ValueError(f"unknown {family}-suite field(s) {bad} for suite {name!r}")
    return cfg.with_(**overrides)  # type: ignore[attr-defined]
