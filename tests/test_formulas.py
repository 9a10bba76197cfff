"""MAC formulas on real modules against hand counts and FlopCounterMode (convention in DESIGN.md).

MACs are matrix-product multiply-accumulates only (bias adds, softmax, norms, gates' elementwise
math are not MACs); the outermost op with a formula is counted, ops without one are transparent.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from torchscope import capture, count, profile_summary

B, T, D, H = 2, 6, 16, 4
HD = D // H


def summary(model, inputs):
    return profile_summary(model, inputs, warmup=0, iters=1, verbose=0)


def real_uncounted(s):
    """Uncounted ops other than the views/elementwise group."""
    return {k: v for k, v in s.uncounted_ops.items() if k != count.ZERO_MAC_KEY}


def op_names(model, fn):
    """Names of the forward ops one recorded call of fn runs."""
    tr = capture.capture(model, fn, warmup=0, iters=1)
    return {tr.names[i] for i in tr.ops[:, capture.C.OP_COLS["name"]].tolist()}


def flop_counter_flops(model, inputs):
    with FlopCounterMode(display=False) as fc:
        model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    return fc.get_total_flops()


# ------------------------------------------------------------------ attention

PROJ_MACS = 4 * B * T * D * D                 # q, k, v, out projections: every token meets D x D
ATTN_MACS = B * H * T * T * HD * 2            # q·kᵀ (T x T x HD) + attn·v (T x T x HD) per head


class Attention(nn.Module):
    """Self-attention with explicit matmuls, or F.scaled_dot_product_attention (sdpa=True)."""

    def __init__(self, sdpa=False, mask=None, causal=False, kv_heads=H, value_dim=HD):
        super().__init__()
        self.sdpa, self.mask, self.causal, self.kv_heads, self.value_dim = sdpa, mask, causal, kv_heads, value_dim
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, kv_heads * HD)
        self.v = nn.Linear(D, kv_heads * value_dim)
        self.o = nn.Linear(H * value_dim, D)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q(x).view(b, t, H, HD).transpose(1, 2)
        k = self.k(x).view(b, t, self.kv_heads, HD).transpose(1, 2)
        v = self.v(x).view(b, t, self.kv_heads, self.value_dim).transpose(1, 2)
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask, is_causal=self.causal,
                                               enable_gqa=self.kv_heads != H)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(HD)
            if self.mask is not None:
                scores = scores + self.mask
            y = scores.softmax(-1) @ v
        return self.o(y.transpose(1, 2).reshape(b, t, -1))


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(B, T, D)


def test_explicit_attention_block_hand_counted(x):
    s = summary(Attention(), x)
    assert s.total_macs == PROJ_MACS + ATTN_MACS
    assert s.row("q").macs == B * T * D * D
    assert s.rows[0].macs - sum(s.row(n).macs for n in "qkvo") == ATTN_MACS  # the two matmuls
    assert not real_uncounted(s)


@pytest.mark.parametrize("mask,causal", [
    (None, False),
    (torch.zeros(T, T), False),                                   # additive float mask
    (torch.ones(B, 1, T, T, dtype=torch.bool).tril(), False),      # boolean mask, broadcast over heads
    (None, True),                                                  # is_causal
], ids=["plain", "float_mask", "bool_mask", "causal"])
def test_sdpa_block_equals_explicit_block(x, mask, causal):
    explicit = summary(Attention(mask=None if mask is None or mask.dtype == torch.bool else mask), x)
    fused = summary(Attention(sdpa=True, mask=mask, causal=causal), x)
    assert explicit.total_macs == PROJ_MACS + ATTN_MACS
    # masks and causality do not change the count: the full T x T score matrix is computed
    assert fused.total_macs == explicit.total_macs
    assert not real_uncounted(fused)


def test_sdpa_under_grad_and_no_grad(x):
    m = Attention(sdpa=True)
    assert summary(m, x).total_macs == PROJ_MACS + ATTN_MACS
    with torch.no_grad():
        assert summary(m, x).total_macs == PROJ_MACS + ATTN_MACS


def test_sdpa_cpu_flash_kernel_is_what_runs_and_is_counted(x):
    # equal head dims: CPU dispatches to the flash kernel (FlopCounterMode has no formula for it)
    m = Attention(sdpa=True)
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in op_names(m, lambda: m(x))
    fc_macs = flop_counter_flops(m, x) // 2
    assert fc_macs == PROJ_MACS                      # FlopCounterMode drops the attention ...
    assert summary(m, x).total_macs == PROJ_MACS + ATTN_MACS   # ... torchscope does not


def test_sdpa_math_path_with_other_value_dim(x):
    # value head dim != query head dim: CPU takes the math path (matmuls under the SDPA op)
    vd = 8
    m = Attention(sdpa=True, value_dim=vd)
    proj = B * T * D * D * 2 + B * T * D * H * vd + B * T * H * vd * D
    attn = B * H * T * T * (HD + vd)
    assert summary(m, x).total_macs == proj + attn
    assert summary(Attention(value_dim=vd), x).total_macs == proj + attn


def test_sdpa_grouped_query_attention(x):
    kv = 2  # 4 query heads share 2 key/value heads
    proj = B * T * D * D * 2 + 2 * B * T * D * kv * HD
    # every query head still scores against T keys: GQA saves projections, not attention MACs
    m = Attention(sdpa=True, kv_heads=kv)
    assert summary(m, x).total_macs == proj + ATTN_MACS


def test_einsum_attention_counted_through_its_children(x):
    class EinsumAttention(Attention):
        def forward(self, x):
            b, t, _ = x.shape
            q = self.q(x).view(b, t, H, HD)
            k = self.k(x).view(b, t, H, HD)
            v = self.v(x).view(b, t, H, HD)
            a = torch.einsum("bqhd,bkhd->bhqk", q, k).softmax(-1)
            return self.o(torch.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, t, D))

    m = EinsumAttention()
    assert "aten::einsum" not in count.MAC_FORMULAS     # its equation string is not recorded
    s = summary(m, x)
    assert s.total_macs == PROJ_MACS + ATTN_MACS
    assert not real_uncounted(s)


def test_multihead_attention_train_mode(x):
    mha = nn.MultiheadAttention(D, H, batch_first=True).train()
    s = summary(mha, (x, x, x))
    assert s.total_macs == PROJ_MACS + ATTN_MACS
    assert not real_uncounted(s)


def test_multihead_attention_eval_no_grad_fast_path(x):
    mha = nn.MultiheadAttention(D, H, batch_first=True).eval()
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[0, -2:] = True
    with torch.no_grad():
        assert "aten::_native_multi_head_attention" in op_names(mha, lambda: mha(x, x, x))
        for kwargs in ({}, {"need_weights": False}, {"key_padding_mask": pad}):
            s = summary(_Call(mha, **kwargs), x)
            assert s.total_macs == PROJ_MACS + ATTN_MACS, kwargs
            assert not real_uncounted(s), kwargs


def test_transformer_encoder_layer_fast_path(x):
    ffn = 32
    layer = nn.TransformerEncoderLayer(D, H, ffn, batch_first=True).eval()
    with torch.no_grad():
        assert "aten::_transformer_encoder_layer_fwd" in op_names(layer, lambda: layer(x))
        s = summary(layer, x)
    assert s.total_macs == PROJ_MACS + ATTN_MACS + 2 * B * T * D * ffn
    assert not real_uncounted(s)


class _Call(nn.Module):
    """Self-attention call of an nn.MultiheadAttention with fixed keyword arguments."""

    def __init__(self, mha, **kwargs):
        super().__init__()
        self.mha, self.kwargs = mha, kwargs

    def forward(self, x):
        return self.mha(x, x, x, **self.kwargs)


# ------------------------------------------------------------------ recurrent layers

def test_lstm_two_layers_bidirectional_batch_first():
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
    s = summary(lstm, torch.randn(3, 4, 6))          # batch 3, 4 steps
    tokens = 3 * 4
    layer0 = 4 * 5 * (6 + 5)                          # per direction: 4 gates x hidden x (in + hidden)
    layer1 = 4 * 5 * (2 * 5 + 5)                      # input is both directions' outputs
    assert s.total_macs == tokens * 2 * (layer0 + layer1) == 12 * 2 * (220 + 300)
    assert not real_uncounted(s)
    assert flop_counter_flops(lstm, torch.randn(3, 4, 6)) == 0   # the peer's gap


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_lstm_proj_size_fallback_path_not_double_counted():
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 5, proj_size=3)                 # time-major; runs linear/matmul children
    x = torch.randn(4, 3, 6)
    s = summary(lstm, x)
    assert s.total_macs == 4 * 3 * (4 * 5 * (6 + 3) + 3 * 5)   # recurrent input is proj_size; + projection


def test_lstm_packed_sequence_counts_real_steps_only():
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(0)
    lstm = nn.LSTM(6, 5)
    packed = pack_padded_sequence(torch.randn(4, 3, 6), [4, 2, 1])
    s = summary(lstm, [packed])                       # a PackedSequence is a tuple: wrap it
    assert s.total_macs == (4 + 2 + 1) * 4 * 5 * (6 + 5)


def test_lstm_unbatched_input():
    lstm = nn.LSTM(6, 5)
    s = summary(lstm, torch.randn(7, 6))
    assert s.total_macs == 7 * 4 * 5 * (6 + 5)


def test_gru_and_rnn():
    torch.manual_seed(0)
    x = torch.randn(5, 2, 6)                          # 5 steps, batch 2
    gru = nn.GRU(6, 8, num_layers=2)
    assert summary(gru, x).total_macs == 10 * (3 * 8 * (6 + 8) + 3 * 8 * (8 + 8))
    for nonlinearity in ("tanh", "relu"):
        rnn = nn.RNN(6, 8, nonlinearity=nonlinearity, bias=False, bidirectional=True)
        s = summary(rnn, x)
        assert s.total_macs == 10 * 2 * 8 * (6 + 8), nonlinearity
        assert not real_uncounted(s)


def test_rnn_cells():
    torch.manual_seed(0)
    x = torch.randn(3, 6)
    assert summary(nn.LSTMCell(6, 5), x).total_macs == 3 * 4 * 5 * (6 + 5)
    assert summary(nn.GRUCell(6, 5), x).total_macs == 3 * 3 * 5 * (6 + 5)
    assert summary(nn.RNNCell(6, 5), x).total_macs == 3 * 5 * (6 + 5)
    assert summary(nn.RNNCell(6, 5, nonlinearity="relu"), x[0]).total_macs == 5 * (6 + 5)  # unbatched


def test_lstm_cell_loop_counts_each_step():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.LSTMCell(6, 5)

        def forward(self, xs):
            h = c = torch.zeros(xs.shape[1], 5)
            for step in xs:
                h, c = self.cell(step, (h, c))
            return h

    s = summary(Loop(), torch.randn(7, 3, 6))
    assert s.total_macs == 7 * 3 * 4 * 5 * (6 + 5)
    calls = [r for r in s.rows if r.name == "cell"]   # one row per call
    assert len(calls) == 7 and all(r.macs == 3 * 4 * 5 * (6 + 5) for r in calls)


# ------------------------------------------------------------------ fused formulas vs their children

class _Fused(nn.Module):
    """torch._native_multi_head_attention on distinct query/key/value tensors (three projections)."""

    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(D, H, batch_first=True)

    def forward(self, q, k, v):
        m = self.mha
        return torch._native_multi_head_attention(q, k, v, D, H, m.in_proj_weight, m.in_proj_bias,
                                                  m.out_proj.weight, m.out_proj.bias)[0]


def _fused_cases():
    torch.manual_seed(0)
    seq = torch.randn(5, 3, 6)
    x = torch.randn(B, T, D)
    mha = nn.MultiheadAttention(D, H, batch_first=True).eval()
    return [
        ("mha_self", _Call(mha), x, ["aten::_native_multi_head_attention"]),
        ("mha_qkv", _Fused().eval(), (x, torch.randn(B, T, D), torch.randn(B, T, D)),
         ["aten::_native_multi_head_attention"]),
        ("encoder_layer", nn.TransformerEncoderLayer(D, H, 32, batch_first=True).eval(), x,
         ["aten::_transformer_encoder_layer_fwd"]),
        ("encoder_layer_and_mha", nn.TransformerEncoderLayer(D, H, 32, batch_first=True).eval(), x,
         ["aten::_transformer_encoder_layer_fwd", "aten::_native_multi_head_attention"]),
        ("lstm", nn.LSTM(6, 5, num_layers=2, bidirectional=True), seq, ["aten::lstm"]),
        ("gru", nn.GRU(6, 5, num_layers=2), seq, ["aten::gru"]),
        ("rnn", nn.RNN(6, 5, bidirectional=True), seq, ["aten::rnn_tanh"]),
        ("lstm_cell", nn.LSTMCell(6, 5), seq[0], ["aten::lstm_cell"]),
        ("gru_cell", nn.GRUCell(6, 5), seq[0], ["aten::gru_cell"]),
        ("sdpa_math", Attention(sdpa=True, value_dim=8), x,
         ["aten::scaled_dot_product_attention", "aten::_scaled_dot_product_attention_math"]),
    ]


@pytest.mark.native  # needs op nesting: the children are only seen under the fused op
@pytest.mark.parametrize("case", _fused_cases(), ids=lambda c: c[0])
def test_fused_formula_equals_what_its_children_compute(case, monkeypatch):
    """Each fused-op formula against the mm/bmm/addmm/kernel children it runs on this build."""
    _, model, inputs, fused = case
    with torch.no_grad():
        with_formula = summary(model, inputs)
        for name in fused:                          # now the fused ops are transparent
            monkeypatch.delitem(count.MAC_FORMULAS, name)
        children = summary(model, inputs)
    assert with_formula.total_macs > 0
    assert with_formula.total_macs == children.total_macs
    assert not real_uncounted(children)             # the children really were counted


@pytest.mark.native  # nested tensors: the C++ recorder still sees the dense children
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_encoder_with_padding_mask_counts_real_tokens():
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, 32, batch_first=True), 2,
                                enable_nested_tensor=True).eval()
    lengths = [T - 2, T]
    pad = torch.tensor([[i >= n for i in range(T)] for n in lengths])

    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = enc

        def forward(self, x):
            return self.enc(x, src_key_padding_mask=pad)

    x = torch.randn(B, T, D)
    with torch.no_grad():
        s = summary(Padded(), x)
    tokens = sum(lengths)                           # projections and FFN skip the padding ...
    per_layer = tokens * (4 * D * D + 2 * D * 32) + B * H * T * T * HD * 2   # ... attention runs padded
    assert s.total_macs == 2 * per_layer
    assert not real_uncounted(s)


@pytest.mark.native  # needs op nesting (linear -> matmul -> mm)
def test_failed_formula_is_transparent_and_listed_only_without_counted_children(monkeypatch):
    # a formula that cannot read its arguments turns its op transparent
    monkeypatch.setitem(count.MAC_FORMULAS, "aten::linear", lambda args: None)
    s = summary(nn.Linear(16, 32), torch.randn(2, 7, 16))
    assert s.total_macs == 2 * 7 * 16 * 32          # counted by its matmul/mm child
    assert "aten::linear" not in s.uncounted_ops
    monkeypatch.setitem(count.MAC_FORMULAS, "aten::mm", lambda args: None)
    monkeypatch.setitem(count.MAC_FORMULAS, "aten::matmul", lambda args: None)
    s = summary(nn.Linear(16, 32, bias=False), torch.randn(2, 7, 16))
    assert s.total_macs == 0
    assert real_uncounted(s) == {"aten::linear": 1}  # named once (outermost), never silently zero


# ------------------------------------------------------------------ linear, embeddings, misc products

def test_linear_on_3d_and_4d_inputs():
    lin = nn.Linear(16, 32, bias=False)
    assert summary(lin, torch.randn(2, 7, 16)).total_macs == 2 * 7 * 16 * 32
    assert summary(lin, torch.randn(2, 3, 5, 16)).total_macs == 2 * 3 * 5 * 16 * 32


def test_embedding_and_tied_head():
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 16)
            self.block = nn.Linear(16, 16)
            self.head = nn.Linear(16, 100, bias=False)
            self.head.weight = self.emb.weight          # tied

        def forward(self, idx):
            return self.head(torch.relu(self.block(self.emb(idx))))

    s = summary(LM(), torch.randint(0, 100, (2, 9)))
    assert s.total_params == 100 * 16 + 16 * 16 + 16  # the shared matrix once
    assert s.row("emb").macs == 0                    # a lookup, not a product
    assert s.row("head").macs == 2 * 9 * 16 * 100    # every token meets every vocabulary row
    assert s.total_macs == 2 * 9 * (16 * 16 + 16 * 100)


def test_vector_and_batched_products():
    class Products(nn.Module):
        def forward(self, a, v, b1, b2):
            return (torch.mv(a, v), torch.addmv(a[:, 0], a, v), torch.dot(v, v), torch.vdot(v, v),
                    torch.addbmm(torch.zeros(3, 5), b1, b2), torch.baddbmm(torch.zeros(2, 3, 5), b1, b2))

    torch.manual_seed(0)
    a, v = torch.randn(3, 4), torch.randn(4)
    b1, b2 = torch.randn(2, 3, 7), torch.randn(2, 7, 5)
    s = summary(Products(), (a, v, b1, b2))
    expected = 3 * 4 + 3 * 4 + 4 + 4 + 2 * 3 * 7 * 5 + 2 * 3 * 7 * 5
    assert s.total_macs == expected
    assert not real_uncounted(s)


@pytest.mark.native  # a dispatch-level recorder sees linalg_vecdot decomposed into mul + sum
def test_linalg_vecdot():
    class VecDot(nn.Module):
        def forward(self, a, b):
            return torch.linalg.vecdot(a, b)

    s = summary(VecDot(), (torch.randn(3, 1, 4), torch.randn(5, 4)))
    assert s.total_macs == 3 * 5 * 4                 # one 4-long dot product per broadcast pair


@pytest.mark.native
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_native_dispatch_paths_the_counts_above_rely_on(x):
    """The C++ recorder sees composite ops and their children: make sure the tests above
    exercise the paths they are named after (math SDPA, einsum -> bmm, fused FFN, LSTM
    fallback through linear), so the hand counts check the outermost-formula rule there."""
    m = Attention(sdpa=True, value_dim=8)
    assert "aten::_scaled_dot_product_attention_math" in op_names(m, lambda: m(x))
    q = torch.randn(B, H, T, HD)

    class Ein(nn.Module):
        def forward(self, q):
            return torch.einsum("bhqd,bhkd->bhqk", q, q)

    e = Ein()
    assert {"aten::einsum", "aten::bmm"} <= op_names(e, lambda: e(q))
    assert summary(e, q).total_macs == B * H * T * T * HD
    layer = nn.TransformerEncoderLayer(D, H, 32, batch_first=True).eval()
    with torch.no_grad():
        names = op_names(layer, lambda: layer(x))
    assert {"aten::_native_multi_head_attention", "aten::_addmm_activation"} <= names
    lstm = nn.LSTM(6, 5, proj_size=3)
    assert "aten::linear" in op_names(lstm, lambda: lstm(torch.randn(4, 3, 6)))


def test_direct_underscore_convolution_is_counted():
    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 3, 3, 3))

        def forward(self, x):
            return torch._convolution(x, self.w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                                      False, False, True, True)

    s = summary(Raw(), torch.randn(1, 3, 10, 10))
    assert s.total_macs == 8 * 100 * 3 * 9


# ------------------------------------------------------------------ agreement with FlopCounterMode

class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=2, dilation=2, groups=4), nn.ReLU(),
            nn.ConvTranspose2d(32, 8, 2, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
        )
        self.conv1d = nn.Conv1d(4, 6, 5, stride=2)
        self.conv3d = nn.Conv3d(3, 4, (2, 3, 3), padding=(0, 1, 1))

    def forward(self, img, seq):
        return self.features(img), self.conv1d(seq), self.conv3d(img.unsqueeze(2).expand(-1, -1, 3, -1, -1))


def test_cnn_total_flops_equal_flop_counter_mode():
    torch.manual_seed(0)
    m, inputs = CNN().eval(), (torch.randn(2, 3, 16, 16), torch.randn(2, 4, 30))
    s = summary(m, inputs)
    assert s.row("features.0").macs == 2 * 16 * 16 * 16 * 3 * 9
    assert s.row("conv1d").macs == 2 * 6 * 13 * 4 * 5
    assert s.total_flops == flop_counter_flops(m, inputs)


def test_matmul_transformer_block_equals_flop_counter_mode(x):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
            self.attn = Attention()
            self.mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D))

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    m = Block()
    s = summary(m, x)
    assert s.total_macs == PROJ_MACS + ATTN_MACS + 2 * B * T * D * 4 * D
    assert s.total_flops == flop_counter_flops(m, x)
    with torch.no_grad():
        mha = nn.MultiheadAttention(D, H, batch_first=True).train()   # train mode: explicit bmm path
        assert summary(mha, (x, x, x)).total_flops == flop_counter_flops(mha, (x, x, x))


def test_torchvision_resnet18_equals_flop_counter_mode():
    torchvision = pytest.importorskip("torchvision")
    m, x = torchvision.models.resnet18().eval(), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        s = summary(m, x)
        assert s.total_flops == flop_counter_flops(m, x)
    assert not real_uncounted(s)


# ------------------------------------------------------------------ formulas on shapes only

def meta(*shape):
    return count.TensorMeta((6, tuple(shape)))


SDPA_ARGS = {  # decoded argument lists as the recorder gives them (schemas below are checked)
    "aten::_scaled_dot_product_flash_attention": lambda q, k, v: [q, k, v, 0.0, False, False, None],
    "aten::_scaled_dot_product_efficient_attention": lambda q, k, v: [q, k, v, None, True, 0.0, False, None],
    "aten::_scaled_dot_product_cudnn_attention": lambda q, k, v: [q, k, v, None, True, 0.0, False, False, None],
    "aten::_scaled_dot_product_flash_attention_for_cpu": lambda q, k, v: [q, k, v, 0.0, False, None, None],
    "aten::_scaled_dot_product_attention_math": lambda q, k, v: [q, k, v, None, 0.0, False, None, None, False],
    "aten::_scaled_dot_product_fused_attention_overrideable":
        lambda q, k, v: [q, k, v, None, 0.0, False, False, None],
}


@pytest.mark.parametrize("name", sorted(SDPA_ARGS))
@pytest.mark.parametrize("kv_heads", [8, 2])
def test_fused_sdpa_formulas_match_flop_counter(name, kv_heads):
    q, k, v = (3, 8, 100, 64), (3, kv_heads, 120, 64), (3, kv_heads, 120, 64)
    ours = count.MAC_FORMULAS[name](SDPA_ARGS[name](meta(*q), meta(*k), meta(*v)))
    assert ours == 3 * 8 * 100 * 120 * (64 + 64)
    packet = getattr(torch.ops.aten, name.split("::")[1])
    if packet in flop_registry:       # FlopCounterMode has CUDA kernels' formulas, not the CPU ones
        assert 2 * ours == flop_registry[packet](q, k, v)


def test_attention_forward_kernels_dense_and_varlen():
    q, k, v = (2, 100, 8, 64), (2, 120, 8, 64), (2, 120, 8, 32)   # [B, L, H, E] layout
    dense = [meta(*q), meta(*k), meta(*v), None, None, 100, 120, 0.0, False, False, None]
    assert count.MAC_FORMULAS["aten::_flash_attention_forward"](dense) == 2 * 8 * 100 * 120 * (64 + 32)
    eff = [meta(*q), meta(*k), meta(*v), None, None, None, None, None, 0.0, 0, False, None]
    assert count.MAC_FORMULAS["aten::_efficient_attention_forward"](eff) == 2 * 8 * 100 * 120 * (64 + 32)
    mq = torch.empty(q, device="meta")
    # Cross-check with torch's own registry where it reads this [B, L, H, E] layout (torch 2.14);
    # torch 2.13's registry asserts on it (it checks heads on the wrong axis), so there the
    # hand-computed values above are the check.
    try:
        theirs = flop_registry[torch.ops.aten._flash_attention_forward](
            mq, torch.empty(k, device="meta"), torch.empty(v, device="meta"), None, None, 100, 120)
    except AssertionError:
        theirs = None
    if theirs is not None:
        assert 2 * count.MAC_FORMULAS["aten::_flash_attention_forward"](dense) == theirs
    # variable-length batches: per-sequence lengths are not recorded, so no guess is made
    varlen = [meta(200, 8, 64), meta(240, 8, 64), meta(240, 8, 32), meta(3), meta(3), 100, 120]
    assert count.MAC_FORMULAS["aten::_flash_attention_forward"](varlen) is None


def test_gpu_rnn_kernel_formulas_on_shapes():
    # _cudnn_rnn / miopen_rnn get the same flat weight list as aten::lstm's params (CUDA/ROCm
    # only: checked on decoded arguments). 2-layer LSTM, hidden 5, proj 3, input 6, T*B = 12.
    weights = [meta(20, 6), meta(20, 3), meta(20), meta(20), meta(3, 5),
               meta(20, 3), meta(20, 3), meta(20), meta(20), meta(3, 5)]
    expected = 12 * (4 * 5 * (6 + 3) + 3 * 5 + 4 * 5 * (3 + 3) + 3 * 5)
    cudnn = [meta(4, 3, 6), weights, 5, None, meta(2, 3, 3), meta(2, 3, 5), 2, 5, 3, 2, False, 0.0,
             False, False, [], None]
    assert count.MAC_FORMULAS["aten::_cudnn_rnn"](cudnn) == expected
    packed = [meta(7, 6)] + cudnn[1:14] + [[4, 2, 1]] + cudnn[15:]   # packed: [sum of lengths, in]
    assert count.MAC_FORMULAS["aten::_cudnn_rnn"](packed) == expected * 7 // 12
    miopen = [meta(4, 3, 6), weights, 5, meta(2, 3, 3), meta(2, 3, 5), 2, 5, 2, False, 0.0, False,
              False, [], None]
    assert count.MAC_FORMULAS["aten::miopen_rnn"](miopen) == expected


def _schema_args(qualified, overload=""):
    packet = getattr(torch.ops.aten, qualified.split("::")[1])
    return [a.name for a in getattr(packet, overload or "default")._schema.arguments]


def test_argument_positions_match_this_torch_schemas():
    # the formulas read arguments by position: catch a schema change in a new torch release
    for name in SDPA_ARGS:
        assert _schema_args(name)[:3] == ["query", "key", "value"], name
    assert _schema_args("aten::_flash_attention_forward")[3] == "cum_seq_q"
    assert _schema_args("aten::_efficient_attention_forward")[4] == "cu_seqlens_q"
    for rnn in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        assert _schema_args(f"aten::{rnn}", "input")[2:4] == ["params", "has_biases"], rnn
        assert _schema_args(f"aten::{rnn}", "data")[1:4] == ["batch_sizes", "hx", "params"], rnn
    for cell in ("lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"):
        assert _schema_args(f"aten::{cell}")[2:4] == ["w_ih", "w_hh"], cell
    for conv in ("convolution", "_convolution", "convolution_overrideable"):
        args = _schema_args(f"aten::{conv}")
        assert (args[6], args[8]) == ("transposed", "groups"), conv
    assert _schema_args("aten::_native_multi_head_attention")[:4] == ["query", "key", "value", "embed_dim"]
    enc = _schema_args("aten::_transformer_encoder_layer_fwd")
    assert (enc[0], enc[1], enc[14], enc[16]) == ("src", "embed_dim", "ffn_weight_1", "ffn_weight_2")
    assert _schema_args("aten::mkldnn_rnn_layer")[:3] == ["input", "weight0", "weight1"]
    for kernel in ("_cudnn_rnn", "miopen_rnn"):
        assert _schema_args(f"aten::{kernel}")[:2] == ["input", "weight"], kernel
    assert _schema_args("aten::addmm")[:3] == ["self", "mat1", "mat2"]
    assert _schema_args("aten::_addmm_activation")[:3] == ["self", "mat1", "mat2"]
    assert _schema_args("aten::baddbmm")[:3] == _schema_args("aten::addbmm")[:3] == ["self", "batch1", "batch2"]
    assert _schema_args("aten::addmv")[:3] == ["self", "mat", "vec"]


def test_every_formula_name_is_a_real_op():
    for name in count.MAC_FORMULAS:
        assert hasattr(torch.ops.aten, name.split("::")[1]), name
