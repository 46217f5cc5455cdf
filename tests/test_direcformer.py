"""DirecFormer: attention maths, the divided block against a naive loop, sizes, losses, loading."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidattn.engine.flops import count_macs, count_params
from vidattn.papers.direcformer.model import (
    DirecFormer,
    DirecFormerConfig,
    LossWeights,
    cosine_scores,
    direcformer_loss,
    full_size,
    load_vit_weights,
    self_guided_loss,
)
from vidattn.papers.direcformer.permutations import order_signs, order_table, permutation_set, permute_frames


def tiny(variant: str = "C-S", **kw) -> DirecFormer:
    torch.manual_seed(0)
    cfg = dict(num_classes=5, variant=variant, img_size=16, patch_size=8, frames=4, dim=16, depth=2, heads=2,
               mlp_ratio=2.0, drop_path=0.0, num_orders=7)
    cfg.update(kw)
    return DirecFormer(DirecFormerConfig(**cfg))


def test_full_size_parameters_match_table_5():
    model = DirecFormer(full_size(num_classes=174, num_orders=0))
    backbone = count_params(model) - count_params(model.head)
    assert backbone == 121_258_752  # 12 (17 D^2 + 20 D) + embeddings + final norm
    assert count_params(model) == 121_392_558  # "121.4M" with the 174-way SSv2 head


@pytest.mark.parametrize("variant", ["S-S", "C-C"])
def test_full_size_macs_match_table_5(variant):
    with torch.device("meta"):
        model = DirecFormer(full_size(num_classes=174, variant=variant, num_orders=0))
        video = torch.empty(1, 3, 8, 224, 224)
    D, N, T, L, P, r = 768, 196, 8, 12, 16, 4
    formula = L * (5 * D * D * N * T + 4 * D * D * T * (N + 1) + 2 * r * D * D * (N * T + 1)
                   + 2 * D * T * (N + 1) ** 2 + 2 * D * N * T * T) + 3 * P * P * D * N * T
    macs = count_macs(model, video)
    assert macs == formula + D * 174  # plus the class head
    assert round(macs / 1e9, 2) == 195.83


def test_cosine_scores_match_definition_and_ignore_scale():
    q, k = torch.randn(3, 5, 7), torch.randn(3, 6, 7)
    a = cosine_scores(q, k)
    naive = torch.tensor([[[F.cosine_similarity(q[b, i], k[b, j], dim=0) for j in range(6)] for i in range(5)]
                          for b in range(3)])
    assert torch.allclose(a, naive, atol=1e-6)
    assert torch.allclose(cosine_scores(q / math.sqrt(7), k), a, atol=1e-6)  # Eq. 5's 1/sqrt(D) is a no-op
    assert torch.isfinite(cosine_scores(torch.zeros(1, 2, 4), k[:1, :, :4])).all()


def naive_block(block, cls, x):
    """The divided block written with explicit loops over positions and frames."""
    B, N, T, D = x.shape
    x1 = x.clone()
    for s in range(N):  # temporal attention: position s over the T frames
        out, _ = block.temporal_attn(block.temporal_norm1(x[:, s]))
        x1[:, s] = x[:, s] + block.temporal_fc(out)
    cls_sum = torch.zeros_like(cls)
    x2 = x1.clone()
    for t in range(T):  # spatial attention: frame t with its own class-token copy
        tokens = torch.cat([cls, x1[:, :, t]], 1)
        out, _ = block.attn(block.norm1(tokens))
        cls_sum = cls_sum + out[:, :1]
        x2[:, :, t] = x1[:, :, t] + out[:, 1:]
    cls2 = cls + cls_sum / T
    return cls2 + block.mlp(block.norm2(cls2)), x2 + block.mlp(block.norm2(x2))


@pytest.mark.parametrize("variant", ["S-S", "C-S", "S-C", "C-C"])
def test_divided_block_equals_naive_loops(variant):
    model = tiny(variant).eval()
    block = model.blocks[0]
    torch.nn.init.normal_(block.temporal_fc.weight, std=0.1)
    cls, x = torch.randn(2, 1, 16), torch.randn(2, 4, 4, 16)
    c1, x1, a_t, a_s = block(cls, x)
    c2, x2 = naive_block(block, cls, x)
    assert torch.allclose(c1, c2, atol=1e-5) and torch.allclose(x1, x2, atol=1e-5)
    assert a_t.shape == (2, 4, 2, 4, 4) and a_s.shape == (2, 4, 2, 5, 5)
    t_kind = variant[0]
    if t_kind == "S":
        assert torch.allclose(a_t.sum(-1), torch.ones(()), atol=1e-5) and (a_t > 0).all()
    else:
        assert (a_t.abs() <= 1 + 1e-6).all() and (a_t < 0).any()  # signed, not normalised


def test_zero_init_temporal_fc_makes_later_temporal_branches_identity():
    model = tiny("C-C", depth=3).eval()
    video = torch.randn(2, 3, 4, 16, 16)
    before = model(video)
    with torch.no_grad():
        for block in model.blocks[1:]:
            block.temporal_attn.qkv.weight.normal_()
    assert torch.allclose(model(video), before)
    with torch.no_grad():
        model.blocks[0].temporal_attn.qkv.weight.normal_()
    assert not torch.allclose(model(video), before)  # block 1's temporal branch is live from the start


def test_without_time_embedding_the_model_is_a_bag_of_frames():
    video = torch.randn(2, 3, 4, 16, 16)
    perm = torch.tensor([2, 0, 3, 1])
    bag = tiny("C-C", time_embed=False).eval()
    assert torch.allclose(bag(video), bag(video[:, :, perm]), atol=1e-5)
    timed = tiny("C-C").eval()
    torch.nn.init.normal_(timed.time_embed, std=1.0)
    assert not torch.allclose(timed(video), timed(video[:, :, perm]), atol=1e-3)


def test_time_embedding_initialisation_decides_order_blindness_at_init():
    video = torch.randn(2, 3, 4, 16, 16)
    perm = torch.tensor([2, 0, 3, 1])
    official = tiny("S-S").eval()  # zero time embedding, as the official code
    assert torch.count_nonzero(official.time_embed) == 0
    assert torch.allclose(official(video), official(video[:, :, perm]), atol=1e-5)
    drawn = tiny("S-S", time_embed_std=0.2).eval()
    assert 0.1 < drawn.time_embed.std().item() < 0.3
    assert not torch.allclose(drawn(video), drawn(video[:, :, perm]), atol=1e-4)
    with pytest.raises(ValueError, match="time_embed_std"):
        tiny(time_embed_std=-1.0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown DirecFormer variant"):
        tiny("X-Y")
    with pytest.raises(ValueError, match="expects clips"):
        tiny()(torch.randn(1, 3, 5, 16, 16))


def test_permutation_sets_follow_the_greedy_rule():
    T = 6
    for rule in ("max", "min"):
        P = permutation_set(T, 12, rule, seed=3)
        assert len({tuple(p) for p in P}) == 12 and not any((p == np.arange(T)).all() for p in P)
        assert (permutation_set(T, 12, rule, seed=3) == P).all()
        from vidattn.papers.direcformer.permutations import all_permutations, hamming
        perms = all_permutations(T)[1:]
        for i in range(1, len(P)):
            chosen = P[:i]
            free = [p for p in perms if not any((p == c).all() for c in chosen)]
            means = [hamming(chosen, p).mean() for p in free]
            target = max(means) if rule == "max" else min(means)
            assert math.isclose(hamming(chosen, P[i]).mean(), target)
    far, near = permutation_set(8, 30, "max"), permutation_set(8, 30, "min")
    assert (far[:, None] != far[None]).sum(-1).mean() > (near[:, None] != near[None]).sum(-1).mean()


def test_permute_frames_is_a_gather():
    video = torch.arange(2 * 4).float().view(2, 1, 4, 1, 1).expand(2, 3, 4, 2, 2)
    o = torch.tensor([[3, 0, 2, 1], [1, 2, 3, 0]])
    out = permute_frames(video, o)
    for b in range(2):
        for t in range(4):
            assert torch.equal(out[b, :, t], video[b, :, o[b, t]])


def test_self_guided_loss_matches_the_sum_and_its_bound():
    T = 8
    o = torch.tensor([[5, 1, 7, 0, 2, 6, 3, 4]])
    a = torch.rand(1, 3, 2, T, T) * 2 - 1  # (B, N, heads, T, T)
    sign = order_signs(o)[0]
    naive = sum((1 - a[0, s, h, t, u]) * sign[t, u] for s in range(3) for h in range(2) for t in range(T)
                for u in range(T) if t != u) / (3 * 2 * T * (T - 1))
    assert torch.isclose(self_guided_loss([a], o), naive, atol=1e-6)
    paper = sum((1 - a[0, s, h, t, u]) * sign[t, u] for s in range(3) for h in range(2) for t in range(T)
                for u in range(T)) / (3 * 2 * T * T)
    assert torch.isclose(self_guided_loss([a], o, include_diagonal=True), paper, atol=1e-6)
    # the attainable minimum: a[t,u] = sin(pi (o_u - o_t) / T) meets -cot(pi / 2T) / (T - 1)
    best = torch.sin(math.pi * (o[0][None, :] - o[0][:, None]).float() / T)[None, None, None]
    bound = -1 / math.tan(math.pi / (2 * T)) / (T - 1)
    assert math.isclose(self_guided_loss([best], o).item(), bound, rel_tol=1e-5)
    assert round(bound, 3) == -0.718


def test_losses_send_gradients_where_they_should():
    model = tiny("C-S")
    orders = order_table(permutation_set(4, 6, seed=0))
    batch = {"video": torch.randn(4, 3, 4, 16, 16), "label": torch.tensor([0, 1, 2, 3])}
    loss, logs = direcformer_loss(model, batch, orders, LossWeights(1, 0, 0))
    loss.backward()
    assert model.order_head.weight.grad is None and set(logs) == {"cls", "acc"}
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    loss, logs = direcformer_loss(model, batch, orders, LossWeights(0, 0, 1))
    loss.backward()
    assert model.head.weight.grad is None or model.head.weight.grad.abs().sum() == 0
    assert model.blocks[0].temporal_attn.qkv.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    loss, logs = direcformer_loss(model, batch, orders, LossWeights(1, 1, 1))
    loss.backward()
    assert model.order_head.weight.grad.abs().sum() > 0 and {"ord", "self", "ord_acc"} <= set(logs)


def test_vit_checkpoint_loads_from_a_local_file(tmp_path):
    model = tiny("C-S", img_size=32)  # 16 patches per frame
    source = tiny("S-S", img_size=16)  # a 4-patch "image ViT"
    state = {k: v for k, v in source.state_dict().items()
             if not k.startswith(("time_embed", "order_head")) and "temporal" not in k}
    state["head.weight"] = torch.zeros(1000, 16)  # an ImageNet head is skipped
    torch.save({"model": state}, tmp_path / "vit.pth")
    report = load_vit_weights(model, tmp_path / "vit.pth")
    b = model.blocks[1]
    assert torch.equal(b.attn.qkv.weight, state["blocks.1.attn.qkv.weight"])
    assert torch.equal(b.temporal_attn.qkv.weight, state["blocks.1.attn.qkv.weight"])
    assert torch.equal(b.temporal_norm1.weight, state["blocks.1.norm1.weight"])
    assert model.pos_embed.shape == (1, 17, 16) and torch.equal(model.pos_embed[0, 0], state["pos_embed"][0, 0])
    assert "time_embed" in report["initial"] and "head.weight" in report["initial"]
    with pytest.raises(FileNotFoundError, match="no weights can be downloaded"):
        load_vit_weights(model, tmp_path / "missing.pth")
    state["blocks.0.mlp.fc1.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not fit"):
        load_vit_weights(model, tmp_path / "bad.pth")


def test_attention_statistics_read_antisymmetry_and_signs():
    from vidattn.papers.direcformer.experiment import attention_statistics

    o = torch.tensor([[2, 0, 3, 1]])
    ideal = order_signs(o).float() * (1 - torch.eye(4))
    stats = attention_statistics(ideal, o)
    assert math.isclose(stats["antisymmetry"], 0.0, abs_tol=1e-6) and stats["sign_agreement"] == 100.0
    stats = attention_statistics(ideal.abs(), o)  # symmetric: no direction
    assert math.isclose(stats["antisymmetry"], 2.0, rel_tol=1e-6)
    assert attention_statistics(-ideal, o)["sign_agreement"] == 0.0


def test_chapter_configs_cut_only_declared_rows_and_train_on_the_recipe_pilots_clips():
    from vidattn.core.profiles import context
    from vidattn.papers.direcformer.rows import (
        CUT_GROUPS,
        CUT_ROWS,
        RECIPE_CHOICE,
        TABLE1_ROWS,
        TABLE2_ROWS,
        chapter_runs,
        pilot_runs,
        recipe_pilot_runs,
        run_config,
    )

    small = context("small", 5)
    runs = chapter_runs(small)
    main = [r.config for r in runs if r.config["suite"] == "order" and r.config["time_embed"]
            and r.config["perm_rule"] == "max"]
    trained = {(c["variant"], c["l_ord"], c["l_self"]) for c in main}
    assert trained == set(TABLE1_ROWS + TABLE2_ROWS) - set(CUT_ROWS["small"])
    bag = [r for r in runs if not r.config["time_embed"]]
    assert len(bag) == 5 and {r.row for r in bag} == {"order: TimeSformer S-S, no time embedding"}
    assert set(CUT_GROUPS["small"]) == {"order_arrow rows", "min-set rule"}
    assert len({r.row for r in runs}) == len(trained) + 1  # main rows and the bag: both groups cut
    smoke = chapter_runs(context("smoke", 2))  # nothing cut at smoke: two rows on order_arrow, the min set
    assert len({r.row for r in smoke}) == len(set(TABLE1_ROWS + TABLE2_ROWS)) + 1 + 2 + 1
    # a row trains on exactly the clips and recipe the pilot chose: its config is the pilot's, less the
    # validation clips (clips are generated by index, so the first n - v clips are the same clips)
    for p in recipe_pilot_runs(small):
        if p.row != RECIPE_CHOICE:
            continue
        c = dict(p.config)
        v = c.pop("validation")
        c["suite_overrides"] = {**c["suite_overrides"], "n_train": c["suite_overrides"]["n_train"] - v}
        assert c == run_config(small, "order", "S-S", 0, 0, c["seed"])
    assert recipe_pilot_runs(context("full")) == [] and pilot_runs(context("full")) == []
    assert all(p.config["train"]["epochs"] == 1 for p in recipe_pilot_runs(context("smoke")))


def test_choose_recipe_takes_the_cheapest_candidate_whose_every_seed_learns_and_settles():
    from vidattn.papers.direcformer.rows import choose_recipe

    good, slow, short = [(95.0, 0.01)] * 3, [(95.0, 0.01), (88.0, 0.0504)], [(79.9, 0.01)]
    assert choose_recipe({"lr 0.001, 30 epochs": good, "lr 0.001, 20 epochs": good}) == "lr 0.001, 20 epochs"
    assert choose_recipe({"lr 0.001, 30 epochs": good, "lr 0.001, 20 epochs": slow}) == "lr 0.001, 30 epochs"
    assert choose_recipe({"lr 0.002, 15 epochs": short}) is None
    with pytest.raises(ValueError, match="unknown recipe candidate"):
        choose_recipe({"lr 9, 1 epoch": good})
