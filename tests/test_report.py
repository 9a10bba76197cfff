"""The summary object, its table and JSON, and the CLI's default job."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from torchscope import ProfileSummary, profile_summary
from torchscope._ext import C
from torchscope.models import SmallResNet


class Weird(torch.nn.Module):
    """A module name that HTML must escape."""

    def __init__(self):
        super().__init__()
        self.add_module("a<b>", torch.nn.Linear(2, 2))

    def forward(self, x):
        return getattr(self, "a<b>")(x)


def test_table_shows_tree_and_columns(seed, capsys):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=1)
    printed = capsys.readouterr().out
    assert isinstance(s, ProfileSummary)
    text = str(s)
    assert printed.strip() == text.strip()
    for col in ("Layer (type)", "Output Shape", "Params", "MACs", "Self CPU", "CPU total",
                "Mem alloc", "Mem retained", "Ops"):
        assert col in text
    assert "conv1 (Conv2d)" in text and "[2, 10]" in text
    assert f"Total params: {s.total_params:,}" in text
    assert "      conv1 (Conv2d)" in text  # indented by depth


def test_depth_limits_rows(seed):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=0)
    shallow = s.table(depth=1)
    assert "stem (Sequential)" in shallow and "conv1 (Conv2d)" not in shallow


def test_rows_have_contract_fields(seed):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=0)
    r = s.row("layer1.0.conv1")
    assert (r.type, r.depth, r.params, r.trainable_params) == ("Conv2d", 3, 9216, 9216)
    assert r.output_shapes == torch.Size([2, 32, 16, 16])
    assert r.input_shapes == (torch.Size([2, 32, 16, 16]),)
    assert r.fwd_time_ns > 0 and r.fwd_self_time_ns > 0
    assert r.bwd_time_ns is None and r.fwd_device_time_ns is None  # not measured here
    assert r.flops == 2 * r.macs
    assert [x.name for x in s.rows][:3] == ["SmallResNet", "stem", "stem.0"]


def test_to_dict_is_json_safe_and_versioned(seed):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=0)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["schema_version"] == 1
    assert d["total_params"] == s.total_params and len(d["rows"]) == len(s.rows)
    assert d["meta"]["torch_version"] == torch.__version__
    assert d["rows"][1]["output_shapes"] == [2, 32, 16, 16]


def test_cli_default_job_prints_table():
    r = subprocess.run([sys.executable, "-m", "torchscope", "--iters", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "SmallResNet" in r.stdout and "Total params: 205,162" in r.stdout


@pytest.mark.native
def test_backward_columns_and_round_trip(seed, tmp_path):
    from torchscope import from_json

    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), backward=True, warmup=0, iters=1, verbose=0)
    text = str(s)
    assert "Bwd self" in text and "Bwd total" in text and "Backward pass time" in text
    path = tmp_path / "s.json"
    s.to_json(str(path))
    loaded = from_json(str(path))
    assert str(loaded) == text


def test_html_repr_escapes_and_lists_rows(seed):
    html = profile_summary(Weird(), torch.randn(1, 2), verbose=0)._repr_html_()
    assert "<table>" in html and "a&lt;b&gt;" in html and "a<b>" not in html and "Linear" in html


def test_ops_drill_down_delegate(seed):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=0)
    ops = s.ops("layer1.0.conv1")
    assert ops and sum(getattr(o, "macs", None) if not isinstance(o, dict) else o["macs"] for o in ops) == \
        s.row("layer1.0.conv1").macs


def test_table_options_sort_top_columns_width(seed):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=0)
    top = s.table(sort="macs", top=3).splitlines()
    body = top[3:6]
    macs = [r.macs for r in sorted(s.rows, key=lambda r: -r.macs)[:3]]
    assert body[0].startswith("SmallResNet") and len(macs) == 3
    assert s.table(sort="params", top=2).count("(") >= 2
    cols = s.table(columns=["params", "kernel_size", "buffers"], depth=1)
    assert "Kernel" in cols and "Buffers" in cols and "Self CPU" not in cols and "[3, 3]" in cols
    narrow = s.table(max_width=70, depth=1)
    assert "Columns hidden to fit 70" in narrow
    assert max(len(l) for l in narrow.splitlines()[:12]) <= 70
    import pytest
    with pytest.raises(ValueError, match="unknown table column"):
        s.table(columns=["nope"])
    with pytest.raises(ValueError, match="sort"):
        s.table(sort="nope")
    for bad in (0, -5, 70.5, True, "70"):  # a width in characters, or none
        with pytest.raises(ValueError, match=r"max_width=.*positive integer"):
            s.table(max_width=bad)


def test_metadata_and_bytes_by_dtype(seed):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=0)
    meta = s.to_dict()["meta"]
    assert meta["dtype"] == "float32" and meta["batch_size"] == 2 and meta["iters"] == 3 and meta["date"]
    assert s.param_bytes_by_dtype == {"float32": 205162 * 4}
    assert s.row("stem.1").buffers == 32 + 32 + 1          # running mean, var, num_batches_tracked
    assert "Params size: 801.41 KiB float32" in str(s)


def test_table_columns_styles_and_row_settings_on_a_summary(seed):
    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), warmup=0, iters=1, verbose=0)
    assert str(s) == s.table() == repr(s) and "Estimated" not in str(s)  # the default table is unchanged
    # torchinfo's column names work in every style; so do the new columns
    t = s.table(columns=["num_params", "flops", "trainable", "params_percent", "mode"], depth=1)
    assert t.splitlines()[1].split() == ["Layer", "(type)", "Params", "FLOPs", "Trainable", "Param", "%", "Mode"]
    down = next(ln for ln in t.splitlines() if "down (Conv2d)" in ln)
    assert down.split()[2:] == ["18.50K", "4.72M", "True", "9.02%", "train"]
    # row settings on the default style
    assert "stem (Sequential): 1-1" in s.table(depth=1, row_settings=["depth"])
    assert " *" in s.table() and " *" not in s.table(row_settings=["hide_recursive_layers"])
    assert "═" not in s.table(row_settings=["ascii_only"])
    # torchinfo layout, depth and ascii
    ti = s.table(style="torchinfo", columns=["input_size", "num_params", "mult_adds"], depth=1, ascii_only=True)
    assert "Layer (type:depth-idx)" in ti and "+ Conv2d: 1-3" in ti and "├" not in ti
    assert "Input Shape" in ti and "Mult-Adds" in ti and "2,359,296" in ti and "BatchNorm2d" not in ti
    assert "Input size (MB)" in ti and "Estimated Total Size (MB)" in ti
    layer1 = next(ln for ln in ti.splitlines() if "Sequential: 1-2" in ln)
    assert "37,120" in layer1  # at the depth limit a container shows its children's params
    deeper = s.table(style="torchinfo", depth=2)
    assert next(ln for ln in deeper.splitlines() if "Sequential: 1-2" in ln).split()[-1] == "--"
    # the other layouts
    assert "[-1, 32, 16, 16]" in s.table(style="torchsummary", batch_as=-1)
    assert "(None, 10)" in s.table(style="keras", batch_as=-1)
    pms = s.table(style="pms", depth=1)
    assert "ResidualBlock-4" in pms and "Conv2d-1" in pms and "Tr. Param #" in pms and "Sequential" not in pms
    light = s.table(style="lightning")
    assert light.splitlines()[2].startswith("0 | stem") and "train" in light and "Total params" in light
    tree = s.table(style="tree", depth=1)
    assert tree.splitlines()[3].startswith("SmallResNet(") and "(down): Conv2d(32, 64, kernel_size=(3, 3)" in tree
    with pytest.raises(ValueError, match="style"):
        s.table(style="nope")
    with pytest.raises(ValueError, match="sort"):
        s.table(style="torchinfo", sort="macs")
    with pytest.raises(ValueError, match="row_settings"):
        s.table(row_settings=["bold"])
    with pytest.raises(ValueError, match="depth"):
        s.table(depth=-2)


def test_styles_of_a_loaded_summary(seed):
    from torchscope import from_json

    s = profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), warmup=0, iters=1, verbose=0)
    loaded = from_json(s.to_json())
    for style in ("torchinfo", "torchsummary", "pms", "keras", "lightning", "tree"):  # modes, extra_repr saved
        assert loaded.table(style=style) == s.table(style=style), style
    assert "| train" in loaded.table(style="lightning")
    assert "(down): Conv2d(32, 64, kernel_size=(3, 3), stride=(2, 2)" in loaded.table(style="tree")


def test_html_in_every_style_escapes(seed):
    s = profile_summary(Weird(), torch.randn(1, 2), verbose=0)
    for style in ("torchscope", "torchinfo", "torchsummary", "pms", "keras", "lightning", "tree"):
        s._display = {"style": style, "row_settings": ["var_names"]}
        html = s._repr_html_()
        assert "<table>" in html and "</table>" in html and "Linear" in html, style
        assert "a<b>" not in html and (style in ("torchsummary", "pms") or "a&lt;b&gt;" in html), style
        assert str(s) == s.table(style=style, row_settings=["var_names"])


@pytest.mark.parametrize("backend", ["C", "python twin"])
def test_numeric_cells_format_like_the_python_formatters_at_unit_boundaries(backend):
    from torchscope import _pyrecorder
    from torchscope.report import _round3, fmt_bytes, fmt_count, fmt_time

    number_cells = C.number_cells if backend == "C" else _pyrecorder.number_cells
    kinds = C.NUMBER_KINDS

    def cells(vals, kind, ascii_only=False):
        uniq, inv = number_cells(np.array(vals, dtype=np.int64 if kind == "int" else np.float64), kinds[kind], ascii_only)
        return [uniq[i] for i in np.asarray(inv).tolist()]

    times = [0, 1, 999.4, 999.6, 1000, 1234.5, 1235, 1245, 999_999, 1e6, 2.5e6, 1e9, 3.7e10, -5, 0.5, 1.5]
    want = ["0 ns", "1 ns", "999 ns", "1.0 µs", "1.0 µs", "1.2 µs", "1.2 µs", "1.2 µs", "1.00 ms", "1.00 ms",
            "2.50 ms", "1.00 s", "37.00 s", "-5 ns", "0 ns", "2 ns"]  # 3 digits, halves to even, then the unit
    assert cells(times, "time") == want == [fmt_time(v) for v in _round3(np.array(times)).tolist()]
    assert cells([1500, float("nan")], "time", ascii_only=True) == ["1.5 us", "-"]
    sizes = [0, 1, 1023, 1024, 1536, 2**20 - 1, 2**20, 3 * 2**30, -512, -2048]
    assert cells(sizes, "bytes") == [fmt_bytes(v) for v in sizes]
    assert cells(sizes, "bytes")[-3:] == ["3.00 GiB", "-512 B", "-2.00 KiB"]
    counts = [0, 7, 999, 1000, 4096, 1_234_567, 2.5e9, 1e12, -1500, 316800]
    assert cells(counts, "count") == [fmt_count(v) for v in counts]
    assert cells([0, 12, 600], "int") == ["0", "12", "600"]
    # C's integer paths (3-digit times, whole bytes) against Python's format on many values,
    # halfway cases included (1050 ns is 1.05 us: printf and Python give "1.1 µs")
    rng = np.random.default_rng(0)
    many = np.concatenate([rng.integers(0, 10**12, 5000), rng.integers(0, 10**7, 5000), np.arange(1000, 60000, 10),
                           rng.random(2000) * 1e4, -rng.random(200) * 1e4]).astype(np.float64)
    assert cells(many, "time") == [fmt_time(v) for v in _round3(many).tolist()]
    assert cells(many, "bytes") == [fmt_bytes(v) for v in many.tolist()]
    assert cells(many, "count") == [fmt_count(v) for v in many.tolist()]
    assert cells([1050, 1150, 1250], "time") == ["1.1 µs", "1.1 µs", "1.2 µs"]
    huge = [1e300, -1e300, 1e200]  # (C formats into a fixed buffer: room for any double)
    assert cells(huge, "bytes") == [fmt_bytes(v) for v in huge] and cells(huge, "count") == [fmt_count(v) for v in huge]
    ints, _ = number_cells(np.array([2**53 + 1, -(2**62)], dtype=np.int64), kinds["int"], False)
    assert ints == [str(2**53 + 1), str(-(2**62))]  # integers as they are, not through a double


@pytest.mark.parametrize("backend", ["C", "python twin"])
def test_row_labels_keep_any_module_name(backend):
    """Names with dots, non-ASCII and lone surrogates (legal in Python) label their rows."""
    from torchscope import _pyrecorder

    tree_labels = C.tree_labels if backend == "C" else _pyrecorder.tree_labels
    names = ["", "a.b", "日本.語", "s\udc80.t", "e\U0001F600"]
    types = ["Root", "T", "語", "T\udc81", "E"]
    keep, depth = np.arange(5), np.array([0, 2, 1, 1, 0])
    rep = np.array([False, True, False, False, False])
    assert tree_labels(names, types, keep, depth, rep, False) == [
        " (Root)", "    b (T) *", "  語 (語)", "  t (T\udc81)", "e\U0001F600 (E)"]
    assert tree_labels(names, types, keep, depth, rep, True)[3] == "s\udc80.t (T\udc81)"
    m = torch.nn.Sequential()
    setattr(m, "s\udc80", torch.nn.Sequential(torch.nn.Linear(2, 2)))
    text = str(profile_summary(m, torch.randn(1, 2), verbose=0, warmup=0, iters=1))
    assert "s\udc80 (Sequential)" in text and "  0 (Linear)" in text


def test_tables_drawn_with_the_c_helpers_equal_those_drawn_with_their_python_twins(monkeypatch):
    """Row labels, numeric cells, column dedupe and line assembly in C give, in every style and
    layout option, the same text as the fallback's Python twins."""
    from torchscope import _pyrecorder, report

    s = profile_summary(SmallResNet(), torch.randn(2, 3, 32, 32), backward=True, verbose=0, warmup=0, iters=2)
    layouts = [{}, {"ascii_only": True}, {"sort": "cpu_total"}, {"sort": "params", "top": 3}, {"depth": 1},
               {"columns": ["self_cpu", "mem_peak", "ops", "buffers", "flops_per_s", "bwd_total"]},
               {"row_settings": ["depth"]}, {"max_width": 80}]
    styles = ["torchinfo", "torchsummary", "pms", "keras", "lightning", "tree"]
    cases = [("torchscope", kw) for kw in layouts] + [(st, {}) for st in styles]

    def draw():
        s._tables.clear()
        return [s.table(style=st, **kw) for st, kw in cases]
    with_c = draw()
    for name in ("tree_labels", "number_cells", "pad_rows", "factorize", "factorize_objects", "render_grid"):
        monkeypatch.setattr(report.C, name, getattr(_pyrecorder, name))
    assert draw() == with_c


