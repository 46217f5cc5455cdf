"""A validation split carved from a training split: what a pilot scores on (never the test split)."""
from __future__ import annotations

import dataclasses

from vidattn.data.clips import SuiteArrays


def carve(arrays: SuiteArrays, part: slice) -> SuiteArrays:
    """The clips ``part`` of a split: the same clips in the same order, one array each."""
    return dataclasses.replace(arrays, videos=arrays.videos[part], masks=arrays.masks[part],
                               labels=arrays.labels[part], meta=arrays.meta[part])


def hold_out(train: SuiteArrays, n: int) -> tuple[SuiteArrays, SuiteArrays]:
    """A training split less its last ``n`` clips, and those ``n`` clips (the validation split)."""
    if not 0 < n < len(train):
        raise ValueError(f"validation must be between 1 and {len(train) - 1} training clips, got {n!r}")
    return carve(train, slice(None, -n)), carve(train, slice(-n, None))
