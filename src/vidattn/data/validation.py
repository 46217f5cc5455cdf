"""A validation split carved from a training split: what a pilot scores on (never the test split)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from vidattn.data.clips import SuiteArrays


def validation_size(n_train: int, share: float) -> int:
    """How many of ``n_train`` training clips a pilot holds out as its validation split: ``share`` of
    them, rounded, and at least one."""
    return max(1, round(share * n_train))


def carve(arrays: SuiteArrays, part: slice) -> SuiteArrays:
    """The clips ``part`` of a split: the same clips in the same order, one array each."""
    return dataclasses.replace(arrays, videos=arrays.videos[part], masks=arrays.masks[part],
                               labels=arrays.labels[part], meta=arrays.meta[part])


def hold_out(train: SuiteArrays, n: int) -> tuple[SuiteArrays, SuiteArrays]:
    """A training split less its last ``n`` clips, and those ``n`` clips (the validation split)."""
    if not 0 < n < len(train):
        raise ValueError(f"validation must be between 1 and {len(train) - 1} training clips, got {n!r}")
    return carve(train, slice(None, -n)), carve(train, slice(-n, None))


def held_out(config: dict[str, Any], train: SuiteArrays, load_test: Callable[[], SuiteArrays]
             ) -> tuple[SuiteArrays, SuiteArrays]:
    """The clips a run trains on and the clips it is scored on: the training and test splits, or for
    a pilot (config ``validation`` = n) the training split less its last n clips and those n clips,
    the test split never read."""
    n = config.get("validation")
    return hold_out(train, n) if n else (train, load_test())


def cache_fields(config: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The config fields that key a cached stage-1 model: ``names``, and a pilot's ``validation``
    (its model must never have trained on its validation clips)."""
    fields = {k: config.get(k) for k in names}
    if config.get("validation"):
        fields["validation"] = config["validation"]
    return fields
