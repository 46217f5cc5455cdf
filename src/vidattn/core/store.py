"""Run records and the result store.

Every experiment is a registered function ``fn(config, run) -> dict`` (:mod:`vidattn.core.registry`).
:func:`run_or_load` returns its stored record or runs it and stores one;
:func:`run_many` does the same for a list of configs, running the missing ones in
parallel worker processes. A record is a JSON file ``records/<experiment>/<key>.json``
holding the config, seed, metrics, curves, examples, per-clip outcomes, wall time,
device and library versions.

**Numerics.** Every run executes under :func:`vidattn.core.determinism.fixed_numerics`
(one intra-op thread on the CPU, deterministic kernels, float32), whatever the caller's
thread settings, so a record reproduces bit for bit on any machine with the same
library versions and CPU instruction set. Parallelism comes from worker processes,
one run each, never from threads inside a run.

**Identity and provenance.** A record's key is the hash of what defines its computation
(:mod:`vidattn.core.identity`): the experiment's name, its declared version and the versions
of what it uses, the canonical config, the device type and the world size. Where and by
which code it ran is provenance stored beside the result, never part of the key: the
library versions, CPU instruction set and threads (``versions``), the device's name
(``device``) and the code fingerprint of the experiment's import closure (``code``,
:mod:`vidattn.core.fingerprint`). A record is served when its key equals the key computed
now, on any machine. Records whose key no longer matches (a version was bumped, a
config changed) are *stale*: :func:`stale_records` lists them and ``vidattn store stale
--delete`` prunes them. ``vidattn store drift`` lists the records whose code fingerprint
differs from today's: made by earlier code that the behaviour probes vouch computes
the same (:mod:`vidattn.core.probes`). Caches that feed results (suite splits, stage-1
backbones, flow) are keyed the same way (:func:`vidattn.core.identity.cache_path`).

Setting ``VIDATTN_RETRAIN=1`` re-runs every experiment and overwrites its record.

**Resuming.** While an experiment runs, ``run.checkpoint(tag)`` gives it a checkpoint
file named after the record key (``data/checkpoints/<experiment>/<key>-<tag>.pt``). An
interrupted experiment, run again with the same config and code, resumes from it; a
changed config or code has a different key and starts afresh. Checkpoints are deleted
once the record is written.

**Verification.** :func:`verify` re-runs records from scratch in a scratch data folder
(no suite, backbone or checkpoint cache is read). In the record's own environment
(:func:`same_environment`) it compares metrics, curves, examples and per-clip outcomes
exactly, speed measurements exempt; elsewhere floating-point kernels differ, so it
reports each fresh metric beside the spread of the record's row over seeds and promises
no exact match (:func:`row_spread`). What must hold on any machine is a verdict:
``vidattn store verify --claim`` re-runs the records a ledger claim rests on and
recomputes the claim (:mod:`vidattn.report.claims`).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import random
import resource
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Union

import torch

from vidattn.core import registry
from vidattn.core.determinism import environment, fixed_numerics
from vidattn.core.distributed import barrier, is_rank0
from vidattn.core.executors import Call, LocalExecutor, executor_name, get_executor
from vidattn.core.files import write_atomic
from vidattn.core.fingerprint import canonical_json, code_fingerprint
from vidattn.core.identity import identity_of, key_of
from vidattn.core.paths import data_dir, records_dir
from vidattn.core.registry import Planned

LOG = logging.getLogger(__name__)

# these only store, tabulate, test or plot results: left out of the code fingerprint (provenance)
NON_RESULT_MODULES = ("vidattn.core.store", "vidattn.core.executors", "vidattn.report", "vidattn.cli",
                      "vidattn.catalog")
# metrics and curves that measure speed rather than results: reported, never verified
TIMING_SUFFIXES = ("_per_second", "_seconds")
RESULT_PARTS = ("metrics", "curves", "examples", "per_clip")
TORCHRUN_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                      "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def record_key(name: str, config: dict[str, Any], device_type: str | None = None) -> str:
    """The key of experiment ``name``'s record under ``config`` (:mod:`vidattn.core.identity`)."""
    registry.get(name)
    return key_of(name, config, device_type or device_type_of(config))


def code_of(name: str) -> str:
    """Code fingerprint (provenance) of experiment ``name``: its module's import closure."""
    return code_fingerprint([registry.get(name).__module__], exclude=NON_RESULT_MODULES)


