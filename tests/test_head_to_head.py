"""The head-to-head chapter's trunk, registry, suites and rows."""
import pytest
import torch

from vidattn.core.profiles import context
from vidattn.models.temporal import TemporalAttention
from vidattn.papers.direcformer.model import LossWeights, direcformer_loss
from vidattn.papers.direcformer.permutations import order_table, permutation_set
from vidattn.papers.head_to_head import rows as H
from vidattn.papers.head_to_head.mechanisms import MECHANISMS, create_mechanism
from vidattn.papers.head_to_head.suites import FRAMES, SIZE, SUITES, classes, load, suite_cfg


@pytest.mark.parametrize("name", list(MECHANISMS))
def test_every_mechanism_builds_in_the_slot_and_its_cost_is_matched(name):
    widths, ratio = H.matched_widths(name, (8, 16, 32))
    net = create_mechanism(name, 7, FRAMES, SIZE, widths=widths)
    assert net(torch.randn(2, 3, FRAMES, SIZE, SIZE)).shape == (2, 7)
    assert abs(ratio - 1) <= H.MATCH


def test_an_unknown_mechanism_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mechanism 'lstm'"):
        create_mechanism("lstm", 10, FRAMES, SIZE)


def test_temporal_attention_is_attention_over_frames_at_every_position():
    torch.manual_seed(0)
    m = TemporalAttention(8, frames=4, kind="cosine", heads=2)
    torch.nn.init.normal_(m.attn.proj.weight)  # leave the identity start
    x = torch.randn(2, 8, 4, 3, 5)
    y = m(x)
    b, i, j = 1, 2, 3  # one position, by hand: tokens over time, time embedding, norm, attention
    tokens = x[b, :, :, i, j].T[None] + m.time
    out, a = m.attn(m.norm(tokens))
    assert torch.allclose(y[b, :, :, i, j], x[b, :, :, i, j] + out[0].T, atol=1e-5)
    assert torch.allclose(m.weights[b, i * 5 + j], a[0], atol=1e-6)


def test_temporal_attention_starts_as_the_identity():
    m = TemporalAttention(8, frames=4)
    x = torch.randn(2, 8, 4, 3, 3)
    assert torch.equal(m(x), x)


def _shuffle_invariant(net):
    x = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    with torch.no_grad():
        return torch.allclose(net(x), net(x[:, :, perm]), atol=1e-5)


def test_the_bag_and_the_pyramid_pooling_are_order_blind_and_the_shift_is_not():
    torch.manual_seed(0)
    assert _shuffle_invariant(create_mechanism("bag of frames", 10, FRAMES, SIZE).eval())
    pyr = create_mechanism("pyramid attention", 10, FRAMES, SIZE).eval()
    for w in pyr.head.weights:
        torch.nn.init.normal_(w, std=0.5)
    assert _shuffle_invariant(pyr)  # a set function of its (frame, position) sources
    for name in ("TSM", "SIFA", "CIDC"):
        assert not _shuffle_invariant(create_mechanism(name, 10, FRAMES, SIZE).eval()), name


def test_directed_attention_trains_with_both_order_losses():
    torch.manual_seed(0)
    perms = order_table(permutation_set(FRAMES, 30, "max", seed=0))
    net = create_mechanism("directed attention", 10, FRAMES, SIZE, num_orders=len(perms))
    batch = {"video": torch.randn(4, 3, FRAMES, SIZE, SIZE), "label": torch.tensor([0, 1, 2, 3])}
    loss, logs = direcformer_loss(net, batch, perms, LossWeights(1.0, 1.0, 1.0))
    loss.backward()
    assert {"ord", "self"} <= set(logs)
    qkv = [m.attn.qkv.weight.grad for m in net.attention_modules()]
    assert all(g is not None and g.abs().sum() > 0 for g in qkv)  # L_self reaches the attention
    assert net.order_head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(SUITES))
def test_every_suite_loads_at_the_common_size_with_consistent_pairs(name):
    cfg = suite_cfg(name, 20, 10)
    arrays = load(name, cfg, "test")
    assert arrays.videos.shape[1:] == (FRAMES, SIZE, SIZE, 3)
    k, partner = classes(name, cfg)
    assert len(partner) == k and all(p is None or partner[p] == c for c, p in enumerate(partner))
    assert set(arrays.labels.tolist()) <= set(range(k))


