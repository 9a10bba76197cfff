"""Outputs beyond the table: JSON round trip, CSV, Chrome trace, op drill-down.

- to_json / from_dict / from_json: a ProfileSummary survives `to_dict()` -> JSON -> back;
  the loaded summary prints the same table (it has no raw trace: no op drill-down and no
  Chrome trace from it).
- to_csv: one row per module call.
- to_chrome_trace: the raw recording (module ranges and ops, forward and backward) as
  Chrome trace-event JSON, for chrome://tracing or https://ui.perfetto.dev.
- op_rows: the ops one module issued, aggregated by (op name, input shapes).
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import inspect
import io
import json
import os
from typing import Any

import numpy as np
import torch

from .report import ROW_FIELDS, SCHEMA_VERSION, ProfileSummary, fmt_count, fmt_shape, fmt_time

# Summary-level keys of to_dict() that are not constructor arguments of ProfileSummary.
_DERIVED_KEYS = {"schema_version", "rows", "total_flops"}
# Attributes written by to_json() in addition to to_dict() (when to_dict lacks them), so a
# loaded summary renders and compares like the original.
_EXTRA_ATTRS = ("depth", "param_bytes", "buffer_bytes", "input_bytes", "backward_time_ns",
                "accumulate_grad_time_ns", "backward_outside_modules_ns", "peak_flops",
                "achieved_flops_per_s", "percent_of_peak")
# Columns the table indexes with numpy arrays (must never be lists after loading).
# Structural columns every table needs; measured ones (MACs, times, ...) stay None when a file has none
# (a structure-only summary: not measured, never shown as 0).
_NUMERIC_ALWAYS = ("depth", "parent", "module_index", "call_id", "params", "trainable_params")


# ----------------------------------------------------------------------- JSON
def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def to_dict(summary: ProfileSummary) -> dict:
    """summary.to_dict() plus the summary attributes the table/diff use that it may lack
    (depth, byte sizes, backward totals); JSON-safe."""
    d = summary.to_dict()
    for k in _EXTRA_ATTRS:
        if k not in d and hasattr(summary, k):
            d[k] = _jsonable(getattr(summary, k))
    return d


def to_json(summary: ProfileSummary, path: str | os.PathLike | None = None, indent: int | None = 1) -> str:
    """The summary as JSON text (see to_dict); also written to `path` when given."""
    text = json.dumps(to_dict(summary), indent=indent)
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
    return text


def _shape_back(s):
    """Inverse of report._json_shape: a list of ints was a torch.Size, other lists were tuples."""
    if isinstance(s, list):
        if all(isinstance(d, int) and not isinstance(d, bool) for d in s):
            return torch.Size(s)  # [] -> torch.Size([]) (a scalar output; an empty tuple is rarer)
        return tuple(_shape_back(x) for x in s)
    if isinstance(s, dict):
        return {k: _shape_back(v) for k, v in s.items()}
    return s


def _column(values: list, name: str):
    if all(v is None for v in values):
        return None
    if name in ("input_shapes", "output_shapes"):
        return [_shape_back(v) for v in values]
    if name == "kernel_size":
        return [tuple(v) if isinstance(v, list) else v for v in values]
    if name == "repeat":
        return [bool(v) for v in values]
    if name.startswith("w_"):  # weight statistics: null is NaN (a module without parameters)
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if any(v is None for v in values) and name not in _NUMERIC_ALWAYS:
        return list(values)
    if all(isinstance(v, (int, float, bool)) for v in values):
        kinds = {type(v) for v in values}
        if kinds <= {int, bool}:
            return np.array(values, dtype=np.int64)
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if name in _NUMERIC_ALWAYS:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return list(values)


_TEXT_FIELDS = ("name", "type")
_SHAPE_FIELDS = ("input_shapes", "output_shapes", "kernel_size")


def _check_rows(rows):
    """One clear error for a hand-edited file, instead of a numpy error later."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("not a valid torchscope summary: 'rows' must be a list of objects")
    for i, r in enumerate(rows):
        for k, v in r.items():
            if k in _TEXT_FIELDS:
                ok = isinstance(v, str)
            elif k in _SHAPE_FIELDS or k not in ROW_FIELDS:
                ok = True
            elif k == "repeat":
                ok = isinstance(v, bool) or v is None
            else:  # numbers, or null where not measured
                ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
            if not ok:
                raise ValueError(f"not a valid torchscope summary: row {i} has {k}={v!r}")
        if r.get("params") is None and "params" in r:
            raise ValueError(f"not a valid torchscope summary: row {i} has params=None (every row has a count)")


