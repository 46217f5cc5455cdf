"""The spatial-attention chapter's experiment plumbing: configs (rows share their stage-1
backbone, overrides are checked), beta's learning rate, the stage-1 cache, one smoke run's
measurements, and the real-data wrapper."""
import pytest
import torch
from conftest import stage1_file

from vidattn.core.profiles import context
from vidattn.core.registry import Run
from vidattn.papers.spatial import experiment as E
from vidattn.papers.spatial import rows as C
from vidattn.papers.spatial.model import ZoomNetwork
from vidattn.papers.spatial.real import TotalPrediction, zoom_real_loss
from vidattn.papers.spatial.sampler import SaliencySampler
from vidattn.papers.spatial.tcnn import TCNN, TCNN_S


def test_rows_of_a_seed_share_one_stage1_backbone_per_suite():
    small = context("small")
    keys = {row: stage1_file(E, C.run_config(small, row, 0)) for row in C.ROWS}
    assert keys["O"] == keys["O+D"] == keys["O+D, learned β"] == keys["O+D, random maps"]
    assert keys["O, 12x12 glyph"] == keys["O+D, 12x12 glyph"] != keys["O"]
    assert stage1_file(E, C.run_config(small, "O", 1)) != keys["O"]
    assert stage1_file(E, C.reference_runs(small)[0].config) == keys["O"]
    assert stage1_file(E, C.control_runs(small, [0])[0].config) == keys["O, 12x12 glyph"]


def test_the_regime_pilot_changes_one_thing_each_and_never_reads_the_test_split(tmp_path, monkeypatch):
    small = context("small", 3)
    base = C.regime_config(small, "as committed")
    assert base["validation"] == round(C.VALIDATION_SHARE * base["suite_overrides"]["n_train"])
    first_design = C.stage1_config(small, "glyph", 0, C.pilot_settings(small))
    assert {k: v for k, v in base.items() if k != "validation"} == first_design
    for name, (suite_over, stage1_over, clips_x) in C.REGIMES.items():
        c = C.regime_config(small, name)
        changed = {k for k in c["suite_overrides"] if c["suite_overrides"][k] != base["suite_overrides"].get(k)}
        changed |= {k for k in c["stage1"] if c["stage1"][k] != base["stage1"][k]}
        assert changed <= set(suite_over) | set(stage1_over) | {"epochs", "n_train"}, name
        assert c["suite_overrides"]["n_train"] == clips_x * base["suite_overrides"]["n_train"]
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    c = C.regime_config(context("smoke"), "as committed")
    assert c["stage1"]["batch_size"] <= c["suite_overrides"]["n_train"] - c["validation"]  # smoke: 16 clips
    cfg, held, train_set, val = E.datasets(c)
    _, test_arrays, whole, _ = E.datasets({k: v for k, v in c.items() if k != "validation"})
    assert len(val) == len(held) == c["validation"] and len(train_set) == len(whole) - c["validation"]
    assert (held.videos == E.load_glyph_split(cfg, "train").videos[-c["validation"]:]).all()
    assert held.videos.shape[0] != test_arrays.videos.shape[0] or (held.videos != test_arrays.videos).any()


def test_the_rows_run_the_regime_the_pilot_chose():
    small = context("small")
    first = C.pilot_settings(small)
    for regime in (C.REGIME, C.FIRST_PASS):
        suite_over, stage1_over, clips_x = C.REGIMES[regime]
        cfg = C.run_config(small, "O+D", 0, regime)
        assert cfg["suite_overrides"] == {**suite_over, "n_train": clips_x * first["n_train"],
                                          "n_test": C.TEST_CLIPS["small"]}
        assert cfg["stage1"]["epochs"] == stage1_over["epochs_x"] * first["stage1_epochs"]
        assert cfg["train"]["epochs"] == round(C.STAGE2_SHARE[regime] * first["epochs"])
    assert C.run_config(small, "O+D", 0) == C.run_config(small, "O+D", 0, C.REGIME)
    # the rule: the best validation score among the regimes that read the glyph
    assert C.choose_regime({"reads": 78.1, "reads best": 99.0, "context only": 49.0}) == "reads best"
    with pytest.raises(ValueError, match="no regime of the pilot reads"):
        C.choose_regime({"context only": 49.0, "near it": 59.4})
    # the cut rows run nowhere at small; the first pass is history, never run at full
    runs = C.chapter_runs(small, [0, 2])
    assert {p.row for p in runs} == set(C.ROWS) - set(C.CUT_ROWS["small"]) and len(runs) == 2 * len(C.grid(small))
    assert {p.config["seed"] for p in runs} == {0, 2}
    assert {p.row for p in C.chapter_runs(context("smoke"), [0])} == set(C.ROWS)


