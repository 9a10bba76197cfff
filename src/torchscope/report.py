"""Stage 4: report. ProfileSummary: rows + totals -> text table and JSON-safe dict.

Holds per-row columns (numpy arrays / lists) and materialises Row objects only
when `.rows` is read, so building the table stays cheap on big models.
"""
from __future__ import annotations

import datetime
import os
import shutil
import sys
from typing import Any

import numpy as np
import torch

SCHEMA_VERSION = 1

ROW_FIELDS = (
    "name", "type", "depth", "parent", "module_index", "call_id", "repeat",
    "input_shapes", "output_shapes", "params", "trainable_params",
    "macs", "flops", "self_macs",
    "fwd_time_ns", "fwd_self_time_ns", "fwd_time_min_ns", "bwd_time_ns", "bwd_self_time_ns",
    "fwd_device_time_ns", "bwd_device_time_ns",
    "mem_allocated", "mem_freed", "mem_retained", "mem_peak", "num_ops", "kernel_size",
    "bwd_mem_allocated", "flops_per_s", "buffers", "w_mean", "w_std", "w_min", "w_max", "w_zeros",
)


class Row:
    """One module call. Runtime fields are None where not measured."""

    __slots__ = ROW_FIELDS

    def __init__(self, **kw):
        for f in ROW_FIELDS:
            setattr(self, f, kw.get(f))

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in ROW_FIELDS}

    def __repr__(self):
        return f"Row({self.name!r}, {self.type}, params={self.params}, fwd_time_ns={self.fwd_time_ns})"


# ------------------------------------------------------------------ formatting
def fmt_count(v) -> str:
    if v is None:
        return "?"
    v = float(v)
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f}{unit}"
    return f"{int(v)}"


def fmt_bytes(v) -> str:
    if v is None:
        return "-"
    v = float(v)
    sign = "-" if v < 0 else ""
    v = abs(v)
    for unit, scale in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if v >= scale:
            return f"{sign}{v / scale:.2f} {unit}"
    return f"{sign}{int(v)} B"


def fmt_time(ns, ascii_only=False) -> str:
    if ns is None:
        return "-"
    ns = float(ns)
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} {'us' if ascii_only else 'µs'}"
    return f"{ns:.0f} ns"


def fmt_shape(s) -> str:
    if s is None:
        return "-"
    if isinstance(s, (torch.Size, list)) and all(isinstance(d, int) for d in s):
        return "[" + ", ".join(str(d) for d in s) + "]"
    if isinstance(s, tuple):
        return "(" + ", ".join(fmt_shape(x) for x in s) + ")" if s else "-"
    if isinstance(s, dict):
        return "{" + ", ".join(f"{k}: {fmt_shape(v)}" for k, v in s.items()) + "}"
    return "-"


# Table column keys -> titles; DEFAULT_COLUMNS is what str(summary) shows.
TABLE_COLUMNS = {
    "output_shape": "Output Shape", "input_shape": "Input Shape", "params": "Params", "macs": "MACs",
    "self_cpu": "Self CPU", "cpu_total": "CPU total", "bwd_self": "Bwd self", "bwd_total": "Bwd total",
    "mem_alloc": "Mem alloc", "mem_retained": "Mem retained", "mem_peak": "Mem peak", "bwd_mem": "Bwd mem",
    "flops_per_s": "FLOP/s", "buffers": "Buffers", "kernel_size": "Kernel", "ops": "Ops",
    "w_mean": "W mean", "w_std": "W std", "w_min": "W min", "w_max": "W max", "w_zeros": "W zeros",
}
DEFAULT_COLUMNS = ("output_shape", "params", "macs", "self_cpu", "cpu_total", "mem_alloc", "mem_retained", "ops")
_SORT_FIELDS = {"params": "params", "macs": "macs", "self_cpu": "fwd_self_time_ns", "cpu_total": "fwd_time_ns",
                "bwd_self": "bwd_self_time_ns", "bwd_total": "bwd_time_ns", "mem_alloc": "mem_allocated",
                "mem_retained": "mem_retained", "mem_peak": "mem_peak", "ops": "num_ops"}


def _round3(a: np.ndarray) -> np.ndarray:
    """Round to 3 significant digits (what the table shows), so equal cells format once."""
    a = np.asarray(a, dtype=np.float64)
    mag = np.floor(np.log10(np.maximum(np.abs(a), 1.0)))
    scale = 10.0 ** (mag - 2)
    return np.round(a / scale) * scale


def _opt(col, keep):
    return None if col is None else col[keep]


def _unique_cells(values, fmt, n: int = 0):
    """(distinct strings, index per row): format and pad each distinct value once."""
    if values is None:
        return np.array(["-"], dtype=object), np.zeros(n, dtype=np.int64)
    uniq, inv = np.unique(np.asarray(values), return_inverse=True)
    return np.array([fmt(v) for v in uniq.tolist()], dtype=object), inv.reshape(-1)