def from_dict(d: dict) -> ProfileSummary:
    """Rebuild a ProfileSummary from to_dict()/to_json() output; str() prints the same table.

    The loaded summary has no raw trace: op_rows and to_chrome_trace refuse it.
    """
    if not isinstance(d, dict) or "rows" not in d:
        raise ValueError("not a torchscope summary: expected a JSON object with 'schema_version' and 'rows'")
    version = d.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"unsupported torchscope summary schema_version {version!r}: this torchscope "
                         f"({_version()}) reads schema_version {SCHEMA_VERSION}"
                         + ("; upgrade torchscope to read it" if isinstance(version, int)
                            and version > SCHEMA_VERSION else ""))
    rows = d["rows"]
    _check_rows(rows)
    fields = list(ROW_FIELDS) + [k for r in rows[:1] for k in r if k not in ROW_FIELDS]
    columns = {f: _column([r.get(f) for r in rows], f) for f in fields}
    for f in _NUMERIC_ALWAYS:  # the table indexes these with numpy masks, even when empty
        if columns.get(f) is None:
            columns[f] = np.zeros(len(rows), dtype=np.int64)
    if columns.get("repeat") is None:
        columns["repeat"] = [False] * len(rows)
    for f in ("name", "type"):
        if columns.get(f) is None:
            columns[f] = [""] * len(rows)

    params = inspect.signature(ProfileSummary.__init__).parameters
    kwargs: dict[str, Any] = {"columns": columns}
    extra = {}
    for k, v in d.items():
        if k in _DERIVED_KEYS:
            continue
        if k in params and k not in ("self", "columns"):
            kwargs[k] = v
        else:
            extra[k] = v
    defaults = {"total_params": 0, "trainable_params": 0, "total_macs": 0, "uncounted_ops": {},
                "total_time_ns": None, "device": "cpu", "peak_memory": None, "meta": {}, "notes": []}
    for k, v in defaults.items():
        if k in params:
            kwargs.setdefault(k, v)
    for k in ("uncounted_ops", "notes", "meta", "param_bytes", "buffer_bytes", "input_bytes"):
        if k in kwargs and kwargs[k] is None:  # a null in the file: the constructor's empty value
            kwargs[k] = defaults.get(k, 0)
    s = ProfileSummary(**kwargs)
    for k, v in extra.items():
        if k in ("display", "module_training", "module_extra_repr", "modules"):  # restored below
            continue
        try:
            setattr(s, k, v)
        except AttributeError:  # a read-only property of a newer ProfileSummary
            pass
    s._trace = None
    s._op_row = None
    s._op_macs = None
    s._loaded = True
    display = extra.get("display")
    if isinstance(display, dict):
        s._display = {k: frozenset(v) if k == "row_settings" and isinstance(v, list) else v
                      for k, v in display.items()}
    if isinstance(extra.get("module_training"), list):
        s._module_training = extra["module_training"]
    if isinstance(extra.get("module_extra_repr"), list):
        s._loaded_extra_reprs = [str(x) for x in extra["module_extra_repr"]]
    modules = extra.get("modules")
    keys = ("name", "type", "depth", "parent", "params", "trainable_params")
    if isinstance(modules, dict) and all(isinstance(modules.get(k), list) for k in keys) \
            and len({len(modules[k]) for k in keys}) == 1:  # (a file without it: the called modules only)
        s._modules_table = {k: modules[k] for k in keys}
    return s


def from_json(path_or_str: str | os.PathLike) -> ProfileSummary:
    """Load a summary written by to_json()/--json: a file path or the JSON text itself."""
    text = None
    if isinstance(path_or_str, (bytes, bytearray)):
        text = path_or_str.decode("utf-8")
    elif isinstance(path_or_str, str) and path_or_str.lstrip().startswith("{"):
        text = path_or_str
    if text is None:
        with open(path_or_str, encoding="utf-8") as f:
            text = f.read()
        where = str(path_or_str)
    else:
        where = "JSON text"
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where} is not valid JSON ({e})") from None
    return from_dict(d)


def _version() -> str:
    try:
        from . import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "?"


# ------------------------------------------------------------------------ CSV
CSV_COLUMNS = ("name", "type", "depth", "params", "trainable_params", "macs", "flops",
               "fwd_time_ns", "fwd_self_time_ns", "bwd_time_ns", "bwd_self_time_ns",
               "fwd_device_time_ns", "bwd_device_time_ns",
               "mem_allocated", "mem_freed", "mem_retained", "mem_peak", "num_ops",
               "input_shapes", "output_shapes")


