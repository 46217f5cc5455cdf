"""The cache of generated suite splits.

Every cache is keyed like a record (:func:`vidattn.core.identity.cache_path`): by the
computation's declared version, the versions of what it uses and its full config, so a
changed config or a bumped version never reads a stale file; the computation's behaviour
probe (:mod:`vidattn.core.probes`) fails when its output changes without a bump.

:func:`cached_split` keeps a generated suite split in ``data/cache/<generator>/<key>/``
(compressed arrays and JSON metadata). Tensors that feed a result (stage-1 backbones,
estimated flow) go through ``run.cached`` (:class:`vidattn.core.registry.Run`), which
keys them by the same rule into ``data/cache/<name>/<key>.pt``.

A corrupt or truncated file is named in the error (delete it and it is regenerated).
Writes are atomic (a temporary file, then a rename), so an interrupted run never leaves
half a file.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any, Callable

import numpy as np

from vidattn.core.files import CorruptFileError
from vidattn.core.fingerprint import canonical_json
from vidattn.core.identity import cache_path
from vidattn.data.clips import ClipParts, SuiteArrays


def cached_split(generator: str, cfg: Any, split: str, make: Callable[[], list[ClipParts]], cache: bool = True
                 ) -> SuiteArrays:
    """``split`` of suite ``cfg`` (a config dataclass) of versioned ``generator``, from its cache,
    or ``make()`` it and cache it (module docstring)."""
    config = asdict(cfg)
    folder = cache_path(generator, config)
    path = folder / f"{split}.npz"
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                videos, masks, labels = z["videos"], np.unpackbits(z["masks"], axis=-1).astype(bool), z["labels"]
            meta = json.loads((folder / f"{split}.meta.json").read_text())
        except Exception as e:  # truncated zip, missing member, bad JSON
            raise CorruptFileError(f"suite cache {path} is corrupt or truncated ({type(e).__name__}); delete "
                                   f"{folder} and run again (it is regenerated)") from None
        return SuiteArrays(videos, masks[..., : videos.shape[3]], labels, meta, cfg)
    t0 = time.perf_counter()
    clips = make()
    arrays = SuiteArrays(np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips]),
                         np.array([c[2] for c in clips], np.int64), [c[3] for c in clips], cfg,
                         time.perf_counter() - t0)
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{split}.{os.getpid()}.npz"
        np.savez_compressed(tmp, videos=arrays.videos, masks=np.packbits(arrays.masks, axis=-1), labels=arrays.labels)
        (folder / f"{split}.meta.json").write_text(json.dumps(arrays.meta))
        (folder / "config.json").write_text(canonical_json(config))
        os.replace(tmp, path)
    return arrays
