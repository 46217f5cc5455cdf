"""The pyramid-attention layer, its losses, the tiny and full-size networks, SynthAct-10 and flow."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidattn.data.suites.flow import (
    compensate,
    dequantise,
    endpoint_error,
    estimate_flow,
    flip_flow,
    flow_stack,
    quantise,
)
from vidattn.data.suites.synthact import PAIRS, exact_flow, load_synthact_split, render, synthact_suite
from vidattn.papers.pyramid.attention import (
    PyramidAttention,
    attention_distances,
    attention_loss,
    delta_params,
    interaction_loss,
)
from vidattn.papers.pyramid.net import AttentionFusion, SegmentNet, TinyTrunk, cross_modality_init


def _maps(B=2, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, K, 8, 16, 16, generator=g), torch.randn(B, K, 16, 8, 8, generator=g),
            torch.randn(B, K, 32, 8, 8, generator=g)]


def _layer(fusion="product", seed=0):
    torch.manual_seed(seed)
    layer = PyramidAttention([8, 16, 32], (8, 8), fusion, init_std=0.3)
    with torch.no_grad():
        for b in layer.biases:
            b.normal_()
    return layer


@pytest.mark.parametrize("fusion", ["max", "sum", "product", "softmax_product"])
def test_output_is_invariant_to_permuting_frames_and_sources(fusion):
    layer, maps = _layer(fusion), _maps()
    M, _ = layer(maps)
    perm = torch.tensor([2, 0, 1])
    M_frames, _ = layer([m[:, perm] for m in maps])
    assert torch.allclose(M, M_frames, atol=1e-5)
    # permuting the sources (every scale the same way) inside the pooled maps leaves M unchanged
    X = layer.sources(maps)
    p = torch.randperm(X[0].shape[-1], generator=torch.Generator().manual_seed(1))
    A = layer.attention(layer.scores([x[..., p] for x in X]))
    assert torch.allclose(torch.bmm(X[-1][..., p], A), M.flatten(2), atol=1e-5)


def test_scores_depend_on_source_content_and_target_index_only():
    layer = _layer()
    X = layer.sources(_maps())
    Y = layer.scores(X)[0]
    k, m = 5, 7
    direct = X[0][0, :, k] @ layer.weights[0][:, m] + layer.biases[0][m]
    assert torch.isclose(Y[0, k, m], direct, atol=1e-5)


def test_bias_gets_no_gradient_under_sum_fusion_or_one_scale_but_does_under_max():
    for fusion, scales, zero in (("sum", 3, True), ("product", 1, True), ("max", 3, False), ("product", 3, False)):
        layer = PyramidAttention([8, 16, 32][-scales:], (8, 8), fusion, init_std=0.3).double()
        M, _ = layer([m.double() for m in _maps()[-scales:]])
        (M**2).sum().backward()
        grad = max(float(b.grad.abs().max()) for b in layer.biases)
        assert (grad < 1e-10) == zero, (fusion, scales, grad)  # float64: rounding stays far below


def test_columns_are_unit_and_their_sums_lie_between_one_and_root_ks():
    layer = _layer()
    _, aux = layer(_maps(K=3))
    A = aux["A"]
    KS = A.shape[1]
    assert torch.allclose(A.norm(dim=1), torch.ones(A.shape[0], A.shape[2]), atol=1e-5)
    sums = A.sum(1)
    assert (sums >= 1 - 1e-5).all() and (sums <= math.sqrt(KS) + 1e-5).all()
    uniform = F.normalize(torch.ones(KS, 1), dim=0)
    assert math.isclose(float(uniform.sum()), math.sqrt(KS), rel_tol=1e-6)


def test_uniform_fusion_averages_the_sources_and_reads_no_content():
    layer, maps = _layer("uniform"), [m.requires_grad_() for m in _maps(K=3)]
    M, aux = layer(maps)
    X = layer.sources(maps)[-1]  # (B, C, KS)
    KS = X.shape[-1]
    mean = X.mean(-1, keepdim=True) * math.sqrt(KS)  # every unit column is 1 / sqrt(KS) everywhere
    assert torch.allclose(M.flatten(2), mean.expand_as(M.flatten(2)), atol=1e-5)
    (M**2).sum().backward()
    assert all(w.grad is None or float(w.grad.abs().max()) == 0 for w in layer.weights)  # no content read
    assert sum(p.numel() for p in layer.parameters()) == sum(p.numel() for p in _layer().parameters())


def test_product_fusion_gradient_vanishes_with_small_scores():
    y = [torch.full((1, 4, 2), 1e-3, requires_grad=True) for _ in range(3)]
    (y[0] * y[1] * y[2]).sum().backward()
    assert float(y[0].grad.abs().max()) == pytest.approx(1e-6)


def test_interaction_loss_matches_the_gram_form_and_the_stop_gradient_keeps_features_out():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 6, 12, generator=g, requires_grad=True)
    A = F.normalize(torch.rand(2, 12, 4, generator=g), dim=1).requires_grad_()
    gram = X.transpose(1, 2) @ X  # the KS x KS form of Eq. 8, for the check only
    AtGA = A.transpose(1, 2) @ gram @ A
    AtA = A.transpose(1, 2) @ A
    eye = torch.eye(4)
    naive = (-(AtGA * eye).sum((1, 2)) + ((AtA * (1 - eye)) ** 2).sum((1, 2))).mean()
    ours = interaction_loss(X, A, stop_gradient=False)
    assert torch.isclose(ours, naive, atol=1e-4)
    interaction_loss(X, A).backward()
    assert X.grad is None and A.grad is not None


def test_pca_reading_facts():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 6, generator=g)  # C x S
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    # (a) square orthogonal S: the trace is the constant tr(X^T X)
    assert torch.isclose(torch.trace(Q.T @ X.T @ X @ Q), torch.trace(X.T @ X), atol=1e-4)
    # (b) nonnegative orthonormal columns have disjoint supports: a permutation matrix
    P = torch.eye(6)[torch.randperm(6, generator=g)]
    assert torch.allclose(P.T @ P, torch.eye(6)) and ((P > 0).sum(0) == 1).all()
    # (c) two identical sources at 1/sqrt 2 give 2 ||x||^2
    x = torch.randn(5, 1, generator=g)
    a = torch.full((2, 1), 1 / math.sqrt(2))
    assert torch.isclose(((torch.cat([x, x], 1) @ a) ** 2).sum(), 2 * (x**2).sum(), atol=1e-5)
    # (d) a tall A with A^T A = I does not give A A^T = I
    tall, _ = torch.linalg.qr(torch.randn(12, 4, generator=g))
    assert torch.allclose(tall.T @ tall, torch.eye(4), atol=1e-5)
    assert not torch.allclose(tall @ tall.T, torch.eye(12), atol=1e-2)


def test_attention_distance_lies_in_zero_root_two_and_the_loss_stays_real():
    layer = _layer()
    _, aux = layer(_maps(K=3))
    d = attention_distances(aux["A"], aux["Y"], 3)
    assert d.shape == (3, 2, 3, 64) and (d >= 0).all() and (d <= math.sqrt(2) + 1e-6).all()
    # the extreme: one-hot p disjoint from a gives sqrt 2
    a, p = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert math.isclose(float((a - p).norm()), math.sqrt(2), rel_tol=1e-6)
    loss = attention_loss(aux["A"], aux["Y"], 3)
    loss.backward() if loss.requires_grad else None
    assert torch.isfinite(loss)
    # per-frame distances squared add up to the whole column's (Eq. 14 = Eq. 10 over KS)
    full = (aux["A"] - aux["Y"][0].softmax(1)).norm(dim=1)
    assert torch.allclose((d[0] ** 2).sum(1), full**2, atol=1e-5)


def test_temporal_parameters_do_not_depend_on_k_and_match_the_cost_formula():
    layer = _layer()
    assert layer.extra_params() == delta_params([8, 16, 32], 64) == 64 * (9 + 17 + 33)
    for K in (1, 3, 7):
        M, aux = layer(_maps(K=K))
        assert M.shape == (2, 32, 8, 8) and aux["A"].shape == (2, K * 64, 64)


def test_segment_net_scales_and_gradients_reach_every_scale():
    net = SegmentNet(10, 3, scales=4)
    video = torch.randn(2, 3, 3, 32, 32)
    logits, aux = net.attend(video)
    assert logits.shape == (2, 10) and aux["A"].shape == (2, 3 * 64, 64)
    loss = logits.sum() + interaction_loss(aux["X"], aux["A"]) + attention_loss(aux["A"], aux["Y"], 3)
    loss.backward()
    assert all(w.grad is not None and float(w.grad.abs().sum()) > 0 for w in net.pyramid.weights)
    assert float(net.trunk.stages[0][0].weight.grad.abs().sum()) > 0
    rgb0 = SegmentNet(10, 3, scales=0).eval()
    assert torch.allclose(rgb0(video), rgb0(video.flip(2)), atol=1e-5)  # TSN averages: order-free too


def test_cross_modality_init_averages_conv1_over_colour():
    rgb, flow = TinyTrunk(3), TinyTrunk(10)
    cross_modality_init(rgb, flow)
    w_rgb, w_flow = rgb.stages[0][0].weight, flow.stages[0][0].weight
    assert torch.allclose(w_flow[:, 4], w_rgb.mean(1)) and w_flow.shape[1] == 10
    assert torch.equal(flow.stages[2][0].weight, rgb.stages[2][0].weight)


def test_synthact_is_deterministic_balanced_and_pairs_share_their_frames_reversed():
    cfg = synthact_suite("synthact", n_train=20, n_test=10)
    a, b = render(cfg, "train", 3), render(cfg, "train", 3)
    assert np.array_equal(a[0], b[0]) and a[2] == 3
    assert [render(cfg, "train", i)[2] for i in range(10)] == list(range(10))
    assert PAIRS == ((0, 1), (2, 3), (4, 5))
    video, mask, label, meta, _ = render(cfg, "train", 0)
    top, left, h, w = meta["boxes"][5]
    assert mask[5, top : top + h, left : left + w].all() and mask[5].sum() == h * w
    with pytest.raises(ValueError, match="unknown SynthAct suite"):
        synthact_suite("nope")
    with pytest.raises(ValueError, match="unknown SynthAct-suite field"):
        synthact_suite("synthact", colour=3)


def test_exact_flow_moves_the_actor_as_rendered():
    cfg = synthact_suite("synthact")
    video, mask, label, meta, flow = render(cfg, "train", 0, with_flow=True)  # class 0: right, 1 px/frame
    assert label == 0
    t = 4
    top, left, h, w = meta["boxes"][t]
    assert np.allclose(flow[t, top + 2, left + 2], [1.0, 0.0])
    now = video[t, top : top + h, left : left + w].astype(float)
    moved, stayed = video[t + 1, top : top + h, left + 1 : left + w + 1], video[t + 1, top : top + h, left : left + w]
    assert np.abs(now - moved).mean() < 10 < 50 < np.abs(now - stayed).mean()  # noise only vs an inverted board
    assert np.array_equal(exact_flow(cfg, "train", 0), flow)


def test_estimated_flow_follows_a_rendered_pan_and_compensation_removes_it():
    cfg = synthact_suite("synthact_pan")
    video, mask, _, meta, truth = render(cfg, "train", 9, with_flow=True)  # c9: no actor motion
    est = estimate_flow(video, "dis")
    background = ~mask[:-1]
    zero = endpoint_error(np.zeros_like(truth), truth, background)
    assert zero > 0.5  # the camera moves
    assert endpoint_error(est, truth, background) < 0.5 * zero
    residual = compensate(est)
    assert endpoint_error(residual, truth - truth[:, :1, :1], background) < 0.3 * zero


def test_flow_storage_stack_and_flip():
    f = np.random.default_rng(0).uniform(-25, 25, (6, 4, 5, 2)).astype(np.float32)
    back = dequantise(quantise(f))
    assert np.abs(back - np.clip(f, -20, 20)).max() <= 20 / 255 + 1e-6
    stack = flow_stack(f, 1, 3)
    assert stack.shape == (6, 4, 5) and np.array_equal(stack[2], f[2, ..., 0]) and np.array_equal(stack[3], f[2, ..., 1])
    flipped = flip_flow(stack)
    assert np.array_equal(flipped[0], -stack[0][:, ::-1]) and np.array_equal(flipped[1], stack[1][:, ::-1])
    with pytest.raises(ValueError, match="unknown flow method"):
        estimate_flow(np.zeros((2, 8, 8, 3), np.uint8), "magic")


def test_oracle_flow_rows_read_the_renderers_flow_in_rendered_order_only(data_folder):
    from vidattn.core.registry import Run
    from vidattn.papers.pyramid.experiment import flows_of

    cfg = synthact_suite("synthact", n_train=3, n_test=2)
    arrays = load_synthact_split(cfg, "test")
    q = flows_of(Run(), cfg, "test", arrays, {"method": "exact", "length": 5, "compensate": False})
    assert np.array_equal(q[1], quantise(exact_flow(cfg, "test", 1)))
    assert not np.array_equal(q, flows_of(Run(), cfg, "test", arrays, {"method": "dis", "length": 5, "compensate": False}))
    with pytest.raises(ValueError, match="rendered frame order"):
        flows_of(Run(), cfg, "test", arrays, {"method": "exact", "length": 5, "compensate": False}, "reversed")


def test_attention_fusion_has_one_classifier_and_both_trunks_learn():
    net = AttentionFusion(10, 10, scales=3)
    assert [n for n, _ in net.named_children()] == ["rgb", "flow", "pyramid", "drop", "fc"]
    video, flow = torch.randn(2, 3, 3, 32, 32), torch.randn(2, 10, 3, 32, 32)
    net(video, flow).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
