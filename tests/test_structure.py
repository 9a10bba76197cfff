"""The module walk, parameter statistics and shape log (C in modules.cpp, twins in _pyrecorder.py)
against torch's own answers: named_modules(), parameters(), and shapes seen by forward hooks."""
import numpy as np
import pytest
import torch
from torch import nn

import torchscope
from torchscope import _pyrecorder, capture, count
from torchscope._ext import C


class Tricky(nn.Module):
    """Shared child, a None child, nested containers, a tied weight, buffers, mixed dtypes, frozen params, a generator held twice."""

    def __init__(self):
        super().__init__()
        shared = nn.Linear(4, 4)
        self.a = nn.Sequential(shared, nn.ReLU(), nn.Sequential(nn.Linear(4, 4), shared))
        self.register_module("missing", None)
        self.blocks = nn.ModuleDict({"conv": nn.Conv2d(1, 2, (3, 1)), "bn": nn.BatchNorm1d(4)})
        self.head = nn.Linear(4, 4, bias=False)
        self.tail = nn.Linear(4, 4, bias=False)
        self.tail.weight = self.head.weight  # tied
        self.half = nn.Linear(4, 2).half()
        self.frozen = nn.Linear(4, 3)
        self.frozen.weight.requires_grad_(False)
        self.register_buffer("scale", torch.ones(5))
        self.register_buffer("nothing", None)
        self.gen = torch.Generator()  # held by two modules: one generator
        self.head.gen = self.gen


def _both(fn_name, *args):
    return getattr(C, fn_name)(*args), getattr(_pyrecorder, fn_name)(*args)


def test_walk_matches_named_modules_and_the_python_twin():
    m = Tricky()
    native, twin = _both("walk_modules", m, torch.jit.ScriptModule, torch.Generator)
    expected = list(m.named_modules())
    assert native["names"] == [n for n, _ in expected] == twin["names"]
    assert all(a is b for a, (_, b) in zip(native["modules"], expected))
    assert native["types"] == [type(x).__name__ for _, x in expected] == twin["types"]
    for key in ("parent", "depth", "region"):
        np.testing.assert_array_equal(native[key], twin[key])
    names = native["names"]
    parent = native["parent"].tolist()
    for i, n in enumerate(names[1:], 1):  # the parent of "a.2.1" is "a.2", and so on
        assert names[parent[i]] == n.rpartition(".")[0]
        assert native["depth"][i] == n.count(".") + 1
    assert native["kernel_size"][names.index("blocks.conv")] == (3, 1)
    assert [id(b) for b in native["buffers"]] == [id(b) for b in twin["buffers"]]
    assert len(native["buffers"]) == 4  # scale + BatchNorm's three (None skipped)
    assert [id(g) for g in native["generators"]] == [id(g) for g in twin["generators"]] == [id(m.gen)]


def test_walk_marks_scripted_modules():
    m = nn.Sequential(nn.Linear(2, 2), torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU())))
    native, twin = _both("walk_modules", m, torch.jit.ScriptModule, torch.Generator)
    np.testing.assert_array_equal(native["region"], twin["region"])
    assert native["region"].tolist()[:3] == [0, 0, 3]
    index = capture.module_index(m)
    assert index.regions[2] == "scripted" and all(index.opaque[3:]) and not any(index.opaque[:3])


def test_scripted_modules_parameters_and_buffers_are_counted():
    """A ScriptModule keeps _parameters/_buffers in mapping wrappers, not dicts: still read."""
    m = nn.Sequential(torch.jit.script(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))), nn.Linear(8, 2))
    mods = list(dict(m.named_modules()).values())
    native, twin = _both("tensor_stats", mods, torch.nn.parameter.UninitializedTensorMixin)
    for key in ("own_params", "own_trainable", "buffer_elems"):
        np.testing.assert_array_equal(native[key], twin[key])
    assert native["own_params"].sum() == sum(p.numel() for p in m.parameters()) == 4 * 8 + 8 + 2 * 8 + 8 * 2 + 2
    assert native["buffer_bytes"] == sum(b.numel() * b.element_size() for b in m.buffers())
    walk = C.walk_modules(m, torch.jit.ScriptModule, torch.Generator)
    assert [id(b) for b in walk["buffers"]] == [id(b) for b in m.buffers()]
    s = torchscope.profile_summary(m, torch.randn(3, 4), verbose=0)
    assert s.total_params == 74 and s.rows[1].params == 56 and s.rows[1].buffers == 8 + 8 + 1
    assert torchscope.profile_summary(torch.jit.script(nn.Linear(4, 2)), torch.randn(3, 4), verbose=0).total_params == 10