def _csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        if not np.isfinite(v):
            return ""
        return str(int(v)) if v.is_integer() else f"{v:.1f}"
    if isinstance(v, bool):
        return str(int(v))
    return v


def to_csv(summary: ProfileSummary, path: str | os.PathLike | None = None) -> str:
    """One row per module call, in execution order (times in ns, memory in bytes, shapes as
    printed in the table); returns the CSV text and writes it to `path` when given."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in summary.rows:
        cells = []
        for c in CSV_COLUMNS:
            v = getattr(r, c, None)
            if c in ("input_shapes", "output_shapes"):
                cells.append(fmt_shape(_shape_back(v) if isinstance(v, list) else v) if v is not None else "")
            else:
                cells.append(_csv_cell(v))
        w.writerow(cells)
    text = buf.getvalue()
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return text


# ---------------------------------------------------------------- raw trace
def _require_trace(summary: ProfileSummary, what: str):
    trace = getattr(summary, "_trace", None)
    if trace is None:
        how = ("it was loaded from JSON, which keeps only the per-module rows"
               if getattr(summary, "_loaded", False) else "it has no raw recording attached")
        raise ValueError(f"{what} needs the raw recording of a profile_summary() run, but this summary "
                         f"has none ({how}); profile the model again in this process")
    return trace


def _cols():
    from ._ext import C
    return C.OP_COLS, C.CALL_COLS


def _top_in_call(ops, OPC, sel: np.ndarray) -> np.ndarray:
    """For each op in `sel`: its outermost ancestor that belongs to the same module call."""
    parent = ops[:, OPC["parent"]]
    call = ops[:, OPC["call"]]
    top = sel.copy()
    while True:
        p = parent[top]
        up = (p >= 0)
        up[up] = call[p[up]] == call[top[up]]
        if not up.any():
            return top
        top[up] = p[up]


def to_chrome_trace(summary: ProfileSummary, path: str | os.PathLike | None = None, *,
                    shapes: bool = True) -> dict:
    """Write the recording as Chrome trace-event JSON ({"traceEvents": [...]}, "X" complete
    events, ts/dur in µs): one range per module call (cat "module"), one per op (cat
    "op" forward, "backward" for autograd nodes and the ops under them), one "iteration"
    range per measured pass; one pid, one tid per recorded thread. Open it in
    https://ui.perfetto.dev or chrome://tracing. Returns the trace dict."""
    trace = _require_trace(summary, "to_chrome_trace")
    OPC, CALLC = _cols()
    from .count import decode_args, tensor_shapes

    ops, calls = trace.ops, trace.calls
    mod_names, mod_types = trace.index.names, trace.index.types
    # Measured passes only (with backward=True the warm-up passes are recorded too, as negative iterations).
    call_ok = calls[:, CALLC["iter"]] >= 0 if len(calls) else np.zeros(0, dtype=bool)
    op_ok = ops[:, OPC["iter"]] >= 0 if len(ops) else np.zeros(0, dtype=bool)
    starts = []
    if call_ok.any():
        starts.append(int(calls[call_ok, CALLC["enter"]].min()))
    if op_ok.any():
        starts.append(int(ops[op_ok, OPC["start"]].min()))
    t0 = min(starts) if starts else 0
    pid = 1

    def us(ns):
        return round((int(ns) - t0) / 1000.0, 3)

    def dur_us(a, b):
        return round(max(int(b) - int(a), 0) / 1000.0, 3)

    events = []
    threads = {}  # tid -> has module calls (the forward thread)
    for cid, c in enumerate(calls.tolist()):
        m, enter, exit_, tid, it = (c[CALLC["module"]], c[CALLC["enter"]], c[CALLC["exit"]],
                                    c[CALLC["thread"]], c[CALLC["iter"]])
        if it < 0:
            continue
        if exit_ < enter:  # a call that never returned (failed pass): zero length
            exit_ = enter
        threads[tid] = True
        events.append({
            "name": mod_names[m] or mod_types[m], "cat": "module", "ph": "X", "pid": pid, "tid": int(tid),
            "ts": us(enter), "dur": dur_us(enter, exit_),
            "args": {"type": mod_types[m], "call_id": cid, "iter": int(it), "depth": int(c[CALLC["depth"]]),
                     **({"failed": True} if "failed" in CALLC and c[CALLC["failed"]] else {})},
        })
    if len(ops):
        from .attribute import ENGINE_PREFIX
        engine = np.array([nm.startswith(ENGINE_PREFIX) for nm in trace.names] or [False], dtype=bool)
        root = np.arange(len(ops))
        parent = ops[:, OPC["parent"]]
        while True:  # each op's outermost ancestor (backward ops sit under an engine record)
            p = parent[root]
            up = p >= 0
            if not up.any():
                break
            root[up] = p[up]
        backward = (ops[:, OPC["scope"]] == 1) | engine[ops[root, OPC["name"]]]
        ends_ok = ops[:, OPC["end"]] >= ops[:, OPC["start"]]
        op_list = ops.tolist()
        packed = trace.args
        shape_cache: dict = {}
        for i, o in enumerate(op_list):
            if o[OPC["iter"]] < 0:
                continue
            tid = o[OPC["thread"]]
            threads.setdefault(tid, False)
            call = o[OPC["call"]]
            args = {"iter": int(o[OPC["iter"]])}
            if call >= 0 and call < len(calls):
                m = int(calls[call, CALLC["module"]])
                args["module"] = mod_names[m] or mod_types[m]
                args["call_id"] = int(call)
            if o[OPC["seq_nr"]] >= 0:
                args["seq_nr"] = int(o[OPC["seq_nr"]])
            if shapes and o[OPC["args_len"]] > 0:
                off, ln = o[OPC["args_off"]], o[OPC["args_len"]]
                key = packed[off:off + ln].tobytes()  # layers repeat: decode each distinct argument list once
                sh = shape_cache.get(key)
                if sh is None:
                    try:
                        sh = tensor_shapes(decode_args(packed, off, ln))
                    except Exception:  # undecodable arguments: leave them out
                        sh = False
                    shape_cache[key] = sh
                if sh is not False:
                    args["input_shapes"] = sh
            end = o[OPC["end"]] if ends_ok[i] else o[OPC["start"]]
            events.append({
                "name": trace.names[o[OPC["name"]]], "cat": "backward" if backward[i] else "op", "ph": "X",
                "pid": pid, "tid": int(tid), "ts": us(o[OPC["start"]]), "dur": dur_us(o[OPC["start"]], end),
                "args": args,
            })
    # One range per measured pass, on the forward thread, spanning everything it recorded there.
    for tid, fwd in threads.items():
        if not fwd:
            continue
        for it in range(trace.iters):
            lo, hi = [], []
            cm = (calls[:, CALLC["iter"]] == it) & (calls[:, CALLC["thread"]] == tid) if len(calls) else None
            if cm is not None and cm.any():
                lo.append(int(calls[cm, CALLC["enter"]].min()))
                hi.append(int(np.maximum(calls[cm, CALLC["exit"]], calls[cm, CALLC["enter"]]).max()))
            if len(ops):
                om = (ops[:, OPC["iter"]] == it) & (ops[:, OPC["thread"]] == tid)
                if om.any():
                    lo.append(int(ops[om, OPC["start"]].min()))
                    hi.append(int(np.maximum(ops[om, OPC["end"]], ops[om, OPC["start"]]).max()))
            if lo:
                events.append({"name": f"iteration {it}", "cat": "iteration", "ph": "X", "pid": pid,
                               "tid": int(tid), "ts": us(min(lo)), "dur": dur_us(min(lo), max(hi)),
                               "args": {"iter": it}})
    root_name = (mod_types[0] if mod_types else "model")
    meta = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
             "args": {"name": f"torchscope: {root_name} ({summary.device})"}}]
    for tid, fwd in sorted(threads.items()):
        meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": int(tid),
                     "args": {"name": f"{'forward' if fwd else 'worker'} thread {tid}"}})
        meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": int(tid),
                     "args": {"sort_index": 0 if fwd else int(tid) + 1}})
    # Parents before children at equal start times: viewers nest ranges in file order.
    events.sort(key=lambda e: (e["tid"], e["ts"], -e["dur"], 0 if e["cat"] == "iteration" else
                               1 if e["cat"] == "module" else 2))
    out = {"traceEvents": meta + events, "displayTimeUnit": "ms",
           "otherData": {"torchscope": _version(), **{k: str(v) for k, v in (summary.meta or {}).items()}}}
    if path is not None:
        text = json.dumps(out, separators=(",", ":"))  # dumps uses the C encoder; dump() streams in Python
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return out


