"""T-CNN in the spec's reading: Table 1's counts, the strides, and a trace that agrees with the FLOP counter."""
import torch

from vidattn.engine.flops import count_macs
from vidattn.papers.spatial.tcnn import TCNN, TCNN_F, TCNN_S, trace


def test_tcnn_f_has_table_1s_layers_and_costs_15_5_gmacs():
    with torch.device("meta"):
        model, clip = TCNN(TCNN_F, 400), torch.empty(1, 3, 16, 224, 224)
    assert len(TCNN_F) == 36 and sum(layer.dilation > 0 for layer in TCNN_F) == 9
    rows = trace(TCNN(TCNN_F, 400), (3, 16, 224, 224))
    total = sum(r["macs"] for r in rows)
    assert abs(total / 1e9 - 15.49) < 0.01  # the spec's reading with a 3x3x3 stem (paper: 15.78)
    fc = 512 * 400
    assert count_macs(model, clip) == total + fc  # the trace misses only the FC
    assert abs(sum(r["params"] for r in rows) / 1e6 - 15.9) < 0.1
    last = {}
    for r in rows:
        last[r["stage"]] = r["out"]
    # (T, H) at the end of each stage: frame selection at 4 and 6, spatial stride at 1, 2, 3, 4, 6
    assert [(v[1], v[2]) for v in last.values()] == [(16, 112), (16, 56), (16, 28), (8, 14), (8, 14), (4, 7), (4, 7)]


def test_a_dilated_temporal_layer_reads_frames_d_apart_and_nothing_between():
    from vidattn.papers.spatial.tcnn import ConvLayer, Layer

    torch.manual_seed(0)
    layer = ConvLayer(4, Layer(4, 4, dilation=2), stem=False).eval()
    x = torch.randn(1, 4, 7, 3, 3)
    y = layer(x)[:, :, 3]
    near, far = x.clone(), x.clone()
    near[:, :, 4] += 1.0  # one frame away: not read
    far[:, :, 5] += 1.0  # two frames away: read
    assert torch.allclose(layer(near)[:, :, 3], y) and not torch.allclose(layer(far)[:, :, 3], y)
    model = TCNN(TCNN_S, 10).eval()
    assert model.features(torch.randn(1, 3, 8, 64, 64)).shape == (1, 64, 4, 8, 8)


def test_tcnn_s_is_cpu_sized():
    rows = trace(TCNN(TCNN_S, 10), (3, 8, 64, 64))
    assert 30e6 < sum(r["macs"] for r in rows) < 60e6 and len(rows) == 9
