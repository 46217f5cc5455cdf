"""The ``full`` profile's code path on a CPU: each chapter run with ``profile=full``, a fixture
``data_root`` in the UCF101 layout, weights from fixture checkpoints, and the one documented
``size_override``; the real-data experiments resumed after an interruption and run by two
gloo processes under ``torchrun``; and the guard that stops an accidental CPU job."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from real_fixtures import (
    CIDC_OVERRIDE,
    DATA_OVERRIDE,
    DIRECFORMER_OVERRIDE,
    PYRAMID_OVERRIDE,
    SIFA_OVERRIDE,
    SPATIAL_OVERRIDE,
    resnet50_checkpoint,
    ucf101_fixture,
    vit_checkpoint,
)

import vidattn.catalog  # noqa: F401  (registers every experiment)
from vidattn.cli import NOTEBOOKS, run_chapter
from vidattn.core import profiles, store
from vidattn.papers.cidc import rows as cidc_rows
from vidattn.papers.direcformer import rows as direcformer_rows

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    return {"ucf": ucf101_fixture(root / "ucf"), "vit": vit_checkpoint(root / "vit.pt"),
            "r50": resnet50_checkpoint(root / "r50.pt"), "root": root}


def _outputs(nb) -> str:
    return "\n".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))


CHAPTERS = {
    "01_data_suites": ({"size_override": DATA_OVERRIDE}, "Dataset check** of `ucf101`: {n} listed videos; {n} ok"),
    "02_direcformer": ({"size_override": DIRECFORMER_OVERRIDE, "weights": "vit"}, "Tables 3-4 on `ucf101`"),
    "03_cidc": ({"size_override": CIDC_OVERRIDE, "weights": "r50"}, "ours on"),
    "04_sifa": ({"size_override": SIFA_OVERRIDE, "weights": "r50"}, "SIFA-Net on real data"),
    "05_spatial_attention": ({"size_override": SPATIAL_OVERRIDE}, "T-CNN and T-CNN+spatial on real data"),
    "06_pyramid_attention": ({"size_override": PYRAMID_OVERRIDE, "weights": "r50"},
                             "resnet50 without and with the layer on real"),
}


@pytest.mark.parametrize("stem", list(CHAPTERS))
def test_each_chapter_runs_full_on_real_files(stem, fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "records"))
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    params, expect = CHAPTERS[stem]
    params = {**params, "profile": "full", "seeds": 1, "device": "cpu", "data_root": str(fixtures["ucf"]),
              "output_dir": str(tmp_path / "out")}
    if "weights" in params:
        params["weights"] = str(fixtures[params["weights"]])
    out = tmp_path / f"{stem}.ipynb"
    run_chapter(NOTEBOOKS / f"{stem}.md", out, params)
    text = _outputs(nbformat.read(out, as_version=4))
    lists = fixtures["ucf"] / "ucfTrainTestlist"
    n_test = len((lists / "testlist01.txt").read_text().splitlines())
    n_all = n_test + len((lists / "trainlist01.txt").read_text().splitlines())
    assert expect.format(n=n_all) in text
    if stem != "01_data_suites":  # the real-data runs trained on the fixture's files and were recorded
        name = {"02_direcformer": "direcformer/real", "03_cidc": "cidc/real", "04_sifa": "sifa/real",
                "05_spatial_attention": "spatial/real", "06_pyramid_attention": "pyramid/real"}[stem]
        recs = store.all_records(name)
        assert recs and all(r.config["data"]["root"] == str(fixtures["ucf"].resolve()) for r in recs)
        if "weights" in params:  # the spatial chapter's T-CNN has no released weights: from scratch
            assert all(r.config["weights"]["sha256"] for r in recs)
        assert all(r.metrics["test_videos_scored"] == n_test for r in recs)  # the fixture's test split
        assert "estimated CPU time for this chapter's training" in text


def _real_ctx(fixtures, tmp_path, override, weights):
    return profiles.setup("full", 1, "cpu", str(fixtures["ucf"]), str(tmp_path / "o"),
                          weights=str(fixtures[weights]), size_override=override)


def test_an_interrupted_real_run_resumes_to_the_uninterrupted_result(fixtures, tmp_path, monkeypatch):
    from vidattn.engine import real_data
    from vidattn.engine import train as engine

    ctx = _real_ctx(fixtures, tmp_path, {**DIRECFORMER_OVERRIDE, "epochs": 2}, "vit")
    cfg = direcformer_rows.real_runs(ctx)[-1].config  # DirecFormer: both order losses
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "whole"))
    whole = store.run_or_load("direcformer/real", cfg)

    def interrupted(*args, **kw):
        engine.fit(*args, **kw, stop_after_epoch=1)
        raise KeyboardInterrupt("killed after epoch 1")

    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "resumed"))
    monkeypatch.setattr(real_data, "fit", interrupted)  # every real-data run trains through fit_and_score
    with pytest.raises(KeyboardInterrupt):
        store.run_or_load("direcformer/real", cfg)
    assert list((tmp_path / "data" / "checkpoints" / "direcformer" / "real").glob("*-train.pt"))
    monkeypatch.setattr(real_data, "fit", engine.fit)
    resumed = store.run_or_load("direcformer/real", cfg)
    assert store.compare_results(whole.result, resumed.result) == {}
    assert len(resumed.curves["loss"]) == 2


def test_a_bad_video_stops_the_run_or_is_skipped_and_counted(fixtures, tmp_path, monkeypatch):
    import shutil

    from vidattn.data.real import DatasetError

    ucf = tmp_path / "ucf"
    shutil.copytree(fixtures["ucf"], ucf)
    bad = ucf / "UCF-101" / (ucf / "ucfTrainTestlist" / "trainlist01.txt").read_text().split()[0]
    bad.write_bytes(b"not a video" * 10)
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "records"))
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    for policy in ("error", "skip"):
        ctx = profiles.setup("full", 1, "cpu", str(ucf), str(tmp_path / "o"), on_bad_video=policy,
                             size_override=DIRECFORMER_OVERRIDE)
        cfg = direcformer_rows.real_runs(ctx)[0].config
        if policy == "error":
            with pytest.raises(DatasetError, match=f"{bad.name}.*on_bad_video='error'"):
                store.run_or_load("direcformer/real", cfg)
        else:
            rec = store.run_or_load("direcformer/real", cfg)
            assert rec.metrics["bad_train_videos"] == 1 and rec.metrics["bad_test_videos"] == 0


def test_torchrun_two_gloo_processes_run_the_chapters_runs(fixtures, tmp_path):
    env = {**os.environ, "VIDATTN_RECORDS_DIR": str(tmp_path / "records"), "VIDATTN_DATA_DIR": str(tmp_path / "d"),
           "OMP_NUM_THREADS": "1"}
    args = [str(fixtures["ucf"]), str(fixtures["vit"]), str(fixtures["r50"]), str(tmp_path / "o")]
    worker = Path(__file__).with_name("real_ddp_worker.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_port=29533", str(worker), *args], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("direcformer/real", "cidc/real"):
        files = list((tmp_path / "records" / name).glob("*.json"))
        assert files, f"rank 0 wrote no {name} record"
        rec = json.loads(files[0].read_text())
        assert rec["versions"]["world_size"] == 2  # keyed apart from a one-process record
        assert rec["result"]["metrics"]["test_videos_scored"] > 0
    synthetic = [json.loads(f.read_text()) for f in (tmp_path / "records" / "direcformer" / "train").glob("*.json")]
    assert len(synthetic) == 1 and "world_size" not in synthetic[0]["versions"]  # one process's record


def test_setup_refuses_what_it_would_ignore(fixtures, tmp_path):
    with pytest.raises(ValueError, match=r"size_override: unknown key\(s\) \['depth'\]"):
        profiles.setup("full", 1, "cpu", size_override={"depth": 2})
    with pytest.raises(ValueError, match="weights=.* without data_root"):
        profiles.setup("full", 1, "cpu", weights=str(fixtures["vit"]))
    with pytest.raises(ValueError, match="without data_root"):
        profiles.setup("full", 1, "cpu", dataset="ucf101")
    with pytest.raises(FileNotFoundError, match="weights file .*nope.pt not found"):
        profiles.setup("full", 1, "cpu", str(fixtures["ucf"]), weights=str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="unknown dataset 'ucf102'"):
        profiles.setup("full", 1, "cpu", str(fixtures["ucf"]), dataset="ucf102")
    ctx = profiles.setup("full", 1, "cpu", str(fixtures["ucf"]), size_override={"model": {"dim": 8}})
    with pytest.raises(ValueError, match=r"this chapter does not use \['model'\]"):
        ctx.use_override("n_train")


def test_full_on_a_cpu_stops_before_training_unless_allowed(tmp_path, capsys, monkeypatch):
    ctx = profiles.setup("full", 5, "cpu", "", str(tmp_path))
    from vidattn.engine.budget import check_cpu_budget, cpu_seconds

    seconds = cpu_seconds(direcformer_rows.chapter_runs(ctx), 2, direcformer_rows.work)
    assert seconds / 3600 > 1000  # paper size: thousands of CPU-hours
    with pytest.raises(RuntimeError, match=r"profile 'full' on a CPU: estimated CPU time .* Stopped"):
        check_cpu_budget(ctx, "DirecFormer", seconds)
    allowed = profiles.setup("full", 5, "cpu", "", str(tmp_path), allow_cpu=True)
    assert "estimated CPU time for DirecFormer" in check_cpu_budget(allowed, "DirecFormer", seconds)
    small = profiles.setup("small", 5, "cpu", "", str(tmp_path))
    capsys.readouterr()
    check_cpu_budget(small, "DirecFormer", seconds)  # only full is guarded, and only it prints
    assert capsys.readouterr().out == ""
    shrunk = direcformer_rows.chapter_runs(profiles.context("full", size_override=DIRECFORMER_OVERRIDE))
    assert cpu_seconds(shrunk, 2, direcformer_rows.work) < 600
    cidc_full = cidc_rows.chapter_runs(profiles.context("full"))
    assert cpu_seconds(cidc_full, 2, cidc_rows.work) / 3600 > 100
    # work a seed's heads share (the stage-1 backbone) is counted once: 300 backbone passes per clip
    # (100 epochs, forward and backward), then one forward per clip for each of the 10 other heads
    from vidattn.engine import budget

    monkeypatch.setattr(budget, "cpu_flops_per_second", lambda: 1e9)  # a fixed speed: the ratio is exact
    one_head = [r for r in cidc_full if r.row == "I3D (GAP)"]
    ratio = cpu_seconds(cidc_full, 2, cidc_rows.work) / cpu_seconds(one_head, 2, cidc_rows.work)
    assert ratio == pytest.approx(310 / 300)


def test_the_gpu_check_script_runs_at_toy_size(tmp_path):
    from vidattn import gpu_check

    out = gpu_check.main(["--out", str(tmp_path / "g.json"), "--steps", "2", "--batch", "4", "--size", "32",
                          "--frames", "16", "--clips", "8", "--pyramid-backbone", "resnet50",
                          "--pyramid-frames", "2"])
    assert json.loads((tmp_path / "g.json").read_text()) == out
    assert [r["steps"] for r in out["runs"]] == [2] * 7 and all(r["clips_per_second"] > 0 for r in out["runs"])
    assert [o["op"].split()[0] for o in out["sifa_op"]] == ["dense", "low-memory"]
    assert out["device"] == ("cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name())
