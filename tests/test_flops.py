import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from vidattn.engine.flops import count_macs, count_params

X = torch.randn(1, 3, 224, 224)


def test_resnet50_matches_the_analytic_count():
    m = torchvision.models.resnet50()
    assert count_macs(m, X) / 1e9 == pytest.approx(4.09, abs=0.02)
    assert count_params(m) == 25_557_032


def test_vit_b16_counts_attention_matmuls():
    # 17.56 GMACs: 16.87 in linear layers and the patch embedding, 0.70 in attention
    m = torchvision.models.vit_b_16()
    assert count_macs(m, X) / 1e9 == pytest.approx(17.56, abs=0.02)


class _SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_formula_equals_the_explicit_matmuls():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    assert count_macs(_SDPA(), q, k, v) == 2 * 3 * 5 * 7 * (8 + 4)


def test_mha_fast_path_is_counted_like_its_slow_path():
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    x = torch.randn(2, 10, 16)

    class Wrap(nn.Module):
        def __init__(self, need_weights):
            super().__init__()
            self.mha, self.need = mha, need_weights

        def forward(self, x):
            return self.mha(x, x, x, need_weights=self.need)[0]

    expected = 4 * 2 * 10 * 16 * 16 + 2 * 2 * 10 * 10 * 16
    assert count_macs(Wrap(False), x) == expected
