"""JSON round trip, CSV, Chrome trace and op drill-down (torchscope.export)."""
import csv
import io
import json

import pytest
import torch
from torch import nn

from torchscope import export, profile_summary
from torchscope.models import SmallResNet, TransformerBlock


@pytest.fixture(scope="module")
def resnet_summary():
    torch.manual_seed(0)
    return profile_summary(SmallResNet(), torch.randn(2, 3, 16, 16), verbose=0, iters=2)


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


# ------------------------------------------------------------------------- JSON
def test_json_round_trip_prints_the_same_table(resnet_summary, tmp_path):
    s = resnet_summary
    path = tmp_path / "s.json"
    export.to_json(s, path)
    loaded = export.from_json(str(path))
    assert str(loaded) == str(s)
    assert loaded.table(depth=1) == s.table(depth=1)
    assert loaded.table(ascii_only=True) == s.table(ascii_only=True)
    assert (loaded.total_params, loaded.total_macs, loaded.peak_memory) == (s.total_params, s.total_macs,
                                                                              s.peak_memory)
    r, r0 = loaded.row("layer1.0.conv1"), s.row("layer1.0.conv1")
    assert r.output_shapes == torch.Size([2, 32, 16, 16]) and isinstance(r.output_shapes, torch.Size)
    assert r.input_shapes == r0.input_shapes == (torch.Size([2, 32, 16, 16]),)
    assert (r.params, r.macs, r.fwd_time_ns, r.mem_allocated) == (r0.params, r0.macs, r0.fwd_time_ns,
                                                                  r0.mem_allocated)
    # JSON text works as well as a path, and to_dict() output directly
    assert str(export.from_json(export.to_json(s))) == str(s)
    assert str(export.from_dict(json.loads(json.dumps(s.to_dict())))) == str(s)


@pytest.mark.native  # backward times need the C++ recorder's sequence numbers
def test_json_round_trip_keeps_depth_backward_and_tuple_outputs():
    torch.manual_seed(0)

    class TwoOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 5)

        def forward(self, x):
            return self.a(x), {"b": self.b(x)}

    s = profile_summary(TwoOut(), torch.randn(2, 4), backward=True, depth=0, verbose=0, iters=1,
                        loss_fn=lambda o: o[0].sum() + o[1]["b"].sum())
    loaded = export.from_json(export.to_json(s))
    assert str(loaded) == str(s)
    assert loaded.depth == 0 and "a (Linear)" not in str(loaded)
    assert loaded.rows[0].output_shapes == (torch.Size([2, 3]), {"b": torch.Size([2, 5])})
    assert loaded.rows[1].bwd_time_ns == s.rows[1].bwd_time_ns > 0


def test_json_round_trip_of_a_transformer_block():
    torch.manual_seed(0)
    s = profile_summary(TransformerBlock(), torch.randn(1, 4, 64), verbose=0, iters=1)
    loaded = export.from_json(export.to_json(s))
    assert str(loaded) == str(s)
    assert loaded.uncounted_ops == s.uncounted_ops and loaded.notes == s.notes


def test_from_dict_rejects_unknown_schema_version(resnet_summary):
    d = resnet_summary.to_dict()
    d["schema_version"] = 99
    with pytest.raises(ValueError, match=r"schema_version 99.*reads schema_version 1.*upgrade"):
        export.from_dict(d)
    del d["schema_version"]
    with pytest.raises(ValueError, match="schema_version None"):
        export.from_dict(d)
    with pytest.raises(ValueError, match="not a torchscope summary"):
        export.from_dict({"hello": 1})
    with pytest.raises(ValueError, match="not valid JSON"):
        export.from_json("{not json")


# -------------------------------------------------------------------------- CSV
def test_csv_has_one_row_per_module_call(resnet_summary, tmp_path):
    s = resnet_summary
    text = export.to_csv(s, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0].keys()) == list(export.CSV_COLUMNS)
    for col in ("name", "type", "depth", "params", "trainable_params", "macs", "flops", "fwd_time_ns",
                "mem_allocated", "num_ops", "input_shapes", "output_shapes"):
        assert col in export.CSV_COLUMNS
    assert len(rows) == len(s.rows)
    assert [r["name"] for r in rows] == [r.name for r in s.rows]
    conv = next(r for r in rows if r["name"] == "layer1.0.conv1")
    assert (conv["type"], conv["depth"], conv["params"]) == ("Conv2d", "3", "9216")
    assert int(conv["macs"]) == s.row("layer1.0.conv1").macs and int(conv["flops"]) == 2 * int(conv["macs"])
    assert conv["output_shapes"] == "[2, 32, 16, 16]" and conv["input_shapes"] == "([2, 32, 16, 16])"
    assert float(conv["fwd_time_ns"]) > 0 and conv["bwd_time_ns"] == ""  # not measured: empty cell
    # the loaded summary writes the same CSV
    assert export.to_csv(export.from_json(export.to_json(s))) == text