@dataclass
class Record:
    experiment: str
    key: str
    config: dict[str, Any]
    result: dict[str, Any]
    wall_seconds: float
    device: str
    versions: dict[str, Any]
    created: str
    identity: dict[str, Any]
    code: str
    row: str = ""  # the chapter's name for the run (a label, outside the key; see Planned)
    path: Path | None = field(default=None, compare=False)

    @property
    def metrics(self) -> dict[str, float]:
        return self.result.get("metrics", {})

    @property
    def curves(self) -> dict[str, list[float]]:
        return self.result.get("curves", {})

    @property
    def per_clip(self) -> dict[str, list[int]]:
        """Per test clip outcomes (1 = correct) of each accuracy metric, in test-set order."""
        return self.result.get("per_clip", {})

    def to_json(self) -> str:
        d = {k: v for k, v in self.__dict__.items() if k != "path"}
        return json.dumps(d, indent=1, sort_keys=True)


def _record_path(name: str, key: str) -> Path:
    return records_dir() / name / f"{key}.json"


def device_type_of(config: dict[str, Any]) -> str:
    dev = str(config.get("device", "cpu"))
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    return dev.split(":")[0]


def load_record(path: Path) -> Record:
    try:
        d = json.loads(path.read_text())
        return Record(path=path, **d)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
        raise CorruptRecordError(f"run record {path} is corrupt ({e}); delete it to re-run the experiment") from e


class CorruptRecordError(ValueError):
    """A record file that is not a valid record."""


def _normalise(result: dict[str, Any]) -> dict[str, Any]:
    """The result as it reads back from JSON (tuples become lists, numpy floats floats)."""
    unknown = set(result) - set(RESULT_PARTS)
    if unknown:
        raise ValueError(f"an experiment result has unknown part(s) {sorted(unknown)}; known: {RESULT_PARTS}")
    return json.loads(json.dumps(result, sort_keys=True, default=float))


