"""Profiles and the parameters every chapter takes (papermill's ``parameters`` cell).

* ``smoke``: seconds; one seed, tiny suites; what CI and nbval run.
* ``small``: the CPU scaled-down default that regenerates the book on a 2-core machine.
* ``full``: paper-size models and recipes on a GPU, and on a real dataset when
  ``data_root`` is set.

The real-data parameters (:data:`CHAPTER_PARAMETERS`):

* ``data_root``: a dataset in one of the layouts of :mod:`vidattn.data.real`; the
  chapter's real-data experiments train and test on it. ``dataset`` names the layout
  where the files leave it ambiguous (``kinetics600``, ``frame_list``), ``split`` the
  fold (UCF101, HMDB51) or the test split.
* ``weights``: a local pretrained checkpoint (a timm ViT-B/16 for DirecFormer, a
  torchvision ResNet-50 for CIDC's I3D); nothing downloads.
* ``on_bad_video``: ``error`` (default) or ``skip`` (counted in the record).
* ``size_override``: shrinks the model and the data and nothing else, e.g.
  ``{"frames": 8, "size": 32, "model": {"dim": 32, "depth": 2, "heads": 2},
  "epochs": 1, "batch_size": 4, "n_train": 32, "n_test": 16}``. It exists so that the
  ``full`` recipe runs end to end on a CPU fixture (the tests do); every key it takes
  is in :data:`SIZE_OVERRIDE_KEYS`, and an unknown key is an error.
* ``allow_cpu``: run ``full`` on a CPU even when the estimate exceeds
  :data:`vidattn.engine.budget.CPU_LIMIT_HOURS` (see :func:`vidattn.engine.budget.check_cpu_budget`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidattn.core.determinism import RUN_THREADS

PROFILES = ("smoke", "small", "full")
CHAPTER_PARAMETERS = ("profile", "seeds", "device", "data_root", "dataset", "split", "weights", "on_bad_video",
                      "size_override", "allow_cpu", "output_dir")
SIZE_OVERRIDE_KEYS = ("frames", "size", "model", "epochs", "batch_size", "n_train", "n_test")


@dataclass(frozen=True)
class RunContext:
    """Validated chapter parameters."""

    profile: str
    seeds: tuple[int, ...]
    device: str
    data_root: Path | None
    output_dir: Path
    dataset: str = ""
    split: str = ""
    weights: Path | None = None
    on_bad_video: str = "error"
    size_override: dict[str, Any] = field(default_factory=dict)
    allow_cpu: bool = False

    def pick(self, smoke, small, full):
        """The value for the current profile."""
        return {"smoke": smoke, "small": small, "full": full}[self.profile]

    def use_override(self, *keys: str) -> dict[str, Any]:
        """The size override, refused if it holds a key this chapter does not use (never ignored)."""
        unused = sorted(set(self.size_override) - set(keys))
        if unused:
            raise ValueError(f"size_override: this chapter does not use {unused}; it takes {list(keys)}")
        return self.size_override

    def data_spec(self, train: dict[str, Any], test: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` entry of a real-data run: where, which split, how clips are sampled,
        and the annotation files' fingerprint (so a changed split gives a new record key).

        ``train``/``test`` are :class:`vidattn.data.real.Sampling` fields; the size override's
        ``frames`` and ``size`` replace theirs.
        """
        from vidattn.data.real import annotation_fingerprint, detect_layout

        if self.data_root is None:
            raise ValueError("no data_root: this build has no real dataset")
        over = {k: self.size_override[k] for k in ("frames", "size") if k in self.size_override}
        dataset = self.dataset or detect_layout(self.data_root)
        return {"root": str(self.data_root.resolve()), "dataset": dataset, "split": self.split,
                "fingerprint": annotation_fingerprint(self.data_root, dataset), "on_bad_video": self.on_bad_video,
                "train": {**train, **over}, "test": {**test, **over}}

    def weights_spec(self) -> dict[str, str] | None:
        """``{"path", "sha256"}`` of the pretrained checkpoint (None without one): its hash is
        part of every run's key, so other weights never serve an old record."""
        if self.weights is None:
            return None
        h = hashlib.sha256()
        with open(self.weights, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 24), b""):
                h.update(chunk)
        return {"path": str(self.weights.resolve()), "sha256": h.hexdigest()}


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    return device