# ------------------------------------------------------------------ Chrome trace
def _check_nesting(events):
    """Complete events on one thread must nest (no partial overlap)."""
    by_tid = {}
    for e in events:
        by_tid.setdefault(e["tid"], []).append(e)
    for evs in by_tid.values():
        stack = []
        for e in sorted(evs, key=lambda e: (e["ts"], -e["dur"])):
            start, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1][1] <= start + 1e-6:
                stack.pop()
            if stack:
                assert end <= stack[-1][1] + 1e-3, (e, stack[-1])
            stack.append((start, end, e["name"]))


@pytest.mark.native
def test_chrome_trace_is_loadable_and_ranges_nest(tmp_path):
    torch.manual_seed(0)
    s = profile_summary(mlp(), torch.randn(2, 8), backward=True, verbose=0, iters=2)
    path = tmp_path / "trace.json"
    export.to_chrome_trace(s, path)
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    xs = [e for e in events if e["ph"] == "X"]
    assert {e["pid"] for e in events} == {1}
    for e in xs:
        assert isinstance(e["ts"], (int, float)) and e["dur"] >= 0 and isinstance(e["tid"], int)
    cats = {e["cat"] for e in xs}
    assert {"module", "op", "backward", "iteration"} <= cats
    modules = [e for e in xs if e["cat"] == "module"]
    measured = s._trace.calls[:, export._cols()[1]["iter"]] >= 0  # the recorded warm-up pass is not shown
    assert len(modules) == measured.sum() == 2 * len(s.rows)  # every call of both measured iterations
    assert len(s._trace.calls) == 3 * len(s.rows) and all(e["args"]["iter"] >= 0 for e in xs if "iter" in e["args"])
    assert [m["name"] for m in modules if m["args"]["iter"] == 0] == [r.name for r in s.rows]
    names = {e["name"] for e in xs}
    assert "aten::linear" in names and any("Backward" in n for n in names)
    _check_nesting(xs)
    by_call = {m["args"]["call_id"]: m for m in modules}
    inside = 0
    for e in xs:
        cid = e["args"].get("call_id")
        if e["cat"] == "op" and cid is not None:
            m = by_call[cid]
            if m["tid"] == e["tid"]:
                assert m["ts"] <= e["ts"] and e["ts"] + e["dur"] <= m["ts"] + m["dur"] + 1e-3
                assert e["args"]["module"] == m["name"]
                inside += 1
    assert inside >= 6  # linear/relu/linear of two iterations at least
    # thread names for every thread that has events
    named = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {e["tid"] for e in xs} <= named
    # iteration ranges, one per measured pass, containing that pass's module calls
    its = sorted((e for e in xs if e["cat"] == "iteration"), key=lambda e: e["ts"])
    assert len(its) == 2 and its[0]["ts"] + its[0]["dur"] <= its[1]["ts"]


def test_chrome_trace_refuses_a_summary_loaded_from_json(resnet_summary, tmp_path):
    loaded = export.from_json(export.to_json(resnet_summary))
    with pytest.raises(ValueError, match="loaded from JSON"):
        export.to_chrome_trace(loaded, tmp_path / "t.json")
    with pytest.raises(ValueError, match="raw recording"):
        export.op_rows(loaded, "fc")


# ------------------------------------------------------------------ op drill-down
def test_op_rows_of_a_linear():
    s = profile_summary(mlp(), torch.randn(2, 8), verbose=0, iters=1)
    rows = export.op_rows(s, "0")
    assert sum(r.macs for r in rows) == s.row("0").macs == 2 * 8 * 16
    mm = [r for r in rows if r.name in ("aten::linear", "aten::addmm")]
    assert mm, rows
    r = mm[0]
    if r.name == "aten::linear":  # outermost op only: its addmm child is inside it, not listed again
        assert all(x.name not in ("aten::addmm", "aten::t") for x in rows)
    assert r.calls == 1 and r.macs == 256 and r.total_time_ns > 0 and r.mean_time_ns == r.total_time_ns
    shapes = [sh for sh in r.input_shapes if sh]
    assert [2, 8] in shapes and ([16, 8] in shapes or [8, 16] in shapes)
    relu = export.op_rows(s, "1")
    assert relu and all(x.macs == 0 for x in relu) and any("relu" in x.name for x in relu)
    text = export.format_op_rows(rows, title="ops of 0")
    assert "ops of 0" in text and r.name in text and "256" in text
    with pytest.raises(KeyError, match="no module named 'O'"):
        export.op_rows(s, "O")


