"""The SIFA chapter's building blocks: the motion suites, the tiny C2D, SIFA-Net at full size,
the sampling-aware FLOP counter, and the experiment's measurements."""
import numpy as np
import pytest
import torch
import torchvision

from vidattn.core.profiles import context, setup
from vidattn.data.suites.motion import EVEN_PATTERNS, ODD_PATTERNS, generate, load_motion_split, motion_suite, patterns
from vidattn.engine.flops import count_macs, count_params
from vidattn.models.c2d import TinyC2D, temporal_module
from vidattn.papers.sifa.experiment import localisation, on_object, scale_gradients
from vidattn.papers.sifa.net import SIFANet, load_resnet_weights
from vidattn.papers.sifa.op import SIFABlock
from vidattn.papers.sifa.rows import GRIDS, VARIANTS, chapter_runs, run_config


def test_binding_clips_show_both_patterns_of_each_kind_in_every_frame_whatever_the_label():
    """Every frame holds one of each even (or odd) pattern, one per object, so a per-frame
    model sees the same things in both classes: only which object wears which pattern
    across frames differs."""
    cfg = motion_suite("binding")
    pats = patterns(cfg.object_size)
    checked = 0
    for i in range(30):
        video, mask, label, meta = generate(cfg, "test", i)
        a, b = meta["a"], meta["b"]
        assert label == int(a == b)
        wears = [(EVEN_PATTERNS[a], ODD_PATTERNS[b]), (EVEN_PATTERNS[1 - a], ODD_PATTERNS[1 - b])]
        for t in range(cfg.frames):
            (r1, c1), (r2, c2) = meta["paths"][0][t], meta["paths"][1][t]
            apart = min(abs(r1 - r2), 32 - abs(r1 - r2)) >= 7 or min(abs(c1 - c2), 32 - abs(c1 - c2)) >= 7
            if not apart:
                continue
            seen = []
            for (r, c), pair in zip([(r1, c1), (r2, c2)], wears):
                rows, cols = (r + np.arange(7)) % 32, (c + np.arange(7)) % 32
                patch = video[t][np.ix_(rows, cols)][..., 0].astype(float) / 255
                bright = patch > (patch.min() + patch.max()) / 2
                expected = pats[pair[t % 2]]
                assert (bright == expected).mean() > 0.9, (i, t)
                seen.append(pair[t % 2])
                assert mask[t][np.ix_(rows, cols)].all()
            assert set(seen) == set(EVEN_PATTERNS if t % 2 == 0 else ODD_PATTERNS)
            checked += 1
    assert checked > 100


def test_binding_labels_are_balanced_over_pattern_assignments_and_direction_has_partners():
    cfg = motion_suite("binding", n_train=400, n_test=10)
    labels = [generate(cfg, "train", i)[2] for i in range(400)]
    assert 0.4 < np.mean(labels) < 0.6
    d = motion_suite("direction")
    assert d.partner == [4, 5, 6, 7, 0, 1, 2, 3]
    v, mask, label, meta = generate(d, "test", 3)
    path = np.array(meta["paths"][0])
    step = (path[1] - path[0] + 16) % 32 - 16
    angle = np.degrees(np.arctan2(-step[0], step[1])) % 360
    assert abs((angle - 45 * label + 180) % 360 - 180) < 23  # the class is the direction


def test_slow_suite_moves_slowly_and_unknown_names_fail_clearly():
    meta = generate(motion_suite("binding_slow"), "test", 0)[3]
    path = np.array(meta["paths"][0])
    steps = np.abs((np.diff(path, axis=0) + 16) % 32 - 16)
    assert steps.max() <= 2
    with pytest.raises(ValueError, match="unknown motion suite 'fast'"):
        motion_suite("fast")
    with pytest.raises(ValueError, match=r"unknown motion-suite field\(s\) \['speeed'\]"):
        motion_suite("binding", speeed=(1, 2))


def test_motion_split_is_cached_and_keyed(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path))
    cfg = motion_suite("direction", n_train=6, n_test=4)
    a = load_motion_split(cfg, "test")
    assert list(tmp_path.glob("cache/suite/motion/*/test.npz"))
    b = load_motion_split(cfg, "test")
    assert np.array_equal(a.videos, b.videos) and a.meta == b.meta
    other = load_motion_split(cfg.with_(seed=1), "test")
    assert not np.array_equal(a.videos, other.videos)
    assert len(list(tmp_path.glob("cache/suite/motion/*"))) == 2


