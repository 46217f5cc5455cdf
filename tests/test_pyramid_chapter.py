"""The pyramid-attention chapter's plumbing: configs, the stage-1 cache, a smoke run's measurements,
the full-size placements (Table 10's counts, taps, TSM) and the real-data wrapper's weights check."""
import numpy as np
import pytest
import torch
from conftest import stage1_file

from vidattn.core import profiles
from vidattn.core.store import run_or_load
from vidattn.data.validation import validation_size
from vidattn.papers.pyramid import experiment as E
from vidattn.papers.pyramid import rows as C
from vidattn.papers.pyramid.placements import PyramidBackbone, irv2_tf_slim_params
from vidattn.papers.pyramid.real import load_backbone_weights


def _ctx(tmp_path, seeds=1, override=None):
    return profiles.setup("smoke", seeds, "cpu", "", str(tmp_path / "out"), size_override=override or {})


def test_rows_share_their_trunk_and_each_family_trains_at_its_own_lr(tmp_path):
    planned = C.chapter_runs(_ctx(tmp_path, seeds=2))
    assert len(planned) == 2 * len(C.grid(_ctx(tmp_path))) and [p.row for p in planned[:2]] == [C.REFERENCE] * 2  # named rows
    runs = [p.config for p in planned]
    keys = {stage1_file(E, c) for c in runs if c["seed"] == 0}
    assert len(keys) == 1  # every row of a seed starts from one cached trunk
    for p in planned:
        c = p.config
        family = C.PEAK_LR if c["model"]["scales"] else C.TSN_LR
        assert c["train"]["lr"] == C.ROW_LRS.get(p.row, family)  # TSN at the layer's rate: the control
    for c in runs:
        estimated = c["stream"] != "rgb" and c["flow"]["method"] != "exact"
        assert ("opencv" in c["flow"]) == estimated  # OpenCV's flow estimates key the record
    exact = [c for c in runs if c["flow"]["method"] == "exact"]
    assert len(exact) == 2 * len(C.EXACT_FLOW_ROWS) and {c["stream"] for c in exact} == {"flow", "fusion"}
    pilots = [p.config for p in C.pilot_runs(_ctx(tmp_path))]
    assert sorted((p["model"]["scales"], p["train"]["lr"]) for p in pilots) == [
        (s, lr) for s in (0, 3) for lr in sorted(C.PILOT_LRS)]  # the whole grid, on a validation split
    assert {p["validation"] for p in pilots} == {round(C.PILOT_VALIDATION * C.PROFILE_SETTINGS["smoke"]["n_train"])}
    assert C.test_split_pilot_runs(_ctx(tmp_path)) == []  # the small profile's history only


def test_the_small_grid_cuts_dis_fusion_and_caps_dis_seeds():
    ctx = profiles.context("small", 5)
    planned = C.chapter_runs(ctx)
    seeds = {}
    for p in planned:
        seeds.setdefault(p.row, []).append(p.config["seed"])
    assert "Attention fusion, 3 scales" not in seeds and set(seeds) == set(C.ROWS) - set(C.CUT_ROWS["small"])
    for row, s in seeds.items():
        assert s == list(range(C.DIS_FLOW_SEEDS if row in C.DIS_FLOW_ROWS else 5)), row
    assert [p.config["seed"] for p in C.stage1_runs(ctx)] == [0, 1, 2, 3, 4]