def test_rows_run_on_the_seeds_whose_reference_reads_the_glyph():
    small = context("small", 5)
    assert len(C.reference_runs(small)) == C.REFERENCE_SEEDS["small"] == 12
    assert C.reference_seeds(context("full", 3)) == [0, 1, 2]  # the chapter's own seeds at full
    top1 = {0: 95.2, 1: 50.0, 2: 100.0, 3: 59.9, 4: 60.0}
    assert C.reading_seeds(top1) == [0, 2, 4]
    assert C.analysed_seeds(small, top1) == [0, 2, 4]
    # fewer than two readers: every seed runs rows (and the gate, reading them all, says so)
    assert C.analysed_seeds(small, {0: 95.0, 1: 50.0}) == C.reference_seeds(small)
    assert len(C.first_pass_runs(context("small", 5))) == C.FIRST_PASS_SEEDS == 3
    assert C.first_pass_runs(context("full")) == []


def test_overrides_are_checked_and_reach_the_suite():
    cfg = C.run_config(context("small", size_override={"n_train": 40, "epochs": 2}), "O+D", 0)
    assert cfg["suite_overrides"]["n_train"] == 40 and cfg["train"]["epochs"] == 2
    assert cfg["stage1"]["epochs"] == 2  # epochs shrinks both stages
    with pytest.raises(ValueError, match=r"size_override: this chapter does not use \['model'\]"):
        C.settings(context("small", size_override={"model": {}}))
    with pytest.raises(ValueError, match="unknown profile"):
        context("huge")


def test_beta_can_be_frozen_or_slowed():
    torch.manual_seed(0)
    video, labels = torch.randn(2, 3, 8, 64, 64), torch.tensor([1, 2])
    grads = {}
    for factor in (1.0, 0.5, 0.0):
        torch.manual_seed(0)
        net = ZoomNetwork(TCNN(TCNN_S, 10), 10, "O+D", SaliencySampler(16, 15, 6.5), dropout=0.0)
        net.set_beta_lr(factor)
        out = net(video, generator=torch.Generator().manual_seed(0))
        torch.nn.functional.cross_entropy(out["D"], labels).backward()
        grads[factor] = net.rho.grad
    assert grads[0.0] is None and torch.allclose(grads[0.5], 0.5 * grads[1.0])


def test_a_smoke_run_measures_every_branch_and_reuses_its_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "records"))
    over = {"n_train": 16, "n_test": 8}
    cfg = C.run_config(context("smoke", size_override=over), "O+C+D", 0)
    cfg["examples"] = True
    out = E.train(cfg, Run())
    m = out["metrics"]
    for key in ("O_top1", "D_top1", "C_top1", "total_top1", "total_top1_maxmin", "top_peak_in_box",
                "area_ratio_D", "delta 0.2: total", "frame_top1_visible", "reversed_top1"):
        assert key in m and m[key] == m[key], key  # present and not NaN
    assert len(out["per_clip"]["total_top1"]) == 8 and len(out["examples"]) == 2
    assert out["curves"]["beta_dis"] == [pytest.approx(0.09, abs=1e-6)]  # held
    assert stage1_file(E, cfg).is_file()
    calls = []
    monkeypatch.setattr(E, "fit", lambda *a, **k: calls.append(1) or pytest.fail("stage 1 retrained"))
    model, curves = E.pretrained(cfg, Run(), *E.datasets(cfg)[2:])
    assert not calls and len(curves["test_top1"]) == cfg["stage1"]["epochs"]


def test_the_real_wrapper_predicts_the_total_and_the_loss_sums_four_terms():
    torch.manual_seed(0)
    net = ZoomNetwork(TCNN(TCNN_S, 5), 5, "O+C+D", SaliencySampler(16, 15, 6.5), dropout=0.0)
    model = TotalPrediction(net).eval()
    video = torch.randn(2, 3, 8, 64, 64)
    assert torch.allclose(model(video), net(video, split="meanfield")["total"])
    model.train()
    batch = {"video": video, "label": torch.tensor([0, 3])}
    torch.manual_seed(1)
    loss, logs = zoom_real_loss(model, batch)
    torch.manual_seed(1)
    out = net(video)
    want = sum(torch.nn.functional.cross_entropy(v, batch["label"]) for v in out.values())
    assert torch.allclose(loss, want) and 0 <= logs["acc"] <= 1
