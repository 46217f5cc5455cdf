"""Where the runs of :func:`vidattn.core.store.run_many` (and the re-runs of ``store verify``)
execute: a local process pool, the default, or a Ray cluster.

Both executors run the same picklable call in a fresh process, one experiment at a time
under the engine's fixed numerics (one intra-op thread, deterministic kernels), and hand
its return value back to the driver; the driver, not the worker, writes each record
(atomically, once), so workers need no shared filesystem with it.

Chosen by ``VIDATTN_EXECUTOR``:

* ``local`` (default): ``concurrent.futures`` over spawned processes, one per worker.
* ``ray``: one Ray task per run, ``num_cpus=1`` for a CPU run and ``num_gpus=1`` for a
  CUDA run, on the cluster at ``RAY_ADDRESS`` (``ray start --head`` and workers joined to
  it) or, without it, on a local cluster that Ray starts with one CPU per worker. A task
  whose worker dies is retried (``max_retries``); determinism makes the retried record
  bit-identical. A failed task raises here with its config. Ctrl-C cancels the tasks still
  pending; the records already written stay.

What a run needs besides its config (a suite, a stage-1 backbone) it rebuilds on the
worker from its config, through the data cache of the worker's machine
(``VIDATTN_DATA_DIR``): the suites are deterministic functions of their config, so a
rebuild costs time and never changes a result, and nothing large travels through Ray's
object store. The package must be installed on every node, at the same commit.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

EXECUTORS = ("local", "ray")
RAY_RETRIES = 3  # a task whose worker process or node dies is run again this many times at most


@dataclass(frozen=True)
class Call:
    """One call to run: ``fn(*args)``, its label for errors (the config), on CPU or GPU, and the
    seconds it is expected to take (its record's recorded time, when known; for the ETA)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    label: str
    gpu: bool = False
    expected_seconds: float | None = None


class TaskFailed(RuntimeError):
    """A call failed on a worker; the message names its config."""


class Executor(Protocol):
    name: str

    def imap(self, calls: Sequence[Call], workers: int) -> Iterator[tuple[int, Any]]:
        """Run ``calls``, yielding (index, return value) as each finishes."""
        ...


def executor_name() -> str:
    """The executor ``VIDATTN_EXECUTOR`` names (``local`` when unset)."""
    name = os.environ.get("VIDATTN_EXECUTOR", "local") or "local"
    if name not in EXECUTORS:
        raise ValueError(f"VIDATTN_EXECUTOR={name!r} is not an executor; choose one of {EXECUTORS}")
    return name


def get_executor() -> Executor:
    """The executor chosen by ``VIDATTN_EXECUTOR``."""
    return RayExecutor() if executor_name() == "ray" else LocalExecutor()


def _failed(call: Call, err: BaseException) -> TaskFailed:
    return TaskFailed(f"{call.label}: {type(err).__name__}: {err}")


class Progress:
    """Done/total on stderr, with an ETA from the calls' expected seconds (shown only on a
    terminal, or with ``VIDATTN_PROGRESS=1``: never inside a chapter's output)."""

    def __init__(self, calls: Sequence[Call], parallel: int):
        from tqdm import tqdm

        show = os.environ.get("VIDATTN_PROGRESS") == "1" or sys.stderr.isatty()
        self.left = {i: c.expected_seconds for i, c in enumerate(calls)}
        self.parallel = max(parallel, 1)
        self.bar = tqdm(total=len(calls), unit="run", disable=not show, file=sys.stderr, dynamic_ncols=True)
        self._eta()

    def _eta(self) -> None:
        known = [s for s in self.left.values() if s is not None]
        if known:
            self.bar.set_postfix_str(f"ETA from records ~{sum(known) / self.parallel / 60:.1f} min"
                                     + ("" if len(known) == len(self.left) else f" ({len(known)} known)"))

    def done(self, i: int) -> None:
        self.left.pop(i, None)
        self.bar.update(1)
        self._eta()

    def close(self) -> None:
        self.bar.close()


class LocalExecutor:
    """Spawned worker processes on this machine (``concurrent.futures``). With ``in_process``, a
    single call, a single worker or a GPU call (one device) runs in this process instead."""

    name = "local"

    def __init__(self, in_process: bool = True):
        self.in_process = in_process

    def imap(self, calls: Sequence[Call], workers: int) -> Iterator[tuple[int, Any]]:
        progress = Progress(calls, workers)
        try:
            here = [i for i, c in enumerate(calls)
                    if self.in_process and (c.gpu or workers <= 1 or len(calls) == 1)]
            for i in here:  # one CUDA device, or one worker: in this process
                yield i, self._here(calls[i])
                progress.done(i)
            rest = [i for i in range(len(calls)) if i not in set(here)]
            if not rest:
                return
            with cf.ProcessPoolExecutor(max_workers=min(workers, len(rest)),
                                        mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(calls[i].fn, *calls[i].args): i for i in rest}
                try:
                    for fut in cf.as_completed(futures):
                        i = futures[fut]
                        try:
                            value = fut.result()
                        except Exception as e:
                            raise _failed(calls[i], e) from e
                        yield i, value
                        progress.done(i)
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
        finally:
            progress.close()

    @staticmethod
    def _here(call: Call) -> Any:
        try:
            return call.fn(*call.args)
        except Exception as e:
            raise _failed(call, e) from e


class RayExecutor:
    """One Ray task per call (module docstring)."""

    name = "ray"

    def __init__(self) -> None:
        try:
            import ray
        except ImportError as e:
            raise ImportError("VIDATTN_EXECUTOR=ray needs Ray: pip install -e '.[ray]'") from e
        self.ray = ray

    def _connect(self, workers: int) -> None:
        if self.ray.is_initialized():
            return
        address = os.environ.get("RAY_ADDRESS") or None
        env = {k: v for k, v in os.environ.items()
               if k.startswith(("VIDATTN_", "ATEN_CPU_CAPABILITY")) and k != "VIDATTN_EXECUTOR"}
        # workers of a local cluster see the driver's records and data folders; those of a
        # remote one get only the variables set here (their data cache is their own)
        # Ray keeps its default (token authentication on for a local cluster); its notice saying
        # so is kept out of the chapters' output, where a reader would see it as a warning
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        self.ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                      log_to_driver=False, runtime_env={"env_vars": env}, configure_logging=False)

    def imap(self, calls: Sequence[Call], workers: int) -> Iterator[tuple[int, Any]]:
        ray = self.ray
        self._connect(workers)
        parallel = int(ray.cluster_resources().get("CPU", workers))
        progress = Progress(calls, parallel)
        task = ray.remote(_call)
        refs = {}
        for i, c in enumerate(calls):
            opts = {"num_gpus": 1, "num_cpus": 1} if c.gpu else {"num_cpus": 1}
            refs[task.options(max_retries=RAY_RETRIES, retry_exceptions=False, **opts).remote(c.fn, c.args)] = i
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    i = refs[ref]
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        cause = e.cause if isinstance(e.cause, BaseException) else e
                        raise _failed(calls[i], cause) from cause
                    except ray.exceptions.RayError as e:  # the worker died more often than retried
                        raise _failed(calls[i], e) from e
                    yield i, value
                    progress.done(i)
        except BaseException:  # an error, or Ctrl-C: cancel what has not finished
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            progress.close()


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """A Ray task: ``fn(*args)`` (``fn`` travels by reference; unpickling imports its module)."""
    return fn(*args)
