"""The runner's executors: the local process pool and Ray give the same records bit for bit; a Ray
worker killed mid-run is retried to the same record; each record is written once, by the driver;
a failed run names its config; an unknown executor is refused in one line."""
import threading
import time

import psutil
import pytest

import vidattn.papers.data_suites.experiment  # noqa: F401 (registers data/premise)
from vidattn.core import profiles, store
from vidattn.core.executors import Call, LocalExecutor, TaskFailed, executor_name
from vidattn.core.registry import Planned
from vidattn.papers.data_suites.rows import run_config, row_name


def _runs(tmp_path, epochs: int = 1) -> list[Planned]:
    ctx = profiles.setup("smoke", 2, "cpu", "", str(tmp_path / "out"))
    return [Planned(row_name("order", m), {**run_config(ctx, "order", m, seed),
                                           "train": {**run_config(ctx, "order", m, seed)["train"], "epochs": epochs}})
            for m in ("frame_average", "tiny_c3d") for seed in ctx.seeds]


def _results(records) -> dict[str, dict]:
    return {r.key: r.result for r in records}


def _same(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert store.compare_results(a[k], b[k]) == {}, k  # timings (clips per second) exempt


def test_an_unknown_executor_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("VIDATTN_EXECUTOR", "spark")
    with pytest.raises(ValueError, match=r"VIDATTN_EXECUTOR='spark' is not an executor; choose one of \('local', 'ray'\)"):
        executor_name()


def _boom(config: dict) -> None:
    raise RuntimeError("bad width")


def test_a_failed_local_run_names_its_config():
    calls = [Call(_boom, ({"width": -1},), "experiment 'x' with config {\"width\": -1}")] * 2
    with pytest.raises(TaskFailed, match=r"experiment 'x' with config \{\"width\": -1\}: RuntimeError: bad width"):
        list(LocalExecutor().imap(calls, 2))


def _kill_first_ray_worker(stop: threading.Event, killed: list[int]) -> None:
    """Kill -9 the first Ray worker seen running a task (its process title is ray::_call)."""
    while not stop.is_set() and not killed:
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any("ray::_call" in part for part in (p.info["cmdline"] or [])):
                    time.sleep(0.5)  # mid-run
                    p.kill()
                    killed.append(p.pid)
                    return
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        time.sleep(0.05)


def test_ray_gives_the_local_pools_records_retries_a_killed_worker_and_writes_once(tmp_path, monkeypatch, capfd):
    """One local Ray cluster (2 CPUs) for every check, to keep within the test budget."""
    import ray

    monkeypatch.delenv("VIDATTN_RETRAIN", raising=False)
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    runs = _runs(tmp_path, epochs=3)

    monkeypatch.setenv("VIDATTN_EXECUTOR", "local")
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "local"))
    local = _results(store.run_many("data/premise", runs, workers=2))

    monkeypatch.setenv("VIDATTN_EXECUTOR", "ray")
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "ray"))
    log = tmp_path / "runs.log"
    monkeypatch.setenv(store.RUN_LOG, str(log))
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_ray_worker, args=(stop, killed), daemon=True)
    killer.start()
    try:
        capfd.readouterr()
        on_ray = store.run_many("data/premise", runs, workers=2)
        assert "Token authentication" not in capfd.readouterr().err  # would show in a chapter's output
        stop.set()
        killer.join()
        assert killed, "no Ray worker was seen running a task"
        assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
        _same(local, _results(on_ray))  # bit for bit, the killed run included
        lines = log.read_text().splitlines()
        assert len(lines) == len(runs) == len({line.split()[1] for line in lines}), lines  # each written once
        assert {p.stem for p in (tmp_path / "ray" / "data" / "premise").glob("*.json")} == set(local)

        bad = [Planned("bad", {**runs[0].config, "model": "no_such_model"})]
        with pytest.raises(TaskFailed, match=r"experiment 'data/premise' with config \{.*\"model\":\"no_such_model\""):
            store.run_many("data/premise", bad, workers=2)
    finally:
        stop.set()
        if ray.is_initialized():
            ray.shutdown()
