"""The experiment registry, and the :class:`Run` a running experiment is handed.

An experiment is a function ``fn(config, run) -> result`` registered under a name with
:func:`experiment`. The store (:mod:`vidattn.core.store`) looks experiments up here by
name and calls them with a :class:`Run`; experiments never import the store. ``run``
is how an experiment reaches what the store keeps for it:

* ``run.checkpoint(tag)``: the checkpoint file an interrupted run resumes from, named
  after the record key (``None`` when the experiment is called outside the store);
* ``run.cached(name, fields, make)``: a dict of tensors (a stage-1 backbone, estimated
  flow) from the one cache, keyed like a record (:func:`vidattn.core.identity.cache_path`).

The registry knows only what has been imported: a chapter imports its own experiment
modules, and :mod:`vidattn.catalog` imports every one (the CLI, the probes and the
tests use it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vidattn.core.distributed import barrier, is_rank0
from vidattn.core.files import load_tensors, save_atomic
from vidattn.core.identity import cache_path, declare

ExperimentFn = Callable[[dict[str, Any], "Run"], dict[str, Any]]
EXPERIMENTS: dict[str, ExperimentFn] = {}
# experiments that train with every rank of a ``torchrun`` group (DDP); the others are
# small synthetic-suite runs, which rank 0 runs in single-process workers under torchrun
DISTRIBUTED: set[str] = set()


def experiment(name: str, version: int, uses: tuple[str, ...] = (), distributed: bool = False
               ) -> Callable[[ExperimentFn], ExperimentFn]:
    """Register ``fn`` as experiment ``name`` at ``version`` so records can be keyed and re-run.

    ``uses`` names the versioned computations it reads (a suite generator, a stage-1 cache),
    whose versions enter its records' keys too (:mod:`vidattn.core.identity`). Bump ``version``
    whenever the experiment computes something else; its behaviour probe fails until then.
    ``distributed`` experiments train with every rank under ``torchrun``.
    """

    def wrap(fn: ExperimentFn) -> ExperimentFn:
        if name in EXPERIMENTS and EXPERIMENTS[name].__module__ != fn.__module__:
            raise ValueError(f"experiment {name!r} is registered twice")
        declare(name, version, uses)
        EXPERIMENTS[name] = fn
        if distributed:
            DISTRIBUTED.add(name)
        return fn

    return wrap


def get(name: str) -> ExperimentFn:
    """The experiment registered as ``name`` (a one-line error naming the registered ones)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; registered: {sorted(EXPERIMENTS)} (import its chapter's "
                         "experiment module, or vidattn.catalog for every one)")
    return EXPERIMENTS[name]


@dataclass(frozen=True)
class Planned:
    """A run a chapter plans: its ``row`` (the name its tables use) and its ``config``.

    The row is the record's label, kept beside it and out of its key: two rows with the
    same config are one computation.
    """

    row: str
    config: dict[str, Any]


@dataclass(frozen=True)
class Run:
    """The store's side of one running experiment: its checkpoint files and the caches.

    ``checkpoints`` is the folder of the experiment's checkpoints and ``key`` its record
    key; a ``Run()`` made outside the store has neither, so nothing resumes.
    """

    key: str = ""
    device_type: str = "cpu"
    checkpoints: Path | None = None

    def checkpoint(self, tag: str = "train") -> Path | None:
        """The checkpoint file ``tag`` of this run (None outside the store)."""
        return None if self.checkpoints is None else self.checkpoints / f"{self.key}-{tag}.pt"

    def cached(self, name: str, fields: dict[str, Any], make: Callable[[], dict[str, Any]],
               per_device: bool = True) -> dict[str, Any]:
        """What versioned computation ``name`` makes under ``fields``: read from the cache,
        or ``make()`` it and cache it (rank 0 writes under ``torchrun``, the others wait).

        ``make`` returns a dict of tensors and plain numbers (what ``weights_only`` loads),
        and the same dict comes back either way. ``per_device`` keys the cache by this
        run's device type (training results differ by device; CPU-only work does not).
        """
        path = cache_path(name, fields, self.device_type if per_device else "cpu", ".pt")
        if path.is_file():
            return load_tensors(path, f"{name} cache")
        state = make()
        if is_rank0():
            save_atomic(path, state)
        barrier()
        return state