def test_tensor_stats_count_each_parameter_once_and_match_the_python_twin():
    m = Tricky()
    native, twin = _both("tensor_stats", list(dict(m.named_modules()).values()),
                         torch.nn.parameter.UninitializedTensorMixin)
    for key in ("own_params", "own_trainable", "buffer_elems"):
        np.testing.assert_array_equal(native[key], twin[key])
    for key in ("shared", "param_bytes", "buffer_bytes", "param_bytes_by_dtype", "uninitialized"):
        assert native[key] == twin[key], key
    params = list(m.parameters())  # torch's own de-duplicated list
    assert native["own_params"].sum() == sum(p.numel() for p in params)
    assert native["own_trainable"].sum() == sum(p.numel() for p in params if p.requires_grad)
    assert native["param_bytes"] == sum(p.numel() * p.element_size() for p in params)
    assert native["param_bytes_by_dtype"] == {torch.float32: sum(p.numel() * 4 for p in params if p.dtype == torch.float32),
                                              torch.float16: (4 * 2 + 2) * 2}
    assert native["shared"]
    assert native["buffer_bytes"] == sum(b.numel() * b.element_size() for b in m.buffers())


def test_tensor_counts_rows_and_totals():
    m = Tricky()
    index = capture.module_index(m)
    tc = count.tensor_counts(index)
    for i, mod in enumerate(index.modules):  # a row counts every parameter its module uses
        assert tc.params[i] == sum(p.numel() for p in mod.parameters()), index.names[i]
        assert tc.buffers[i] == sum(b.numel() for b in mod.buffers()), index.names[i]
    assert tc.own.sum() == sum(p.numel() for p in m.parameters())
    assert tc.param_bytes_by_dtype == {"float32": tc.param_bytes - 20, "float16": 20}


def test_lazy_module_before_its_first_call_is_an_error_not_zero():
    m = nn.Sequential(nn.LazyLinear(3))
    with pytest.raises(ValueError, match=r"'0' \(LazyLinear\).*uninitialized"):
        count.tensor_counts(capture.module_index(m))
    s = torchscope.profile_summary(m, torch.randn(2, 5), verbose=0)  # the pass materialises it
    assert s.total_params == 5 * 3 + 3


