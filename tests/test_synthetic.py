import hashlib
from dataclasses import asdict

import numpy as np
import pytest

from vidattn.core.identity import cache_path
from vidattn.data.suites.order import (
    SUITES,
    SuiteConfig,
    clip_rng,
    generate,
    generate_clip,
    generate_split,
    load_split,
    suite_config,
)

# sha256 of clip 3 of the test split of each registered suite, recorded when the
# generator was written: a change here means clips are no longer what the records saw
GOLDEN = {
    "order": "eac1dbf84f6146f1",
    "order_arrow": "876dfbd3a08c67f8",
    "order_events": "c3cc90b496f286b4",
    "actor_distractor": "fe2f80385828c392",
}


def _digest(clip) -> str:
    return hashlib.sha256(clip.video.tobytes() + clip.mask.tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(SUITES))
def test_same_config_and_seed_give_identical_bytes(name):
    cfg = SUITES[name]
    a, b = generate(cfg, "test", 3), generate(cfg, "test", 3)
    assert np.array_equal(a.video, b.video) and np.array_equal(a.mask, b.mask)
    assert a.video.dtype == np.uint8 and a.video.shape == (cfg.frames, cfg.size, cfg.size, 3)
    assert _digest(a) == GOLDEN[name], f"{name}: generator output changed (got {_digest(a)})"


def test_clips_do_not_depend_on_each_other_or_on_the_split():
    cfg = SUITES["order"]
    one = generate(cfg, "train", 5)
    many = generate_split(cfg.with_(n_train=8), "train")
    assert np.array_equal(many.videos[5], one.video)
    assert not np.array_equal(generate(cfg, "test", 5).video, one.video)
    assert not np.array_equal(generate(cfg.with_(seed=1), "train", 5).video, one.video)


@pytest.mark.parametrize("name", ["order", "order_events", "actor_distractor"])
def test_reversed_member_is_the_exact_time_reversal(name):
    cfg = SUITES[name]
    for k, c in enumerate(cfg.classes):
        if c.partner is not None and not c.reversed:
            fwd = generate_clip(cfg, k, clip_rng(cfg, "train", 11))
            rev = generate_clip(cfg, c.partner, clip_rng(cfg, "train", 11))
            assert np.array_equal(fwd.video[::-1], rev.video)
            assert np.array_equal(fwd.mask[::-1], rev.mask)
            assert rev.meta["centre"] == fwd.meta["centre"][::-1]


def test_arrow_of_time_breaks_exact_reversal_with_a_brightness_ramp():
    cfg = SUITES["order_arrow"]
    fwd = generate_clip(cfg, 0, clip_rng(cfg, "train", 2))
    rev = generate_clip(cfg, 1, clip_rng(cfg, "train", 2))
    assert not np.array_equal(fwd.video[::-1], rev.video)
    # mean brightness rises over time in both members, whatever the class
    for clip in (fwd, rev):
        m = clip.video.reshape(cfg.frames, -1).mean(1)
        assert m[-1] - m[0] > 0.2 * cfg.arrow_of_time * 255


def test_masks_follow_the_actor():
    cfg = SUITES["order"]
    clip = generate(cfg, "train", 0)  # class 0 moves right
    xs = [np.nonzero(m)[1].mean() for m in clip.mask]
    assert clip.mask.any(axis=(1, 2)).all()
    assert xs[-1] - xs[0] > 0.25 * cfg.size
    np.testing.assert_allclose(xs, np.array(clip.meta["centre"])[:, 0] - 0.5, atol=1.5)


def test_event_timing_keeps_a_pause_longer_than_the_gap():
    cfg = SUITES["order_events"]
    for i in range(20):
        (s1, e1), (s2, e2) = generate(cfg, "train", i).meta["segments"]
        assert s2 - e1 - 1 >= cfg.pause_frames
        assert s1 >= cfg.margin_frames and e2 <= cfg.frames - 1 - cfg.margin_frames


def test_occlusion_removes_the_actor_from_the_mask_where_it_occludes():
    cfg = SUITES["order"].with_(occlusion=1.0)
    clip = generate(cfg, "train", 0)
    plain = generate(SUITES["order"], "train", 0)
    assert clip.mask.sum() < plain.mask.sum()
    assert clip.meta["occluded_frames"] == list(range(cfg.frames))


@pytest.mark.parametrize("objects", ["shape", "glyph", "digit"])
@pytest.mark.parametrize("background", ["flat", "texture", "clutter", "pan"])
def test_every_factor_renders(objects, background):
    cfg = SUITES["order"].with_(objects=objects, background=background, distractors=1, noise=0.05)
    clip = generate(cfg, "train", 1)
    assert clip.video.std() > 5 and clip.mask.any()


def test_bad_configs_name_the_problem():
    with pytest.raises(ValueError, match="unknown primitive 'jump'"):
        SuiteConfig("x", (("jump",),))
    with pytest.raises(ValueError, match="needs at least"):
        SuiteConfig("x", (("right", "grow"),), frames=8, timing="event_pause_event")
    with pytest.raises(ValueError, match="unknown order suite 'nope'"):
        suite_config("nope")
    with pytest.raises(ValueError, match="unknown order-suite field"):
        suite_config("order", colour="red")


def test_cache_is_keyed_by_config_and_serves_identical_arrays(data_folder):
    cfg = suite_config("order", n_train=6, n_test=4)
    first = load_split(cfg, "train")
    assert first.seconds > 0
    again = load_split(cfg, "train")
    assert again.seconds == 0  # read from disk
    assert np.array_equal(first.videos, again.videos) and np.array_equal(first.masks, again.masks)
    assert again.meta == first.meta
    other = cfg.with_(noise=0.1)
    assert cache_path("suite/synthetic", asdict(other)) != cache_path("suite/synthetic", asdict(cfg))
    assert not np.array_equal(load_split(other, "train").videos, first.videos)
