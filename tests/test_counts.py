"""Params and MACs against hand-computed values (convention in DESIGN.md)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchscope import count, profile_summary


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


def test_record_shapes_off_leaves_macs_not_counted():
    """Without op input shapes no formula can run: MACs are None and said so, never 0."""
    import json

    from torchscope import export

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    x = torch.randn(2, 3, 8, 8)
    s = profile_summary(model, x, record_shapes=False, verbose=0)
    assert s.total_macs is None and s.total_flops is None and s.achieved_flops_per_s is None
    assert s.uncounted_ops == {}
    for r in s.rows:
        assert r.macs is None and r.flops is None and r.self_macs is None and r.flops_per_s is None
        assert r.fwd_time_ns > 0 and r.num_ops >= 1       # everything else is still measured
    assert s.row("2").output_shapes == torch.Size([2, 10])  # module shapes come from the markers
    why = "not counted (op input shapes not recorded: record_shapes=False)"
    assert "Total MACs: " + why in str(s)
    ti = s.table(style="torchinfo")
    assert "Total mult-adds: " + why in ti and "Forward/backward pass size" in ti  # a pass ran
    assert "Total MACs: " + why in export.from_dict(json.loads(json.dumps(s.to_dict()))).table()
    ops = export.op_rows(s, "0")
    assert len(ops) == 1 and "conv" in ops[0].name      # aten::conv2d (the fallback sees aten::convolution)
    assert ops[0].macs is None and ops[0].input_shapes is None
    assert profile_summary(model, x, verbose=0).total_macs == 2 * 8 * 36 * 27 + 288 * 10 * 2  # default: counted


@pytest.mark.parametrize("backend", ["C", "python twin"])
def test_counting_rounds_group_identical_ops_without_arguments(backend):
    """Ops with no packed arguments (anywhere, last included) group by name only, like the rest;
    an op under another candidate is not in the round."""
    import numpy as np

    from torchscope import _pyrecorder
    from torchscope._ext import C

    count_todo = C.count_todo if backend == "C" else _pyrecorder.count_todo
    cols = C.OP_COLS
    name = np.array([0, 1, 0, 1, 0, 2, 0, 3], dtype=np.int64)
    ln = np.array([2, 0, 2, 0, 0, 3, 0, 2], dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(ln)[:-1]])
    args = np.array([7, 8, 7, 8, 1, 2, 3, 5, 5], dtype=np.int64)

    def table(lengths, parent):
        ops = np.zeros((len(name), len(cols)), dtype=np.int64)
        ops[:, cols["name"]], ops[:, cols["args_off"]], ops[:, cols["args_len"]] = name, off, lengths
        ops[:, cols["parent"]] = parent
        return ops
    flat = np.full(len(name), -1)
    flat[7] = 6  # op 7 runs inside op 6: not outermost
    idx = np.arange(7)
    todo, groups, rep = count_todo(table(ln, flat), args, np.ones(len(name), bool), np.zeros(len(name), bool))
    assert todo.tolist() == idx.tolist()
    key = [(int(name[i]), tuple(args[off[i]:off[i] + ln[i]].tolist())) for i in idx]
    for i in idx:
        for j in idx:
            assert (groups[i] == groups[j]) == (key[i] == key[j]), (i, j)
    assert [key[r] for r in rep] == list(dict.fromkeys(key))
    no_args = count_todo(table(np.zeros_like(ln), flat), args, np.ones(len(name), bool), np.zeros(len(name), bool))
    assert len(no_args[2]) == 3  # no args at all: by name
    counted = np.zeros(len(name), bool)
    counted[[0, 2]] = True
    assert 0 not in count_todo(table(ln, flat), args, np.ones(len(name), bool), counted)[0].tolist()


def test_in_place_views_are_zero_mac_and_backward_pass_time_is_labelled():
    class Views(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            y = self.lin(x).clone()
            y.unsqueeze_(0)
            y.squeeze_(0)
            y.t_()
            y.transpose_(0, 1)
            return y

    s = profile_summary(Views(), torch.randn(3, 4), verbose=0)
    assert not [k for k in s.uncounted_ops if not k.startswith("(")], s.uncounted_ops
    assert s.total_macs == 3 * 4 * 4
    b = profile_summary(Views(), torch.randn(3, 4), backward=True, verbose=0)
    assert "Pass time (forward, loss and backward)" in str(b) and "Forward pass time" not in str(b)


@pytest.mark.native
def test_forked_branches_are_counted_in_the_calling_module():
    """torch.jit.fork runs a branch on an inter-op worker thread: its ops belong to the call that
    launched it, not to nowhere."""
    class Sub(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(64, 64)

        def forward(self, x):
            return self.l(x)

    class Par(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Sub(), Sub()

        def forward(self, x):
            f = torch.jit.fork(self.a, x)
            return torch.jit.wait(f) + self.b(x)

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.p, self.q = torch.jit.script(Par()), nn.Linear(64, 64)

        def forward(self, x):
            return self.q(self.p(x))

    s = profile_summary(Outer(), torch.randn(32, 64), verbose=0)
    assert s.total_macs == 3 * 32 * 64 * 64
    assert s.row("p").macs == 2 * 32 * 64 * 64 and s.row("q").macs == 32 * 64 * 64


def test_row_macs_exact_beyond_float64():
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(65537, 65537, bias=False))
    s = profile_summary(m, torch.empty(2**21 + 1, 65537, device="meta"), verbose=0)
    assert [r.macs for r in s.rows] == [(2**21 + 1) * 65537 * 65537] * 2 == [s.total_macs] * 2


@pytest.mark.native  # the fallback sees nested tensors' linear only as an opaque (listed) op
def test_nested_tensor_input():
    nt = torch.nested.nested_tensor([torch.randn(3, 8), torch.randn(5, 8)])
    s = profile_summary(nn.Linear(8, 4), nt, verbose=0)
    assert s.total_macs == 8 * 8 * 4 and s.meta["batch_size"] == 2


def test_outer_products_and_elementwise_math_are_zero_mac_by_convention():
    a, b, c = torch.randn(5), torch.randn(4), torch.randn(5, 4)

    class Elementwise(nn.Module):
        def forward(self, x):
            return (torch.addr(c, a, b) + torch.outer(a, b) + torch.sin(x) + F.hardsigmoid(x)
                    + F.dropout(x, inplace=True))

    s = profile_summary(Elementwise(), torch.randn(5, 4), verbose=0)
    assert s.total_macs == 0 and list(s.uncounted_ops) == [count.ZERO_MAC_KEY]


def test_rows_with_uncounted_ops_show_a_lower_bound_not_zero():
    class OnlyInv(nn.Module):
        def forward(self, x):
            return torch.linalg.inv(x)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.o, self.b = OnlyInv(), nn.Linear(4, 4)

        def forward(self, x):
            return self.b(self.o(x))

    import re

    s = profile_summary(Model(), torch.randn(4, 4), verbose=0)
    assert [r.macs_uncounted_ops > 0 for r in s.rows] == [True, True, False]  # (the fallback sees more ops)
    cells = {re.split(r"\s{2,}", ln.strip())[0]: re.split(r"\s{2,}", ln.strip())[3]
             for ln in str(s).splitlines()[3:6]}
    assert cells == {"Model (Model)": "64+", "o (OnlyInv)": "?", "b (Linear)": "64"}, cells
    assert "MACs marked + are a lower bound, ? unknown" in str(s)
    back = type(s).from_json(s.to_json())
    assert [r.macs_uncounted_ops for r in back.rows] == [r.macs_uncounted_ops for r in s.rows]
    assert str(back) == str(s)


def test_masks_grids_and_losses_are_zero_mac_not_unknown():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(8, 8)

        def forward(self, x):
            gx, _ = torch.meshgrid(torch.arange(3), torch.arange(3), indexing="ij")
            mask = (x > 0) & (x < 1)
            routing = torch.histc(x, bins=4) + torch.bincount(torch.arange(4) // 2, minlength=4)  # (MoE routers)
            return F.mse_loss(self.l(x).swapaxes(0, 1), x.T) + mask.sum() + gx.sum() + routing.sum()

    s = profile_summary(M(), torch.randn(4, 8), verbose=0)
    assert s.total_macs == 4 * 8 * 8 and list(s.uncounted_ops) == [count.ZERO_MAC_KEY]
    assert "+" not in str(s).splitlines()[3]


def test_vmap_counts_the_batch_and_python_functions_are_transparent_scopes():
    from torch.func import vmap

    class VM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 64)

        def forward(self, x):
            return vmap(self.lin)(x)  # the linear sees one sample's sizes; its mm the batch's

    s = profile_summary(VM(), torch.randn(100, 64), verbose=0)
    assert s.total_macs == 100 * 64 * 64

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    class Inv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.linalg.inv(x)

        @staticmethod
        def backward(ctx, g):
            return g

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)

        def forward(self, x):
            return Inv.apply(Scale.apply(self.l(x)))

    m = M()
    m.l.register_full_backward_hook(lambda *a: None)
    s = profile_summary(m, torch.randn(4, 4), verbose=0)
    real = [k for k in s.uncounted_ops if not k.startswith("(")]
    assert real and all("linalg" in k for k in real), real  # not Scale, Inv or BackwardHookFunction
    assert "Total MACs: 64+" in str(s)  # a lower bound: the inverse is not counted


def test_range_max_by_blocks_matches_a_scan():
    import numpy as np

    from torchscope.attribute import _range_max
    rng = np.random.default_rng(0)
    a = rng.integers(-10**6, 10**6, 300_000).astype(np.int64)  # above the sparse-table size
    lo = rng.integers(0, len(a) - 1, 300)
    hi = np.minimum(lo + rng.integers(1, 5000, 300) * rng.integers(1, 60, 300), len(a))
    assert (_range_max(a, lo, hi) == np.array([a[x:y].max() for x, y in zip(lo, hi)])).all()


def test_a_formula_added_between_two_summaries_counts_in_the_second(monkeypatch):
    """Which ops have a formula is read from MAC_FORMULAS at each summary (not cached with the
    recorder's name table, which stays the same for one model)."""
    from torchscope import count

    class Cumsum(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 0)
    m, x = Cumsum(), torch.randn(2, 4)
    assert profile_summary(m, x, verbose=0, warmup=0, iters=1).total_macs == 0
    monkeypatch.setitem(count.MAC_FORMULAS, "aten::cumsum", lambda args: 123)
    s = profile_summary(m, x, verbose=0, warmup=0, iters=1)
    assert s.total_macs == 123 and not s.uncounted_ops


def test_name_flags_follow_a_growing_name_table_and_restart_on_another():
    """The per-name flags are computed once per op name (the recorder's table only grows); a table
    that is not an extension of the one seen (another process's JSON, a test) starts over."""
    import numpy as np

    from torchscope.attribute import ENGINE_PREFIX, _engine_names

    def direct(names):
        has = np.array([n in count.MAC_FORMULAS for n in names], dtype=bool)
        zero = np.array([bool(count._ZERO_MAC.match(n)) or n.startswith("autograd::engine::") for n in names], dtype=bool)
        return has, zero, np.array(["::" not in n for n in names], dtype=bool) & ~has

    tables = [["aten::addmm", "aten::relu"], ["aten::addmm", "aten::relu", "aten::view", "MyFunction"],
              ["aten::t", "aten::mm"], ["aten::t", "aten::mm", ENGINE_PREFIX + ": MmBackward0"], []]
    for names in tables + tables[::-1]:
        got, want = count.op_formula_flags(names), direct(names)
        assert all(g.tolist() == w.tolist() for g, w in zip(got, want)), names
        assert _engine_names(names).tolist() == [int(n.startswith(ENGINE_PREFIX)) for n in names], names


def test_mixture_of_experts_counts_the_tokens_each_expert_was_routed():
    # Top-2 routing: an expert's MACs depend on how many tokens reached it (data-dependent).
    # The expected counts are recomputed from the routing itself; an expert no token reached
    # has no call, hence no row, and adds nothing.
    d, h, n_exp, k, tokens = 16, 32, 4, 2, 10

    class MoE(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = nn.Linear(d, n_exp, bias=False)
            self.experts = nn.ModuleList(nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, d))
                                         for _ in range(n_exp))

        def forward(self, x):
            w, idx = self.gate(x).topk(k, dim=-1)
            w = w.softmax(-1)
            out = torch.zeros_like(x)
            for e, expert in enumerate(self.experts):
                tok, slot = (idx == e).nonzero(as_tuple=True)
                if len(tok):
                    out.index_add_(0, tok, expert(x[tok]) * w[tok, slot, None])
            return out

    torch.manual_seed(0)
    model, x = MoE(), torch.randn(tokens, d)
    with torch.no_grad():
        routed = torch.bincount(model.gate(x).topk(k, dim=-1).indices.flatten(), minlength=n_exp).tolist()
    assert sum(routed) == k * tokens and routed.count(0) < n_exp - 1  # (the seed spreads the tokens)
    s = profile_summary(model, x, verbose=0)
    for e, n in enumerate(routed):
        rows = [r for r in s.rows if r.name == f"experts.{e}"]
        assert [r.macs for r in rows] == ([n * 2 * d * h] if n else []), (e, n, rows)
        if n:
            assert s.row(f"experts.{e}.0").input_shapes == (torch.Size([n, d]),)
    assert s.row("gate").macs == tokens * d * n_exp
    assert s.total_macs == tokens * d * n_exp + k * tokens * 2 * d * h