def execute(name: str, config: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Run experiment ``name`` under the engine's fixed numerics: (normalised result, seconds).

    The experiment is handed its :class:`~vidattn.core.registry.Run`: checkpoints named
    after its record key (an interrupted run resumes) and the shared caches.
    """
    fn = registry.get(name)
    dev = device_type_of(config)
    run = registry.Run(record_key(name, config), dev, _checkpoint_dir(name))
    t0 = time.perf_counter()
    with fixed_numerics(dev):
        result = fn(dict(config), run)
    wall = time.perf_counter() - t0
    _check_finite(name, result)
    return _normalise(result), wall


def compute_record(name: str, config: dict[str, Any], row: str = "") -> Record:
    """Run experiment ``name`` under ``config`` and return its record, unwritten (what a worker of
    an executor does; the driver stores it with :func:`store_record`). The run's checkpoints,
    on this machine, are removed once it has finished."""
    key = record_key(name, config)
    result, wall = execute(name, config)
    dev = device_type_of(config)
    canonical = json.loads(canonical_json(config))
    rec = Record(
        experiment=name, key=key, config=canonical, result=result, wall_seconds=wall,
        device=_describe_device(dev), versions=environment(dev),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        identity=identity_of(name, canonical, dev), code=code_of(name), row=row, path=_record_path(name, key),
    )
    if is_rank0():
        for ckpt in _checkpoint_dir(name).glob(f"{key}-*.pt"):
            ckpt.unlink()
    return rec


def store_record(rec: Record) -> Record:
    """Write a computed record into this machine's store (atomically) and log the run."""
    rec = replace(rec, path=_record_path(rec.experiment, rec.key))
    write_record(rec, rec.path)
    _log_run(rec)
    return rec


def run_or_load(name: str, config: dict[str, Any], *, force: bool = False, row: str = "") -> Record:
    """The stored record of experiment ``name`` under ``config``, running it here on a miss;
    ``row`` labels it (the label of this request, whatever label the stored file carries)."""
    key = record_key(name, config)
    path = _record_path(name, key)
    force = force or os.environ.get("VIDATTN_RETRAIN") == "1"
    if path.is_file() and not force:
        rec = load_record(path)
        if rec.key == key:
            return replace(rec, row=row)
    rec = compute_record(name, config, row)
    if is_rank0():  # under torchrun every rank ran the experiment; rank 0 writes its record
        store_record(rec)
    barrier()
    return rec


RUN_LOG = "VIDATTN_RUN_LOG"  # a file that gets one line per experiment run (``vidattn run-all`` counts them)


def _log_run(rec: Record) -> None:
    log = os.environ.get(RUN_LOG)
    if log:
        with open(log, "a") as f:  # one short line per append: whole lines even from parallel workers
            f.write(f"{rec.experiment} {rec.key} {rec.wall_seconds:.1f}\n")


def runs_logged(log: Path) -> list[tuple[str, str, float]]:
    """The (experiment, key, seconds) runs a :data:`RUN_LOG` file holds."""
    if not log.is_file():
        return []
    return [(a, b, float(c)) for a, b, c in (line.split() for line in log.read_text().splitlines() if line)]


def write_record(rec: Record, path: Path) -> None:
    """Write ``rec`` to ``path`` atomically (:func:`vidattn.core.files.write_atomic`)."""
    write_atomic(path, lambda tmp: tmp.write_text(rec.to_json()))


def default_workers() -> int:
    """Worker processes for :func:`run_many`: ``$VIDATTN_WORKERS``, else one per core."""
    env = os.environ.get("VIDATTN_WORKERS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"VIDATTN_WORKERS must be a positive integer, got {env!r}")
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_seconds_used() -> float:
    """CPU seconds (user + system) of this process and of the finished workers it started.

    A budget checked in CPU seconds holds on a busy machine, where wall time does not:
    processes competing for the cores slow the clock, not the work.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _compute(fn: registry.ExperimentFn, name: str, config: dict[str, Any], row: str) -> Record:
    # ``fn`` travels by reference: unpickling it imports its module, which registers it
    return compute_record(name, config, row)


Runs = Iterable[Union[Planned, dict[str, Any]]]


def planned(runs: Runs) -> list[Planned]:
    """Runs as :class:`~vidattn.core.registry.Planned` (a bare config is an unnamed row)."""
    return [r if isinstance(r, Planned) else Planned("", r) for r in runs]


def run_many(name: str, runs: Runs, workers: int | None = None, log: bool = True) -> list[Record]:
    """The records of ``runs`` (in order, each labelled with its row); the missing ones run in
    parallel worker processes.

    ``runs`` are :class:`~vidattn.core.registry.Planned` (a row name and a config) or bare
    configs. Each worker runs one experiment at a time with one intra-op thread, so the
    records are the same as :func:`run_or_load` would write in this process, only sooner.
    Runs on CUDA execute here, one after the other. Under ``torchrun``, a distributed
    experiment runs here on every rank (DDP); any other runs in single-process workers
    started by rank 0 without the group's variables (its records are keyed as one
    process's), while the other ranks wait.
    """
    runs = planned(runs)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        registry.get(name)  # a clear error for an unknown experiment
        if name in registry.DISTRIBUTED:
            return [run_or_load(name, r.config, row=r.row) for r in runs]
        with _without_torchrun():  # this process is in the group: the runs go to fresh processes
            failed: Exception | None = None
            if is_rank0():
                try:
                    _run_missing(name, runs, max(1, workers or default_workers()), log, spawn=True)
                except Exception as e:  # the other ranks must not wait forever at the barrier
                    failed = e
            barrier()
            if failed is not None:
                raise failed
            return [_labelled(name, record_key(name, r.config), r.row) for r in runs]
    workers = default_workers() if workers is None else workers
    local = executor_name() == "local"
    if local and (workers <= 1 or any(device_type_of(r.config) != "cpu" for r in runs)):
        return [run_or_load(name, r.config, row=r.row) for r in runs]
    return _run_missing(name, runs, workers, log)


def _recorded_seconds(name: str, key: str) -> float | None:
    """The recorded run time of a stored record (a re-run's expected time), if there is one."""
    path = _record_path(name, key)
    try:
        return load_record(path).wall_seconds if path.is_file() else None
    except CorruptRecordError:
        return None


def _labelled(name: str, key: str, row: str) -> Record:
    """The stored record ``key`` of experiment ``name``, labelled with the requested row."""
    return replace(load_record(_record_path(name, key)), row=row)


def _run_missing(name: str, runs: list[Planned], workers: int, log: bool, spawn: bool = False) -> list[Record]:
    """Run the runs without a record on the executor (:mod:`vidattn.core.executors`; locally, a
    single one here unless ``spawn``), store each record as it arrives, then load every record."""
    force = os.environ.get("VIDATTN_RETRAIN") == "1"
    keys = [record_key(name, r.config) for r in runs]
    seen: set[str] = set()  # one run per key, even if two rows ask for the same config
    missing = [i for i, k in enumerate(keys)
               if (force or not _record_path(name, k).is_file()) and not (k in seen or seen.add(k))]
    fn = registry.get(name)
    t0 = time.perf_counter()
    executor = get_executor()
    if executor.name == "local" and spawn:
        executor = LocalExecutor(in_process=False)
    calls = [Call(_compute, (fn, name, runs[i].config, runs[i].row),
                  f"experiment {name!r} with config {canonical_json(runs[i].config)[:600]}",
                  gpu=device_type_of(runs[i].config) != "cpu", expected_seconds=_recorded_seconds(name, keys[i]))
             for i in missing]
    n = 1 if any(c.gpu for c in calls) and executor.name == "local" else min(workers, max(len(calls), 1))
    for _, rec in executor.imap(calls, n):
        store_record(rec)  # the driver writes each record, once, as it arrives
    if missing:
        if log:
            # a log, not a print: run times belong on the reproducibility page, not in a chapter's output
            LOG.info("%s: ran %d missing run(s) in %.0f s on %d worker processes", name, len(missing),
                     time.perf_counter() - t0, n)
    return [_labelled(name, k, r.row) for k, r in zip(keys, runs)]


@contextmanager
def _without_torchrun() -> Iterator[None]:
    """The process environment without ``torchrun``'s variables (restored afterwards)."""
    saved = {k: os.environ.pop(k) for k in TORCHRUN_VARIABLES if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _checkpoint_dir(name: str) -> Path:
    return data_dir() / "checkpoints" / name


def _check_finite(name: str, result: dict[str, Any]) -> None:
    for k, v in result.get("metrics", {}).items():
        if isinstance(v, float) and not math.isfinite(v):
            raise FloatingPointError(f"experiment {name!r} produced a non-finite metric {k}={v}")


def _describe_device(kind: str) -> str:
    if kind == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return (f"cpu ({platform.processor() or platform.machine()}, "
            f"{torch.backends.cpu.get_cpu_capability()}, {environment('cpu')['threads']} thread per run)")


def scan_records(name: str | None = None) -> tuple[list[Record], list[tuple[Path, str]]]:
    """Every readable record, and every corrupt record file with its error."""
    root = records_dir()
    pattern = f"{name}/*.json" if name else "**/*.json"
    good, bad = [], []
    for p in sorted(root.glob(pattern)):
        try:
            good.append(load_record(p))
        except CorruptRecordError as e:
            bad.append((p, str(e)))
    return good, bad


def all_records(name: str | None = None) -> list[Record]:
    """Every record (raises :class:`CorruptRecordError` on a corrupt file)."""
    good, bad = scan_records(name)
    if bad:
        raise CorruptRecordError(bad[0][1])
    return good


def is_stale(rec: Record) -> bool:
    """Whether ``rec``'s key differs from the key of its config under the current code."""
    if rec.experiment not in registry.EXPERIMENTS:
        return True
    return record_key(rec.experiment, rec.config) != rec.key


def stale_records() -> list[Record]:
    """Readable records whose key no longer matches their experiment under the current code."""
    return [r for r in scan_records()[0] if is_stale(r)]


@contextmanager
def scratch_data_dir(folder: Path | None = None) -> Iterator[Path]:
    """Run with an empty data folder (no suite, cache or checkpoint is read); records stay put.

    With ``folder`` (an empty folder the caller made and removes) runs share it, so what
    they have in common (a suite, a stage-1 backbone) is made once, by the first that needs it.
    """
    keep = {k: os.environ.get(k) for k in ("VIDATTN_DATA_DIR", "VIDATTN_RECORDS_DIR")}
    os.environ["VIDATTN_RECORDS_DIR"] = str(records_dir())
    with tempfile.TemporaryDirectory(prefix="vidattn-verify-") as own:
        tmp = str(folder) if folder is not None else own
        os.environ["VIDATTN_DATA_DIR"] = tmp
        try:
            yield Path(tmp)
        finally:
            for k, v in keep.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def is_timing(name: str) -> bool:
    """Whether a metric or curve measures speed (reported, never verified or probed)."""
    return name.endswith(TIMING_SUFFIXES)


def compare_results(stored: dict[str, Any], fresh: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Exact differences between two normalised results, by ``part/name`` (timings exempt)."""
    diff: dict[str, tuple[Any, Any]] = {}
    for part in RESULT_PARTS:
        a, b = stored.get(part, {}), fresh.get(part, {})
        for k in sorted(set(a) | set(b)):
            if is_timing(k):
                continue
            if canonical_json(a.get(k)) != canonical_json(b.get(k)):
                diff[f"{part}/{k}"] = (_short(a.get(k)), _short(b.get(k)))
    return diff


def _short(v: Any) -> Any:
    text = json.dumps(v)
    return v if len(text) <= 60 else text[:57] + "..."


def _verify_one(fn: registry.ExperimentFn, name: str, config: dict[str, Any], folder: str | None = None
                ) -> dict[str, Any]:
    # ``fn`` travels by reference: unpickling it imports its module, which registers it
    with scratch_data_dir(Path(folder) if folder else None):
        return execute(name, config)[0]


def rerun(records: Iterable[Record], workers: int = 1, shared: bool = False) -> list[dict[str, Any]]:
    """Each record's experiment re-run from scratch (no suite, backbone or checkpoint cache that
    existed before is read): the fresh normalised results, in order; ``workers`` > 1 runs them
    in parallel processes. ``shared`` gives the re-runs one empty data folder (what they share,
    such as a stage-1 backbone, is made once among them) instead of one each."""
    records = list(records)
    fns = [registry.get(r.experiment) for r in records]
    with tempfile.TemporaryDirectory(prefix="vidattn-rerun-") as tmp:
        calls = [Call(_verify_one, (fn, r.experiment, r.config, tmp if shared else None),
                      f"re-run of {r.experiment}/{r.key}", gpu=device_type_of(r.config) != "cpu",
                      expected_seconds=r.wall_seconds) for fn, r in zip(fns, records)]
        out: list[dict[str, Any]] = [{}] * len(calls)
        for i, result in get_executor().imap(calls, workers):
            out[i] = result
        return out


def same_environment(rec: Record) -> bool:
    """Whether this process runs ``rec``'s computation as it was run: same library versions, device
    type, CPU instruction set, threads and world size (its stored provenance); then a re-run is exact."""
    return rec.versions == environment(device_type_of(rec.config))


@dataclass(frozen=True)
class Spread:
    """A fresh metric beside its row's values over seeds (:func:`row_of`)."""

    fresh: float
    mean: float
    sd: float
    lo: float
    hi: float
    n: int

    @property
    def within(self) -> bool | None:
        """Inside the seeds' range widened by one seed standard deviation (None: one seed, no spread)."""
        if self.n < 2:
            return None
        return self.lo - self.sd - 1e-9 <= self.fresh <= self.hi + self.sd + 1e-9


def row_of(rec: Record, records: Iterable[Record]) -> list[Record]:
    """The records of ``rec``'s row: the same experiment and config but for the seed."""
    strip = {k: v for k, v in rec.config.items() if k != "seed"}
    return [r for r in records if r.experiment == rec.experiment
            and {k: v for k, v in r.config.items() if k != "seed"} == strip]


def row_spread(rec: Record, fresh: dict[str, Any], records: Iterable[Record]) -> dict[str, Spread]:
    """Each fresh metric of ``rec`` beside the spread of its row over seeds (speed measurements left out)."""
    row = row_of(rec, records)
    out = {}
    for k, v in sorted(fresh.get("metrics", {}).items()):
        vals = [float(r.metrics[k]) for r in row if isinstance(r.metrics.get(k), (int, float))]
        if is_timing(k) or not isinstance(v, (int, float)) or not vals:
            continue
        mean = sum(vals) / len(vals)
        sd = math.sqrt(sum((x - mean) ** 2 for x in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        out[k] = Spread(float(v), mean, sd, min(vals), max(vals), len(vals))
    return out


@dataclass(frozen=True)
class Verification:
    """A record re-run: exact differences in its own environment, else metrics beside their row's spread."""

    record: Record
    exact: bool
    diff: dict[str, tuple[Any, Any]]
    spread: dict[str, Spread]

    @property
    def holds(self) -> bool:
        if self.exact:
            return not self.diff
        return all(s.within is not False for s in self.spread.values())


def verify(records: Iterable[Record], workers: int = 1, store_records: Iterable[Record] | None = None
           ) -> list[Verification]:
    """Re-run each record from scratch (no caches) and check it.

    In the record's own environment (:func:`same_environment`) metrics, curves, examples and
    per-clip outcomes must match exactly (speed measurements, names ending in
    :data:`TIMING_SUFFIXES`, exempt). Elsewhere kernels differ, so no exact match is
    promised: each fresh metric is reported beside the spread of the record's row over
    seeds among ``store_records`` (default: every record of the store) and holds when it
    lies in the seeds' range widened by one standard deviation.
    """
    records = list(records)
    fresh = rerun(records, workers)
    pool = None
    out = []
    for r, f in zip(records, fresh):
        if same_environment(r):
            out.append(Verification(r, True, compare_results(r.result, f), {}))
            continue
        if pool is None:
            pool = list(store_records) if store_records is not None else scan_records()[0]
        out.append(Verification(r, False, compare_results(r.result, f), row_spread(r, f, pool)))
    return out


def sample_records(records: list[Record], n: int | None, seed: int = 0) -> list[Record]:
    """``n`` records drawn with a fixed seed (all of them when ``n`` is None)."""
    if n is None or n >= len(records):
        return list(records)
    return random.Random(seed).sample(records, n)
