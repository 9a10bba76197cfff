"""device='meta': structure and counts without allocating weights or running kernels."""
import time

import torch
from torch import nn

from torchscope import profile_summary
from torchscope.models import SmallResNet, TransformerBlock


class Decoder(nn.Module):
    def __init__(self, vocab, dim, layers, heads):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList([TransformerBlock(dim, heads) for _ in range(layers)])
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx):
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def test_meta_matches_real_run_on_a_real_model(seed):
    model, x = SmallResNet(), torch.randn(2, 3, 16, 16)
    real = profile_summary(model, x, verbose=0)
    meta = profile_summary(model, x, device="meta", verbose=0)
    assert meta.total_macs == real.total_macs and meta.total_params == real.total_params
    assert [r.output_shapes for r in meta.rows] == [r.output_shapes for r in real.rows]
    assert all(p.device.type == "cpu" for p in model.parameters())  # weights untouched
    assert meta.rows[0].mem_allocated is None and "meta" in str(meta)


def test_seven_billion_parameter_decoder_in_seconds():
    dim, layers, vocab, tokens = 4096, 32, 32000, 16
    with torch.device("meta"):
        model = Decoder(vocab, dim, layers, heads=32)
    idx = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    t0 = time.perf_counter()
    s = profile_summary(model, idx, device="meta", warmup=0, iters=1, verbose=0)
    elapsed = time.perf_counter() - t0
    per_block = 12 * dim * dim + 13 * dim          # qkv 3d^2+3d, proj d^2+d, mlp 8d^2+5d, 2 layernorms 4d
    assert s.total_params == vocab * dim * 2 + layers * per_block
    assert s.total_params > 6.5e9
    # MACs per block: linears 12 d^2 per token + attention q.k^T and att.v: 2 * T^2 * d
    expected = layers * (12 * dim * dim * tokens + 2 * tokens * tokens * dim) + tokens * dim * vocab
    assert s.total_macs == expected
    assert elapsed < 30, elapsed


def test_model_built_on_meta_is_profiled_as_meta_without_asking():
    """No device= given: a meta model still gets no memory numbers (nothing is allocated) and the note."""
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    s = profile_summary(model, torch.empty(4, 64, device="meta"), verbose=0)
    assert s.device == "meta" and s.peak_memory is None
    assert all(r.mem_allocated is None and r.mem_retained is None for r in s.rows)
    assert s.total_macs == 4 * (64 * 128 + 128 * 10) and any("device=meta" in n for n in s.notes)


def test_meta_with_uninitialized_lazy_module_is_a_clear_error():
    import pytest

    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(4))
    with pytest.raises(ValueError, match=r"device='meta' needs every parameter's size, but 2.weight, 2.bias"):
        profile_summary(m, torch.randn(1, 3, 8, 8), device="meta", verbose=0)