def test_the_2d_tiny_net_is_a_bag_of_frames_and_a_temporal_stem_is_not():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 32, 32)
    perm = torch.randperm(8)
    net = TinyC2D(4).eval()
    assert torch.allclose(net(x), net(x[:, :, perm]), atol=1e-5)
    stem = TinyC2D(4, temporal_stem=3).eval()
    assert not torch.allclose(stem(x), stem(x[:, :, perm]), atol=1e-3)
    sifa = TinyC2D(4, {"name": "sifa", "offsets": "regular", "semantics": "code"}, stages=(2, 3)).eval()
    assert len(sifa.sifa_blocks()) == 2
    with pytest.raises(ValueError, match="unknown temporal module 'lstm'"):
        temporal_module({"name": "lstm"}, 8)


@pytest.mark.parametrize("name", ["tconv", "tsm", "correlation", "difference", "sifa"])
def test_every_temporal_module_mixes_frames_and_keeps_the_shape(name):
    torch.manual_seed(0)
    m = temporal_module({"name": name}, 16).eval()
    x = torch.randn(1, 16, 4, 6, 6).relu()
    y = m(x)
    assert y.shape == x.shape
    if name in ("tconv", "sifa"):  # identity / SIFA_R start; make them read time
        return
    x2 = x.clone()
    x2[:, :, 1] = torch.randn(16, 6, 6).relu()
    assert not torch.allclose(m(x2)[:, :, 0], y[:, :, 0])  # frame 0 reads frame 1


def test_gradient_scaling_is_a_relative_learning_rate():
    torch.manual_seed(0)
    block = SIFABlock(4, 3, "saliency", semantics="code")
    x = torch.randn(1, 4, 3, 5, 5).relu()
    torch.nn.init.normal_(block.offset_conv.weight, std=0.1)
    block(x).square().sum().backward()
    g1 = block.offset_conv.weight.grad.clone()
    block.zero_grad()
    scale_gradients(block.offset_conv, 0.1)
    block(x).square().sum().backward()
    assert torch.allclose(block.offset_conv.weight.grad, 0.1 * g1)


def test_bounded_offsets_stay_inside_the_bound():
    block = SIFABlock(4, 3, "next_frame", bound=2.0)
    torch.nn.init.normal_(block.offset_conv.weight, std=10.0)
    off = block.offsets(torch.randn(1, 4, 3, 5, 5))
    assert off.abs().max() <= 2.0 and off.abs().max() > 1.9  # saturated, never beyond
    with pytest.raises(ValueError, match="bound must be positive"):
        SIFABlock(4, bound=0.0)


def test_on_object_follows_the_torus():
    pts = torch.tensor([[0.0, 0.0], [3.0, 3.0], [1.0, 7.0]])  # feature pixels at stride 4
    # a 7 x 7 object whose corner is at (30, 30) covers pixels 30..36 mod 32, i.e. 30, 31, 0..4
    inside = on_object(pts, np.array([30, 30]), 7, 32, 4)
    assert inside.tolist() == [True, False, False]


def test_localisation_with_zero_offsets_is_the_regular_windows():
    cfg = motion_suite("binding", n_train=4, n_test=8)
    arrays = load_motion_split(cfg, "test", cache=False)

    net = TinyC2D(2, {"name": "sifa", "offsets": "next_frame", "semantics": "code"}, stages=(2, 3))
    out = localisation(net, arrays, cfg, n_clips=8)
    assert out["localisation_learned"] == pytest.approx(out["localisation_regular"])  # zero offsets
    assert 0 <= out["localisation_regular"] <= 100


def test_sampling_flops_add_four_macs_per_sample():
    x = torch.zeros(1, 8, 3, 6, 6)
    block = SIFABlock(8, 3, "regular", semantics="code")
    samples = 8 * 9 * 2 * 36  # C k^2 per location of T - 1 pairs
    assert count_macs(block, x, sampling=True) - count_macs(block, x) == 4 * samples
    assert count_macs(block, x) == 2 * samples  # correlation + aggregation


@pytest.mark.parametrize("depth,design,params", [(50, "released", 43.04e6), (101, "released", 63.55e6),
                                                 (50, "paper", 24.91e6)])
def test_sifa_net_parameters_match_the_official_model(depth, design, params):
    with torch.device("meta"):
        m = SIFANet(depth, design, 400, 16)
    assert abs(count_params(m) - params) < 0.006e6


