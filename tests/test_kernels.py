"""The C kernels (csrc/kernels.cpp) give what the numpy paths of attribute.py and count.py give."""
import dataclasses

import numpy as np
import pytest
import torch

import torchscope
from torchscope import attribute as att
from torchscope.models import SmallResNet, tiny_mlp

pytestmark = pytest.mark.native  # the pure-Python recorder has no kernel


class Twice(torch.nn.Module):  # one module called twice, ops outside submodules, temporaries freed inside
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)

    def forward(self, x):
        y = self.lin(x).relu() * 2
        return self.lin(y + x.sin())


class Varying(torch.nn.Module):  # later iterations make different calls: their times are not used
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)
        self.n = 0

    def forward(self, x):
        self.n += 1
        for _ in range(1 if self.n == 1 else 2):
            x = self.lin(x)
        return x


class ManyTemporaries(torch.nn.Module):  # thousands of memory events: the range maxima's block path
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.ModuleList(torch.nn.Identity() for _ in range(3))

    def forward(self, x):
        keep = []
        for i in range(1500):
            t = self.inner[i % 3](x * i)
            if i % 7 == 0:
                keep.append(t)
        return torch.stack(keep).sum(0)


CASES = {
    "tiny MLP, one pass": (lambda: tiny_mlp(20, 8), lambda: torch.randn(4, 8), dict(warmup=0, iters=1)),
    "resnet, warm-up recorded, 3 passes": (SmallResNet, lambda: torch.randn(2, 3, 32, 32), dict(warmup=1, iters=3)),
    "transformer layer, 4 passes (even median)": (
        lambda: torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True).eval(),
        lambda: torch.randn(2, 5, 32), dict(warmup=1, iters=4)),
    "module called twice": (Twice, lambda: torch.randn(3, 16), dict(warmup=0, iters=3)),
    "iterations differ": (Varying, lambda: torch.randn(2, 8), dict(warmup=0, iters=3)),
    "no memory tracking": (SmallResNet, lambda: torch.randn(2, 3, 32, 32), dict(warmup=0, iters=2, record_memory=False)),
    "many memory events": (ManyTemporaries, lambda: torch.randn(64), dict(warmup=0, iters=1)),
    "no grad": (lambda: tiny_mlp(5, 8), lambda: torch.randn(2, 8), dict(warmup=0, iters=1, grad=False)),
}


def _trace(make, x, kw):
    torch.manual_seed(0)
    model, inputs = make(), x()
    kw = dict(kw)
    with torch.set_grad_enabled(kw.pop("grad", True)):
        return torchscope.profile_summary(model, inputs, verbose=0, **kw)._trace


def _same(a, b, where):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, where
        assert np.array_equal(a, b), f"{where}: {a[a != b][:5]} vs {b[a != b][:5]}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


@pytest.mark.parametrize("case", CASES)
def test_kernel_matches_the_vectorised_path(case):
    make, x, kw = CASES[case]
    trace = _trace(make, x, kw)
    fast = att._forward_kernel(trace, att.DEVICE_TYPE_CPU)
    assert fast is not None, "this trace is in the kernel's case"
    ref = att.attribute_vectorised(trace, att.DEVICE_TYPE_CPU)
    for f in dataclasses.fields(att.Attribution):
        _same(getattr(fast, f.name), getattr(ref, f.name), f.name)
    if case == "iterations differ":
        assert any("iteration 1 made different module calls" in n for n in fast.notes)
    if case == "no memory tracking":
        assert fast.mem is None and fast.peak_memory is None
    else:
        assert fast.peak_memory > 0 and fast.mem["allocated"][0] > 0


