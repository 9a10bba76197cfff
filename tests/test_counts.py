"""Params and MACs against hand-computed values (convention in DESIGN.md)."""
import torch
from torch import nn

from torchscope import profile_summary


def test_conv_and_linear_macs_hand_computed():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    s = profile_summary(model, torch.randn(2, 3, 16, 16), verbose=0)
    conv = 2 * 8 * (8 * 8) * 3 * (3 * 3)           # N * Cout * Hout*Wout * Cin * k*k
    lin = 2 * 512 * 10
    assert s.row("0").macs == conv
    assert s.row("2").macs == lin
    assert s.total_macs == conv + lin
    assert s.total_flops == 2 * (conv + lin)
    assert s.rows[0].macs == conv + lin            # container is inclusive


def test_grouped_and_transposed_conv():
    g = nn.Conv2d(8, 16, 3, padding=1, groups=4)
    s = profile_summary(g, torch.randn(1, 8, 10, 10), verbose=0)
    assert s.total_macs == 16 * 100 * (8 // 4) * 9
    t = nn.ConvTranspose2d(4, 6, 2, stride=2)
    s = profile_summary(t, torch.randn(1, 4, 5, 5), verbose=0)
    assert s.total_macs == 4 * 25 * 6 * 4             # each input element meets Cout*k*k weights


def test_linear_on_3d_input_counts_all_tokens():
    s = profile_summary(nn.Linear(16, 32), torch.randn(2, 7, 16), verbose=0)
    assert s.total_macs == 2 * 7 * 16 * 32


def test_tied_weights_counted_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 16)
            self.head = nn.Linear(16, 100, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, idx):
            return self.head(self.emb(idx))

    s = profile_summary(Tied(), torch.randint(0, 100, (2, 5)), verbose=0)
    assert s.total_params == 1600
    assert s.row("head").params == 1600               # the head uses the weight ...
    assert s.rows[0].params == 1600                   # ... the model owns it once
    assert s.total_macs == 2 * 5 * 16 * 100


def test_frozen_params_split_trainable():
    m = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    m[0].requires_grad_(False)
    s = profile_summary(m, torch.randn(1, 4), verbose=0)
    assert s.total_params == 20 + 10
    assert s.trainable_params == 10


def test_uncounted_ops_are_listed_not_zero():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.linalg.inv(x)   # has MACs, but no formula here

    s = profile_summary(Odd(), torch.eye(4) * 2, verbose=0)
    assert any("linalg_inv" in k for k in s.uncounted_ops), s.uncounted_ops
    assert "Uncounted ops" in str(s)
