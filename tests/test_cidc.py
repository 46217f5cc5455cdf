"""CIDC: the kernel against its definition, causality, the mask staircase, fusion, sizes and gradients."""
from __future__ import annotations

import pytest
import torch

from vidattn.data.suites.order import suite_config
from vidattn.engine.flops import count_macs, count_params
from vidattn.models.resnet3d import ResNet3d50, TinyI3D, temporal_receptive_field
from vidattn.papers.cidc.experiment import event_swap_partners, suite_of
from vidattn.papers.cidc.model import (
    CIDCHead,
    CIDCStream,
    CIDCUnit,
    DirectionalTemporalConv,
    GAPHead,
    SelfAttentionHead,
    allowed_mask,
    build_head,
    directional_kernel,
    propagate_attention,
)
from vidattn.papers.cidc.rows import EVENTS


def _conv(C=5, T=4, t_out=None, masked=True, norm="n1", seed=0):
    torch.manual_seed(seed)
    conv = DirectionalTemporalConv(C, T, t_out, masked, norm)
    with torch.no_grad():
        conv.logits.normal_()
    return conv


def test_grouped_conv_equals_einsum_and_a_naive_loop():
    conv = _conv(C=5, T=4, t_out=3)
    x = torch.randn(2, 5, 4, 3, 2)
    W = conv.kernel()
    naive = torch.zeros(2, 5, 3, 3, 2)
    for c in range(5):
        for t in range(3):
            for s in range(4):
                naive[:, c, t] += W[c, t, s] * x[:, c, s]
    torch.testing.assert_close(conv(x), naive, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv(x), torch.einsum("cts,ncshw->ncthw", W, x), atol=1e-5, rtol=1e-5)


def test_kernel_is_a_masked_softmax_then_min_max():
    logits = torch.randn(3, 4, 4)
    allowed = allowed_mask(4, 4)
    w0 = directional_kernel(logits, allowed, "n0")
    for c in range(3):
        for t in range(4):
            row = torch.softmax(logits[c, t, : t + 1], 0)
            torch.testing.assert_close(w0[c, t, : t + 1], row)
            assert (w0[c, t, t + 1 :] == 0).all()
    w1 = directional_kernel(logits, allowed, "n1")
    vals = w1[:, allowed]
    assert torch.allclose(vals.amin(1), torch.full((3,), -1.0), atol=1e-4)
    assert torch.allclose(vals.amax(1), torch.ones(3), atol=1e-4)
    assert (w1[:, ~allowed] == 0).all()  # re-masked after the affine map
    torch.testing.assert_close(directional_kernel(logits, allowed, "n2"), (2 * w0 - 1) * allowed)
    with pytest.raises(ValueError, match="normalisation"):
        directional_kernel(logits, allowed, "n3")


def test_n1_at_initialisation_matches_the_derivation():
    w = directional_kernel(torch.zeros(1, 4, 4), allowed_mask(4, 4), "n1")[0]
    expected = [[1.0], [-1 / 3] * 2, [-7 / 9] * 3, [-1.0] * 4]
    for t, row in enumerate(expected):
        torch.testing.assert_close(w[t, : t + 1], torch.tensor(row), atol=1e-5, rtol=0)


def test_first_row_gets_no_gradient_under_n0():
    conv = DirectionalTemporalConv(3, 4, norm="n0")
    conv(torch.randn(2, 3, 4, 2, 2)).pow(2).sum().backward()
    assert conv.logits.grad[:, 0].abs().max() == 0
    assert conv.logits.grad[:, 1:].abs().max() > 0


@pytest.mark.parametrize("t_out,t_in", [(2, 4), (3, 4), (8, 4), (4, 8), (3, 8)])
def test_resized_mask_is_a_staircase(t_out, t_in):
    m = allowed_mask(t_out, t_in)
    prefix = m.sum(1)
    assert prefix[0] == 1 and prefix[-1] == t_in
    assert (prefix[1:] >= prefix[:-1]).all()
    for t in range(t_out):  # each row is a prefix: allowed inputs are 0..prefix-1
        assert m[t, : prefix[t]].all() and not m[t, prefix[t] :].any()