@dataclasses.dataclass
class OpRow:
    """One (op name, input shapes) group of a module's ops (iteration 0, forward)."""

    name: str
    input_shapes: list | None    # None: not recorded (record_shapes=False)
    calls: int
    total_time_ns: float
    mean_time_ns: float
    macs: int | None            # None: not counted (op input shapes not recorded)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _rows_named(summary: ProfileSummary, module_name: str) -> list:
    rows = summary.rows
    hit = [i for i, r in enumerate(rows) if r.name == module_name]
    if not hit:
        hit = [i for i, r in enumerate(rows) if r.depth == 0 and module_name in ("", r.type)]
    if not hit:
        names = list(dict.fromkeys(r.name for r in rows))
        close = difflib.get_close_matches(module_name, names, n=3)
        raise KeyError(f"no module named {module_name!r} in this summary"
                       + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
    return hit


def op_rows(summary: ProfileSummary, module_name: str, *, include_children: bool = False) -> list:
    """The ops module `module_name` issued in its calls of the first measured iteration
    (forward), aggregated by (op name, input shapes), slowest first.

    Only the outermost op of each dispatcher chain is listed (aten::linear, not also its
    aten::addmm); its MACs include everything counted below it. include_children=True
    also lists the ops of the submodules' calls.
    """
    trace = _require_trace(summary, "op_rows")
    OPC, _ = _cols()
    from .count import decode_args, tensor_shapes

    hit = _rows_named(summary, module_name)
    op_row = np.asarray(summary._op_row)
    n = len(summary)
    want = np.zeros(n + 1, dtype=bool)
    want[hit] = True
    if include_children:
        parent = np.asarray(summary._cols["parent"], dtype=np.int64)
        depth = np.asarray(summary._cols["depth"], dtype=np.int64)
        for d in range(int(depth.min()) + 1 if n else 0, int(depth.max()) + 1 if n else 0):
            m = (depth == d) & (parent >= 0)
            want[np.nonzero(m)[0]] |= want[parent[m]]
    ops = trace.ops
    sel = np.nonzero((op_row >= 0) & want[np.where(op_row >= 0, op_row, n)])[0]
    if len(sel) == 0:
        return []
    top = _top_in_call(ops, OPC, sel)
    macs_by_top: dict = {}
    counted = summary._op_macs is not None  # None: op shapes were not recorded, so nothing was counted
    op_macs = np.asarray(summary._op_macs)[sel].tolist() if counted else [0] * len(sel)
    for t, v in zip(top.tolist(), op_macs):
        macs_by_top[t] = macs_by_top.get(t, 0) + int(v)
    groups: dict = {}
    for t in sorted(macs_by_top):
        o = ops[t]
        shapes = (tensor_shapes(decode_args(trace.args, int(o[OPC["args_off"]]), int(o[OPC["args_len"]])))
                  if trace.op_shapes else None)
        key = (trace.names[int(o[OPC["name"]])], repr(shapes))
        g = groups.get(key)
        if g is None:
            g = groups[key] = [shapes, 0, 0.0, 0]
        g[1] += 1
        g[2] += float(max(int(o[OPC["end"]]) - int(o[OPC["start"]]), 0))
        g[3] += macs_by_top[t]
    out = [OpRow(name=k[0], input_shapes=g[0], calls=g[1], total_time_ns=g[2], mean_time_ns=g[2] / g[1],
                 macs=g[3] if counted else None) for k, g in groups.items()]
    out.sort(key=lambda r: -r.total_time_ns)
    return out


def format_op_rows(rows: list, title: str | None = None, ascii_only: bool = False) -> str:
    """A small text table of op_rows() output."""
    head = ("Op", "Input shapes", "Calls", "Total", "Mean", "MACs")
    body = [(r.name, "-" if r.input_shapes is None else str(r.input_shapes), str(r.calls),
             fmt_time(r.total_time_ns, ascii_only), fmt_time(r.mean_time_ns, ascii_only), fmt_count(r.macs))
            for r in rows]
    widths = [max([len(head[j])] + [len(b[j]) for b in body]) for j in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(head))
    lines = ([title] if title else []) + [line(head), rule] + [line(b) for b in body]
    if not body:
        lines.append("(no ops recorded in this module's own calls)")
    return "\n".join(lines)


__all__ = ["to_dict", "to_json", "from_dict", "from_json", "to_csv", "to_chrome_trace", "op_rows",
           "format_op_rows", "OpRow", "CSV_COLUMNS"]
