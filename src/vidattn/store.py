"""Run records and the result store.

Every experiment is a registered function ``fn(config) -> dict`` (see :func:`experiment`).
:func:`run_or_load` returns its stored record or runs it and stores one. A record is a
JSON file ``records/<experiment>/<key>.json`` holding the config, seed, metrics, curves,
wall time, device, library versions, parameter count and FLOPs.

**The staleness rule.** ``key = sha256(experiment name, canonical config, code
fingerprint, torch and numpy versions, device type)``. The code fingerprint covers the
normalised source of every package module imported (transitively) by the module that
defines the experiment (:mod:`vidattn.fingerprint`), except the modules that store and
present results without computing them (:data:`NON_RESULT_MODULES`). A record is served only when its
key equals the key computed now, so a record is never served for a config, package
code, library version or device type that could give a different result. Edits to
comments and docstrings keep records valid. Records whose key no longer matches are
*stale*: :func:`stale_records` lists them and the ``vidattn store`` command prunes them.

Setting ``VIDATTN_RETRAIN=1`` re-runs every experiment and overwrites its record.

**Resuming.** While an experiment runs, :func:`checkpoint_path` gives it a checkpoint
file named after the record key (``data/checkpoints/<experiment>/<key>-<tag>.pt``). An
interrupted experiment, run again with the same config and code, resumes from it; a
changed config or code has a different key and starts afresh. Checkpoints are deleted
once the record is written.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from vidattn.fingerprint import canonical_json, code_fingerprint, sha256
from vidattn.paths import data_dir, records_dir

ExperimentFn = Callable[[dict[str, Any]], dict[str, Any]]
# these only store, tabulate or plot results: editing them cannot change a metric
NON_RESULT_MODULES = ("vidattn.store", "vidattn.tables", "vidattn.plotting", "vidattn.cli")
# metrics that measure speed rather than results: reported, never verified
TIMING_SUFFIXES = ("_per_second", "_seconds")
EXPERIMENTS: dict[str, ExperimentFn] = {}
_RUNNING: list[tuple[str, str]] = []  # (experiment, key) of the experiment being run


def experiment(name: str) -> Callable[[ExperimentFn], ExperimentFn]:
    """Register ``fn`` as experiment ``name`` so records can be re-run from the CLI."""

    def wrap(fn: ExperimentFn) -> ExperimentFn:
        if name in EXPERIMENTS and EXPERIMENTS[name].__module__ != fn.__module__:
            raise ValueError(f"experiment {name!r} is registered twice")
        EXPERIMENTS[name] = fn
        return fn

    return wrap


def versions() -> dict[str, str]:
    return {"torch": torch.__version__.split("+")[0], "numpy": np.__version__}


def record_key(name: str, config: dict[str, Any], device_type: str = "cpu") -> str:
    fn = _experiment(name)
    code = code_fingerprint([fn.__module__], exclude=NON_RESULT_MODULES)
    payload = canonical_json({"experiment": name, "config": config, "code": code, "versions": versions(),
                              "device": device_type})
    return sha256(payload)[:20]


def _experiment(name: str) -> ExperimentFn:
    if name not in EXPERIMENTS:
        importlib.import_module("vidattn.experiments")  # registers every chapter's experiments
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; registered: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


@dataclass
class Record:
    experiment: str
    key: str
    config: dict[str, Any]
    result: dict[str, Any]
    wall_seconds: float
    device: str
    versions: dict[str, str]
    created: str
    path: Path | None = None

    @property
    def metrics(self) -> dict[str, float]:
        return self.result.get("metrics", {})

    @property
    def curves(self) -> dict[str, list[float]]:
        return self.result.get("curves", {})

    def to_json(self) -> str:
        d = {k: v for k, v in self.__dict__.items() if k != "path"}
        return json.dumps(d, indent=1, sort_keys=True, default=float)


def _record_path(name: str, key: str) -> Path:
    return records_dir() / name / f"{key}.json"


def _device_type(config: dict[str, Any]) -> str:
    dev = str(config.get("device", "cpu"))
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    return dev.split(":")[0]


def load_record(path: Path) -> Record:
    try:
        d = json.loads(path.read_text())
        return Record(path=path, **d)
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"run record {path} is corrupt ({e}); delete it to re-run the experiment") from e


def run_or_load(name: str, config: dict[str, Any], *, force: bool = False) -> Record:
    """The stored record of experiment ``name`` under ``config``, running it on a miss."""
    fn = _experiment(name)
    key = record_key(name, config, _device_type(config))
    path = _record_path(name, key)
    force = force or os.environ.get("VIDATTN_RETRAIN") == "1"
    if path.is_file() and not force:
        rec = load_record(path)
        if rec.key == key:
            return rec
    t0 = time.perf_counter()
    _RUNNING.append((name, key))
    try:
        result = fn(dict(config))
    finally:
        _RUNNING.pop()
    wall = time.perf_counter() - t0
    _check_finite(name, result)
    rec = Record(
        experiment=name, key=key, config=json.loads(canonical_json(config)), result=result, wall_seconds=wall,
        device=_describe_device(_device_type(config)), versions=versions(),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), path=path,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(rec.to_json())
    os.replace(tmp, path)
    for ckpt in _checkpoint_dir(name).glob(f"{key}-*.pt"):
        ckpt.unlink()
    return rec


def _checkpoint_dir(name: str) -> Path:
    return data_dir() / "checkpoints" / name


def checkpoint_path(tag: str = "train") -> Path | None:
    """Checkpoint file of the experiment now running under :func:`run_or_load` (else None)."""
    if not _RUNNING:
        return None
    name, key = _RUNNING[-1]
    return _checkpoint_dir(name) / f"{key}-{tag}.pt"


def _check_finite(name: str, result: dict[str, Any]) -> None:
    for k, v in result.get("metrics", {}).items():
        if isinstance(v, float) and not math.isfinite(v):
            raise FloatingPointError(f"experiment {name!r} produced a non-finite metric {k}={v}")


def _describe_device(kind: str) -> str:
    if kind == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def all_records(name: str | None = None) -> list[Record]:
    root = records_dir()
    pattern = f"{name}/*.json" if name else "**/*.json"
    return [load_record(p) for p in sorted(root.glob(pattern))]


def stale_records() -> list[Record]:
    """Records whose key no longer matches their experiment under the current code."""
    out = []
    for rec in all_records():
        if rec.experiment not in EXPERIMENTS:
            out.append(rec)
            continue
        if record_key(rec.experiment, rec.config, _device_type(rec.config)) != rec.key:
            out.append(rec)
    return out


def verify(records: Iterable[Record], atol: float = 1e-6) -> list[tuple[Record, dict[str, tuple[float, float]]]]:
    """Re-run each record's experiment and return the metrics that differ by more than ``atol``.

    Speed measurements (names ending in :data:`TIMING_SUFFIXES`) are not compared.
    """
    bad = []
    for rec in records:
        fresh = _experiment(rec.experiment)(dict(rec.config))
        diff = {}
        for k, v in rec.metrics.items():
            if k.endswith(TIMING_SUFFIXES):
                continue
            w = fresh.get("metrics", {}).get(k)
            if not isinstance(v, (int, float)) or w is None or abs(float(v) - float(w)) > atol:
                diff[k] = (v, w)
        bad.append((rec, diff))
    return bad
