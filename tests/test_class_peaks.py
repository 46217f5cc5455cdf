"""Class peaks (Eq. 1-7 of the spatial-attention paper): the CAM splits the logit, the
entropy bound, the switch, normalisation, peaks against a loop, the split's probability,
and a constant map that yields no peaks and no NaN."""
import math

import torch
import torch.nn.functional as F

from vidattn.papers.spatial.class_peaks import (
    class_activation_maps,
    find_peaks,
    normalise,
    response_map,
    saliency_pair,
    softplus_inverse,
    split_peaks,
    top5_entropy,
)
from vidattn.papers.spatial.sampler import SaliencySampler


def test_the_cam_averages_to_the_frame_logit():
    torch.manual_seed(0)
    feats, fc = torch.randn(3, 8, 7, 7, dtype=torch.float64), torch.nn.Linear(8, 5).double()
    logits = fc(feats.mean((2, 3)))
    cams = class_activation_maps(feats, fc.weight, fc.bias, size=None)
    assert torch.allclose(cams.mean((2, 3)), logits)
    assert class_activation_maps(feats, fc.weight, fc.bias).shape == (3, 5, 31, 31)
    assert not class_activation_maps(feats, fc.weight.requires_grad_(), fc.bias).requires_grad  # no gradient


def test_top5_entropy_is_bounded_by_ln5_and_switches_the_map():
    torch.manual_seed(0)
    uniform5 = torch.log(torch.tensor([[1.0] * 5 + [1e-12] * 20]))
    assert abs(float(top5_entropy(uniform5)) - math.log(5)) < 1e-5
    assert (top5_entropy(torch.randn(100, 20) * 3) <= math.log(5) + 1e-6).all()
    cams = torch.randn(2, 6, 4, 4)
    sure, unsure = torch.tensor([20.0, 0, 0, 0, 0, 0]), torch.zeros(6)
    R = response_map(cams, torch.stack([sure, unsure]))
    assert torch.equal(R[0], cams[0, 0])  # confident: the top-1 map
    top5 = unsure.topk(5).indices
    assert torch.allclose(R[1], cams[1, top5].sum(0))  # unsure: the top-5 maps summed


def test_normalisation_removes_scale_and_offset():
    torch.manual_seed(0)
    R = torch.randn(2, 31, 31, dtype=torch.float64)
    assert torch.allclose(normalise(3.0 * R + 7.0), normalise(R), atol=1e-6)
    n = normalise(R)
    assert n.amin((1, 2)).abs().max() < 1e-12 and (n.amax((1, 2)) - 1).abs().max() < 1e-5


def test_peaks_match_a_loop_and_the_top_peak_is_always_discriminative():
    torch.manual_seed(1)
    maps = normalise(F.avg_pool2d(torch.rand(2, 1, 33, 33), 3, 1)[:, 0])  # smooth, 31 x 31
    for m, (rc, vals) in zip(maps, find_peaks(maps)):
        want = set()
        for r in range(31):
            for c in range(31):
                window = m[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
                if m[r, c] >= window.max() and m[r, c] >= m.mean():
                    want.add((r, c))
        assert set(map(tuple, rc.tolist())) == want
        assert vals[0] == vals.max()
        g = torch.Generator().manual_seed(0)
        assert all(split_peaks(vals, g)[0] for _ in range(50))  # R = 1 >= phi always


def test_a_peak_is_discriminative_with_probability_its_response():
    g = torch.Generator().manual_seed(0)
    vals = torch.tensor([0.2, 0.5, 0.9])
    share = torch.stack([split_peaks(vals, g) for _ in range(20000)]).float().mean(0)
    assert torch.allclose(share, vals, atol=0.01)


def test_a_constant_map_has_no_peaks_and_warps_to_the_identity_without_nan():
    torch.manual_seed(0)
    maps = normalise(torch.full((1, 31, 31), 4.2))
    (rc, vals), = find_peaks(maps)
    assert len(rc) == 0 and torch.isfinite(maps).all()
    beta = torch.tensor(0.09)
    dis, com = saliency_pair(rc, vals, vals > 0, beta, beta)
    frames = torch.randn(1, 3, 32, 32)
    out = SaliencySampler()(frames, dis[None])
    assert torch.isfinite(out).all() and torch.allclose(out, frames, atol=1e-3)


def test_softplus_inverse():
    for b in (0.09, 0.3, 2.0):
        assert abs(F.softplus(torch.tensor(softplus_inverse(b), dtype=torch.float64)).item() - b) < 1e-12