def test_a_validation_split_holds_out_the_last_training_clips(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    c = C.pilot_runs(profiles.context("smoke"))[0].config
    cfg, train, held = E.splits(c)
    _, whole, test = E.splits({k: v for k, v in c.items() if k != "validation"})
    n = c["validation"]
    assert len(held) == n and len(train) == len(whole) - n
    assert np.array_equal(held.videos, whole.videos[-n:]) and np.array_equal(train.labels, whole.labels[:-n])
    assert not np.array_equal(held.videos[:1], test.videos[:1])  # the test split is not read
    with pytest.raises(ValueError, match="validation must be between"):
        E.splits({**c, "validation": len(whole)})
    with pytest.raises(ValueError, match="RGB pilots only"):
        E.splits({**c, "stream": "flow"})
    # a share of the clips, rounded, and never none (the smoke profile's handfuls)
    assert validation_size(2000, 0.25) == 500 and validation_size(3, 0.2) == 1 and validation_size(16, 0.2) == 3


def test_override_keys_are_checked_and_reach_the_suite(tmp_path):
    with pytest.raises(ValueError, match="unknown key"):
        _ctx(tmp_path, override={"depth": 3})
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.context("huge")
    ctx = profiles.context("smoke", size_override={"frames": 8, "epochs": 2, "model": {"backbone": "resnet50"}})
    c = C.run_config(ctx, C.REFERENCE, 0)
    assert c["suite_overrides"]["frames"] == 8 and c["test_k"] == 8
    assert c["train"]["epochs"] == c["pretrain"]["epochs"] == 2 and "model" not in c["suite_overrides"]


def test_segment_sampling_covers_segments_and_repeats_beyond_t():
    torch.manual_seed(0)
    pos = E.segment_positions(24, 3, True)
    assert (pos >= [0, 8, 16]).all() and (pos < [8, 16, 24]).all()
    assert list(E.segment_positions(24, 24, False)) == list(range(24))
    assert len(set(E.segment_positions(8, 24, False))) == 8


def test_a_smoke_row_measures_everything_and_reuses_the_trunk(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(tmp_path / "records"))
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    c = C.run_config(profiles.context("smoke"), C.REFERENCE, 0)
    rec = run_or_load("pyramid/train", c)
    m = rec.metrics
    for key in ("top1", "reversed_top1", "shuffled_top1", "mass_in_box", "cells_share", "column_sum",
                *(f"top1_k{k}" for k in E.TEST_KS)):
        assert key in m and np.isfinite(m[key])
    assert 1 <= m["column_sum"] <= np.sqrt(5 * 64) + 1e-4
    assert len(rec.per_clip["probs"]) == C.PROFILE_SETTINGS["smoke"]["n_test"]
    assert np.allclose(np.sum(rec.per_clip["probs"], 1), 1, atol=1e-3)
    ex = rec.result["examples"][0]
    assert np.array(ex["A"]).shape == (5 * 64, 64) and len(ex["boxes"]) == 5
    assert stage1_file(E, c).is_file()
    trunk_mtime = stage1_file(E, c).stat().st_mtime
    fusion = run_or_load("pyramid/train", C.run_config(profiles.context("smoke"), "Attention fusion, 3 scales", 0))
    assert stage1_file(E, c).stat().st_mtime == trunk_mtime and np.isfinite(fusion.metrics["top1"])


def test_box_cells_marks_the_cells_a_box_touches():
    cells = E.box_cells([3, 6, 5, 5], 8)  # rows 3-7, cols 6-10 of a 32 px frame: cells 0-1 x 1-2
    assert cells.sum() == 4 and cells[0:2, 1:3].all()
    assert E.box_cells([-3, 30, 5, 5], 8)[0, 7] and E.box_cells([-3, 30, 5, 5], 8).sum() == 1


def test_late_fusion_weights_flow_one_and_a_half():
    p = E.late_fusion([[0.6, 0.4]], [[0.3, 0.7]])
    assert np.allclose(p, [[0.6 + 0.45, 0.4 + 1.05]])


def test_table10_counts_from_the_modules():
    counts = irv2_tf_slim_params(101)
    assert counts["tf_slim"] == 57_106_858
    with torch.device("meta"):
        irv2 = PyramidBackbone("irv2", 101, 4)
        vgg = PyramidBackbone("vgg16", 101, 3)
    assert irv2.channels == [192, 320, 1088, 2080] and irv2.size == (8, 8)
    assert irv2.pyramid.extra_params() == 235_776  # 4 scales; 3 scales below
    assert round((counts["tf_slim"] + sum((c + 1) * 64 for c in (320, 1088, 2080))) / 1e6, 2) == 57.33
    assert vgg.channels == [256, 512, 512] and vgg.size == (7, 7)  # pool5's grid


def test_resnet_placement_runs_and_tsm_shifts_every_bottleneck_along_frames():
    from vidattn.models.temporal import tsm_shift

    torch.manual_seed(0)
    net = PyramidBackbone("resnet50", 5, 3, image_size=64).eval()
    video = torch.randn(1, 3, 2, 64, 64)
    logits, aux = net.attend(video)
    assert logits.shape == (1, 5) and aux["A"].shape == (1, 2 * 4, 4)
    assert torch.allclose(logits, net(video.flip(2)), atol=1e-4)  # the layer ignores frame order
    tsm = PyramidBackbone("resnet50_tsm", 5, 0, image_size=64)
    blocks = [m for m in tsm.net.modules() if type(m).__name__ == "Bottleneck"]
    assert len(blocks) == 16 and all(len(b.conv1._forward_pre_hooks) == 1 for b in blocks)
    tsm.frames = 2
    x = torch.randn(4, 16, 3, 3)  # (B K, C, H, W) with B = 2, K = 2
    want = tsm_shift(x.view(2, 2, 16, 3, 3).transpose(1, 2)).transpose(1, 2).flatten(0, 1)
    assert torch.equal(tsm._shift(x), want) and not torch.equal(want, x)


def test_weights_that_do_not_fit_are_named(tmp_path):
    net = PyramidBackbone("resnet50", 5, 0, image_size=64)
    good = tmp_path / "r50.pt"
    torch.save({k: v for k, v in net.net.state_dict().items()}, good)
    load_backbone_weights(net, str(good))
    bad = tmp_path / "bad.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises((ValueError, RuntimeError), match="bad.pt|size mismatch"):
        load_backbone_weights(net, str(bad))
