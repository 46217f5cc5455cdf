"""SIFA's op checked as the spec's protocol says: a loop that mirrors the official CUDA kernels line by
line, F.unfold at zero offsets, indexing at integer offsets, gradcheck, the k = 1 closed form, and
torchvision's deform_conv2d for the aggregation."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from vidattn.engine.memory import saved_bytes
from vidattn.papers.sifa.op import (
    OFFSET_SOURCES,
    SIFABlock,
    both_directions,
    inter_frame_attention,
    motion_saliency,
    sample_taps,
    tap_grid,
)


def _bilinear(frame: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """The kernel's bilinear read: corners outside the frame count as zero."""
    C, H, W = frame.shape
    y0, x0 = int(torch.floor(torch.tensor(y))), int(torch.floor(torch.tensor(x)))
    out = torch.zeros(C, dtype=frame.dtype)
    for yy, xx in itertools.product((y0, y0 + 1), (x0, x0 + 1)):
        if 0 <= yy < H and 0 <= xx < W:
            out += max(0.0, 1 - abs(yy - y)) * max(0.0, 1 - abs(xx - x)) * frame[:, yy, xx]
    return out


def _official_block(u: torch.Tensor, off: torch.Tensor, k: int) -> torch.Tensor:
    """DefCorFixW then DefAgg then the shift-and-mask of c2d_sifa_resnet.py, as loops."""
    B, C, T, H, W = u.shape
    pad = k // 2
    corr = torch.zeros(B, k * k, T, H, W, dtype=u.dtype)
    agg = torch.zeros_like(u)
    for b, t, h, w in itertools.product(range(B), range(T), range(H), range(W)):
        tf = max(t - 1, 0)  # the query frame of key frame t
        for kh, kw in itertools.product(range(k), range(k)):
            j = kh * k + kw
            py = h - pad + kh + float(off[b, 2 * j, t, h, w])
            px = w - pad + kw + float(off[b, 2 * j + 1, t, h, w])
            if -1 < py < H and -1 < px < W:
                sample = _bilinear(u[b, :, t], py, px)
                corr[b, j, t, h, w] = (u[b, :, tf, h, w] * sample).sum() / C  # frozen weights 1/C
                agg[b, :, t, h, w] += corr[b, j, t, h, w] * sample
    y = u.clone()
    y[:, :, :-1] += agg[:, :, 1:]  # frame 0's self-attention is dropped, the last frame is not aggregated
    return y


@pytest.mark.parametrize("k,H,W", [(3, 4, 5), (1, 3, 3), (3, 1, 4), (5, 3, 4)])
def test_the_op_matches_the_official_kernels_loop(k, H, W):
    g = torch.Generator().manual_seed(k * 100 + H)
    u = torch.randn(2, 3, 3, H, W, generator=g, dtype=torch.float64)
    off = 1.5 * torch.randn(2, 2 * k * k, 3, H, W, generator=g, dtype=torch.float64)  # some points fall off
    got = inter_frame_attention(u, off, k, semantics="code")
    assert torch.allclose(got, _official_block(u, off, k), atol=1e-12)


def test_zero_offsets_are_the_regular_window_of_unfold():
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    got = sample_taps(x, torch.zeros(2, 18, 5, 6, dtype=torch.float64), 3)
    want = F.unfold(x, 3, padding=1).view(2, 3, 9, 5, 6)
    assert torch.allclose(got, want, atol=1e-14) and torch.equal(sample_taps(x, None, 3), got)


def test_integer_offsets_index_a_zero_padded_frame():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    off = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    off[:, 0], off[:, 1] = 1.0, -2.0  # (dy, dx) of the single tap: one row down, two columns left
    got = sample_taps(x, off, 1)[:, :, 0]
    padded = F.pad(x, (2, 2, 1, 1))  # (left, right, top, bottom)
    assert torch.allclose(got, padded[:, :, 2:7, 0:6], atol=1e-14)