def _size_override(value: Any) -> dict[str, Any]:
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"size_override must be a mapping such as {{'size': 32, 'frames': 8}}, got {value!r}")
    unknown = sorted(set(value) - set(SIZE_OVERRIDE_KEYS))
    if unknown:
        raise ValueError(f"size_override: unknown key(s) {unknown}; it takes {list(SIZE_OVERRIDE_KEYS)}")
    if "model" in value and not isinstance(value["model"], dict):
        raise ValueError(f"size_override['model'] must be a mapping of model fields, got {value['model']!r}")
    return dict(value)


def setup(profile: str, seeds: int, device: str = "auto", data_root: str = "", output_dir: str = "outputs", *,
          dataset: str = "", split: str | int = "", weights: str = "", on_bad_video: str = "error",
          size_override: dict[str, Any] | None = None, allow_cpu: bool = False) -> RunContext:
    """The chapter's validated parameters (:func:`context`), with the kernel set up to run it.

    Also fixes the chapter kernel's own numerics as the engine fixes a run's (one intra-op
    thread on the CPU, deterministic kernels), so that what a chapter computes outside the
    records (equation checks, untrained baselines) prints the same on any machine. Under
    ``torchrun`` it joins the process group (gloo on the CPU, NCCL on GPUs).
    """
    ctx = context(profile, seeds, device, data_root, output_dir, dataset=dataset, split=split, weights=weights,
                  on_bad_video=on_bad_video, size_override=size_override, allow_cpu=allow_cpu)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from vidattn.core.distributed import init_from_env

        init_from_env("cuda" if ctx.device.startswith("cuda") else "cpu")
    if ctx.device == "cpu":  # what a chapter computes itself follows the engine's rule for records
        torch.set_num_threads(RUN_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return ctx


def context(profile: str, seeds: int = 1, device: str = "cpu", data_root: str = "", output_dir: str = "outputs",
            *, dataset: str = "", split: str | int = "", weights: str = "", on_bad_video: str = "error",
            size_override: dict[str, Any] | None = None, allow_cpu: bool = False) -> RunContext:
    """Validate the chapter parameters into a :class:`RunContext` (a one-line error for a bad
    value); it changes nothing, so scripts and tests build the configs a chapter would."""
    from vidattn.data.real import BAD_VIDEO_POLICIES, LAYOUTS

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer (the number of seeds), got {seeds!r}")
    root = Path(data_root) if data_root else None
    if root is not None and not root.exists():
        raise FileNotFoundError(f"data_root {root} does not exist; leave it empty to use the synthetic suites")
    if dataset and dataset not in LAYOUTS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(LAYOUTS)}")
    if (dataset or split) and root is None:
        raise ValueError(f"dataset={dataset!r} / split={split!r} given without data_root: they would be ignored")
    if on_bad_video not in BAD_VIDEO_POLICIES:
        raise ValueError(f"unknown on_bad_video {on_bad_video!r}; choose one of {BAD_VIDEO_POLICIES}")
    ckpt = Path(weights) if weights else None
    if ckpt is not None and not ckpt.is_file():
        raise FileNotFoundError(f"weights file {ckpt} not found; nothing downloads, so pass a local checkpoint")
    if ckpt is not None and root is None:
        raise ValueError(f"weights={ckpt} given without data_root: the synthetic suites train from scratch, so "
                         "the weights would be ignored")
    return RunContext(profile, tuple(range(seeds)), resolve_device(device), root, Path(output_dir), dataset,
                      str(split), ckpt, on_bad_video, _size_override(size_override), bool(allow_cpu))


def apply_override(base: dict[str, Any], ctx: RunContext, places: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """``base`` settings with ``ctx``'s ``size_override`` applied where a chapter's ``places`` say.

    ``places`` maps each override key the chapter takes to the settings it sets (dotted
    paths into nested mappings; a mapping value merges into a mapping there). A key with
    no entry is refused, never ignored; a key with no places is one the chapter reads
    elsewhere (its real-data runs). Without an override ``base`` itself comes back, so
    configs and record keys stay as they were.
    """
    override = ctx.use_override(*places)
    if not override:
        return base
    out = _copy(base)
    for k, value in override.items():
        for path in places[k]:
            *parents, leaf = path.split(".")
            node = out
            for part in parents:
                node = node[part]
            old = node.get(leaf)
            node[leaf] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def _copy(d: Any) -> Any:
    return {k: _copy(v) for k, v in d.items()} if isinstance(d, dict) else d
