"""The C++ recorder: ops, shapes, attribution and memory, checked against torch itself."""
import time

import numpy as np
import pytest
import torch
from torch import nn

from conftest import OPC, profiler_top_level_ops, top_level_ops
from torchscope import capture, profile_summary
from torchscope._ext import C
from torchscope.models import SmallResNet, TransformerBlock


@pytest.mark.parametrize("make", [lambda: (SmallResNet(), torch.randn(2, 3, 16, 16)),
                                  lambda: (TransformerBlock(), torch.randn(2, 8, 64))],
                         ids=["cnn", "transformer"])
@pytest.mark.native
def test_ops_and_shapes_match_torch_profiler(make, seed):
    model, x = make()
    model(x)  # first-call effects (lazy init) out of both passes
    ours = top_level_ops(capture.capture(model, lambda: model(x), warmup=0, iters=1))
    theirs = profiler_top_level_ops(lambda: model(x))
    assert sum(ours.values()) > 10
    assert ours == theirs


@pytest.mark.native
def test_same_pass_inside_torch_profiler_records_same_ops(seed):
    """Both observers on one pass: torchscope runs without memory tracking, says so."""
    model, x = TransformerBlock(), torch.randn(2, 8, 64)
    model(x)
    with torch.profiler.profile(record_shapes=True) as prof:
        trace = capture.capture(model, lambda: model(x), warmup=0, iters=1)
    assert not trace.memory_tracking
    assert any("torch.profiler" in n for n in trace.notes)
    names = {e.name for e in prof.events()}
    ours = top_level_ops(trace)
    assert {name for name, _ in ours} <= names


def _leaf_modules(trace):
    return {i for i, m in enumerate(trace.index.modules) if not list(m.children())}


def test_every_op_in_a_leaf_forward_is_attributed_to_that_leaf(seed):
    model, x = SmallResNet(), torch.randn(2, 3, 16, 16)
    trace = capture.capture(model, lambda: model(x), warmup=0, iters=1)
    calls, ops = trace.calls, trace.ops
    cc = C.CALL_COLS
    leaves = _leaf_modules(trace)
    checked = 0
    fwd = ops[(ops[:, OPC["scope"]] == 0)]
    for cid, c in enumerate(calls):
        if c[cc["module"]] not in leaves:
            continue
        # Ops that started on the same thread inside the call's time window ...
        inside = fwd[(fwd[:, OPC["start"]] >= c[cc["enter"]]) & (fwd[:, OPC["end"]] <= c[cc["exit"]])
                     & (fwd[:, OPC["thread"]] == c[cc["thread"]])]
        assert len(inside) > 0, trace.index.names[c[cc["module"]]]
        # ... are all attributed to this call, and the call owns no op outside the window.
        assert (inside[:, OPC["call"]] == cid).all()
        assert (fwd[:, OPC["call"]] == cid).sum() == len(inside)
        checked += 1
    assert checked >= 10


def test_op_types_land_on_the_expected_module_types(seed):
    model, x = SmallResNet(), torch.randn(2, 3, 16, 16)
    s = profile_summary(model, x, warmup=0, iters=1, verbose=0)
    by_type = {}
    for r in s.rows:
        by_type.setdefault(r.type, []).append(r)
    assert all(r.macs > 0 for r in by_type["Conv2d"])
    assert all(r.macs == 0 for r in by_type["BatchNorm2d"] + by_type["ReLU"])
    assert all(r.num_ops >= 1 for r in s.rows)


@pytest.mark.native
def test_nesting_parent_links_are_consistent(seed):
    model, x = TransformerBlock(), torch.randn(2, 8, 64)
    trace = capture.capture(model, lambda: model(x), warmup=0, iters=1)
    ops = trace.ops
    parent = ops[:, OPC["parent"]]
    has = parent >= 0
    # A child starts after and ends before its parent, on the same thread.
    p = ops[parent[has]]
    c = ops[has]
    assert (c[:, OPC["start"]] >= p[:, OPC["start"]]).all()
    assert (c[:, OPC["end"]] <= p[:, OPC["end"]]).all()
    assert (c[:, OPC["thread"]] == p[:, OPC["thread"]]).all()
    assert trace.dropped_ends == 0
    # linear -> t/addmm or matmul children exist: nesting is visible
    names = [trace.names[i] for i in ops[has, OPC["name"]]]
    assert "aten::addmm" in names or "aten::mm" in names