class Raises(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bad = torch.nn.Linear(3, 3)
        self.good = torch.nn.Linear(4, 4)

    def forward(self, x):
        try:
            return self.bad(x)
        except RuntimeError:
            return self.good(x)


@pytest.mark.parametrize("what", ["backward", "caught failure"])
def test_traces_outside_the_kernel_case_take_the_vectorised_path(what):
    if what == "backward":
        trace = torchscope.profile_summary(tiny_mlp(3, 4), torch.randn(2, 4), backward=True, warmup=0, iters=1,
                                           verbose=0)._trace
    else:
        trace = torchscope.profile_summary(Raises(), torch.randn(2, 4), warmup=0, iters=1, verbose=0)._trace
    assert att._forward_kernel(trace, att.DEVICE_TYPE_CPU) is None
    a = att.attribute(trace)
    if what == "backward":
        assert a.bwd_time_ns is not None
    else:
        assert any("raised an exception the model caught" in n for n in a.notes)


def test_op_tree_flags_match_their_python_twins():
    from torchscope import _pyrecorder
    from torchscope._ext import C

    rng = np.random.default_rng(0)
    for n in (0, 1, 50, 2000):
        parent = np.array([rng.integers(-1, i) if i else -1 for i in range(n)], dtype=np.int64)
        flag = rng.random(n) < 0.1
        for name in ("flags_under", "flags_above"):
            got, want = getattr(C, name)(flag, parent), getattr(_pyrecorder, name)(flag, parent)
            assert got.dtype == bool and np.array_equal(got, want), (name, n)
    chain = np.array([-1, 0, 1, 2])  # a flag at op 1: ops 2 and 3 lie under it, op 0 above it
    at1 = np.array([False, True, False, False])
    assert C.flags_under(at1, chain).tolist() == [False, False, True, True]
    assert C.flags_above(at1, chain).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="after their parent"):
        C.flags_under(at1, np.array([-1, 2, 0, 1]))


def test_subtree_sums_in_c_match_the_level_by_level_numpy_sums():
    from torchscope._ext import C

    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 601, 3000):
        parent = np.array([rng.integers(-1, i) if i else -1 for i in range(n)], dtype=np.int64)
        depth = np.zeros(n, dtype=np.int64)
        for i in range(1, n):
            depth[i] = depth[parent[i]] + 1 if parent[i] >= 0 else 0
        values = rng.integers(0, 10**12, n)
        got = C.subtree_sum(values, parent)
        assert got is not None and got.dtype == np.int64
        assert np.array_equal(got, att.subtree_sum_levels(values, parent, depth)), n
        assert np.array_equal(att.subtree_sum(values.astype(bool), parent, depth),
                              att.subtree_sum_levels(values.astype(bool), parent, depth))
    # floats keep numpy's order of additions; a tree out of pre-order goes to numpy too
    assert C.subtree_sum(np.ones(3), np.array([-1, 0, 1])) is None
    assert C.subtree_sum(np.ones(3, dtype=np.int64), np.array([-1, 2, 0])) is None
    assert att.subtree_sum(np.array([1, 2, 4]), np.array([-1, 2, 0]), np.array([0, 2, 1])).tolist() == [7, 2, 6]


class Uncounted(torch.nn.Module):  # ops without formulas under a scope, a formula op inside a transparent one
    def forward(self, x):
        with torch.autograd.profiler.record_function("my scope"):
            y = torch.fft.fft(x).real + torch.cumsum(x, 0)
        return torch.nn.functional.linear(y, torch.ones(4, 4)).relu()


@pytest.mark.parametrize("case", list(CASES) + ["uncounted ops", "nested tensors"])
def test_count_kernels_match_their_python_twins(case, monkeypatch):
    from torchscope import _pyrecorder, count

    if case == "uncounted ops":
        trace = _trace(Uncounted, lambda: torch.randn(3, 4), dict(warmup=0, iters=1))
    elif case == "nested tensors":  # opaque arguments: a formula fails, its children are examined
        layer = lambda: torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
        nt = lambda: torch.nested.nested_tensor([torch.randn(2, 8), torch.randn(3, 8)])
        with torch.no_grad():
            trace = _trace(layer, nt, dict(warmup=0, iters=1, grad=False))
    else:
        trace = _trace(*CASES[case])
    mask = att.attribute(trace).op_mask
    got = count.count_ops(trace.ops, trace.args, trace.names, mask)
    for name in ("count_todo", "count_top", "flags_under", "flags_above"):
        monkeypatch.setattr(count.C, name, getattr(_pyrecorder, name))
    want = count.count_ops(trace.ops, trace.args, trace.names, mask)
    _same(got[0], want[0], "macs")
    _same(got[1], want[1], "listed")
    assert got[2] == want[2]
    if case == "uncounted ops":
        assert "aten::fft_fft" in got[2] or any("fft" in k for k in got[2]), got[2]


def test_a_malformed_op_table_is_refused_not_read_out_of_bounds():
    trace = _trace(*CASES["tiny MLP, one pass"])
    ops = trace.ops.copy()
    ops[5, att.OPC["parent"]] = 10**9  # a parent index past the table
    bad = dataclasses.replace(trace, ops=ops)
    assert att._forward_kernel(bad, att.DEVICE_TYPE_CPU) is None
