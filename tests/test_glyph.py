"""GlyphHold-10 (the spatial-attention chapter's suite): the glyph set's promises (lit
pixels, pair distances), determinism, the context cue's pair structure, occlusion, masks,
the cache, and clear errors."""
import numpy as np
import pytest

from vidattn.data.suites.glyph import direction, generate, glyph_suite, glyphs, load_glyph_split


def test_glyphs_have_12_lit_pixels_and_pairs_at_hamming_4():
    g = glyphs().reshape(10, 25)
    ham = (g[:, None] != g[None]).sum(-1)
    pair = np.arange(10) // 2
    assert (g.sum(1) == 12).all()
    assert all(ham[2 * p, 2 * p + 1] == 4 for p in range(5))
    assert ham[pair[:, None] != pair[None]].min() >= 8


def test_clips_are_deterministic_and_the_glyph_sits_in_its_box():
    cfg = glyph_suite("glyph", pattern_decoys=False)
    a, b = generate(cfg, "test", 5), generate(cfg, "test", 5)
    assert np.array_equal(a[0], b[0]) and a[2] == b[2]
    video, mask, label, meta = a
    assert video.shape == (8, 64, 64, 3) and video.dtype == np.uint8
    visible = np.array(meta["visible"])
    assert visible.sum() >= cfg.min_visible
    for t in range(8):
        top, left = meta["corners"][t]
        assert mask[t].sum() == (25 if visible[t] else 0)
        if visible[t]:
            assert mask[t, top : top + 5, left : left + 5].all()
    assert not np.array_equal(generate(cfg, "train", 5)[0], video)  # splits differ


def test_the_actor_moves_in_its_pairs_direction_and_the_control_is_larger():
    cfg = glyph_suite("glyph")
    for i in range(12):
        _, _, label, meta = generate(cfg, "train", i)
        actor = np.array(meta["actor"])
        step = (actor[-1] - actor[0]) / 7
        assert np.allclose(step, direction(label // 2) * cfg.speed, atol=0.01)  # centres rounded
    large = glyph_suite("glyph_large")
    _, mask, _, meta = generate(large, "train", 0)
    t = int(np.argmax(meta["visible"]))
    assert mask[t].sum() == 144 and large.box == 12


def test_the_split_is_cached_and_reread(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path))
    cfg = glyph_suite("glyph", n_train=6, n_test=4)
    first = load_glyph_split(cfg, "test")
    again = load_glyph_split(cfg, "test")
    assert np.array_equal(first.videos, again.videos) and again.meta == first.meta
    assert len(again) == 4


def test_bad_names_and_fields_are_named():
    with pytest.raises(ValueError, match="unknown glyph suite 'glif'"):
        glyph_suite("glif")
    with pytest.raises(ValueError, match="unknown glyph-suite field"):
        glyph_suite("glyph", colour=3)
    with pytest.raises(ValueError, match="glyph_scale"):
        glyph_suite("glyph", glyph_scale=3)