@pytest.mark.native
def test_linear_memory_retains_its_output():
    lin, x = nn.Linear(1024, 1024), torch.randn(256, 1024)
    s = profile_summary(lin, x, warmup=1, iters=1, verbose=0)
    r = s.rows[0]
    out_bytes = 256 * 1024 * 4
    assert r.mem_retained >= out_bytes
    assert r.mem_allocated >= out_bytes
    assert r.mem_peak >= out_bytes
    # allocated - freed is the net change of the allocator's own running total over the call
    trace = capture.capture(lin, lambda: lin(x), warmup=0, iters=1)
    mem = trace.mem[trace.mem[:, C.MEM_COLS["device_type"]] == 0]
    mc = C.MEM_COLS
    in_call = mem[mem[:, mc["call"]] == 0]
    allocated = in_call[in_call[:, mc["bytes"]] > 0, mc["bytes"]].sum()
    freed = -in_call[in_call[:, mc["bytes"]] < 0, mc["bytes"]].sum()
    first, last = in_call[0], in_call[-1]
    running_before = first[mc["total_allocated"]] - first[mc["bytes"]]
    assert allocated - freed == last[mc["total_allocated"]] - running_before
    assert s.rows[0].mem_allocated - s.rows[0].mem_freed >= out_bytes


@pytest.mark.native
def test_memory_totals_are_consistent_across_the_tree(seed):
    model, x = SmallResNet(), torch.randn(2, 3, 16, 16)
    s = profile_summary(model, x, warmup=1, iters=1, verbose=0)
    rows = s.rows
    for i, r in enumerate(rows):
        kids = [c for c in rows if c.parent == i]
        if kids:  # inclusive figures: a parent covers its children
            assert r.mem_allocated >= sum(c.mem_allocated for c in kids)
            assert r.mem_freed >= sum(c.mem_freed for c in kids)
        assert 0 <= r.mem_retained <= r.mem_allocated
        assert r.mem_peak <= r.mem_allocated
    assert s.peak_memory >= rows[0].mem_peak > 0


def test_times_structure_self_sums_to_total(seed):
    model, x = SmallResNet(), torch.randn(2, 3, 16, 16)
    s = profile_summary(model, x, warmup=1, iters=1, verbose=0)
    rows = s.rows
    total_self = sum(r.fwd_self_time_ns for r in rows)
    assert total_self == pytest.approx(rows[0].fwd_time_ns, rel=1e-9)
    assert rows[0].fwd_time_ns <= s.total_time_ns
    for i, r in enumerate(rows):
        assert r.fwd_self_time_ns >= 0
        assert r.fwd_time_ns == pytest.approx(r.fwd_self_time_ns + sum(
            c.fwd_time_ns for c in rows if c.parent == i), rel=1e-9)


class _Sleeper(torch.nn.Module):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return x + 1


def test_recorded_times_are_wall_clock_nanoseconds():
    """Record timestamps are counter ticks converted at collect(): a known sleep must come out in ns."""
    m = torch.nn.Sequential(_Sleeper(0.02), _Sleeper(0.005))
    s = profile_summary(m, torch.zeros(2), warmup=0, iters=1, verbose=0)
    slow, fast = s.rows[1], s.rows[2]
    assert 20e6 <= slow.fwd_time_ns < 20e6 * 1.25, slow.fwd_time_ns
    assert 5e6 <= fast.fwd_time_ns < 5e6 * 1.5 + 2e6, fast.fwd_time_ns
    assert s.rows[0].fwd_time_ns <= s.total_time_ns  # the root call inside the timed pass (same clock)
    assert s.rows[0].fwd_time_ns >= slow.fwd_time_ns + fast.fwd_time_ns
    trace = s._trace
    ops, calls = trace.ops, trace.calls
    add = [i for i, nm in enumerate(trace.names) if nm == "aten::add"]
    starts = ops[np.isin(ops[:, C.OP_COLS["name"]], add), C.OP_COLS["start"]]
    enter, exit_ = calls[1, C.CALL_COLS["enter"]], calls[1, C.CALL_COLS["exit"]]
    assert enter + 20e6 <= starts.min() <= exit_  # the add runs after the sleep, inside the call


@pytest.mark.native
def test_tensors_of_more_than_64_dims_are_recorded_without_sizes():
    """The recorder reserves room for 64 sizes per tensor argument: more are recorded opaque
    (dtype only), never written past the reserved room."""
    from torchscope.count import decode_args

    class Add(torch.nn.Module):
        def forward(self, a, b):
            return a + a, b * 2

    a, b = torch.zeros([1] * 64 + [3]), torch.zeros([1] * 63 + [2])
    trace = capture.capture(Add(), lambda: Add()(a, b), warmup=0, iters=1, record_memory=False)
    ops, cols = trace.ops, C.OP_COLS
    shapes = {trace.names[o[cols["name"]]]: [v.shape for v in decode_args(trace.args, o[cols["args_off"]], o[cols["args_len"]])
                                           if hasattr(v, "shape")] for o in ops}
    assert shapes["aten::add"] == [None, None]  # 65 dims: opaque
    assert shapes["aten::mul"][0] == tuple([1] * 63 + [2])  # 64 dims: recorded


