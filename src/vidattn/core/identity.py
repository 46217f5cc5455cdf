"""What a result *is*: the identity that names every record and every cache that feeds one.

A computation is identified by what defines it, never by where it ran::

    identity = {name, versions, config, device type, world size (when > 1)}
    key      = sha256(canonical identity)[:20]

``versions`` maps the computation's name, and every versioned computation it uses (its
suite generator, a stage-1 backbone it starts from, ...), to the version declared with
it: ``@experiment("sifa/train", version=1, uses=("suite/motion",))`` for an experiment,
:func:`declare` for a suite or a cache. The library versions, the CPU's instruction set,
the thread count, the device's name and the code's fingerprint are *provenance*: stored
in each record, shown on the reproducibility page, never part of the key. So a record
made on an AVX512 machine is served on an AVX2 one, and a refactor that computes the
same numbers keeps every record.

What keeps a version honest is its behaviour probe (:mod:`vidattn.core.probes`): a few
seconds of the real code path whose outputs are committed with the version. A change of
computation fails the probe until the version is bumped (its records become stale and
``make retrain`` regenerates them) or the change is reverted.

This module imports nothing heavy, so the data modules can declare their generators.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from vidattn.core.fingerprint import canonical_json, sha256
from vidattn.core.paths import data_dir

VERSIONS: dict[str, int] = {}  # every versioned computation: experiments, suite generators, caches
USES: dict[str, tuple[str, ...]] = {}  # the versioned computations each one reads


def declare(name: str, version: int, uses: Sequence[str] = ()) -> None:
    """Declare computation ``name`` at ``version``, reading the computations ``uses``."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{name!r}: a version is a positive integer, got {version!r}")
    if name in VERSIONS and (VERSIONS[name], USES[name]) != (version, tuple(uses)):
        raise ValueError(f"{name!r} is declared twice with different versions or uses")
    VERSIONS[name], USES[name] = version, tuple(uses)


def versions_of(name: str) -> dict[str, int]:
    """The versions of ``name`` and of everything it uses, transitively."""
    out: dict[str, int] = {}
    todo = [name]
    while todo:
        n = todo.pop()
        if n in out:
            continue
        if n not in VERSIONS:
            raise ValueError(f"{n!r} has no declared version (declared: {sorted(VERSIONS)})")
        out[n] = VERSIONS[n]
        todo.extend(USES[n])
    return dict(sorted(out.items()))


def world_size() -> int:
    """Processes of the ``torchrun`` group this process is in (1 outside one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def identity_of(name: str, config: Any, device_type: str = "cpu", world: int | None = None) -> dict[str, Any]:
    """Everything that defines a computation's result (module docstring); ``world`` defaults
    to this process's :func:`world_size`."""
    world = world_size() if world is None else world
    ident: dict[str, Any] = {"name": name, "versions": versions_of(name), "config": config,
                             "device": device_type}
    if world > 1:  # DDP splits every batch over ranks: batch statistics and reduction order change
        ident["world_size"] = world
    return ident


def key_from(identity: dict[str, Any]) -> str:
    """The key of a record or cache: sha256 of its canonical identity, 20 hex digits."""
    return sha256(canonical_json(identity))[:20]


def key_of(name: str, config: Any, device_type: str = "cpu") -> str:
    """The key of computation ``name`` under ``config`` in this process."""
    return key_from(identity_of(name, config, device_type))


def cache_path(name: str, config: Any, device_type: str = "cpu", suffix: str = "") -> Path:
    """Where the cache of computation ``name`` under ``config`` lives: ``data/cache/<name>/<key><suffix>``.

    The one rule for every cache that feeds a result (suite splits, stage-1 backbones,
    estimated flow): keyed like a record, so a bumped version never serves a stale file.
    """
    return data_dir() / "cache" / name / f"{key_of(name, config, device_type)}{suffix}"
