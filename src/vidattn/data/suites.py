"""Named suites, the on-disk cache of every suite family, and the PyTorch dataset over them.

Each suite generator is a versioned computation (:mod:`vidattn.identity`): this
module's ``suite/synthetic``, and ``suite/motion``, ``suite/glyph`` and ``suite/synthact``
in theirs. :func:`cached_split` keeps a generated split in ``data/cache/<generator>/<key>/``,
keyed by the generator's version and the full suite config, so a changed config or a
bumped generator never reads a stale cache; the generator's behaviour probe (a
checksum of a tiny suite, :mod:`vidattn.probes`) fails when its clips change without a
bump. A split is generated once and read back on later calls; a corrupt or truncated
file is named in the error (delete the folder and it is regenerated). Writes are atomic
(a temporary file, then a rename), so an interrupted run never leaves half a split.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from vidattn.data.synthetic import SuiteConfig, generate
from vidattn.files import CorruptFileError
from vidattn.fingerprint import canonical_json
from vidattn.identity import cache_path, declare

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
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known suites: {sorted(SUITES)}")
    cfg = SUITES[name]
    bad = set(overrides) - set(cfg.__dataclass_fields__)
    if bad:
        raise ValueError(f"unknown suite field(s) {sorted(bad)} for suite {name!r}")
    return cfg.with_(**overrides)


@dataclass
class SuiteArrays:
    """A whole split in memory: uint8 videos (N,T,H,W,3), bool masks (N,T,H,W), labels."""

    videos: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    meta: list[dict[str, Any]]
    config: SuiteConfig
    seconds: float = 0.0  # generation time (0 when read from the cache)

    def __len__(self) -> int:
        return len(self.labels)


Clip = tuple[np.ndarray, np.ndarray, int, dict[str, Any]]  # video, mask, label, meta


def cached_split(generator: str, cfg: Any, split: str, make: Callable[[], list[Clip]], cache: bool = True
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
    """Read ``split`` of suite ``cfg`` from the cache, generating and caching on a miss."""
    n = cfg.n_train if split == "train" else cfg.n_test

    def make() -> list[Clip]:
        return [(c.video, c.mask, c.label, c.meta) for c in (generate(cfg, split, i) for i in range(n))]

    return cached_split("suite/synthetic", cfg, split, make, cache)


class ClipDataset(Dataset):
    """Clips as float tensors (C, T, H, W) in [-0.5, 0.5], with label and actor mask."""

    def __init__(self, arrays: SuiteArrays):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        video = torch.from_numpy(self.arrays.videos[i]).permute(3, 0, 1, 2).float().div_(255.0).sub_(0.5)
        return {
            "video": video,
            "label": torch.tensor(int(self.arrays.labels[i])),
            "mask": torch.from_numpy(self.arrays.masks[i]),
            "index": torch.tensor(i),
        }
