"""How regenerating the records scales with workers: a measurement on this machine, and the wall
time of the whole book predicted from the records' own run times.

:func:`measure` runs one fixed set of experiment runs from scratch under each executor and
worker count (a fresh store and data folder each time), times them, and checks that every
setting wrote the same records (:func:`vidattn.core.store.compare_results`; timings exempt).
``vidattn cluster-scaling`` writes its table to ``data/cluster_scaling.json``, which the
book's cluster page reads: the measurement is committed, like the records, so the page
builds anywhere without re-running it.

:func:`predicted_hours` schedules the records' recorded run times on ``P`` workers with the
longest-first rule (LPT), which is within 4/3 of the best schedule, and gives the two lower
bounds no schedule beats: the total over ``P`` and the longest single run. It ignores that a
stage-2 run waits for its stage-1 backbone, which adds at most the longest stage-1 run.
"""
from __future__ import annotations

import heapq
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from vidattn.core import store
from vidattn.core.paths import REPO_ROOT
from vidattn.core.registry import Planned

SCALING_FILE = REPO_ROOT / "data" / "cluster_scaling.json"
SETTINGS = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2))  # (executor, workers)


def lpt_makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall time of ``seconds`` on ``workers`` identical workers, longest job first to the idlest."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + s)
    return max(loads) if seconds else 0.0


def predicted_hours(records: Iterable[store.Record], cores: Sequence[int]) -> list[dict[str, float]]:
    """For each core count: the LPT wall time of every record and its two lower bounds, in hours."""
    seconds = [r.wall_seconds for r in records]
    total, longest = sum(seconds), max(seconds, default=0.0)
    return [{"cores": p, "LPT schedule (h)": lpt_makespan(seconds, p) / 3600,
             "total / cores (h)": total / p / 3600, "longest run (h)": longest / 3600} for p in cores]


@contextmanager
def _environment(**variables: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def measure(name: str, runs: Sequence[Planned], settings: Sequence[tuple[str, int]] = SETTINGS
            ) -> list[dict[str, Any]]:
    """Run ``runs`` of experiment ``name`` from scratch under each (executor, workers) setting; the
    wall time of each, and whether its records equal the first setting's. A Ray setting starts
    its own local cluster with that many CPUs (the start is included in its time)."""
    rows, first = [], None
    for executor, workers in settings:
        with tempfile.TemporaryDirectory(prefix="vidattn-scaling-") as tmp, _environment(
                VIDATTN_EXECUTOR=executor, VIDATTN_RECORDS_DIR=f"{tmp}/records", VIDATTN_DATA_DIR=f"{tmp}/data"):
            t0 = time.perf_counter()
            records = store.run_many(name, list(runs), workers=workers)
            wall = time.perf_counter() - t0
            if executor == "ray":
                import ray

                ray.shutdown()
        results = {r.key: r.result for r in records}
        first = first or results
        same = results.keys() == first.keys() and all(store.compare_results(first[k], results[k]) == {}
                                                       for k in results)
        rows.append({"executor": executor, "workers": workers, "runs": len(records), "wall_seconds": wall,
                     "run_seconds": sum(r.wall_seconds for r in records), "same_records": same})
    return rows


def write_measurement(rows: list[dict[str, Any]], machine: str, path: Path = SCALING_FILE) -> Path:
    """Save a measurement with the machine it was taken on (what the cluster page reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    return path


def read_measurement(path: Path = SCALING_FILE) -> dict[str, Any]:
    """The committed measurement (raises, naming the file and the command, when it is missing)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scaling measurement; run `vidattn cluster-scaling` to take one")
    return json.loads(path.read_text())