def test_align_corners_false_would_break_the_last_row():
    upper = torch.ones(4, 4).triu(1)[None, None]
    wrong = torch.nn.functional.interpolate(upper, size=(2, 4), mode="bilinear", align_corners=False)[0, 0]
    assert wrong[-1, -1] > 0  # the whole clip would not be visible to the last output
    assert allowed_mask(2, 4)[-1].all()


@pytest.mark.parametrize("scales,attention", [(3, True), (1, False)])
def test_uni_directional_network_is_causal_in_eval(scales, attention):
    torch.manual_seed(0)
    channels, T = (4, 6, 8), 4
    stream = CIDCStream(channels, T, scales=scales, attention=attention).eval()
    feats = [torch.randn(2, c, T, s, s) for c, s in zip(channels, (8, 4, 2))]
    t0 = 1
    later = [f.clone() for f in feats]
    for f in later:
        f[:, :, t0 + 1 :] += torch.randn_like(f[:, :, t0 + 1 :])
    with torch.no_grad():
        a, b = stream(feats), stream(later)
    torch.testing.assert_close(a[:, :, : t0 + 1], b[:, :, : t0 + 1])
    assert not torch.allclose(a[:, :, t0 + 1 :], b[:, :, t0 + 1 :])


def test_non_direction_and_backward_streams_are_not_causal():
    torch.manual_seed(0)
    channels, T = (4, 6, 8), 4
    feats = [torch.randn(2, c, T, s, s) for c, s in zip(channels, (8, 4, 2))]
    later = [f.clone() for f in feats]
    for f in later:
        f[:, :, -1] += 1.0
    for direction in ("non", "bi"):
        head = CIDCHead(channels, T, 3, direction=direction).eval()
        with torch.no_grad():
            outs_a, outs_b = head.stream_outputs(feats), head.stream_outputs(later)
        # the last stream (non: the only one; bi: the backward one) sees the future at step 0
        assert not torch.allclose(outs_a[-1][:, :, 0], outs_b[-1][:, :, 0])


def test_backward_kernel_is_anti_causal():
    conv = _conv(C=2, T=4)
    x = torch.randn(1, 2, 4, 1, 1)
    y = conv(x.flip(2)).flip(2)  # R G R
    W_eff = torch.einsum("cts->cts", conv.kernel().flip(1).flip(2))  # J W J
    torch.testing.assert_close(y, torch.einsum("cts,ncshw->ncthw", W_eff, x), atol=1e-5, rtol=1e-5)
    assert (W_eff.tril(-1) == 0).all()  # upper-triangular: each output reads the present and the future


def test_attention_gain_lies_in_one_to_two():
    earlier, later = torch.randn(2, 3, 4, 8, 8), torch.relu(torch.randn(2, 5, 4, 4, 4))
    gain = propagate_attention(earlier, later) / earlier
    assert gain.min() >= 1.5 - 1e-6 and gain.max() < 2  # post-ReLU features: sigma(mean) >= 0.5
    with pytest.raises(ValueError, match="differ in time"):
        propagate_attention(earlier, later[:, :, :2])


def test_concat_t_is_a_fixed_weight_sum_under_average_pooling():
    torch.manual_seed(0)
    head = CIDCHead((4, 6, 8), 4, 3, fusion="concat_t").eval()
    f = torch.randn(2, 8, 4, 2, 2)
    outs = [torch.randn(2, 8, 4, 2, 2), torch.randn(2, 8, 4, 2, 2)]
    pooled = head.fuse(f, outs)
    torch.testing.assert_close(pooled, sum(p.mean(dim=(2, 3, 4)) for p in [f, *outs]) / 3)