@pytest.mark.native
@pytest.mark.parametrize("case", ["mlp", "repeats and uncounted ops", "no shapes"])
def test_count_columns_kernel_matches_its_numpy_reference(case):
    """C.count_columns (one sweep in csrc/kernels.cpp) against api.count_columns_numpy on real traces:
    per-row self and subtree MACs, FLOPs, uncounted-op counts, params gathered per row, repeat flags,
    FLOP/s and the total."""
    from torchscope import api, attribute, capture
    from torchscope._ext import C
    from torchscope.models import tiny_mlp

    torch.manual_seed(0)
    if case == "mlp":
        m, x = tiny_mlp(6, 8), torch.randn(2, 8)
    else:
        lin = nn.Linear(8, 8)

        class Odd(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin, self.body = lin, nn.Sequential(lin, nn.ReLU(), lin)

            def forward(self, x):
                y = self.body(self.lin(x))
                return torch.linalg.inv(y @ y.T + torch.eye(3)) @ y  # linalg_inv: no MAC formula
        m, x = Odd(), torch.randn(3, 8)
    trace = capture.capture(m, lambda: m(x), warmup=0, iters=2, record_shapes=case != "no shapes")
    att = attribute.attribute(trace)
    tc = count.tensor_counts(trace.index, trace.tensor_stats)
    if case == "no shapes":
        macs, listed = np.zeros(len(att.op_row), dtype=np.int64), np.zeros(len(att.op_row), dtype=bool)
    else:
        macs, listed, _ = count.count_ops(trace.ops, trace.args, trace.names, att.op_mask)
    args = (att.op_row, macs, listed, att.parent, att.module, att.fwd_time_ns, tc.params, tc.trainable, tc.buffers)
    native, ref = C.count_columns(*args), api.count_columns_numpy(*args, att.depth)
    assert set(native) == set(ref)
    for k in ref:
        if k == "flops_per_s":
            np.testing.assert_allclose(native[k], ref[k], rtol=1e-12)
        elif k in ("repeat", "total_macs"):
            assert native[k] == ref[k], k
        else:
            np.testing.assert_array_equal(native[k], ref[k], err_msg=k)
    if case != "no shapes":
        assert native["total_macs"] == int(macs[att.op_row >= 0].sum()) > 0
    if case == "repeats and uncounted ops":
        assert sum(native["repeat"]) == 2 and native["macs_uncounted_ops"][0] >= 1
    bad_parent = att.parent.copy()
    bad_parent[0] = len(bad_parent)  # not a pre-order tree: the kernel declines, the caller uses numpy
    assert C.count_columns(att.op_row, macs, listed, bad_parent, *args[4:]) is None
