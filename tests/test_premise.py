"""The order suite's premise: a frame-averaging model is at chance within reversal pairs."""
import numpy as np
import torch

from vidattn.data.clips import ClipDataset
from vidattn.data.suites.order import generate_split, suite_config
from vidattn.engine.evaluate import order_robustness
from vidattn.engine.train import TrainConfig, fit, seed_everything
from vidattn.models import build_model


def _train_and_score(model_name: str, n_test: int = 1000):
    cfg = suite_config("order")
    train = ClipDataset(generate_split(cfg, "train", 600))
    test = ClipDataset(generate_split(cfg, "test", n_test))
    seed_everything(0)
    model = build_model(model_name, num_classes=cfg.num_classes, width=8)
    fit(model, train, TrainConfig(epochs=6, batch_size=32, lr=3e-3))
    n_pair = sum(cfg.classes[int(y)].partner is not None for y in test.arrays.labels)
    return order_robustness(model, test, [c.partner for c in cfg.classes]), 50 / np.sqrt(n_pair)


def test_frame_average_stays_at_chance_within_reversal_pairs():
    scores, sigma = _train_and_score("frame_average")
    assert abs(scores["ordered_pair"] - 50) < 4 * sigma, scores
    # invariance: the same predictions whatever the order
    assert scores["ordered_pair"] == scores["reversed_pair"] == scores["shuffled_pair"]


def test_a_model_that_sees_order_beats_chance_on_the_same_suite():
    # the positive control: the chance-level test above is not chance by accident of training
    scores, sigma = _train_and_score("tiny_c3d")
    assert scores["ordered_pair"] > 50 + 8 * sigma, scores
    assert scores["reversed_to_partner"] > 60, scores


def test_frame_average_is_exactly_order_invariant():
    cfg = suite_config("order")
    x = torch.stack([ClipDataset(generate_split(cfg, "train", 4))[i]["video"] for i in range(4)])
    model = build_model("frame_average", num_classes=cfg.num_classes).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.flip(2)))
    model = build_model("tiny_c3d", num_classes=cfg.num_classes).eval()
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x.flip(2)))