def test_gradients_flow_to_inputs_and_offsets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    off = (0.3 + 0.4 * torch.rand(1, 18, 3, 3, 4, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, o: inter_frame_attention(a, o, 3, "paper"), (x, off))


def test_k1_is_a_two_tap_data_dependent_temporal_filter():
    x = torch.randn(2, 4, 5, 3, 3, dtype=torch.float64)
    nxt = torch.cat([x[:, :, 1:], x[:, :, -1:]], 2)  # the paper: the last frame attends to itself
    paper = x + (x * nxt).sum(1, keepdim=True) * nxt
    assert torch.allclose(inter_frame_attention(x, None, 1, "paper"), paper, atol=1e-12)
    code = x[:, :, :-1] + (x[:, :, :-1] * x[:, :, 1:]).mean(1, keepdim=True) * x[:, :, 1:]
    got = inter_frame_attention(x, None, 1, "code")
    assert torch.allclose(got[:, :, :-1], code, atol=1e-12) and torch.equal(got[:, :, -1], x[:, :, -1])


def test_deform_conv2d_expresses_the_aggregation_in_the_same_offset_layout():
    g = torch.Generator().manual_seed(1)
    key = torch.randn(2, 3, 5, 6, generator=g)
    off = torch.randn(2, 18, 5, 6, generator=g)
    w = torch.rand(2, 9, 5, 6, generator=g)  # any per-location tap weights (the correlation)
    ours = torch.einsum("njhw,ncjhw->nchw", w, sample_taps(key, off, 3))
    theirs = deform_conv2d(key, off, torch.ones(3, 1, 3, 3), padding=1, mask=w)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_motion_saliency_and_the_tap_order():
    x = torch.rand(1, 2, 3, 2, 2)
    still = x[:, :, :1].expand(-1, -1, 3, -1, -1)
    assert torch.allclose(motion_saliency(still, "paper"), 0.5 * still)  # nothing moves: half of f_{t+1}
    assert torch.allclose(motion_saliency(still, "code"), 1.5 * still)
    dy, dx = tap_grid(3)
    assert dy.tolist() == [-1, -1, -1, 0, 0, 0, 1, 1, 1] and dx.tolist() == [-1, 0, 1] * 3
    with pytest.raises(ValueError, match="must be odd"):
        tap_grid(2)
    with pytest.raises(ValueError, match="unknown semantics"):
        inter_frame_attention(torch.zeros(1, 1, 2, 2, 2), semantics="cuda")


@pytest.mark.parametrize("semantics", ["paper", "code"])
def test_the_low_memory_path_is_the_same_op_and_keeps_no_samples(semantics):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 4, 12, 12, generator=g, requires_grad=True)
    off = (1.2 * torch.randn(2, 18, 4, 12, 12, generator=g)).requires_grad_()
    dense = inter_frame_attention(x, off, 3, semantics)
    light = inter_frame_attention(x, off, 3, semantics, low_memory=True)
    assert torch.allclose(dense, light, rtol=1e-5, atol=1e-6 * float(dense.detach().abs().max()))
    gd = torch.autograd.grad(dense.square().sum(), (x, off))
    gl = torch.autograd.grad(light.square().sum(), (x, off))
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().max())) for a, b in zip(gd, gl))
    clip = x.numel() * x.element_size()  # B C T H W floats
    kept_dense = saved_bytes(lambda: inter_frame_attention(x, off, 3, semantics))
    kept_light = saved_bytes(lambda: inter_frame_attention(x, off, 3, semantics, low_memory=True))
    assert kept_dense >= 9 * clip * 3 / 4  # the k^2 samples (of T - 1 or T key frames) and more
    inputs = 2 * clip + off.numel() * off.element_size()  # query and key frames, offsets
    assert kept_light <= inputs  # the inputs only, nothing per tap: O(B C T H W)
    regular = inter_frame_attention(x, None, 3, semantics).detach()
    assert torch.allclose(inter_frame_attention(x, None, 3, semantics, low_memory=True), regular,
                          rtol=1e-5, atol=1e-6 * float(regular.abs().max()))


@pytest.mark.parametrize("source", OFFSET_SOURCES)
def test_every_offset_source_starts_as_sifa_r_and_learns_its_offsets(source):
    block = SIFABlock(4, 3, offsets=source)
    x = torch.rand(2, 4, 3, 5, 5)
    assert torch.allclose(block(x), inter_frame_attention(x, None, 3, "paper"), atol=1e-6)
    if source == "regular":
        assert block.offset_conv is None
        return
    with torch.no_grad():
        block.offset_conv.weight.normal_(std=0.3)
    off = block.offsets(x)
    assert off.shape == (2, 18, 3, 5, 5) and off.abs().sum() > 0
    block(x).square().sum().backward()
    assert block.offset_conv.weight.grad.abs().sum() > 0  # the offsets are trained through the sampling


def test_the_released_offset_init_is_not_zero():
    block = SIFABlock(128, 3, semantics="code", zero_init=False)
    std = float(block.offset_conv.weight.detach().std())
    assert abs(std - (2 / (18 * 9)) ** 0.5) < 0.01  # Kaiming fan-out, 0.111: what the spec measured
    with pytest.raises(ValueError, match="unknown offset source"):
        SIFABlock(4, offsets="optical_flow")


def test_sifa_star_attends_to_the_previous_and_the_next_frame():
    x = torch.randn(1, 3, 4, 2, 2, dtype=torch.float64)
    nxt = torch.cat([x[:, :, 1:], x[:, :, -1:]], 2)  # the paper's edge rule: a missing neighbour is the frame
    prv = torch.cat([x[:, :, :1], x[:, :, :-1]], 2)
    want = x + (x * nxt).sum(1, keepdim=True) * nxt + (x * prv).sum(1, keepdim=True) * prv
    assert torch.allclose(both_directions(x, None, 1, "paper"), want, atol=1e-12)
    off = torch.randn(1, 18, 4, 2, 2, dtype=torch.float64)
    fwd = inter_frame_attention(x, off, 3) - x
    back = inter_frame_attention(x.flip(2), off.flip(2), 3).flip(2) - x
    assert torch.allclose(both_directions(x, off, 3), x + fwd + back, atol=1e-12)
