"""The shared same-location temporal baselines (SIFA Table 1e), each against its definition written as a loop."""
import torch

from vidattn.models.temporal import CorrelationFeature, TemporalConv, local_correlation, temporal_difference, tsm_shift


def test_tsm_moves_two_folds_one_frame_each_way_and_keeps_the_rest():
    x = torch.randn(2, 16, 5, 3, 3)
    y = tsm_shift(x, fold=8)
    for t in range(5):
        back = x[:, :2, t + 1] if t < 4 else torch.zeros_like(x[:, :2, 0])
        fwd = x[:, 2:4, t - 1] if t > 0 else torch.zeros_like(x[:, 2:4, 0])
        assert torch.equal(y[:, :2, t], back) and torch.equal(y[:, 2:4, t], fwd)
    assert torch.equal(y[:, 4:], x[:, 4:])


def test_an_overlapping_in_place_shift_corrupts_the_motion_saliency_map():
    """The official SIFA code's right shift, x[:, :, 1:] = x[:, :, :-1] (spec pitfall 1), reads frames the
    copy has already overwritten on the CPU, so its MSM is wrong; the cat form is the shift."""
    from vidattn.papers.sifa.op import motion_saliency

    x = torch.arange(6.0).view(1, 1, 6, 1, 1).repeat(1, 64, 1, 8, 8)
    want = torch.cat([x[:, :, :1], x[:, :, :-1]], 2)  # s_t = x_{max(t - 1, 0)}
    assert torch.equal(want[0, 0, :, 0, 0], torch.tensor([0.0, 0, 1, 2, 3, 4]))
    shifted = x.clone()
    shifted[:, :, 1:] = shifted[:, :, :-1]
    assert not torch.equal(shifted, want), "the overlapping copy happened to shift correctly here"
    corrupt_msm = (1 + torch.sigmoid(x - shifted)) * x  # the code's MSM from the in-place shift
    assert not torch.allclose(corrupt_msm, motion_saliency(x, "code"))


def test_temporal_conv_starts_as_the_identity_and_is_channel_wise():
    conv = TemporalConv(4)
    x = torch.randn(2, 4, 5, 3, 3)
    assert torch.equal(conv(x), x)
    with torch.no_grad():
        conv.conv.weight.normal_()
    x2 = x.clone()
    x2[:, 1] += 1.0  # a change in one channel moves only that channel's output
    changed = (conv(x2) - conv(x)).abs().sum((0, 2, 3, 4)) > 0
    assert changed.tolist() == [False, True, False, False]


def test_local_correlation_and_difference_against_loops():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 3, 4, 4, generator=g, dtype=torch.float64)
    corr = local_correlation(x, 3)
    for t in range(2):
        for j, (dy, dx) in enumerate((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)):
            for h in range(4):
                for w in range(4):
                    inside = 0 <= h + dy < 4 and 0 <= w + dx < 4
                    want = (x[0, :, t, h, w] * x[0, :, t + 1, h + dy, w + dx]).mean() if inside else 0.0
                    assert abs(float(corr[0, j, t, h, w]) - float(want)) < 1e-12
    assert corr[:, :, -1].abs().sum() == 0
    diff = temporal_difference(x)
    assert torch.equal(diff[:, :, 0], x[:, :, 1] - x[:, :, 0]) and diff[:, :, -1].abs().sum() == 0


def test_correlation_feature_adds_the_projected_volume():
    x = torch.randn(2, 4, 3, 5, 5)
    assert torch.equal(CorrelationFeature(4, zero_init=True)(x), x)
    block = CorrelationFeature(4)
    want = x + torch.einsum("oj,bjthw->bothw", block.proj.weight[:, :, 0, 0, 0], local_correlation(x, 3))
    assert torch.allclose(block(x), want, atol=1e-6)
    block(x).sum().backward()
    assert block.proj.weight.grad.abs().sum() > 0