def test_sifa_net_layouts_follow_the_paper_and_the_release():
    paper = SIFANet(50, "paper", 10, 8)
    assert sum(b.sifa is not None for s in (paper.res3, paper.res4, paper.res5) for b in s) == 13
    released = SIFANet(50, "released", 10, 8)
    per_stage = [sum(b.sifa is not None for b in s) for s in (released.res3, released.res4, released.res5)]
    assert per_stage == [2, 3, 1] and sum(b.sifa is not None for b in released.res5_dual) == 1
    assert all(b.sifa.offset_conv.weight.abs().sum() > 0 for s in (released.res3,) for b in s if b.sifa)
    assert all(b.sifa.offset_conv.weight.abs().sum() == 0 for b in paper.res3 if b.sifa)
    x = torch.randn(2, 3, 8, 32, 32)
    released.train()
    assert released(x).shape == (2, 2, 10)  # main and dual heads
    released.eval()
    assert torch.allclose(released(x).exp().sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="multiple of 8 frames"):
        SIFANet(50, "released", 10, 12)


def test_sifa_net_starts_from_a_torchvision_resnet(tmp_path):
    tv = torchvision.models.resnet50()
    torch.save(tv.state_dict(), tmp_path / "r50.pt")
    m = SIFANet(50, "released", 10, 8)
    out = load_resnet_weights(m, str(tmp_path / "r50.pt"))
    assert "res5_dual.0.conv1.weight" in out["loaded"] and "fc.weight" in out["initial"]
    frame = torch.randn(1, 3, 64, 64)
    clip = frame[:, :, None].repeat(1, 1, 4, 1, 1)
    assert torch.allclose(m.stem[0](clip)[:, :, 0], tv.conv1(frame), atol=1e-5)  # tap 2 only
    assert torch.equal(m.res5_dual[0].conv1.weight[:, :, 0], tv.layer4[0].conv1.weight)
    with pytest.raises(FileNotFoundError, match="missing.pt not found"):
        load_resnet_weights(m, str(tmp_path / "missing.pt"))
    torch.save({k: v for k, v in tv.state_dict().items() if k != "layer3.2.bn1.weight"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad.pt lacks 1 key\(s\).*layer3.2.bn1.weight"):
        load_resnet_weights(m, str(tmp_path / "bad.pt"))


def test_the_chapter_grids_name_known_rows_and_override_reaches_the_suite(tmp_path):
    assert all(row in VARIANTS for rows in GRIDS.values() for row in rows)
    ctx = setup("smoke", 2, "cpu", "", str(tmp_path), size_override={"frames": 4, "size": 16, "epochs": 2})
    runs = chapter_runs(ctx)
    assert len(runs) == 2 * sum(map(len, GRIDS.values())) and runs[0].row == "binding: 2D"
    assert runs[0].config["suite_overrides"]["frames"] == 4 and runs[0].config["train"]["epochs"] == 2
    small = context("small")
    assert "frames" not in run_config(small, "binding", "SIFA", 0)["suite_overrides"]
    assert run_config(small, "binding", "SIFA", 0)["offset_lr"] == 0.1
    assert "offset_lr" not in run_config(small, "binding", "SIFA_R", 0)


def test_the_far_placement_puts_the_module_in_stage_1_only_and_its_pilot_scores_on_validation():
    from vidattn.papers.sifa.experiment import suite_of
    from vidattn.papers.sifa.rows import FAR_READS, far_pilot_runs, far_reference_binds

    small = context("small")
    far = run_config(small, "binding_far", "SIFA", 0)
    assert far["suite"] == "binding" and far["model"]["stages"] == [1]
    assert suite_of(far).speed == (6.0, 8.0) and suite_of(far).n_train == 2000
    assert suite_of(run_config(small, "binding_far_slow", "TSM", 0)).speed == (0.5, 1.5)
    assert run_config(small, "binding", "SIFA", 0)["model"]["stages"] == [2, 3]  # the other grids keep theirs
    model = TinyC2D(2, **far["model"])
    assert len(model.sifa_blocks()) == 1 and model.sifa_blocks()[0] is model.blocks[0].temporal
    assert far["train"]["epochs"] == 15 and run_config(small, "binding", "SIFA", 0)["train"]["epochs"] == 10
    pilot = far_pilot_runs(small)
    assert pilot and all(p.config["validation"] == 500 and p.config["seed"] < 2 for p in pilot)
    assert all(p.config["train"]["epochs"] == 10 for p in pilot)  # the pilot ran the profile's epochs
    assert far_reference_binds([FAR_READS, 99.0]) and not far_reference_binds([99.0, FAR_READS - 0.1])
    assert not far_reference_binds([])
