"""The on-disk cache of generated suites: one folder per (suite, key), one ``.npz`` per split.

A split is generated once and read back on later calls; a corrupt or truncated file is
named in the error (delete the folder and it is regenerated). Writes are atomic (a
temporary file, then a rename), so an interrupted run never leaves half a split behind.
Keys come from the suite module (config, code, numpy version), so a changed generator
never serves stale clips.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable

import numpy as np

from vidattn.data.suites import SuiteArrays
from vidattn.files import CorruptFileError
from vidattn.fingerprint import canonical_json
from vidattn.paths import data_dir

Clip = tuple[np.ndarray, np.ndarray, int, dict[str, Any]]


def cached_split(folder_name: str, split: str, config: dict[str, Any], suite: Any,
                 make: Callable[[], list[Clip]], cache: bool = True) -> SuiteArrays:
    """``split`` of a suite from ``data/suites/<folder_name>``, or ``make()`` it and cache it."""
    folder = data_dir() / "suites" / folder_name
    path = folder / f"{split}.npz"
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                videos, masks, labels = z["videos"], z["masks"], z["labels"]
            meta = json.loads((folder / f"{split}.meta.json").read_text())
        except Exception as e:  # truncated zip, missing member, bad JSON
            raise CorruptFileError(f"suite cache {path} is corrupt or truncated ({type(e).__name__}); delete "
                                   f"{folder} and run again (it is regenerated)") from None
        return SuiteArrays(videos, masks, labels, meta, suite)
    clips = make()
    arrays = SuiteArrays(np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips]),
                         np.array([c[2] for c in clips], np.int64), [c[3] for c in clips], suite)
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{split}.{os.getpid()}.npz"
        np.savez_compressed(tmp, videos=arrays.videos, masks=arrays.masks, labels=arrays.labels)
        (folder / f"{split}.meta.json").write_text(json.dumps(arrays.meta))
        (folder / "config.json").write_text(canonical_json(config))
        os.replace(tmp, path)
    return arrays