def test_heads_learn_and_pass_gradients():
    torch.manual_seed(0)
    channels, T = (4, 6, 8), 4
    feats = [torch.randn(3, c, T, s, s) for c, s in zip(channels, (8, 4, 2))]
    for name in ("gap", "cidc", "lstm", "self_attention"):
        head = build_head(name, channels, T, 5, **({"heads": 2} if name == "self_attention" else {}))
        head(feats).sum().backward()
        dead = [n for n, p in head.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
        # only the first row of each logit kernel (a one-hot softmax) may be dead
        assert all(n.endswith("logits") for n in dead), dead
    with pytest.raises(ValueError, match="unknown head"):
        build_head("transformer", channels, T, 5)
    with pytest.raises(ValueError, match="unknown direction"):
        CIDCHead(channels, T, 5, direction="both")


def test_self_attention_head_is_blind_to_time_order():
    torch.manual_seed(0)
    head = SelfAttentionHead((4, 6, 8), 3, heads=2).eval()
    f = torch.randn(2, 8, 4, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(head([None, None, f]), head([None, None, f.flip(2)]), atol=1e-5, rtol=1e-5)
        gap = GAPHead((4, 6, 8), 3).eval()
        torch.testing.assert_close(gap([None, None, f]), gap([None, None, f.flip(2)]))


def test_unit_shape_errors_are_clear():
    with pytest.raises(ValueError, match="expected 3 channels x 4 steps"):
        CIDCUnit(3, 4)(torch.randn(1, 3, 5, 2, 2))


def test_tiny_backbone_receptive_field_is_shorter_than_the_pause():
    cfg = suite_config("order_events")
    rf = temporal_receptive_field(TinyI3D(), cfg.frames, cfg.size)
    assert rf == 9
    assert rf < cfg.pause_frames  # no output step sees both events
    shapes = [tuple(f.shape[1:]) for f in TinyI3D()(torch.randn(1, 3, 32, 32, 32))]
    assert shapes == [(32, 4, 16, 16), (64, 4, 8, 8), (128, 4, 4, 4)]


def test_full_size_parameters_and_macs_against_the_spec_arithmetic():
    with torch.device("meta"):
        i3d, r2d, i3d_nl = ResNet3d50(True), ResNet3d50(False), ResNet3d50(True, non_local=True)
        x = torch.empty(1, 3, 32, 224, 224)
        head = CIDCHead(i3d.channels, 4, 400)
        feats = [torch.empty(1, c, 4, s, s) for c, s in zip(i3d.channels, (28, 14, 7))]
    fc = 2048 * 400 + 400
    assert round((count_params(r2d) + fc) / 1e6, 1) == 24.3  # GluonCV R2D-50 with a K400 head
    assert round((count_params(i3d) + fc) / 1e6, 1) == 28.0
    # NL5: per block theta, phi, g (C x C/2 with bias) and W (C/2 x C) plus BN; "7.3M" is the 2 C^2 weights
    nl = sum(2 * C * C + 3 * (C // 2) + 2 * C for C in (512, 512, 1024, 1024, 1024))
    assert count_params(i3d_nl) - count_params(i3d) == nl and round(nl / 1e6, 2) == 7.35
    assert round(count_macs(r2d, x) / 1e9, 1) == 20.4
    assert round(count_macs(i3d, x) / 1e9, 1) == 33.1
    assert round((count_params(head) - fc) / 1e6, 1) == 27.5
    assert round(count_macs(head, feats) / 1e9, 1) == 11.6
    assert [tuple(f.shape[1:]) for f in i3d(x)] == [(512, 4, 28, 28), (1024, 4, 14, 14), (2048, 4, 7, 7)]


def test_event_suite_pairs():
    cfg = suite_of({"suite": "order_events", "suite_overrides": {k: [list(p) for p in v] for k, v in EVENTS.items()}})
    names = [c.name for c in cfg.classes]
    assert names == ["pulse->oscillate", "oscillate->pulse", "pulse->pulse", "oscillate->oscillate"]
    assert event_swap_partners(cfg) == [1, 0, None, None] == [c.partner for c in cfg.classes]


def test_heads_share_one_frozen_backbone_and_it_stays_unchanged(records_dir, data_folder, monkeypatch):
    # a train-mode pass through the frozen backbone once moved BatchNorm's running statistics
    from vidattn.core.profiles import context
    from vidattn.core.store import run_or_load
    from vidattn.papers.cidc.rows import run_config

    monkeypatch.setenv("VIDATTN_DATA_DIR", str(data_folder))
    recs = [run_or_load("cidc/train", run_config(context("smoke"), h, 0)) for h in ("I3D (GAP)", "LSTM", "CIDC (full)")]
    maps = [r.result["examples"]["maps"]["res5"] for r in recs]
    assert maps[0] == maps[1] == maps[2]
    assert len({r.metrics["pointing_res5"] for r in recs}) == 1
    assert recs[2].metrics["head_params"] > recs[0].metrics["head_params"]
    assert set(recs[2].result["examples"]["maps"]) == {"res5", "propagated", "cidc"}