def test_the_matrix_covers_every_cell_and_the_pilot_uses_a_seed_of_its_own():
    ctx = context("small", 5)
    lrs = {m: 0.05 for m in MECHANISMS}
    runs = H.chapter_runs(ctx, lrs)
    cells = {(r.config["suite"], r.config["mechanism"]) for r in runs}
    assert cells == {(s, m) for s in SUITES for m in MECHANISMS}
    # every seed on the bag, the gate references and the claims' cells; the first three elsewhere
    per_cell = {c: sorted(r.config["seed"] for r in runs if (r.config["suite"], r.config["mechanism"]) == c)
                for c in cells}
    full = {c for c in cells if c[1] in (H.BAG, H.GATE_REFERENCE[c[0]])} | H.CLAIM_CELLS
    assert H.CLAIM_CELLS <= cells and ("binding", "SIFA") in full and ("order", "TSM") in full
    assert all(per_cell[c] == ([0, 1, 2, 3, 4] if c in full else [0, 1, 2]) for c in cells)
    assert len(H.chapter_runs(context("smoke", 2), lrs)) == len(cells) * 2  # smoke: no cut
    pilot = H.pilot_runs(ctx)
    assert {r.config["seed"] for r in pilot} == {H.PILOT_SEED} and H.PILOT_SEED not in ctx.seeds
    assert all(r.config["validation"] == round(H.VALIDATION_SHARE * r.config["n_train"]) for r in pilot)
    assert len(pilot) == len(MECHANISMS) * len(H.PILOT_LRS) * len(SUITES)


def test_choose_lrs_takes_the_best_mean_over_suites_and_the_lower_rate_on_a_tie():
    scores = {(m, lr): [50.0] for m in MECHANISMS for lr in (0.02, 0.05)}
    scores["TSM", 0.05] = [60.0, 70.0]
    scores["TSM", 0.02] = [80.0, 40.0]
    chosen = H.choose_lrs(scores)
    assert chosen["TSM"] == 0.05 and chosen["bag of frames"] == 0.02
    del scores["SIFA", 0.02], scores["SIFA", 0.05]
    with pytest.raises(ValueError, match="no runs of 'SIFA'"):
        H.choose_lrs(scores)


def test_size_override_takes_clip_counts_and_epochs_only():
    assert H.settings(context("smoke", size_override={"epochs": 2}))["epochs"] == 2
    with pytest.raises(ValueError, match="48 px and 8 frames"):
        H.settings(context("smoke", size_override={"size": 32}))


def test_the_regime_pilot_runs_each_candidate_on_each_cell_on_validation_only():
    runs = H.regime_pilot_runs(context("small", 5))
    assert len(runs) == len(H.REGIME_PILOT) * len(H.REGIME_CELLS)
    got = {(r.config["train"]["batch_size"], r.config["train"]["epochs"], r.config["train"]["lr"]) for r in runs}
    assert got == set(H.REGIME_PILOT) and all(r.config["validation"] and r.config["seed"] == H.PILOT_SEED
                                              for r in runs)
    # the first candidate is the first small run's recipe: its records are that run's pilot at lr 0.1
    suite, m = H.REGIME_CELLS[0]
    old = H.run_config(context("small", 5), m, suite, H.PILOT_SEED, 0.1, validation=True)
    assert runs[0].config == {**old, "train": {**old["train"], "batch_size": 32, "epochs": 6}}
    assert H.regime_pilot_runs(context("full")) == []
    assert (H.TRAIN["batch_size"], H.PROFILE_SETTINGS["small"]["epochs"]) == H.REGIME_CHOICE[:2]


def test_choose_regime_counts_converged_cells_then_the_mean_score():
    a, b, c = H.REGIME_PILOT[:3]
    cells = {a: [(90.0, 0.2), (90.0, 0.3)], b: [(60.0, 0.05), (60.0, 0.2)], c: [(70.0, 0.05), (50.0, 0.09)]}
    assert H.choose_regime(cells) == c
    cells[b] = [(95.0, 0.05), (60.0, 0.01)]
    assert H.choose_regime(cells) == b
    with pytest.raises(ValueError, match="unknown or no regime"):
        H.choose_regime({(8, 1, 0.3): [(1.0, 0.0)]})