def test_op_rows_aggregate_repeated_calls_and_children():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            return self.lin(self.lin(x))

    torch.manual_seed(0)
    s = profile_summary(Twice(), torch.randn(3, 8), verbose=0, iters=1)
    rows = export.op_rows(s, "lin")
    assert sum(r.calls for r in rows if r.macs) == 2  # both calls, one group (same shapes)
    assert sum(r.macs for r in rows) == 2 * 3 * 8 * 8
    assert len([r for r in rows if r.macs]) == 1
    assert export.op_rows(s, "Twice") == [] or sum(r.macs for r in export.op_rows(s, "Twice")) == 0
    everything = export.op_rows(s, "Twice", include_children=True)
    assert sum(r.macs for r in everything) == s.total_macs == 2 * 3 * 8 * 8


def test_op_rows_totals_match_the_module_in_a_resnet(resnet_summary):
    s = resnet_summary
    for name in ("layer1.0.conv1", "fc", "down"):
        assert sum(r.macs for r in export.op_rows(s, name)) == s.row(name).macs
    assert sum(r.macs for r in export.op_rows(s, "layer1", include_children=True)) == s.row("layer1").macs


def test_json_is_strict_and_round_trips_weight_stats_and_empty_shapes():
    import json

    import torch
    from torch import nn

    import torchscope

    class Kw(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)

        def forward(self, x=None):
            return {"out": self.l(x), "empty": ()}

    s = torchscope.profile_summary(Kw(), {"x": torch.randn(2, 4)}, verbose=0, weight_stats=True)
    text = json.dumps(s.to_dict(), allow_nan=False)  # no NaN: strict JSON parsers read it
    back = torchscope.from_json(text)
    assert back.to_csv() == s.to_csv()
    cols = ["input_shape", "output_shape", "params", "w_mean", "w_std"]
    assert back.table(columns=cols).splitlines()[:6] == s.table(columns=cols).splitlines()[:6]
    assert s.to_dict()["rows"][0]["w_mean"] is None       # Kw has no own parameters: null, not NaN
    lin = nn.Linear(4, 3)
    root = torchscope.profile_summary(lin, torch.randn(2, 4), verbose=0, weight_stats=True)
    own = torch.cat([p.detach().flatten() for p in lin.parameters()])
    assert abs(root.rows[0].w_mean - float(own.mean())) < 1e-6  # the root row's own weights


@pytest.mark.parametrize("kw", [{"style": "keras"}, {"style": "lightning"}, {"style": "torchsummary"},
                                {"style": "pms", "show_hierarchical": True},
                                {"col_names": ["input_size", "output_size", "num_params", "mult_adds"],
                                 "depth": 1, "row_settings": ["var_names", "depth"]}],
                         ids=["keras", "lightning", "torchsummary", "pms", "torchinfo-options"])
def test_summary_layouts_survive_json(kw):
    import re

    from torch import nn

    import torchscope

    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    s = torchscope.summary(m, input_size=(2, 4), verbose=0, **kw)
    loaded = torchscope.from_json(s.to_json())
    times = re.compile(r"[\d.]+ ?(µs|ms|ns|s)\b")  # times are the same numbers, rounding aside
    assert times.sub("T", str(loaded)) == times.sub("T", str(s))
    assert loaded._repr_html_() == s._repr_html_()


@pytest.mark.parametrize("style", ["tree", "lightning"])
def test_modules_no_call_reached_survive_json(style):
    import json

    from torch import nn

    import torchscope

    class AutoEncoder(nn.Module):  # the decoder is never called by forward
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(8, 4), nn.ReLU())
            self.decoder = nn.Linear(4, 8)

        def forward(self, x):
            return self.encoder(x)

    s = torchscope.summary(AutoEncoder(), input_size=(2, 8), style=style, verbose=0)
    text = str(s)
    decoder = next(ln for ln in text.splitlines() if "decoder" in ln)
    assert "[not called]" in decoder if style == "tree" else decoder.split()[:7] == ["1", "|", "decoder", "|",
                                                                                    "Linear", "|", "40"]
    loaded = torchscope.from_json(s.to_json())
    assert str(loaded) == text
    old = json.loads(s.to_json())
    del old["modules"]  # a file written before the module table: the called modules only, no error
    assert "decoder" not in str(torchscope.from_json(json.dumps(old)))