class Shapes(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Inner()

    def forward(self, x):
        out = {}
        for _ in range(3):  # identical calls: one interned signature
            out = self.inner(x, [x, x[:1]], 7, scale=x.sum(0), name="n")
        return out


class Inner(nn.Module):
    def forward(self, x, pair, k, scale=None, name=None):
        return {"y": x * scale, "parts": (pair[1], None)}


def test_shape_log_matches_what_forward_hooks_see():
    m = Shapes()
    x = torch.randn(3, 2)
    s = torchscope.profile_summary(m, x, verbose=0)
    rows = {r.name: r for r in s.rows}
    inner = [r for r in s.rows if r.type == "Inner"]
    assert len(inner) == 3
    for r in inner:
        pos, kw = r.input_shapes
        assert pos == (torch.Size([3, 2]), (torch.Size([3, 2]), torch.Size([1, 2])), None)
        assert kw == {"scale": torch.Size([2]), "name": None}
        assert r.output_shapes == {"y": torch.Size([3, 2]), "parts": (torch.Size([1, 2]), None)}
    assert rows["Shapes"].input_shapes == (torch.Size([3, 2]),)
    assert s._trace.shape_signatures and len(s._trace.shape_signatures) == 2  # root + Inner


def test_input_shapes_are_what_reached_forward_even_if_forward_changes_them():
    class Grows(nn.Module):
        def forward(self, x, seen):
            seen.append(x)  # a list input that forward appends to
            return x.unsqueeze_(0) * 2  # an input reshaped in place

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.grows = Grows()

        def forward(self, x):
            inner = self.grows(x, [])
            return self.grows(inner[0], [inner]) + 1  # nested inside: a second, different call

    s = torchscope.profile_summary(Outer(), torch.randn(3, 4), verbose=0)
    rows = [r for r in s.rows if r.type == "Grows"]
    assert [r.input_shapes for r in rows] == [
        (torch.Size([3, 4]), ()),
        (torch.Size([3, 4]), (torch.Size([1, 3, 4]),)),
    ]
    assert [r.output_shapes for r in rows] == [torch.Size([1, 3, 4])] * 2
    assert s.rows[0].input_shapes == (torch.Size([3, 4]),)  # the root's input, as passed


def test_nested_tensor_output_has_no_shape_and_no_crash():
    class Nest(nn.Module):
        def forward(self, x):
            return torch.nested.nested_tensor([x[0], x[1, :1]])

    s = torchscope.profile_summary(nn.Sequential(Nest()), torch.randn(2, 3), verbose=0)
    assert s.rows[1].output_shapes is None
    assert s.rows[1].input_shapes == (torch.Size([2, 3]),)


def _grid(columns, sep, end):
    return [(t, cells, np.asarray(inv, dtype=np.int64), w, left) for t, cells, inv, w, left in columns], sep, end


@pytest.mark.parametrize("sep,end", [("  ", ""), (" | ", " |"), ("", "")])
def test_pad_rows_matches_str_padding_and_the_python_twin(sep, end):
    # ASCII, Latin-1 (µs), two-byte (box drawing) and four-byte (emoji) cells; a cell wider
    # than its column is never cut.
    columns = [("Layer", ["a", "naïve", "层"], [0, 1, 2, 0], 8, True),
               ("Time", ["1.2 µs", "3 ms", "🙂x"], [0, 1, 2, 1], 7, False),
               ("Wide", ["too wide for it"], [0, 0, 0, 0], 4, False)]
    args = _grid(columns, sep, end)
    got, twin = C.pad_rows(*args), _pyrecorder.pad_rows(*args)
    want = [sep.join(just(t if line == 0 else cells[inv[line - 1]], w)
                     for t, cells, inv, w, left in columns
                     for just in [str.ljust if left else str.rjust]) + end for line in range(5)]
    assert got == want == twin
    assert [len(line) for line in got] == [len(w) for w in want]
    assert {hash(g) for g in got} == {hash(w) for w in want}  # canonical strings: dicts and sets work


def test_pad_rows_rejects_bad_indices_and_cells():
    with pytest.raises(IndexError, match="column 'A' line 2"):
        C.pad_rows(*_grid([("A", ["x"], [0, 1], 3, True)], " ", ""))
    with pytest.raises(TypeError, match="not a str"):
        C.pad_rows(*_grid([("A", ["x", 3], [0], 3, True)], " ", ""))
    with pytest.raises(ValueError, match="differ in length"):
        C.pad_rows(*_grid([("A", ["x"], [0], 3, True), ("B", ["y"], [0, 0], 3, True)], " ", ""))


@pytest.mark.parametrize("values", [
    np.array([3.0, 1.0, 3.0, np.nan, -0.0, 0.0, np.nan, 1.0, 2.5e9]),
    np.array([5, 5, 2, -1, 2, 7, 2**62], dtype=np.int64),
    np.array([7, 7, 7], dtype=np.int32),
    np.random.default_rng(0).integers(0, 50, 1000),
    np.array([], dtype=np.float64),
])
def test_factorize_groups_like_np_unique_in_order_of_first_appearance(values):
    uniq, first, inv = C.factorize(values)
    twin = _pyrecorder.factorize(values)
    for a, b in zip((uniq, first, inv), twin):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(uniq[inv], np.where(values == 0, 0, values))  # every element maps back
    np.testing.assert_array_equal(values[first], uniq)
    assert np.all(np.diff(first) > 0)  # first appearances, in order
    ref = np.unique(values)
    assert len(uniq) == len(ref) and np.array_equal(np.sort(uniq), ref, equal_nan=True)


def test_factorize_rejects_what_it_cannot_hash():
    with pytest.raises(TypeError, match="dtype kind 'O'"):
        C.factorize(np.array(["a", None], dtype=object))
    with pytest.raises(ValueError, match="one-dimensional"):
        C.factorize(np.zeros((2, 2)))


class CreatesOnFirstCall(nn.Module):
    """Registers its weight during its first forward (a hand-rolled lazy module)."""

    def forward(self, x):
        if not hasattr(self, "w"):
            self.w = nn.Parameter(torch.ones(x.shape[-1], 3))
        return x @ self.w


def _stats_equal(a, b):
    for key in ("own_params", "own_trainable", "buffer_elems"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in ("shared", "param_bytes", "buffer_bytes", "param_bytes_by_dtype", "uninitialized"):
        assert a[key] == b[key], key


@pytest.mark.parametrize("case", ["tricky", "lazy", "created in forward", "uncalled", "meta copies"])
def test_parameters_counted_during_the_pass_equal_a_count_after_it(case):
    """The markers count each module's tensors at the end of its first call (capture.Trace.tensor_stats):
    the same numbers as one walk over the model after the pass, whatever the model does."""
    if case == "tricky":
        tricky = Tricky()
        m = nn.Sequential(tricky.a, tricky.blocks["bn"], tricky.head, tricky.tail, nn.Linear(4, 4).half().float())
        run, x = None, torch.randn(3, 4)
    elif case == "lazy":
        m, run, x = nn.Sequential(nn.LazyLinear(5), nn.ReLU(), nn.LazyBatchNorm1d()), None, torch.randn(3, 4)
    elif case == "created in forward":
        m, run, x = nn.Sequential(nn.Linear(4, 4), CreatesOnFirstCall()), None, torch.randn(3, 4)
    elif case == "uncalled":
        m = nn.ModuleDict({"used": nn.Linear(4, 4), "spare": nn.Linear(4, 9)})
        run, x = (lambda: m["used"](torch.randn(3, 4))), None
    else:  # profile_summary(device="meta") on a model with real weights: functional_call swaps tensors in
        m, run, x = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), None, torch.randn(3, 4)
    if case == "meta copies":
        s = torchscope.profile_summary(m, x, device="meta", verbose=0)
        assert s.total_params == sum(p.numel() for p in m.parameters()) == 20 + 8 + 10
        return
    trace = capture.capture(m, run or (lambda: m(x)), warmup=0, iters=1)
    after = C.tensor_stats(trace.index.modules, torch.nn.parameter.UninitializedTensorMixin)
    _stats_equal(trace.tensor_stats, after)
    assert trace.tensor_stats["own_params"].sum() == sum(p.numel() for p in m.parameters())
    s = torchscope.profile_summary(m, x, verbose=0) if run is None else None
    if s is not None:
        assert s.total_params == sum(p.numel() for p in m.parameters())


@pytest.mark.native
def test_markers_count_a_module_at_its_call_and_the_rest_after_the_pass():
    """White box: what the pass counted is not read again (a parameter replaced afterwards is not seen),
    and a module no call reached is read at finish_tensor_stats."""
    m = nn.ModuleDict({"used": nn.Linear(4, 4), "spare": nn.Linear(4, 9)})
    index = capture.module_index(m)
    i_used, i_spare = index.names.index("used"), index.names.index("spare")
    C.begin_tensor_stats(index.modules, torch.nn.parameter.UninitializedTensorMixin)
    saved = capture._install_markers(index.modules)
    try:
        m["used"](torch.randn(2, 4))
    finally:
        C.pause_tensor_stats()
        capture._restore_markers(index.modules, saved)
    m["used"].bias = nn.Parameter(torch.zeros(100))  # after the call: not what the pass saw
    m["spare"].bias = nn.Parameter(torch.zeros(50))
    s = C.finish_tensor_stats(index.modules)
    assert s["own_params"][i_used] == 4 * 4 + 4
    assert s["own_params"][i_spare] == 4 * 9 + 50
    with pytest.raises(RuntimeError, match="no counting begun"):
        C.finish_tensor_stats(index.modules)


@pytest.mark.native
def test_a_marker_kept_past_its_profile_neither_dangles_nor_counts_into_another():
    """A forward stored away during a profile (the marker) may outlive the module and be called
    during a later profile of another model: it holds its module, and counts nothing there."""
    import gc
    import weakref

    old = nn.Sequential(nn.Linear(4, 4))
    index = capture.module_index(old)
    saved = capture._install_markers(index.modules)
    kept = old[0].forward  # the marker
    capture._restore_markers(index.modules, saved)
    alive = weakref.ref(old[0])
    del old, index, saved
    gc.collect()
    assert alive() is not None  # the marker keeps its module: calling it is safe
    new = nn.Sequential(nn.Linear(4, 2))
    trace = capture.capture(new, lambda: (kept(torch.randn(1, 4)), new(torch.randn(3, 4)))[1], warmup=0, iters=1)
    _stats_equal(trace.tensor_stats, C.tensor_stats(trace.index.modules, torch.nn.parameter.UninitializedTensorMixin))
    assert trace.tensor_stats["own_params"].sum() == 4 * 2 + 2


def test_a_failed_profile_keeps_no_reference_to_the_model():
    import gc
    import weakref

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    m = nn.Sequential(nn.Linear(4, 4), Boom())
    alive = weakref.ref(m)
    with pytest.raises(torchscope.ProfileError):
        torchscope.profile_summary(m, torch.randn(2, 4), verbose=0)
    del m
    gc.collect()
    assert alive() is None
