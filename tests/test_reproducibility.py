"""Records reproduce whatever the caller's threads; caches are keyed like records; verify and bad files."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from conftest import stage1_file

from vidattn import cli
from vidattn.core import identity, profiles, registry, store
from vidattn.core.files import CorruptFileError, load_tensors, save_atomic
from vidattn.engine.train import TrainConfig, fit
from vidattn.papers.cidc import experiment as cidc
from vidattn.papers.cidc.rows import run_config as cidc_config
from vidattn.papers.data_suites import experiment as data_suites

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import Toy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PREMISE = {"suite": "order", "suite_overrides": {"n_train": 64, "n_test": 32}, "model": "tiny_c3d", "width": 8,
           "seed": 0, "device": "cpu", "train": {"epochs": 1, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.05}}

RUN_ONE = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(int(sys.argv[2]))
    import json
    from vidattn.core import store
    import vidattn.papers.data_suites.experiment  # registers data/premise
    rec = store.run_or_load("data/premise", json.loads(sys.argv[1]))
    print(json.dumps(rec.result, sort_keys=True))
""")


def _result_in_subprocess(tmp_path, omp: str, caller_threads: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": omp, "VIDATTN_RECORDS_DIR": str(tmp_path / f"rec{omp}"),
           "VIDATTN_DATA_DIR": str(tmp_path / f"data{omp}")}
    out = subprocess.run([sys.executable, "-c", RUN_ONE, json.dumps(PREMISE), str(caller_threads)], env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_a_record_is_identical_under_any_thread_setting(tmp_path):
    one = json.loads(_result_in_subprocess(tmp_path, "1", 1))
    two = json.loads(_result_in_subprocess(tmp_path, "2", 2))
    for res in (one, two):  # speed is measured, not reproduced
        res["metrics"] = {k: v for k, v in res["metrics"].items() if not k.endswith(store.TIMING_SUFFIXES)}
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True), \
        "metrics, curves, examples or per-clip outcomes depend on the caller's threads"
    res = one
    assert res["curves"]["train_loss"] and len(res["per_clip"]["ordered_top1"]) == 32


def test_the_engine_restores_the_callers_settings(records_dir):
    torch.set_num_threads(2)
    before = torch.are_deterministic_algorithms_enabled()
    store.run_or_load("data/premise", {**PREMISE, "seed": 3})
    assert torch.get_num_threads() == 2 and torch.are_deterministic_algorithms_enabled() == before


def test_the_environment_is_provenance_not_identity(monkeypatch):
    key = store.record_key("data/premise", PREMISE)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "SOMETHING_ELSE")
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    assert store.record_key("data/premise", PREMISE) == key
    assert store.record_key("data/premise", {**PREMISE, "device": "cuda"}, "cuda") != key
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert store.record_key("data/premise", PREMISE) != key  # DDP changes the computation


def test_a_record_made_on_another_instruction_set_is_served_without_a_rerun(records_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    code = ("from vidattn.core import store; from vidattn.papers.data_suites import experiment; import json, sys; "
            "r = store.run_or_load('data/premise', json.loads(sys.argv[1])); print(r.versions['cpu_capability'])")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(PREMISE)], check=True, capture_output=True, text=True,
                         env={**os.environ, "ATEN_CPU_CAPABILITY": "default"}).stdout.split()[-1]
    assert out == "DEFAULT"
    [path] = records_dir.rglob("*.json")
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(data_suites, "fit", lambda *a, **k: pytest.fail("a served record must not train"))
    rec = store.run_or_load("data/premise", PREMISE)
    assert rec.versions["cpu_capability"] == "DEFAULT" and path.stat().st_mtime_ns == mtime
    assert not store.stale_records()