@pytest.mark.native
def test_objects_factorised_by_identity_in_c_match_the_python_twin():
    from torchscope import _pyrecorder

    a, b, c = torch.Size([1]), torch.Size([1]), None  # a == b but two objects: two cells
    items = [a, b, a, c, b, c, a]
    for keep in ([], [0], [0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [2, 2, 0, 4]):
        keep = np.array(keep, dtype=np.int64)
        got, want = C.factorize_objects(items, keep), _pyrecorder.factorize_objects(items, keep)
        assert [g.tolist() for g in got] == [w.tolist() for w in want], keep
    assert [x.tolist() for x in C.factorize_objects(items, np.array([0, 1, 2]))] == [[0, 1], [0, 1, 0]]
    with pytest.raises(IndexError):
        C.factorize_objects(items, np.array([7]))


@pytest.mark.native
def test_table_body_rendered_in_c_matches_the_python_twin():
    """C.render_grid (numbers formatted straight into the lines, marks, widths, dropped columns) gives
    the text of its twin, which builds the cells and lines as the other layouts do."""
    from torchscope import _pyrecorder

    k = C.NUMBER_KINDS
    rng = np.random.default_rng(1)
    n = 40
    times = np.concatenate([[np.nan, 0.0, 1050.0, 999.6], rng.random(n - 4) * 10.0 ** rng.integers(0, 11, n - 4)])
    counts = rng.integers(0, 10**9, n).astype(np.int64)
    counts[:3] = 0
    marks = rng.integers(0, 3, n).astype(np.uint8)  # lower bound (+) and unknown (?) rows
    shared = np.where(rng.random(n) < 0.3, 3, 0).astype(np.uint8)
    labels = [f"{'  ' * (i % 3)}m{i} (Typ)" for i in range(n)]
    labels[5] = "日本 (語)"
    labels[6] = "s\udc80 (T)"  # a lone surrogate, legal in a Python str
    columns = [("Layer (type)", True, -1, labels, np.arange(n)),
               ("Shape", False, -1, ["[4, 32]", "(ü)", "-"], rng.integers(0, 3, n)),
               ("Params", False, k["count"], counts, shared),
               ("MACs", False, k["count"], counts.astype(np.float64), marks),
               ("Self CPU", False, k["time"], times, None),
               ("Mem", False, k["bytes"], rng.integers(-4096, 2**31, n).astype(np.float64), None),
               ("Ops", False, k["int"], rng.integers(0, 700, n), None)]
    full = C.render_grid(columns, None, "  ", False, 0)
    assert full[3] == len(columns) and "?" in full[1] and "(shared)" in full[1] and "+" in full[1] and "µs" in full[1]
    for ascii_only in (False, True):
        for max_width in (0, full[2], full[2] - 1, 60, 5):
            got = C.render_grid(columns, None, "  ", ascii_only, max_width)
            assert got == _pyrecorder.render_grid(columns, None, "  ", ascii_only, max_width), (ascii_only, max_width)
            title, body, width, kept = got
            assert len(title) == width and all(len(line) == width for line in body.split("\n"))
            assert len(body.split("\n")) == n and ("µs" in body) == (not ascii_only and kept > 4)
            assert kept == len(columns) if max_width in (0, full[2]) else (width <= max_width or kept == 2)
    empty = [(t, left, kind, data[:0], None if index is None else index[:0]) for t, left, kind, data, index in columns]
    empty[0] = ("Layer (type)", True, -1, [], np.zeros(0, dtype=np.int64))
    empty[1] = ("Shape", False, -1, [], np.zeros(0, dtype=np.int64))
    assert C.render_grid(empty, None, "  ", False, 0) == _pyrecorder.render_grid(empty, None, "  ", False, 0)
    with pytest.raises(ValueError, match="differ in length"):
        C.render_grid([columns[0], ("Ops", False, k["int"], np.arange(3), None)], None, "  ", False, 0)
    with pytest.raises(IndexError, match="refers to cell"):
        C.render_grid([("L", True, -1, ["a"], np.array([1]))], None, "  ", False, 0)
    with pytest.raises(ValueError, match="unknown mark"):
        C.render_grid([("P", False, k["count"], np.ones(2), np.array([0, 7], dtype=np.uint8))], None, "  ", False, 0)
    with pytest.raises(TypeError):
        C.render_grid([("P", False, k["int"], np.ones(2), None)], None, "  ", False, 0)  # int kind: int64 only
    # keep: the numbers and marks of some rows, in any order (cells columns are per kept row already)
    keep = rng.permutation(n)[: n // 2]
    kept_cols = [(t, left, kind, data, index) if kind >= 0 else (t, left, kind, data, np.asarray(index)[keep])
                 for t, left, kind, data, index in columns]
    picked = [(t, left, kind, np.asarray(data)[keep], None if index is None else np.asarray(index)[keep])
              if kind >= 0 else (t, left, kind, data, index) for t, left, kind, data, index in kept_cols]
    assert C.render_grid(kept_cols, keep, "  ", False, 0) == C.render_grid(picked, None, "  ", False, 0) \
        == _pyrecorder.render_grid(kept_cols, keep, "  ", False, 0)
    with pytest.raises(IndexError, match="keep refers past"):
        C.render_grid([("P", False, k["count"], np.ones(2), None)], np.array([2]), "  ", False, 0)


def test_printing_to_a_terminal_fits_its_width_and_a_zero_width_one_is_not_a_limit(monkeypatch):
    import io
    import os
    import shutil
    import sys

    from torchscope.models import tiny_mlp

    s = profile_summary(tiny_mlp(3, 8), torch.randn(2, 8), warmup=0, iters=1, verbose=0)

    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stdout", Tty())
    for columns, hidden in ((60, True), (0, False)):
        monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=None, c=columns: os.terminal_size((c, 24)))
        text = s.table()
        assert ("Columns hidden to fit 60 characters" in text) == hidden, columns
        assert max(map(len, text.splitlines()[:8])) <= 60 or not hidden
