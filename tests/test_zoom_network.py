"""The three-branch network (Eq. 8): branches per mode, the loss reaches beta only through the
sampler, the CAM path is detached, frame-to-slice mapping, and deterministic evaluation splits."""
import pytest
import torch

from vidattn.papers.spatial.class_peaks import find_peaks, normalise, peak_table, saliency_pair
from vidattn.papers.spatial.model import MODES, ZoomNetwork, zoom_loss
from vidattn.papers.spatial.sampler import SaliencySampler, gaussian_saliency
from vidattn.papers.spatial.tcnn import TCNN, TCNN_S


def net(mode="O+C+D"):
    torch.manual_seed(0)
    sampler = SaliencySampler(grid=16, pad=15, fwhm=6.5)  # the spec's CPU sampler
    return ZoomNetwork(TCNN(TCNN_S, 10), 10, mode, sampler, dropout=0.0)


def test_each_mode_has_its_branches_and_a_total_head():
    video = torch.randn(2, 3, 8, 64, 64)
    for mode in MODES:
        out = net(mode).eval()(video, split="maxmin")
        assert set(out) == set(mode.split("+")) | {"total"}
        assert all(v.shape == (2, 10) for v in out.values())
    with pytest.raises(ValueError, match="unknown mode 'D'"):
        ZoomNetwork(TCNN(TCNN_S, 10), 10, "D")


def test_the_loss_reaches_beta_and_the_backbone_but_not_through_the_cam():
    model = net()
    video, labels = torch.randn(2, 3, 8, 64, 64), torch.tensor([1, 7])
    out = model(video, generator=torch.Generator().manual_seed(0))
    loss = zoom_loss(out, labels)
    assert torch.isfinite(loss) and abs(loss.item() - sum(
        torch.nn.functional.cross_entropy(v, labels).item() for v in out.values())) < 1e-5
    loss.backward()
    assert model.rho.grad is not None and (model.rho.grad != 0).all()  # both widths learn
    assert model.backbone.layers[0].conv.weight.grad.abs().sum() > 0
    # the O head's gradient comes from the O loss alone: the CAM that reads it is detached
    model.zero_grad()
    out = model(video, generator=torch.Generator().manual_seed(0))
    torch.nn.functional.cross_entropy(out["D"], labels).backward()
    assert model.heads["O"].weight.grad is None or model.heads["O"].weight.grad.abs().sum() == 0


def test_frames_read_their_own_feature_slice():
    model = net().eval()
    feats = torch.zeros(1, model.backbone.channels, 4, 8, 8)
    feats[:, :, 2, 1, 6] = 5.0  # a peak only in slice 2, which frames 4 and 5 of 8 use
    q_dis, _ = model.saliency(feats, 8, split="maxmin")
    flat = q_dis[0].flatten(1)
    moved = (flat.max(1).values - flat.min(1).values) > 1e-6
    assert moved.tolist() == [False] * 4 + [True] * 2 + [False] * 2


def test_deterministic_splits_give_the_same_warp_twice():
    model = net().eval()
    video = torch.randn(1, 3, 8, 64, 64)
    for split in ("half", "maxmin"):
        a, b = model(video, split=split), model(video, split=split)
        assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="unknown split"):
        model(video, split="mean")


def test_mean_field_saliency_is_the_expected_random_saliency():
    model = net().eval()
    feats = torch.relu(torch.randn(1, model.backbone.channels, 4, 8, 8))
    mean_dis, mean_com = model.saliency(feats, 8, split="meanfield")
    g = torch.Generator().manual_seed(0)
    draws = [model.saliency(feats, 8, split="random", generator=g) for _ in range(800)]
    avg_dis = torch.stack([d for d, _ in draws]).mean(0)
    avg_com = torch.stack([c for _, c in draws]).mean(0)
    assert (avg_dis - mean_dis).abs().max() < 0.05 and (avg_com - mean_com).abs().max() < 0.15
    assert (mean_dis - model.base).abs().max() > 0.3  # not trivially uniform


def test_the_batched_saliency_matches_the_per_frame_loop():
    torch.manual_seed(3)
    maps = normalise(torch.nn.functional.avg_pool2d(torch.rand(5, 1, 18, 18), 3, 1)[:, 0])
    beta = torch.tensor([0.09, 0.3], dtype=torch.float64)
    model = net().double().eval()
    t = peak_table(maps.double())
    R = t["value"]
    batched = gaussian_saliency(t["frame"], t["cell"], R, beta[0] * R.sqrt() * 16, 5, 16, model.base)
    for n, (rc, vals) in enumerate(find_peaks(maps.double())):
        dis, _ = saliency_pair(rc, vals, torch.ones(len(vals), dtype=torch.bool), beta[0], beta[1], 16,
                               model.base)
        assert torch.allclose(batched[n], dis, atol=1e-12)