def _as_cells(strings: list):
    return np.array(strings, dtype=object), np.arange(len(strings))


def _json_shape(s):
    if isinstance(s, torch.Size):
        return list(s)
    if isinstance(s, (tuple, list)):
        return [_json_shape(x) for x in s]
    if isinstance(s, dict):
        return {str(k): _json_shape(v) for k, v in s.items()}
    return None


class ProfileSummary:
    """The result of profile_summary(): rows (one per module call) and totals."""

    def __init__(self, *, columns: dict, total_params: int, trainable_params: int,
                 total_macs: int, uncounted_ops: dict, total_time_ns: float | None,
                 device: str, peak_memory: int | None, meta: dict, notes: list,
                 depth: int | None = None, output: Any = None, param_bytes: int = 0,
                 buffer_bytes: int = 0, input_bytes: int = 0, param_bytes_by_dtype: dict | None = None):
        self._cols = columns
        self._rows = None
        self._tables = {}
        self.total_params = int(total_params)
        self.trainable_params = int(trainable_params)
        self.total_macs = int(total_macs)
        self.total_flops = 2 * int(total_macs)
        self.uncounted_ops = dict(uncounted_ops)
        self.total_time_ns = total_time_ns
        self.device = device
        self.peak_memory = peak_memory
        self.meta = meta
        self.notes = list(notes)
        self.depth = depth
        self.output = output
        self.param_bytes = int(param_bytes)      # unique parameters
        self.buffer_bytes = int(buffer_bytes)
        self.input_bytes = int(input_bytes)
        self.param_bytes_by_dtype = dict(param_bytes_by_dtype or {})

    # ------------------------------------------------------------------ rows
    def __len__(self):
        return len(self._cols["name"])

    @property
    def rows(self) -> list:
        if self._rows is None:
            cols = self._cols
            n = len(cols["name"])
            lists = {f: (cols[f].tolist() if isinstance(cols.get(f), np.ndarray) else cols.get(f))
                     for f in ROW_FIELDS}
            self._rows = [Row(**{f: (lists[f][i] if lists[f] is not None else None) for f in ROW_FIELDS})
                          for i in range(n)]
        return self._rows

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no module named {name!r} in this summary")

    # ---------------------------------------------------------------- output
    def to_dict(self) -> dict:
        rows = []
        for r in self.rows:
            d = r.to_dict()
            d["input_shapes"] = _json_shape(d["input_shapes"])
            d["output_shapes"] = _json_shape(d["output_shapes"])
            rows.append(d)
        return {
            "schema_version": SCHEMA_VERSION,
            "meta": self.meta,
            "device": self.device,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_macs": self.total_macs,
            "total_flops": self.total_flops,
            "total_time_ns": self.total_time_ns,
            "peak_memory": self.peak_memory,
            "uncounted_ops": self.uncounted_ops,
            "notes": self.notes,
            "depth": self.depth,
            "param_bytes": self.param_bytes,
            "buffer_bytes": self.buffer_bytes,
            "input_bytes": self.input_bytes,
            "param_bytes_by_dtype": self.param_bytes_by_dtype,
            "backward_time_ns": getattr(self, "backward_time_ns", None),
            "accumulate_grad_time_ns": getattr(self, "accumulate_grad_time_ns", None),
            "backward_outside_modules_ns": getattr(self, "backward_outside_modules_ns", None),
            "achieved_flops_per_s": getattr(self, "achieved_flops_per_s", None),
            "rows": rows,
        }

    # Outputs (implemented in export.py / diff.py; thin delegates here)
    def to_json(self, path=None) -> str:
        from .export import to_json
        return to_json(self, path)

    def to_csv(self, path=None) -> str:
        from .export import to_csv
        return to_csv(self, path)

    def to_chrome_trace(self, path=None):
        from .export import to_chrome_trace
        return to_chrome_trace(self, path)

    def ops(self, module_name: str, include_children: bool = False) -> list:
        """Op drill-down for one module: ops grouped by (name, input shapes) with calls, time, MACs."""
        from .export import op_rows
        return op_rows(self, module_name, include_children=include_children)

    @staticmethod
    def from_json(path_or_str) -> "ProfileSummary":
        from .export import from_json
        return from_json(path_or_str)

    def diff(self, baseline, **thresholds):
        """Compare against a baseline summary (or its JSON); see torchscope.diff."""
        from .diff import diff
        return diff(baseline, self, **thresholds)

    def _repr_html_(self) -> str:
        """Jupyter: the summary as an HTML table (the object is its own cell value)."""
        import html

        cols = ["Layer", "Type", "Output Shape", "Params", "MACs", "Self CPU", "CPU total", "Mem alloc", "Ops"]
        out = ["<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr></thead><tbody>"]
        for r in self.rows:
            if self.depth is not None and r.depth > self.depth:
                continue
            cells = ["&nbsp;" * 4 * r.depth + html.escape(r.name), html.escape(r.type),
                     html.escape(fmt_shape(r.output_shapes)), fmt_count(r.params), fmt_count(r.macs),
                     fmt_time(r.fwd_self_time_ns), fmt_time(r.fwd_time_ns), fmt_bytes(r.mem_allocated),
                     str(r.num_ops)]
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</tbody></table>")
        out.append(f"<p>Total params: {self.total_params:,} &middot; Total MACs: {fmt_count(self.total_macs)}"
                   + "".join(f"<br>Note: {html.escape(n)}" for n in self.notes) + "</p>")
        return "\n".join(out)

    def table(self, depth: int | None = None, ascii_only: bool | None = None, columns=None,
              sort: str | None = None, top: int | None = None, max_width: int | None = None) -> str:
        """The summary table.

        columns: keys of TABLE_COLUMNS to show (default: DEFAULT_COLUMNS, plus backward times when a
        backward pass ran). sort: a column key; rows become a flat list sorted by it, largest first.
        top: keep the first N rows. max_width: drop right-most columns until the table fits (default:
        the terminal's width when printing to a terminal, else unlimited); the table says which.
        """
        depth = self.depth if depth is None else depth
        if ascii_only is None:
            ascii_only = os.environ.get("TORCHSCOPE_ASCII") == "1"
        if max_width is None and sys.stdout.isatty():
            max_width = shutil.get_terminal_size((200, 24)).columns
        cols_key = tuple(columns) if columns is not None else None
        key = (depth, ascii_only, cols_key, sort, top, max_width)
        if key not in self._tables:
            self._tables[key] = self._render(depth, ascii_only, cols_key, sort, top, max_width)
        return self._tables[key]

    def _render(self, depth, ascii_only, columns=None, sort=None, top=None, max_width=None) -> str:
        cols = self._cols
        d = cols["depth"]
        keep = np.nonzero(d <= depth)[0] if depth is not None else np.arange(len(d))
        if sort is not None:
            if sort not in _SORT_FIELDS:
                raise ValueError(f"sort={sort!r}: choose one of {', '.join(_SORT_FIELDS)}")
            vals = cols.get(_SORT_FIELDS[sort])
            if vals is None:
                raise ValueError(f"sort={sort!r}: that column was not measured in this run")
            vals = np.asarray(vals, dtype=np.float64)[keep]
            keep = keep[np.argsort(-vals, kind="stable")]
        if top is not None:
            keep = keep[:top]
        rep = np.asarray(cols["repeat"], dtype=bool)[keep]
        names, types = cols["name"], cols["type"]
        dl = d[keep].tolist()
        flat = sort is not None
        labels = []
        for i, k in enumerate(keep.tolist()):
            short = names[k] if flat else (names[k].rpartition(".")[2] if dl[i] else names[k])
            indent = "" if flat else "  " * dl[i]
            labels.append(f"{indent}{short} ({types[k]}){' *' if rep[i] else ''}")
        time_fmt = (lambda v: fmt_time(v, True)) if ascii_only else fmt_time
        n = len(keep)
        if columns is None:
            columns = list(DEFAULT_COLUMNS)
            if cols.get("bwd_time_ns") is not None:  # backward ran: its times beside the forward's
                columns[5:5] = ["bwd_self", "bwd_total"]
        columns = list(columns)
        unknown = [c for c in columns if c not in TABLE_COLUMNS]
        if unknown:
            raise ValueError(f"unknown table column(s) {unknown}; choose from {', '.join(TABLE_COLUMNS)}")

        def shapes_of(field):
            cache, out = {}, []
            src = cols[field]
            for k in keep.tolist():
                o = src[k]
                if field == "input_shapes" and isinstance(o, tuple) and len(o) == 1:
                    o = o[0]
                try:
                    t = cache.get(o)
                    if t is None:
                        t = cache[o] = fmt_shape(o)
                except TypeError:  # unhashable (dict outputs)
                    t = fmt_shape(o)
                out.append(t)
            return _as_cells(out)

        def params_cells():
            p = _unique_cells(cols["params"][keep], fmt_count)
            if rep.any():
                p = (np.append(p[0], "(shared)"), np.where(rep, len(p[0]), p[1]))
            return p

        def numbers(field, fmt, round3=False):
            v = cols.get(field)
            if v is None:
                return _unique_cells(None, fmt, n)
            v = np.asarray(v)[keep]
            return _unique_cells(_round3(v) if round3 else v, fmt, n)

        kernel = cols.get("kernel_size")
        builders = {
            "output_shape": lambda: shapes_of("output_shapes"),
            "input_shape": lambda: shapes_of("input_shapes"),
            "params": params_cells,
            "macs": lambda: numbers("macs", fmt_count),
            "self_cpu": lambda: numbers("fwd_self_time_ns", time_fmt, True),
            "cpu_total": lambda: numbers("fwd_time_ns", time_fmt, True),
            "bwd_self": lambda: numbers("bwd_self_time_ns", time_fmt, True),
            "bwd_total": lambda: numbers("bwd_time_ns", time_fmt, True),
            "mem_alloc": lambda: numbers("mem_allocated", fmt_bytes),
            "mem_retained": lambda: numbers("mem_retained", fmt_bytes),
            "mem_peak": lambda: numbers("mem_peak", fmt_bytes),
            "bwd_mem": lambda: numbers("bwd_mem_allocated", fmt_bytes),
            "flops_per_s": lambda: numbers("flops_per_s", lambda v: fmt_count(v) + "FLOP/s" if v else "-", True),
            "buffers": lambda: numbers("buffers", fmt_count),
            "kernel_size": lambda: _as_cells([str(list(kernel[k])) if kernel is not None and kernel[k] else "-"
                                              for k in keep.tolist()]),
            "ops": lambda: numbers("num_ops", str),
        }
        for wkey in ("w_mean", "w_std", "w_min", "w_max", "w_zeros"):  # profile_summary(weight_stats=True)
            builders[wkey] = (lambda f: lambda: numbers(f, lambda v: "-" if v != v else f"{v:.4g}"))(wkey)
        columns = [("Layer (type)", _as_cells(labels))] + [(TABLE_COLUMNS[c], builders[c]()) for c in columns]
        padded = []
        for j, (title, (uniq, inv)) in enumerate(columns):
            w = max([len(title)] + [len(c) for c in uniq.tolist()])
            just = str.ljust if j == 0 else str.rjust
            padded_uniq = np.array([just(c, w) for c in uniq.tolist()], dtype=object)
            padded.append([just(title, w)] + padded_uniq[inv].tolist())
        hidden = []
        if max_width:
            while len(padded) > 2 and sum(len(c[0]) for c in padded) + 2 * (len(padded) - 1) > max_width:
                padded.pop()
                hidden.append(columns.pop()[0])
        body = ["  ".join(r) for r in zip(*padded)]
        width = len(body[0]) if body else 80
        rule = ("=" if ascii_only else "═") * width
        thin = ("-" if ascii_only else "─") * width
        lines = [rule, body[0], thin]
        lines.extend(body[1:])
        lines.append(rule)
        lines.append(f"Total params: {self.total_params:,}")
        lines.append(f"Trainable params: {self.trainable_params:,}")
        lines.append(f"Non-trainable params: {self.total_params - self.trainable_params:,}")
        if self.param_bytes_by_dtype:
            lines.append("Params size: " + ", ".join(f"{fmt_bytes(v)} {k}" for k, v in
                                                     sorted(self.param_bytes_by_dtype.items()))
                         + (f"; buffers {fmt_bytes(self.buffer_bytes)}" if self.buffer_bytes else ""))
        lines.append(f"Total MACs: {fmt_count(self.total_macs)}   (FLOPs: {fmt_count(self.total_flops)})")
        real_uncounted = {k: v for k, v in self.uncounted_ops.items() if not k.startswith("(")}
        if real_uncounted:
            shown = ", ".join(f"{k} x{v}" for k, v in sorted(real_uncounted.items()))
            lines.append(f"Uncounted ops (no MAC formula; totals exclude them): {shown}")
        if self.total_time_ns is not None:
            lines.append(f"Forward pass time: {time_fmt(self.total_time_ns)} "
                         f"(median of {self.meta.get('iters', 1)}, {self.device})")
        bwd = getattr(self, "backward_time_ns", None)
        if bwd is not None:
            lines.append(f"Backward pass time: {time_fmt(bwd)} (AccumulateGrad "
                         f"{time_fmt(getattr(self, 'accumulate_grad_time_ns', None))}, outside modules "
                         f"{time_fmt(getattr(self, 'backward_outside_modules_ns', None))})")
        if self.peak_memory is not None:
            lines.append(f"Peak memory during forward: {fmt_bytes(self.peak_memory)}")
        if rep.any():
            lines.append("* module called more than once: its params are counted at the first call")
        if hidden:
            lines.append(f"Columns hidden to fit {max_width} characters: {', '.join(reversed(hidden))}")
        for note in self.notes:
            lines.append(f"Note: {note}")
        lines.append(rule)
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return self.table()


def run_meta(device: str, iters: int, warmup: int, inputs_desc: str) -> dict:
    return {
        "torch_version": torch.__version__,
        "device": device,
        "iters": iters,
        "warmup": warmup,
        "inputs": inputs_desc,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