def test_parallel_workers_write_the_records_one_process_writes(records_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    configs = [{**PREMISE, "seed": s} for s in (0, 1)]
    parallel = store.run_many("data/premise", configs, workers=2, log=False)
    serial = [store.execute("data/premise", c)[0] for c in configs]
    assert [store.compare_results(r.result, s) for r, s in zip(parallel, serial)] == [{}, {}]
    assert parallel[0].result["curves"] != parallel[1].result["curves"]  # the seeds differ
    assert [r.config["seed"] for r in parallel] == [0, 1]


def test_the_backbone_cache_is_keyed_by_its_fields_and_versions(monkeypatch):
    config = cidc_config(profiles.context("smoke"), "I3D (GAP)", 0)
    before, record = stage1_file(cidc, config), store.record_key("cidc/train", config)
    assert stage1_file(cidc, {**config, "seed": 1}) != before
    assert stage1_file(cidc, {**config, "head": {"name": "lstm"}}) == before  # heads share the backbone
    monkeypatch.setitem(identity.VERSIONS, "suite/synthetic", 2)  # a bumped suite generator
    assert stage1_file(cidc, config) != before and store.record_key("cidc/train", config) != record


def test_verify_exits_nonzero_on_an_empty_or_corrupt_store(records_dir, capsys):
    assert cli.main(["store", "verify"]) == 1
    assert "nothing was verified" in capsys.readouterr().err
    good = store.run_or_load("test/double", {"x": 1, "seed": 0})
    bad = records_dir / "test/double" / "broken.json"
    bad.write_text("{truncated")
    assert cli.main(["store", "verify", "--all", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert f"CORRUPT run record {bad}" in out and f"OK   test/double {good.key}" in out
    bad.unlink()
    assert cli.main(["store", "verify", "--all", "--workers", "1"]) == 0
    good.result["metrics"]["value"] = 5.0
    good.path.write_text(good.to_json())
    assert cli.main(["store", "verify", "--sample", "1", "--workers", "1"]) == 1
    assert "metrics/value: stored 5.0, fresh 2.0" in capsys.readouterr().out


def test_stale_delete_skips_corrupt_records(records_dir, capsys):
    store.run_or_load("test/double", {"x": 1, "seed": 0})
    (records_dir / "test/double" / "broken.json").write_text("[]")
    assert cli.main(["store", "stale", "--delete"]) == 0
    out = capsys.readouterr().out
    assert "corrupt (skipped)" in out and "broken.json" in out and "0 stale record(s) of 1" in out


@registry.experiment("test/double", version=1)
def _double(config, run):
    return {"metrics": {"value": float(config["x"] * 2 + config["seed"])}, "curves": {"loss": [1.0, 0.5]}}


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a checkpoint"])
def test_a_corrupt_checkpoint_names_the_file_and_says_to_delete_it(tmp_path, content):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError) as e:
        load_tensors(path, "training checkpoint")
    msg = str(e.value)
    assert str(path) in msg and "delete it" in msg and "weights_only=False" not in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_a_truncated_checkpoint_is_caught_in_training(tmp_path):
    path = tmp_path / "train.pt"
    save_atomic(path, {"x": torch.ones(1000)})
    assert [p.name for p in tmp_path.iterdir()] == ["train.pt"]  # no temporary left behind
    path.write_bytes(path.read_bytes()[:100])
    model = nn.Sequential(nn.Flatten(), nn.Linear(768, 5))
    with pytest.raises(CorruptFileError, match=str(path)):
        fit(model, Toy(), TrainConfig(epochs=1, batch_size=8), checkpoint=path)


def test_a_failed_chapter_run_leaves_no_notebook(tmp_path):
    chapter = tmp_path / "99_broken.md"
    chapter.write_text(textwrap.dedent('''\
        ---
        jupytext:
          text_representation: {extension: .md, format_name: myst}
        kernelspec: {display_name: Python 3, language: python, name: python3}
        ---
        ```{code-cell} ipython3
        :tags: [parameters]
        profile = "small"
        ```
        ```{code-cell} ipython3
        raise RuntimeError("killed halfway")
        ```
        '''))
    out = tmp_path / "out" / "99_broken.ipynb"
    out.parent.mkdir()
    (out.parent / ".99_broken.ipynb.123.tmp").write_text("{}")  # left by a run killed as it copied
    with pytest.raises(Exception, match="killed halfway"):
        cli.run_chapter(chapter, out, {"profile": "smoke"})
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_a_relative_store_folder_is_taken_from_the_repository_root(monkeypatch, tmp_path):
    from vidattn.core import paths

    monkeypatch.chdir(tmp_path)  # a chapter's kernel runs in notebooks/, its caller elsewhere
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", "_build/some-records")
    assert paths.records_dir() == ROOT / "_build" / "some-records"
