"""The saliency sampler of the spatial-attention chapter (spec Sec. 2): identity, scale
invariance, no fold-overs, the magnification of one peak against beta, gradients to beta,
and the clip batching."""
import pytest
import torch

from vidattn.papers.spatial.sampler import SaliencySampler, peak_saliency

D = torch.float64


def identity_grid(n: int = 31) -> torch.Tensor:
    lin = torch.linspace(-1, 1, n, dtype=D)
    return torch.stack([lin[None, :].expand(n, n), lin[:, None].expand(n, n)], -1)


def test_a_constant_saliency_is_the_identity_warp():
    s = SaliencySampler()
    assert (s.sampling_grid(torch.full((2, 31, 31), 0.7, dtype=D)) - identity_grid()).abs().max() < 1e-12
    frames = torch.randn(2, 3, 40, 56, dtype=D, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(s(frames, torch.ones(2, 31, 31, dtype=D)), frames, atol=1e-10)
    # no peak: Eq. 7 is the uniform map b, hence the identity
    empty = peak_saliency(torch.zeros(0, 2), torch.zeros(0), torch.tensor(0.09, dtype=D))
    assert torch.equal(empty, torch.full((31, 31), 0.09, dtype=D))


def test_the_grid_ignores_the_scale_of_the_saliency_and_never_folds():
    s = SaliencySampler()
    sal = torch.rand(3, 31, 31, dtype=D, generator=torch.Generator().manual_seed(0)) + 0.05
    g = s.sampling_grid(sal)
    assert torch.allclose(g, s.sampling_grid(7.5 * sal), atol=1e-12)
    # monotone (flat only where the clamp holds the border): no fold-over
    assert (g[..., 0].diff(dim=2) >= 0).all() and (g[..., 1].diff(dim=1) >= 0).all()


def test_one_peak_magnifies_about_five_times_and_magnification_is_not_monotone_in_beta():
    s = SaliencySampler()
    mag = {b: s.magnification(peak_saliency(torch.tensor([[15, 15]]), torch.tensor([1.0]), torch.tensor(b, dtype=D)),
                             15, 15)
           for b in (0.03, 0.09, 0.3)}
    assert mag[0.09] == pytest.approx(4.9, abs=0.1)  # the spec's NumPy check: 4.9x in area
    assert mag[0.03] < mag[0.09] > mag[0.3]
    assert mag[0.03] == pytest.approx(1.7, abs=0.1) and mag[0.3] == pytest.approx(1.7, abs=0.1)


def test_the_complementary_branch_boosts_weak_peaks():
    beta = torch.tensor(0.09, dtype=D)
    weak = torch.tensor([0.25])
    dis = peak_saliency(torch.tensor([[10, 20]]), weak, beta)
    com = peak_saliency(torch.tensor([[10, 20]]), weak, beta, complementary=True)
    assert dis[10, 20] == pytest.approx(0.09 + 0.25) and com[10, 20] == pytest.approx(0.09 + 4.0)


def test_gradients_reach_beta_through_the_warp():
    s = SaliencySampler()
    beta = torch.tensor(0.09, dtype=D, requires_grad=True)
    frames = torch.randn(1, 1, 32, 32, dtype=D)
    sal = peak_saliency(torch.tensor([[12, 18]]), torch.tensor([0.8]), beta)
    s(frames, sal[None]).square().mean().backward()
    assert beta.grad is not None and torch.isfinite(beta.grad) and beta.grad.abs() > 0


def test_a_clip_is_warped_frame_by_frame_in_time_order():
    s = SaliencySampler()
    video = torch.randn(2, 3, 4, 24, 24, dtype=D)
    sal = torch.rand(2, 4, 31, 31, dtype=D, generator=torch.Generator().manual_seed(1)) + 0.1
    out = s.warp_clip(video, sal)
    for b in range(2):
        for t in range(4):
            assert torch.allclose(out[b, :, t], s(video[b, :, t][None], sal[b, t][None])[0], atol=1e-12)
    with pytest.raises(ValueError, match=r"saliency must be \(N, 31, 31\)"):
        s.sampling_grid(torch.ones(1, 16, 16))
