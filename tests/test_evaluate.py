import pytest
import torch
import torch.nn as nn

from vidattn.engine.evaluate import (
    apply_order,
    confusion_matrix,
    mass_in_mask,
    pair_accuracy,
    per_class_accuracy,
    pointing_game,
    predict,
    shuffle_permutation,
    topk_accuracy,
)


def test_topk_and_confusion_against_hand_counts():
    logits = torch.tensor([[3.0, 2, 1], [1, 3, 2], [1, 2, 3], [3, 1, 2]])
    labels = torch.tensor([0, 2, 1, 2])
    acc = topk_accuracy(logits, labels, (1, 2, 5))
    assert acc == {"top1": 25.0, "top2": 100.0, "top5": 100.0}
    cm = confusion_matrix(logits, labels, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [1, 1, 0]]
    assert per_class_accuracy(logits, labels, 3)[0] == 100.0


def test_pair_accuracy_only_compares_a_class_with_its_partner():
    partner = [1, 0, None]
    logits = torch.tensor([[1.0, 0, 9], [0, 1, 9], [0, 1, 9]])
    labels = torch.tensor([0, 0, 2])
    # clip 0 prefers its class over the partner, clip 1 does not; clip 2 has no partner
    assert pair_accuracy(logits, labels, partner) == 50.0


def test_order_transforms_are_permutations_of_time():
    v = torch.arange(2 * 8).float().view(2, 1, 8, 1, 1).expand(2, 3, 8, 2, 2)
    idx = torch.tensor([4, 5])
    assert torch.equal(apply_order(v, idx, "reversed")[:, 0, :, 0, 0], v[:, 0, :, 0, 0].flip(1))
    sh = apply_order(v, idx, "shuffled")[:, 0, :, 0, 0]
    for b in range(2):
        assert sorted(sh[b].tolist()) == v[b, 0, :, 0, 0].tolist()
        assert torch.equal(sh[b], v[b, 0, shuffle_permutation(int(idx[b]), 8), 0, 0])
    assert not torch.equal(shuffle_permutation(0, 8), torch.arange(8))
    with pytest.raises(ValueError, match="unknown order transform"):
        apply_order(v, idx, "sideways")


class _Mean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 3, 4))  # (B, C, T, H, W) -> (B, T) used as T "classes"


def test_multi_view_predictions_average_the_views():
    videos = torch.randn(3, 2, 1, 4, 2, 2)  # 3 clips, 2 views each
    ds = [{"video": videos[i], "label": torch.tensor(0), "index": torch.tensor(i)} for i in range(3)]
    logits, _ = predict(_Mean(), ds, batch_size=2)
    torch.testing.assert_close(logits, videos.mean(dim=(2, 4, 5)).mean(1))
    probs, _ = predict(_Mean(), ds, batch_size=2, view_average="softmax")
    torch.testing.assert_close(probs.exp(), videos.mean(dim=(2, 4, 5)).softmax(-1).mean(1))


def test_pointing_game_and_mass_in_mask():
    masks = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    masks[:, :, 2:4, 2:4] = True
    masks[1, 2] = False  # an invisible actor is skipped
    oracle = masks.float()
    assert pointing_game(oracle, masks) == 100.0
    wrong = torch.zeros(2, 3, 8, 8)
    wrong[..., 7, 7] = 1
    assert pointing_game(wrong, masks) == 0.0
    assert pointing_game(wrong, masks, tolerance=4) == 100.0
    assert mass_in_mask(oracle, masks)["mass_in_mask"] == pytest.approx(100.0)
    uniform = mass_in_mask(torch.ones(2, 3, 4, 4), masks)
    assert uniform["mass_in_mask"] == pytest.approx(uniform["chance"], abs=1e-4)
    assert uniform["chance"] == pytest.approx(100 * 4 / 64)