@pytest.mark.native  # (the pure-Python recorder records its own op list, and copies every list)
def test_ops_repeating_equal_arguments_share_them_and_each_op_decodes_its_own():
    """An op called again with the arguments of one of its last two calls points at them (the
    stream stays small); every op, nested ones included, still decodes to the shapes
    torch.profiler records for it, here with one op name going through three argument lists."""
    from torchscope.count import decode_args, tensor_shapes

    base = torch.arange(64.0)

    class Cycle(nn.Module):
        def forward(self, x):
            outs = [x.t()]
            for size in [(2, 3), (4, 2)] * 3 + [(5, 5), (2, 3)]:
                outs.append(torch.as_strided(base, size, (1, 2)) * 2)
            return outs

    x = torch.ones(3, 4)
    run = lambda: Cycle()(x)  # noqa: E731
    trace = capture.capture(Cycle(), run, warmup=0, iters=1, record_memory=False)
    ops = trace.ops[np.argsort(trace.ops[:, OPC["start"]], kind="stable")]
    ours = [(trace.names[o[OPC["name"]]], repr(tensor_shapes(decode_args(trace.args, o[OPC["args_off"]],
                                                                           o[OPC["args_len"]])))) for o in ops]
    with torch.profiler.profile(record_shapes=True) as prof:
        run()
    events = sorted((e for e in prof.events() if e.name.startswith("aten::")), key=lambda e: e.time_range.start)
    assert ours == [(e.name, repr(e.input_shapes)) for e in events]
    strided = ops[[trace.names[o[OPC["name"]]] == "aten::as_strided" for o in ops]]
    assert len(strided) == 9  # (x.t() runs one too)
    # t()'s, (2, 3) and (4, 2) once each however often they alternate, (5, 5), then (2, 3)
    # again: no longer among the last two
    assert len(set(strided[:, OPC["args_off"]].tolist())) == 5
    mul = ops[[trace.names[o[OPC["name"]]] == "aten::mul" for o in ops]]
    assert len(set(mul[:, OPC["args_off"]].tolist())) == 4


@pytest.mark.native
def test_a_model_repeating_its_layers_records_each_argument_list_once():
    from torchscope.models import tiny_mlp

    model, x = tiny_mlp(50, 8), torch.randn(2, 8)
    trace = capture.capture(model, lambda: model(x), warmup=0, iters=1, record_memory=False)
    lengths = trace.ops[:, OPC["args_len"]]
    assert len(trace.ops) > 500 and lengths.sum() > 5000  # what copies per op would take
    assert len(trace.args) < 200  # one copy of each distinct list (a layer's first calls)


def _sizes_subclass(dim, sizes, on_dim=None):
    """A wrapper tensor subclass whose sizes come from Python (dispatch_sizes_strides_policy)."""
    from torch.utils._pytree import tree_map

    class Sub(torch.Tensor):
        @staticmethod
        def __new__(cls, elem):
            return torch.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype,
                                                       dispatch_sizes_strides_policy="sizes")

        def __init__(self, elem):
            self.elem = elem

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.dim.default:
                if on_dim:
                    on_dim()
                return dim
            if func in (torch.ops.aten.sym_size.default, torch.ops.aten.size.default):
                return list(sizes)
            un = lambda t: t.elem if isinstance(t, Sub) else t  # noqa: E731
            return func(*tree_map(un, args), **tree_map(un, kwargs or {}))
    return Sub


class _AddHalf(torch.nn.Module):
    def forward(self, x):
        return torch.add(x, 1.5)


@pytest.mark.native
@pytest.mark.parametrize("inner", ["small op", "op with 1000 list elements"])
def test_ops_run_while_reading_a_subclass_size_are_not_recorded_into_the_arguments(inner):
    """Reading a subclass's sizes can run ops; they belong to the observation, not the model,
    and must not write into (or grow) the argument stream being filled (was: a crash)."""
    from torchscope.count import decode_args

    pre = [torch.zeros(1)] * 1000
    work = (lambda: torch.zeros(5, 7, 9)) if inner == "small op" else (lambda: torch.cat(pre))
    x = _sizes_subclass(2, [3, 4], on_dim=work)(torch.randn(3, 4))
    trace = profile_summary(_AddHalf(), x, verbose=0, warmup=0, iters=1)._trace
    names = [trace.names[i] for i in trace.ops[:, OPC["name"]]]
    assert "aten::zeros" not in names and "aten::cat" not in names, names
    add = trace.ops[names.index("aten::add")]
    args = decode_args(trace.args, add[OPC["args_off"]], add[OPC["args_len"]])
    assert args[0].shape == (3, 4) and args[1].shape == ()  # (the scalar, wrapped as a 0-dim tensor)


@pytest.mark.native
def test_a_subclass_reporting_fewer_dims_than_sizes_is_recorded_opaque_when_sizes_exceed_the_room():
    from torchscope.count import decode_args

    x = _sizes_subclass(1, [1] * 40000)(torch.randn(2))  # dim() says 1, sizes() has 40000
    trace = profile_summary(_AddHalf(), x, verbose=0, warmup=0, iters=1)._trace
    names = [trace.names[i] for i in trace.ops[:, OPC["name"]]]
    add = trace.ops[names.index("aten::add")]
    assert add[OPC["args_len"]] < 100
    assert decode_args(trace.args, add[OPC["args_off"]], add[OPC["args_len"]])[0].shape is None
