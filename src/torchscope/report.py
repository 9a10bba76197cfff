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

from ._ext import C

SCHEMA_VERSION = 1

ROW_FIELDS = (
    "name", "type", "depth", "parent", "module_index", "call_id", "repeat",
    "input_shapes", "output_shapes", "params", "trainable_params",
    "macs", "flops", "self_macs", "macs_uncounted_ops",
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

    # torchinfo's LayerInfo names (summary.summary_list), read-only
    class_name = property(lambda self: self.type)
    var_name = property(lambda self: self.name.rpartition(".")[2])
    num_params = property(lambda self: self.params)
    is_recursive = property(lambda self: bool(self.repeat))
    input_size = property(lambda self: _torchinfo_size(self.input_shapes, unwrap=True))
    output_size = property(lambda self: _torchinfo_size(self.output_shapes))


def _torchinfo_size(shapes, unwrap=False):
    """A shape as torchinfo's LayerInfo gives it: a list of ints (nested lists for several tensors)."""
    if unwrap and isinstance(shapes, tuple) and len(shapes) == 1:
        shapes = shapes[0]
    if isinstance(shapes, torch.Size):
        return list(shapes)
    if isinstance(shapes, (tuple, list)):
        return [_torchinfo_size(s) for s in shapes]
    if isinstance(shapes, dict):
        return [_torchinfo_size(s) for s in shapes.values()]
    return []


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


# Time units, largest first; the last one takes everything below (C.number_cells formats the same).
_TIME_UNITS = ((1e9, "{:.2f} s"), (1e6, "{:.2f} ms"), (1e3, "{:.1f} µs"), (1.0, "{:.0f} ns"))


def fmt_time(ns, ascii_only=False) -> str:
    if ns is None or ns != ns:  # None or NaN: not measured
        return "-"
    ns = float(ns)
    scale, pattern = next((u for u in _TIME_UNITS if ns >= u[0]), _TIME_UNITS[-1])
    return (pattern.replace("µs", "us") if ascii_only else pattern).format(ns / scale)


def fmt_shape(s) -> str:
    if s is None:
        return "-"
    if isinstance(s, (torch.Size, list)) and all(isinstance(d, int) for d in s):
        return "[" + ", ".join(str(d) for d in s) + "]"
    if isinstance(s, tuple):
        return "(" + ", ".join(fmt_shape(x) for x in s) + ")" if s else "-"
    if isinstance(s, dict):
        kept = _shown_items(s)
        return "{" + ", ".join(f"{k}: {fmt_shape(v)}" for k, v in kept) + "}" if kept else "-"
    return "-"


def _shown_items(d: dict) -> list:
    """The entries of a keyword-input shape dict worth a cell: non-tensor ones (use_cache=True,
    mask=None, ()) are left out."""
    return [(k, v) for k, v in d.items() if v is not None and not (type(v) is tuple and not v)]


# Table column keys -> titles; DEFAULT_COLUMNS is what str(summary) shows.
TABLE_COLUMNS = {
    "output_shape": "Output Shape", "input_shape": "Input Shape", "params": "Params", "macs": "MACs",
    "self_cpu": "Self CPU", "cpu_total": "CPU total", "bwd_self": "Bwd self", "bwd_total": "Bwd total",
    "mem_alloc": "Mem alloc", "mem_retained": "Mem retained", "mem_peak": "Mem peak", "bwd_mem": "Bwd mem",
    "flops_per_s": "FLOP/s", "buffers": "Buffers", "kernel_size": "Kernel", "ops": "Ops",
    "w_mean": "W mean", "w_std": "W std", "w_min": "W min", "w_max": "W max", "w_zeros": "W zeros",
    "params_percent": "Param %", "trainable": "Trainable", "trainable_params": "Trainable params",
    "flops": "FLOPs", "mode": "Mode", "parent_layers": "Parent Layers",
}
DEFAULT_COLUMNS = ("output_shape", "params", "macs", "self_cpu", "cpu_total", "mem_alloc", "mem_retained", "ops")
_SORT_FIELDS = {"params": "params", "macs": "macs", "self_cpu": "fwd_self_time_ns", "cpu_total": "fwd_time_ns",
                "bwd_self": "bwd_self_time_ns", "bwd_total": "bwd_time_ns", "mem_alloc": "mem_allocated",
                "mem_retained": "mem_retained", "mem_peak": "mem_peak", "ops": "num_ops"}
# torchinfo's col_names (and torchscope.summary's extra names) -> table column keys.
COLUMN_ALIASES = {"input_size": "input_shape", "output_size": "output_shape", "num_params": "params",
                  "mult_adds": "macs", "self_time": "self_cpu", "total_time": "cpu_total",
                  "mem_allocated": "mem_alloc", "num_ops": "ops"}
# Table layouts: torchscope's own (str(summary)), and those of the tools people know.
STYLES = ("torchscope", "torchinfo", "torchsummary", "pms", "keras", "lightning", "tree")
# torchinfo's row_settings
ROW_SETTINGS = ("depth", "var_names", "ascii_only", "hide_recursive_layers")
STYLE_COLUMNS = {
    "torchinfo": ("output_shape", "params"),
    "torchsummary": ("output_shape", "params"),
    "pms": ("output_shape", "params", "trainable_params"),
    "keras": ("output_shape", "params"),
    "lightning": ("params", "mode", "input_shape", "output_shape"),
    "tree": DEFAULT_COLUMNS,
}
_STYLE_TITLES = {
    "torchinfo": {"input_shape": "Input Shape", "output_shape": "Output Shape", "params": "Param #",
                  "params_percent": "Param %", "kernel_size": "Kernel Shape", "macs": "Mult-Adds",
                  "trainable": "Trainable"},
    "torchsummary": {"params": "Param #", "trainable_params": "Tr. Param #"},
    "pms": {"params": "Param #", "trainable_params": "Tr. Param #"},
    "keras": {"params": "Param #"},
    "lightning": {"input_shape": "In sizes", "output_shape": "Out sizes"},
}
_EMPTY = {"torchinfo": "--", "lightning": "?"}  # an empty cell; "-" elsewhere
# Numeric columns: key -> field, rounded to 3 digits, kind of C.number_cells (None: formatted in Python)
_NUMERIC = {
    "self_cpu": ("fwd_self_time_ns", True, "time"), "cpu_total": ("fwd_time_ns", True, "time"),
    "bwd_self": ("bwd_self_time_ns", True, "time"), "bwd_total": ("bwd_time_ns", True, "time"),
    "mem_alloc": ("mem_allocated", False, "bytes"), "mem_retained": ("mem_retained", False, "bytes"),
    "mem_peak": ("mem_peak", False, "bytes"), "bwd_mem": ("bwd_mem_allocated", False, "bytes"),
    "flops_per_s": ("flops_per_s", True, None), "buffers": ("buffers", False, "count"),
    "ops": ("num_ops", False, "int"),
    **{w: (w, False, None) for w in ("w_mean", "w_std", "w_min", "w_max", "w_zeros")},
}
_MARKED = ("params", "trainable_params", "macs", "flops")  # counts with per-row marks (_render_spec)
_CONTAINERS = ("Sequential", "ModuleList")      # torchsummary / pytorch-model-summary skip these


def table_columns(columns, arg: str = "columns") -> list:
    """Column names (table keys or torchinfo col_names) -> table keys; unknown names are an error."""
    if isinstance(columns, str):
        columns = [columns]
    out, unknown = [], []
    for c in columns:
        key = COLUMN_ALIASES.get(c, c)
        (out if key in TABLE_COLUMNS else unknown).append(key if key in TABLE_COLUMNS else c)
    if unknown:
        raise ValueError(f"{arg}: unknown table column(s) {unknown}; choose from "
                         f"{', '.join(list(TABLE_COLUMNS) + list(COLUMN_ALIASES))}")
    return out


def check_depth(depth):
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0):
        raise ValueError(f"depth={depth!r}: must be a non-negative integer (0: the model row only)")
    return depth


def check_row_settings(settings):
    """torchinfo's row_settings, checked (None: the style's default)."""
    if settings is None:
        return None
    if isinstance(settings, str):
        settings = [settings]
    unknown = [r for r in settings if r not in ROW_SETTINGS]
    if unknown:
        raise ValueError(f"row_settings: unknown setting(s) {unknown}; choose from {', '.join(ROW_SETTINGS)}")
    return frozenset(settings)


def fmt_shape_as(s, run_batch=None, label=None, parens=False, empty="-") -> str:
    """fmt_shape, with the batch dimension (dim 0 equal to the run's batch size) shown as `label`
    (e.g. -1 like torchsummary, None like Keras) and, with parens, tuples like Keras' (None, 64)."""
    if s is None:
        return empty
    if isinstance(s, (torch.Size, list)) and all(isinstance(d, int) for d in s):
        dims = [str(d) for d in s]
        if run_batch is not None and dims and s[0] == run_batch:
            dims[0] = str(label)
        if parens:
            return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
        return "[" + ", ".join(dims) + "]"
    if isinstance(s, tuple):
        return "(" + ", ".join(fmt_shape_as(x, run_batch, label, parens, empty) for x in s) + ")" if s else empty
    if isinstance(s, dict):
        kept = _shown_items(s)
        return ("{" + ", ".join(f"{k}: {fmt_shape_as(v, run_batch, label, parens, empty)}" for k, v in kept) + "}"
                if kept else empty)
    return empty


def fmt_human(v) -> str:
    """PyTorch Lightning's parameter counts: 0, 448, 1.2 K, 100 K, 11.7 M."""
    v = int(v)
    if v <= 0:
        return "0"
    labels = ["", "K", "M", "B", "T"]
    groups = min((len(str(v)) + 2) // 3, len(labels))
    x = v / 10 ** (3 * (groups - 1))
    if groups == 1 or x >= 100:
        return f"{int(x):,d} {labels[groups - 1]}".rstrip()
    return f"{x:,.1f} {labels[groups - 1]}"


class _TableArgs:
    """table()'s options after defaults and checks (hashable: the rendered text is cached by it)."""

    __slots__ = ("depth", "ascii_only", "columns", "sort", "top", "max_width", "style", "rows", "batch_as",
                 "col_width")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw[k])

    def key(self):
        return tuple(getattr(self, k) for k in self.__slots__)


class _View:
    """Row arrays derived for one render (numpy; each computed on first use)."""

    def __init__(self, s, a):
        c = s._cols
        self.s, self.a, self.c = s, a, c
        self.n = len(c["name"])
        self.depth = np.asarray(c["depth"], dtype=np.int64).reshape(-1)
        self.rep = np.asarray(c["repeat"], dtype=bool).reshape(-1) if self.n else np.zeros(0, dtype=bool)
        self.names, self.types = c["name"], c["type"]
        self.empty = _EMPTY.get(a.style, "-")
        self.time_fmt = (lambda x: fmt_time(x, True)) if a.ascii_only else fmt_time
        self.run_batch = s.meta.get("batch_size") if a.batch_as is not None else None
        self._memo = {}

    def _get(self, name, make):
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    @property
    def parent(self) -> np.ndarray:
        def make():
            p = self.c.get("parent")
            if p is not None and len(p) == self.n and (self.n == 0 or int(p[0]) == -1):
                return np.asarray(p, dtype=np.int64)
            stack, out = [], []  # older files: rebuild the call tree from the depths (pre-order)
            for i, d in enumerate(self.depth.tolist()):
                del stack[d:]
                out.append(stack[-1] if stack else -1)
                stack.append(i)
            return np.array(out, dtype=np.int64)
        return self._get("parent", make)

    @property
    def leaf(self) -> np.ndarray:
        def make():
            p = self.parent
            return np.bincount(p[p >= 0], minlength=self.n)[: self.n] == 0
        return self._get("leaf", make)

    def ints(self, field) -> np.ndarray:
        return self._get(field, lambda: np.nan_to_num(np.asarray(
            self.c[field] if self.c.get(field) is not None else np.zeros(self.n), dtype=np.float64)).astype(np.int64))

    def own(self, field) -> np.ndarray:
        """torchinfo's "leftover": the part of a subtree count not in the rows of its (first-call) children."""
        def make():
            p, v = self.parent, self.ints(field)
            m = (p >= 0) & ~self.rep
            child = np.bincount(p[m], weights=v[m].astype(np.float64), minlength=self.n)[: self.n]
            return np.maximum(v - np.rint(child).astype(np.int64), 0)
        return self._get("own_" + field, make)

    @property
    def exit_rank(self) -> np.ndarray:
        """Each row's position in the order the calls returned (children before their parent):
        the order in which forward hooks fire, which is how torchsummary lists its rows."""
        def make():
            order, stack = [], []
            for k, d in enumerate(self.depth.tolist()):  # rows are in call order (pre-order)
                while stack and stack[-1][1] >= d:
                    order.append(stack.pop()[0])
                stack.append((k, d))
            order.extend(k for k, _ in reversed(stack))
            rank = np.empty(self.n, dtype=np.int64)
            rank[np.array(order, dtype=np.int64)] = np.arange(self.n)
            return rank
        return self._get("exit_rank", make)

    @property
    def depth_index(self) -> list:
        """torchinfo's depth-idx: the row's number among the rows of its depth."""
        def make():
            count, out = {}, []
            for d in self.depth.tolist():
                count[d] = count.get(d, 0) + 1
                out.append(count[d])
            return out
        return self._get("depth_index", make)

    def torchsummary_params(self, field, keep) -> np.ndarray:
        """torchsummary's rows hold each module's own weights, so they add up to the total; a row
        at the depth limit holds its hidden subtree's."""
        vals = self.own(field)[keep]
        if self.a.depth is not None:
            vals = np.where(self.depth[keep] == self.a.depth, self.ints(field)[keep], vals)
        return vals

    def module_flags(self):
        return self.module_flags_of(self.s)

    @staticmethod
    def module_flags_of(s):
        """Training flag per module index, as it was during the pass when known."""
        flags = getattr(s, "_module_training", None)
        if flags is None:
            mods = s._module_objects()
            if mods is not None:
                flags = [bool(m.training) for m in mods]
        return flags

    def pms_tree(self):
        """pytorch-model-summary's view: Sequential/ModuleList are transparent (their children take
        their place); returns (depth, leaf, effective parent) per row."""
        def make():
            p, types = self.parent.tolist(), self.types
            anc, eff, pd = [0] * self.n, [-1] * self.n, [0] * self.n
            has_child = [False] * self.n
            for i in range(self.n):
                if p[i] < 0:
                    anc[i] = i
                    continue
                e = anc[p[i]]
                eff[i] = e
                if types[i] in _CONTAINERS:
                    anc[i] = e
                    pd[i] = pd[e]
                else:
                    anc[i] = i
                    pd[i] = pd[e] + 1
                    has_child[e] = True
            return np.array(pd, dtype=np.int64), ~np.array(has_child, dtype=bool), eff
        return self._get("pms", make)

    def shape_cells(self, field, keep, parens=False):
        a, src = self.a, self.c[field]
        label = a.batch_as
        if parens and label == -1:
            label = "None"  # Keras' unknown batch
        plain = self.run_batch is None and not parens and self.empty == "-"
        if src is None:
            src, keep = [None], np.zeros(len(keep), dtype=np.int64)
        elif not isinstance(src, list):
            src = list(src)
        # Rows of calls with the same signature share one shape object (capture's interned
        # shape log): format each object once.
        first, inv = C.factorize_objects(src, keep)
        cells = []
        for i in keep[first].tolist():
            o = src[i]
            if field == "input_shapes" and isinstance(o, tuple) and len(o) == 1:
                o = o[0]
            cells.append(fmt_shape(o) if plain else fmt_shape_as(o, self.run_batch, label, parens, self.empty))
        return cells, inv


def _round3(a: np.ndarray) -> np.ndarray:
    """Round to 3 significant digits (what the table shows), so equal cells format once."""
    a = np.asarray(a, dtype=np.float64)
    mag = np.floor(np.log10(np.maximum(np.abs(a), 1.0)))
    scale = 10.0 ** (mag - 2)
    return np.round(a / scale) * scale



def _unique_cells(values, fmt, n: int = 0):
    """(distinct strings, index per row): format each distinct value once. A column's cells are a
    list of str (what C.pad_rows takes) and an int64 array of indices into it, one per row."""
    if values is None:
        return ["-"], np.zeros(n, dtype=np.int64)
    values = np.asarray(values)
    if values.dtype.kind in "fiu":  # numbers: a hash table in C, no sort
        uniq, _first, inv = C.factorize(values.reshape(-1))
    else:
        uniq, inv = np.unique(values, return_inverse=True)
    return [fmt(v) for v in uniq.tolist()], inv.reshape(-1)


_ENCODINGS: dict = {}  # stdout encoding -> takes the table's characters


def _stdout_takes_unicode() -> bool:
    """Whether the box-drawing and µ characters can be printed (else the table is ASCII)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    takes = _ENCODINGS.get(encoding)
    if takes is None:
        try:
            "═─µ".encode(encoding)
            takes = True
        except (UnicodeEncodeError, LookupError):
            takes = False
        _ENCODINGS[encoding] = takes
    return takes


def _lower_bound_cells(cells, flagged, zero):
    """MAC cells of rows with uncounted ops: the value is a lower bound ("4.10K+"), or unknown ("?")."""
    if not flagged.any():
        return cells
    uniq, inv = cells
    k = len(uniq)
    more = [u + "+" for u in uniq] + ["?"]
    return uniq + more, np.where(flagged, np.where(zero, 2 * k, inv + k), inv)


def _widest(cells, *floor) -> int:
    """Width of the longest of the cells (a list of str), at least each floor."""
    return max(max(map(len, cells), default=0), *floor)


def _as_cells(strings: list):
    return list(strings), np.arange(len(strings))


def _json_shape(s):
    if isinstance(s, torch.Size):
        return list(s)
    if isinstance(s, (tuple, list)) and not s:
        return None  # no shapes, shown as "-" like None ([] reads back as a scalar's torch.Size([]))
    if isinstance(s, (tuple, list)):
        return [_json_shape(x) for x in s]
    if isinstance(s, dict):
        return {str(k): _json_shape(v) for k, v in s.items()}
    return None


class ProfileSummary:
    """The result of profile_summary(): rows (one per module call) and totals."""

    def __init__(self, *, columns: dict, total_params: int, trainable_params: int,
                 total_macs: int | None, uncounted_ops: dict, total_time_ns: float | None,
                 device: str, peak_memory: int | None, meta: dict, notes: list,
                 depth: int | None = None, output: Any = None, param_bytes: int = 0,
                 buffer_bytes: int = 0, input_bytes: int = 0, param_bytes_by_dtype: dict | None = None):
        self._cols = columns
        self._rows = None
        self._tables = {}
        self.total_params = int(total_params)
        self.trainable_params = int(trainable_params)
        # None: not counted (no forward pass ran: a structure-only summary)
        self.total_macs = None if total_macs is None else int(total_macs)
        self.total_flops = None if total_macs is None else 2 * int(total_macs)
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
        self._display = {}  # table() options str()/repr()/_repr_html_ use (set by torchscope.summary)

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

    # torchinfo's ModelStatistics names, for code written against torchinfo.summary()
    @property
    def total_mult_adds(self) -> int:
        return self.total_macs

    @property
    def total_input(self) -> int:
        """Bytes of the input tensors."""
        return self.input_bytes

    @property
    def total_param_bytes(self) -> int:
        return self.param_bytes

    @property
    def total_output_bytes(self) -> int:
        """torchinfo estimates this from output sizes; here: the measured peak of the pass (0 if unmeasured)."""
        return int(self.peak_memory or 0)

    @property
    def summary_list(self) -> list:
        return self.rows

    # ---------------------------------------------------------------- output
    def to_dict(self) -> dict:
        rows = []
        for r in self.rows:
            d = {k: None if isinstance(v, float) and v != v else v  # NaN (not computed): JSON null
                 for k, v in r.to_dict().items()}
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
            # the layout torchscope.summary() chose, so a loaded summary prints the same table
            "display": {k: sorted(v) if isinstance(v, (set, frozenset)) else list(v) if isinstance(v, tuple) else v
                        for k, v in self._display.items()},
            "module_training": _View.module_flags_of(self),
            "module_extra_repr": self._extra_reprs(),
            "modules": self._module_table(),
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

    # ---------------------------------------------------------------- tables
    def _table_args(self, depth=None, ascii_only=None, columns=None, sort=None, top=None, max_width=None,
                    style=None, row_settings=None, batch_as=None, col_width=None, tty=True) -> _TableArgs:
        style = "torchscope" if style is None else style
        if style not in STYLES:
            raise ValueError(f"style={style!r}: choose one of {', '.join(STYLES)}")
        rows = check_row_settings(row_settings)
        if rows is None:  # each tool's default: torchinfo numbers its rows (depth-idx)
            rows = frozenset({"depth"}) if style == "torchinfo" else frozenset()
        if ascii_only is None:
            ascii_only = ("ascii_only" in rows or os.environ.get("TORCHSCOPE_ASCII") == "1"
                          or not _stdout_takes_unicode())
        ascii_only = bool(ascii_only) or "ascii_only" in rows
        if max_width is not None and (isinstance(max_width, bool) or not isinstance(max_width, (int, np.integer))
                                      or max_width < 1):
            raise ValueError(f"max_width={max_width!r}: must be a positive integer (characters per line)")
        if max_width is None and tty and style == "torchscope" and sys.stdout.isatty():
            max_width = shutil.get_terminal_size((200, 24)).columns or None  # (a terminal may report 0)
        depth = check_depth(self.depth if depth is None else depth)
        if (sort is not None or top is not None) and style != "torchscope":
            raise ValueError(f"sort=/top= apply to the torchscope style only, not style={style!r}")
        if col_width is not None and (isinstance(col_width, bool) or not isinstance(col_width, int)
                                      or col_width <= 0):
            raise ValueError(f"col_width={col_width!r}: must be a positive integer")
        if top is not None and (isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1):
            raise ValueError(f"top={top!r}: must be a positive integer (the number of rows to keep)")
        cols = tuple(table_columns(columns)) if columns is not None else None
        unweighed = [c for c in cols or () if c.startswith("w_") and self._cols.get(c) is None]
        if unweighed:
            raise ValueError(f"columns {', '.join(unweighed)}: weight statistics were not computed for this "
                             "summary; profile with weight_stats=True")
        return _TableArgs(depth=None if depth is None else int(depth), ascii_only=ascii_only, columns=cols,
                          sort=sort, top=top, max_width=max_width, style=style, rows=rows, batch_as=batch_as,
                          col_width=col_width)

    def table(self, depth: int | None = None, ascii_only: bool | None = None, columns=None,
              sort: str | None = None, top: int | None = None, max_width: int | None = None, *,
              style: str | None = None, row_settings=None, batch_as=None, col_width: int | None = None) -> str:
        """The summary table.

        columns: keys of TABLE_COLUMNS (or torchinfo's col_names: input_size, output_size, num_params,
        params_percent, kernel_size, mult_adds, trainable, plus self_time, total_time, mem_allocated,
        mem_retained, num_ops, flops) to show (default: the style's; for torchscope DEFAULT_COLUMNS, plus
        backward times when a backward pass ran). sort: a column key; rows become a flat list sorted by
        it, largest first. top: keep the first N rows. max_width: drop right-most columns until the table
        fits (default: the terminal's width when printing to a terminal, else unlimited); the table says
        which. sort/top/max_width: torchscope style only.

        style: "torchscope" (default), "torchinfo", "torchsummary", "pms" (pytorch-model-summary),
        "keras", "lightning", "tree" (print(model) with the columns appended). depth: deepest row shown
        (torchinfo: rows deeper are folded into their parent's counts; pms/keras: the rows at that depth
        plus shallower leaves; lightning: default 1). row_settings: torchinfo's "depth" (depth-idx
        numbers; torchinfo and torchscope styles; torchinfo's default), "var_names" (torchinfo style; the
        other styles already name modules or, like torchsummary, never do), "ascii_only",
        "hide_recursive_layers" (hide a module's second and later calls). batch_as: show the batch dimension (dim 0 equal to the run's
        batch size) as this value, e.g. -1 like torchsummary (Keras shows None). col_width: torchinfo's
        minimum column width (25).
        """
        a = self._table_args(depth, ascii_only, columns, sort, top, max_width, style, row_settings, batch_as,
                             col_width)
        key = a.key()
        if key not in self._tables:
            self._tables[key] = self._render(a)
        return self._tables[key]

    def _render(self, a) -> str:
        g = self._grid(a)
        return getattr(self, "_layout_" + a.style)(g, a)

    def _grid(self, a) -> dict:
        """The table as data: header titles, columns as (distinct strings, index per line), footer lines."""
        v = _View(self, a)
        return getattr(self, "_grid_" + a.style)(v)

    # .......................................................... cells
    def _cells(self, key, keep, v):
        """(distinct strings, index per kept row) of one column, formatted in v's style."""
        cols, style, n = self._cols, v.a.style, len(keep)
        compact = style in ("torchscope", "tree")
        comma = (lambda x: f"{int(x):,}")
        if key == "output_shape":
            return v.shape_cells("output_shapes", keep, parens=style == "keras")
        if key == "input_shape":
            return v.shape_cells("input_shapes", keep, parens=style == "keras")
        rep = v.rep[keep]
        if key in ("params", "trainable_params"):
            if style == "torchinfo":
                full = v.ints(key)[keep]
                vals = self._ti_select(key, keep, v)
                code = np.where(vals > 0, vals * 2 + (self._ti_select("trainable_params", keep, v) == 0), 0)
                code = np.where(rep & (full > 0), -1, code)
                return _unique_cells(code, lambda c: "(recursive)" if c == -1 else "--" if c == 0 else
                                     (f"({c // 2:,})" if c % 2 else f"{c // 2:,}"))
            fmt = fmt_count if compact else fmt_human if style == "lightning" else comma
            if style == "torchsummary":
                p = _unique_cells(v.torchsummary_params(key, keep), fmt, n)
            else:
                p = self._numbers(key, keep, fmt, kind="count" if compact else None)
            shared = rep if compact else rep & (v.ints("params")[keep] > 0)  # torchscope marks every repeat
            if shared.any():
                p = (p[0] + ["(shared)"], np.where(shared, len(p[0]), p[1]))
            return p
        if key == "params_percent":
            total = max(self.total_params, 1)
            vals = (self._ti_select("params", keep, v) if style == "torchinfo" else v.ints("params")[keep])
            pct = np.where(vals > 0, vals / total, 0.0)
            pct = np.where(rep & (v.ints("params")[keep] > 0), -1.0, pct)
            return _unique_cells(pct, lambda x: "(recursive)" if x < 0 else v.empty if x == 0 else f"{x:.2%}")
        if key == "trainable":
            full, tr = v.ints("params")[keep], v.ints("trainable_params")[keep]
            code = np.where(full == 0, 0, np.where(tr == 0, 1, np.where(tr == full, 2, 3)))
            return _unique_cells(code, lambda c: (v.empty, "False", "True", "Partial")[c])
        if key in ("macs", "flops"):
            if style == "torchinfo":
                vals = self._ti_select("macs", keep, v) * (2 if key == "flops" else 1)
                return _unique_cells(vals, lambda x: f"{x:,}" if x else "--")
            cells = self._numbers(key, keep, fmt_count if compact else comma, kind="count" if compact else None)
            unc = cols.get("macs_uncounted_ops")
            if compact and unc is not None and cols.get(key) is not None:
                return _lower_bound_cells(cells, np.asarray(unc)[keep] > 0, np.asarray(cols[key])[keep] == 0)
            return cells
        if key == "kernel_size":
            kernel = cols.get("kernel_size")
            return _as_cells([str(list(kernel[k])) if kernel is not None and kernel[k] else v.empty
                              for k in keep.tolist()])
        if key == "mode":
            flags, mi = v.module_flags(), cols.get("module_index")
            if flags is None or mi is None:
                return _unique_cells(None, str, n)
            return _as_cells(["?" if not 0 <= m < len(flags) else ("train" if flags[m] else "eval")
                              for m in np.asarray(mi)[keep].tolist()])
        if key == "parent_layers":
            _pd, _leaf, eff = v.pms_tree()
            types, path = v.types, {}

            def chain(i):
                if i < 0:
                    return ""
                if i not in path:
                    up = chain(eff[i])
                    path[i] = f"{up}/{types[i]}" if up else types[i]
                return path[i]
            return _as_cells([chain(eff[k]) or v.empty for k in keep.tolist()])
        field, round3, kind = _NUMERIC[key]
        fmt = {"time": v.time_fmt, "bytes": fmt_bytes, "count": fmt_count, "int": str}.get(kind)
        if key == "flops_per_s":
            fmt = lambda x: fmt_count(x) + "FLOP/s" if x else "-"  # noqa: E731
        elif kind is None:  # profile_summary(weight_stats=True)
            fmt = lambda x: "-" if x != x else f"{x:.4g}"  # noqa: E731
        return self._numbers(field, keep, fmt, round3, kind=kind, ascii_only=v.a.ascii_only)

    def _render_spec(self, key, keep, v):
        """(kind, data, index) of one torchscope-style column for C.render_grid: a column C formats
        (_NUMERIC's kinds, params with their "(shared)" marks, MACs with their lower-bound marks) as
        the summary's whole column of numbers, which C reads at the kept rows; any other as the cells
        of the kept rows (_cells)."""
        cols = self._cols
        field, _round3, kind = _NUMERIC.get(key, (key, False, "count" if key in _MARKED else None))
        vals = cols.get(field) if kind is not None else None
        if vals is not None:
            vals = np.asarray(vals)
        if vals is None or vals.ndim != 1 or vals.dtype.kind not in ("i" if kind == "int" else "iuf"):
            uniq, inv = self._cells(key, keep, v)
            return -1, list(uniq), inv
        marks = None
        if key in ("params", "trainable_params"):  # the torchscope style marks every repeated call
            if v.rep.any():
                marks = v.rep.astype(np.uint8) * np.uint8(3)
        elif key in ("macs", "flops"):  # rows running uncounted ops: a lower bound (+), or unknown (?)
            unc = cols.get("macs_uncounted_ops")
            flagged = np.asarray(unc) > 0 if unc is not None else None
            if flagged is not None and flagged.any():
                marks = np.where(flagged, np.where(vals == 0, 2, 1), 0).astype(np.uint8)
        return C.NUMBER_KINDS[kind], vals, marks

    def _numbers(self, field, keep, fmt, round3=False, kind=None, ascii_only=False):
        vals = self._cols.get(field)
        if vals is None:
            return _unique_cells(None, fmt, len(keep))
        vals = np.asarray(vals)[keep]
        if kind is not None and vals.dtype.kind in ("i" if kind == "int" else "iuf"):  # formatted in C
            return C.number_cells(vals, C.NUMBER_KINDS[kind], ascii_only)
        return _unique_cells(_round3(vals) if round3 else vals, fmt, len(keep))

    @staticmethod
    def _ti_select(field, keep, v):
        """torchinfo's rule: a leaf, or a row at the depth limit, shows its count with its children;
        a container above the limit only what its child rows do not show (its own ops/params)."""
        D = v.a.depth
        at_limit = v.depth[keep] == D if D is not None else np.zeros(len(keep), dtype=bool)
        full = v.ints(field)[keep]
        own = v.ints("self_macs")[keep] if field == "macs" else v.own(field)[keep]
        return np.where(v.leaf[keep] | at_limit, full, own)

    def _columns_for(self, a, default):
        if a.columns is not None:
            return list(a.columns)
        cols = list(default)
        if a.style == "lightning" and self.total_time_ns is None:  # no pass: Lightning has no sizes to show
            cols = [c for c in cols if c not in ("input_shape", "output_shape")]
        if a.style in ("torchscope", "tree") and self._cols.get("bwd_time_ns") is not None:
            cols[5:5] = ["bwd_self", "bwd_total"]  # backward ran: its times beside the forward's
        return cols

    def _title(self, a, key):
        return _STYLE_TITLES.get(a.style, {}).get(key, TABLE_COLUMNS[key])

    def _value_columns(self, keys, keep, v):
        return [(self._title(v.a, c), self._cells(c, keep, v)) for c in keys]

    def _param_lines(self):
        return [f"Total params: {self.total_params:,}", f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.total_params - self.trainable_params:,}"]

    def _memory_lines(self, mib=False):
        """torchinfo's / torchsummary's memory lines, with measured values (they estimate them)."""
        scale = 2.0 ** 20 if mib else 1e6
        peak, params = self.peak_memory, self.param_bytes + self.buffer_bytes
        what = "parameters + buffers" if self.buffer_bytes else "parameters"
        return [f"Input size (MB): {self.input_bytes / scale:0.2f}",
                "Forward/backward pass size (MB): " + (f"{peak / scale:0.2f}   (measured: peak allocated during "
                                                      "the pass)" if peak is not None else "not measured"),
                f"Params size (MB): {params / scale:0.2f}   (measured: {what})",
                f"Estimated Total Size (MB): {(self.input_bytes + (peak or 0) + params) / scale:0.2f}   "
                + ("(measured, not estimated: input + pass peak + params)" if peak is not None else
                   "(input + params only: a lower bound, the pass's memory was not measured)")]

    def _macs_not_counted(self) -> str:
        """Why total_macs is None (kept in meta, so a summary loaded from JSON still says it)."""
        return self.meta.get("macs_not_counted") or "no forward pass ran"

    def _macs_line(self):
        if self.total_macs is None:
            return f"Total MACs: not counted ({self._macs_not_counted()})"
        unknown = bool(self._listed_uncounted())  # a lower bound then
        plus = "+" if unknown else ""
        return (f"Total MACs: {fmt_count(self.total_macs)}{plus}   (FLOPs: {fmt_count(self.total_flops)}{plus})"
                + ("   lower bound: see the uncounted ops" if unknown else ""))

    def _listed_uncounted(self) -> dict:
        """Uncounted ops by name, without the zero-MAC group (its key starts with "(")."""
        return {k: v for k, v in self.uncounted_ops.items() if not k.startswith("(")}

    def _uncounted_line(self, legend: bool = False):
        """legend: the style marks lower-bound MAC cells (+, ?), say what they mean."""
        real = self._listed_uncounted()
        if not real:
            return []
        lines = ["Uncounted ops (no MAC formula; totals exclude them): "
                 + ", ".join(f"{k} x{v}" for k, v in sorted(real.items()))]
        unc = self._cols.get("macs_uncounted_ops")
        if legend and unc is not None and (np.asarray(unc) > 0).any():
            lines.append("MACs marked + are a lower bound, ? unknown: the row runs uncounted ops")
        return lines

    def _note_lines(self):
        return [f"Note: {n}" for n in self.notes]

    # .......................................................... torchscope (str(summary))
    def _grid_torchscope(self, v):
        a, cols = v.a, self._cols
        d = cols["depth"]
        keep = np.nonzero(d <= a.depth)[0] if a.depth is not None else np.arange(len(d))
        if "hide_recursive_layers" in a.rows:
            keep = keep[~v.rep[keep]]
        if a.sort is not None:
            if a.sort not in _SORT_FIELDS:
                raise ValueError(f"sort={a.sort!r}: choose one of {', '.join(_SORT_FIELDS)}")
            vals = cols.get(_SORT_FIELDS[a.sort])
            if vals is None:
                raise ValueError(f"sort={a.sort!r}: that column was not measured in this run")
            vals = np.asarray(vals, dtype=np.float64)[keep]
            keep = keep[np.argsort(-vals, kind="stable")]
        if a.top is not None:
            keep = keep[:a.top]
        rep = v.rep[keep]
        names, types = cols["name"], cols["type"]
        flat = a.sort is not None
        numbered = "depth" in a.rows
        idx = v.depth_index if numbered else None
        if numbered:  # (depth-idx numbers: torchinfo's row setting)
            labels = [f"{'' if flat else '  ' * dk}{names[k] if flat or not dk else names[k].rpartition('.')[2]} "
                      f"({types[k]}){f': {dk}-{idx[k]}' if dk else ''}{' *' if r else ''}"
                      for k, dk, r in zip(keep.tolist(), d[keep].tolist(), rep.tolist())]
        else:
            labels = C.tree_labels(names, types, keep, d[keep], rep, flat)
        # Columns as C.render_grid takes them: (title, left-aligned, kind, data, index); numbers
        # are read at the kept rows (None: all of them, in order)
        specs = [("Layer (type)", True, -1, labels, np.arange(len(labels)))]
        specs += [(self._title(a, c), False, *self._render_spec(c, keep, v)) for c in self._columns_for(a, DEFAULT_COLUMNS)]
        every_row = a.depth is None and a.sort is None and a.top is None and "hide_recursive_layers" not in a.rows
        return {"specs": specs, "keep": None if every_row else keep,
                "footer": lambda hidden: self._torchscope_footer(a, rep.any(), hidden)}

    def _torchscope_footer(self, a, repeated, hidden):
        time_fmt = (lambda x: fmt_time(x, True)) if a.ascii_only else fmt_time
        lines = self._param_lines()
        if self.param_bytes_by_dtype:
            lines.append("Params size: " + ", ".join(f"{fmt_bytes(v)} {k}" for k, v in
                                                     sorted(self.param_bytes_by_dtype.items()))
                         + (f"; buffers {fmt_bytes(self.buffer_bytes)}" if self.buffer_bytes else ""))
        lines.append(self._macs_line())
        lines += self._uncounted_line(legend=True)
        bwd = getattr(self, "backward_time_ns", None)
        if self.total_time_ns is not None:  # the whole measured pass: with backward, that is in it too
            ran_backward = bwd is not None or self.meta.get("pass") == "forward + backward"
            what = "Pass time (forward, loss and backward)" if ran_backward else "Forward pass time"
            lines.append(f"{what}: {time_fmt(self.total_time_ns)} "
                         f"(median of {self.meta.get('iters', 1)}, {self.device})")
        if bwd is not None:
            lines.append(f"Backward pass time: {time_fmt(bwd)} (AccumulateGrad "
                         f"{time_fmt(getattr(self, 'accumulate_grad_time_ns', None))}, outside modules "
                         f"{time_fmt(getattr(self, 'backward_outside_modules_ns', None))})")
        if self.peak_memory is not None:
            lines.append(f"Peak memory during forward: {fmt_bytes(self.peak_memory)}")
        if repeated:
            lines.append("* module called more than once: its params are counted at the first call")
        if hidden:
            lines.append(f"Columns hidden to fit {a.max_width} characters: {', '.join(reversed(hidden))}")
        return lines + self._note_lines()

    def _layout_torchscope(self, g, a):
        specs = g["specs"]
        # the title line and the rows in one C pass (numbers formatted straight into the lines)
        title, rows, width, kept = C.render_grid(specs, g["keep"], "  ", a.ascii_only, a.max_width or 0)
        hidden = [spec[0] for spec in reversed(specs[kept:])]  # (the footer names them right to left)
        rule = ("=" if a.ascii_only else "═") * width
        thin = ("-" if a.ascii_only else "─") * width
        lines = [rule, title, thin] + ([rows] if rows else []) + [rule]
        lines += g["footer"](hidden)
        lines.append(rule)
        return "\n".join(lines)

    # .......................................................... torchinfo
    def _grid_torchinfo(self, v):
        a = v.a
        keep = np.arange(v.n)
        if a.depth is not None:
            keep = keep[v.depth[keep] <= a.depth]
        if "hide_recursive_layers" in a.rows:
            keep = keep[~v.rep[keep]]
        numbered, var = "depth" in a.rows, "var_names" in a.rows
        idx = v.depth_index
        up, last, bar = ("+ ", "+ ", "|    ") if a.ascii_only else ("├─", "└─", "│    ")
        labels = []
        for k in keep.tolist():
            d, t = int(v.depth[k]), v.types[k]
            start = "" if d == 0 else up if d == 1 else bar * (d - 1) + last
            name = t + (f" ({v.names[k].rpartition('.')[2] if d else t})" if var else "")
            labels.append(start + name + (f": {d}-{idx[k]}" if numbered and d > 0 else ""))
        head = "Layer (type" + (" (var_name)" if var else "") + (":depth-idx" if numbered else "") + ")"
        columns = [(head, _as_cells(labels))]
        columns += self._value_columns(self._columns_for(a, STYLE_COLUMNS["torchinfo"]), keep, v)
        m = self.total_macs
        if m is None:
            top = self._param_lines() + [f"Total mult-adds: not counted ({self._macs_not_counted()})"]
            if self.total_time_ns is None:  # torchinfo's input-less summary(model): no pass, no memory lines
                return {"columns": columns, "footer": [top, self._note_lines()]}
            return {"columns": columns, "footer": [top, self._memory_lines(), self._note_lines()]}
        unit, scale = ("T", 1e12) if m >= 1e12 else ("G", 1e9) if m >= 1e9 else ("M", 1e6)
        top = self._param_lines() + [f"Total mult-adds ({unit}): {m / scale:,.2f}"] + self._uncounted_line()
        return {"columns": columns, "footer": [top, self._memory_lines(), self._note_lines()]}

    def _layout_torchinfo(self, g, a):
        columns = g["columns"]
        label_w = _widest(columns[0][1][0], len(columns[0][0])) + 1
        widths = [max(40, -(-label_w // 5) * 5)]
        widths += [max(a.col_width or 25, _widest(u, len(t)) + 1)
                   for t, (u, _i) in columns[1:]]
        lines = self._padded_rows(columns, widths, [True] * len(columns), " ")
        width = sum(widths) + len(widths)
        div = "=" * width
        out = [div, lines[0].rstrip(), div] + [ln.rstrip() for ln in lines[1:]] + [div]
        for block in g["footer"]:
            if block:
                out += block + [div]
        return "\n".join(out)

    @staticmethod
    def _padded_rows(columns, widths, left, sep, trailing=True):
        """Lines of a grid, titles first: each line's cells padded to their column's width
        (left- or right-aligned) and joined by sep; assembled in C, one string per line."""
        return C.pad_rows([(title, uniq, inv, w, lf)
                           for (title, (uniq, inv)), w, lf in zip(columns, widths, left)],
                          sep, sep if trailing else "")

    # .......................................................... torchsummary
    def _grid_torchsummary(self, v):
        a = v.a
        # At the depth limit a module stands for its hidden subtree (containers too), so the
        # rows still add up to the total (a footer line says when they cannot).
        keep = np.array([k for k in range(v.n) if v.depth[k] >= 1
                         and (v.types[k] not in _CONTAINERS or v.depth[k] == a.depth)
                         and (a.depth is None or v.depth[k] <= a.depth)
                         and not ("hide_recursive_layers" in a.rows and v.rep[k])], dtype=np.int64)
        if not len(keep) and v.n:
            keep = np.array([0], dtype=np.int64)  # a model without submodules: its own row
        keep = keep[np.argsort(v.exit_rank[keep], kind="stable")]  # torchsummary: as its forward hooks fire
        labels = [f"{v.types[k]}-{i + 1}" for i, k in enumerate(keep.tolist())]
        columns = [("Layer (type)", _as_cells(labels))]
        columns += self._value_columns(self._columns_for(a, STYLE_COLUMNS["torchsummary"]), keep, v)
        shown = v.torchsummary_params("params", keep)  # what the Param # column holds
        params = self._param_lines()
        if int(shown.sum()) != self.total_params:  # torchsummary would print the rows' sum as the total
            params.append(f"(the rows add up to {int(shown.sum()):,}: the total counts each Parameter once, "
                          "including those the model holds itself or in modules it did not call)")
        return {"columns": columns, "footer": [params, self._memory_lines(mib=True), self._note_lines()]}

    def _layout_torchsummary(self, g, a):
        columns = g["columns"]
        # torchsummary's "{:>20}  {:>25} {:>15}": two spaces before the shapes (one wider column here)
        widths = [_widest(u, 20 if j == 0 else 25 if j == 1 else 15, len(t)) + (j == 1)
                  for j, (t, (u, _i)) in enumerate(columns)]
        rows = self._padded_rows(columns, widths, [False] * len(columns), " ", trailing=False)
        width = max(64, max(len(r) for r in rows))
        out = ["-" * width, rows[0], "=" * width] + rows[1:] + ["=" * width]
        for block in g["footer"]:
            if block:
                out += block + ["-" * width]
        return "\n".join(out)

    # .......................................................... pytorch-model-summary
    def _grid_pms(self, v):
        a = v.a
        pd, pleaf, _eff = v.pms_tree()
        D = a.depth
        keep = np.array([k for k in range(v.n) if not v.rep[k] and (k == 0 or v.types[k] not in _CONTAINERS)
                         and ((D is not None and pd[k] == D) or ((D is None or pd[k] < D) and pleaf[k]))],
                        dtype=np.int64)
        labels = [f"{v.types[k]}-{i + 1}" for i, k in enumerate(keep.tolist())]
        keys = self._columns_for(a, STYLE_COLUMNS["pms"])
        front = [c for c in keys if c == "parent_layers"]  # pytorch-model-summary puts it first
        columns = self._value_columns(front, keep, v) + [("Layer (type)", _as_cells(labels))]
        columns += self._value_columns([c for c in keys if c != "parent_layers"], keep, v)
        params = self._param_lines()
        batch = (getattr(self, "_display", None) or {}).get("pms_batch_size")
        if batch is not None:  # pytorch-model-summary prints a batch_size it was given, nothing more
            params = params + [f"Batch size: {batch:,}"]
        return {"columns": columns, "footer": [params, self._note_lines()]}

    # pytorch-model-summary's widths: its name and shape columns 3 wider than their longest value (at
    # least 15, "Parent Layers" 13), two spaces before the shapes, the counts 15 wide; its rules are
    # 35 + those widths long (one more than a row without parent layers)
    _PMS_WIDTH = {"Parent Layers": (13, 3), "Layer (type)": (15, 3), "Output Shape": (15, 4),
                  "Input Shape": (15, 4), "Param #": None, "Tr. Param #": None}

    def _layout_pms(self, g, a):
        columns = g["columns"]
        pms_form = all(t in self._PMS_WIDTH for t, _c in columns)
        widths = []
        for t, (u, _i) in columns:
            rule = self._PMS_WIDTH[t] if pms_form else (15, 3)
            widths.append(15 if rule is None else _widest(u, rule[0], 0 if pms_form else len(t)) + rule[1])
        rows = self._padded_rows(columns, widths, [False] * len(columns), " ", trailing=False)
        width = max(len(r) for r in rows)
        if pms_form:
            width = 35 + sum(w - t.endswith("Shape") for (t, _c), w in zip(columns, widths)
                             if self._PMS_WIDTH[t] is not None)
        out = ["-" * width, rows[0], "=" * width] + rows[1:] + ["=" * width]
        for block in g["footer"]:
            if block:
                out += block
        out.append("-" * width)
        return "\n".join(out)

    # .......................................................... keras
    def _grid_keras(self, v):
        a = v.a
        D = a.depth
        leaf = v.leaf
        keep = np.array([k for k in range(v.n) if not v.rep[k] and v.depth[k] >= 1 and
                         ((D is not None and v.depth[k] == D) or ((D is None or v.depth[k] < D) and leaf[k]))],
                        dtype=np.int64)
        if not len(keep) and v.n:
            keep = np.array([0], dtype=np.int64)
        labels = [f"{v.names[k]} ({v.types[k]})" for k in keep.tolist()]
        columns = [("Layer (type)", _as_cells(labels))]
        columns += self._value_columns(self._columns_for(a, STYLE_COLUMNS["keras"]), keep, v)
        # Keras shows a layer called with different shapes (a shared layer) as "multiple"
        if v.rep.any() and v.c["output_shapes"] is not None:
            module = np.asarray(v.c["module_index"]).tolist()
            shapes: dict = {}
            for m, out in zip(module, v.c["output_shapes"]):
                shapes.setdefault(m, set()).add(repr(out))
            multiple = [len(shapes[module[k]]) > 1 for k in keep.tolist()]
            for j, (title, (uniq, inv)) in enumerate(columns):
                if title == "Output Shape" and any(multiple):
                    cells = [("multiple" if mm else uniq[i]) for i, mm in zip(np.asarray(inv).tolist(), multiple)]
                    columns[j] = (title, _as_cells(cells))
        lines = self._param_lines()
        lines[0] += f" ({fmt_bytes(self.param_bytes)})"
        title = [f'Model: "{v.types[0] if v.n else "?"}"']
        return {"columns": columns, "title": title, "footer": [lines, self._note_lines()]}

    def _layout_keras(self, g, a):
        columns = g["columns"]
        widths = [_widest(u, m, len(t)) + 1
                  for m, (t, (u, _i)) in zip([28, 25] + [9] * len(columns), columns)]
        rows = [" " + r.rstrip() for r in self._padded_rows(columns, widths, [True] * len(columns), " ")]
        width = max(65, max(len(r) for r in rows) + 1)
        out = g["title"] + ["_" * width, rows[0], "=" * width] + rows[1:] + ["=" * width]
        for block in g["footer"]:
            out += block
        out.append("_" * width)
        return "\n".join(out)

    def _module_objects(self):
        """The model's modules by module index, when this summary was made in this process."""
        trace = getattr(self, "_trace", None)
        return trace.index.modules if trace is not None else getattr(self, "_modules", None)

    def _extra_reprs(self):
        """Each module's extra_repr() on one line (the tree style's text), by module index: from the
        modules, or as loaded from JSON; None when neither is here."""
        mods = self._module_objects()
        if mods is None:
            return getattr(self, "_loaded_extra_reprs", None)
        out = []
        for m in mods:
            try:
                out.append(" ".join(m.extra_repr().split("\n")))
            except Exception:  # a user extra_repr that fails: the tree still prints
                out.append("")
        return out

    # .......................................................... module-ordered (lightning, tree)
    def _module_table(self) -> dict | None:
        """Every module of the model by module index, called or not (name, type, depth, parent,
        params, trainable_params): what the tree and Lightning styles list, kept in the JSON so a
        loaded summary still lists the modules no call reached. None when neither is here."""
        trace = getattr(self, "_trace", None)
        if trace is None or getattr(self, "_modules_table", None) is not None:  # loaded, or computed before
            return getattr(self, "_modules_table", None)
        from .count import tensor_counts

        idx = trace.index
        tc = tensor_counts(idx)
        self._modules_table = {  # (kept: computed once per summary)
            "name": list(idx.names), "type": list(idx.types), "depth": np.asarray(idx.depth).tolist(),
            "parent": np.asarray(idx.parent).tolist(), "params": np.asarray(tc.params).tolist(),
            "trainable_params": np.asarray(tc.trainable).tolist()}
        return self._modules_table

    def _module_entries(self, v, min_depth, max_depth):
        """(row or -1, module index, qualified name, type, depth, has children) in module registration
        order: every module of the model when the raw trace is here (uncalled ones get row -1), else
        the modules' first calls."""
        mi_col = self._cols.get("module_index")
        first = {}
        if mi_col is not None:
            for k, m in enumerate(np.asarray(mi_col).tolist()):
                if not v.rep[k]:
                    first.setdefault(int(m), k)
        table = self._module_table()
        out = []
        if table is not None:
            kids = set(table["parent"])
            for m, (name, typ, d) in enumerate(zip(table["name"], table["type"], table["depth"])):
                if min_depth <= d and (max_depth is None or d <= max_depth):
                    out.append((first.get(m, -1), m, name or typ, typ, d, m in kids))
            return out
        order = sorted(first.items()) if mi_col is not None else [(k, k) for k in range(v.n) if not v.rep[k]]
        kids = set(v.parent[k] for k in range(v.n))
        for m, k in order:
            d = int(v.depth[k])
            if min_depth <= d and (max_depth is None or d <= max_depth):
                out.append((k, m, v.names[k], v.types[k], d, k in kids))
        return out

    def _entry_cells(self, key, rows, v, blank):
        """_cells for entries that may have no row (-1): those get `blank`."""
        rows = np.asarray(rows, dtype=np.int64)
        ok = rows >= 0
        uniq, inv = self._cells(key, rows[ok], v)
        full = np.full(len(rows), len(uniq), dtype=np.int64)
        full[ok] = inv
        return list(uniq) + [blank], full

    def _grid_lightning(self, v):
        a = v.a
        entries = self._module_entries(v, 1, 1 if a.depth is None else a.depth)
        rows = [e[0] for e in entries]
        flags = v.module_flags()
        table = self._module_table() if any(e[0] < 0 for e in entries) else None
        columns = [("", _as_cells([str(i) for i in range(len(entries))])),
                   ("Name", _as_cells([e[2] for e in entries])), ("Type", _as_cells([e[3] for e in entries]))]
        for key in self._columns_for(a, STYLE_COLUMNS["lightning"]):
            if key in ("params", "trainable_params"):
                vals = []
                for k, m, *_rest in entries:
                    vals.append(int(v.ints(key)[k]) if k >= 0 else int(table[key][m]))  # (never called)
                cells = _unique_cells(np.array(vals, dtype=np.int64), fmt_human, len(vals))
            elif key == "mode":
                cells = _as_cells(["?" if flags is None or not 0 <= m < len(flags) else
                                   ("train" if flags[m] else "eval") for _k, m, *_rest in entries])
            else:
                cells = self._entry_cells(key, rows, v, "?")
            columns.append((self._title(a, key), cells))
        lines = [f"{fmt_human(self.trainable_params):<10}Trainable params",
                 f"{fmt_human(self.total_params - self.trainable_params):<10}Non-trainable params",
                 f"{fmt_human(self.total_params):<10}Total params",
                 f"{self.param_bytes / 1e6:<10,.3f}Total estimated model params size (MB)"]  # (exact here)
        if flags is not None:
            sub = list(flags)[1:]  # Lightning counts the submodules, not the root
            lines += [f"{sum(map(bool, sub)):<10}Modules in train mode",
                      f"{len(sub) - sum(map(bool, sub)):<10}Modules in eval mode"]
        return {"columns": columns, "footer": [lines, self._note_lines()]}

    def _layout_lightning(self, g, a):
        columns = g["columns"]
        widths = [_widest(u, len(t)) for t, (u, _i) in columns]
        rows = [r.rstrip() for r in self._padded_rows(columns, widths, [True] * len(columns), " | ",
                                                      trailing=False)]
        width = max(len(r) for r in rows)
        out = [rows[0], "-" * width] + rows[1:] + ["-" * width]
        for block in g["footer"]:
            out += block
        return "\n".join(out)

    def _grid_tree(self, v):
        a = v.a
        entries = self._module_entries(v, 0, a.depth)
        extras = self._extra_reprs()
        labels, rows, stack = [], [], []

        def close(to_depth):
            while stack and stack[-1] >= to_depth:
                d = stack.pop()
                labels.append("  " * d + ")")
                rows.append(-1)
        for k, m, name, typ, d, kids in entries:
            close(d)
            head = "  " * d + (f"({name.rpartition('.')[2]}): " if d else "") + typ
            extra = extras[m] if extras is not None and 0 <= m < len(extras) else ""
            if kids and (a.depth is None or d < a.depth):
                labels.append(head + "(" + extra)
                stack.append(d)
            else:
                labels.append(head + "(" + ("..." if kids else extra) + ")")
            if k < 0:
                labels[-1] += "  [not called]"
            rows.append(k)
        close(0)
        columns = [("Module", _as_cells(labels))]
        for key in self._columns_for(a, STYLE_COLUMNS["tree"]):
            columns.append((self._title(a, key), self._entry_cells(key, rows, v, "")))
        lines = self._param_lines() + [self._macs_line()] + self._uncounted_line(legend=True)
        return {"columns": columns, "footer": [lines, self._note_lines()]}

    def _layout_tree(self, g, a):
        columns = g["columns"]
        widths = [_widest(u, len(t)) for t, (u, _i) in columns]
        left = [True] + [False] * (len(columns) - 1)
        rows = [r.rstrip() for r in self._padded_rows(columns, widths, left, "  ", trailing=False)]
        width = max(len(r) for r in rows)
        rule = ("=" if a.ascii_only else "═") * width
        thin = ("-" if a.ascii_only else "─") * width
        out = [rule, rows[0], thin] + rows[1:] + [rule]
        for block in g["footer"]:
            out += block
        out.append(rule)
        return "\n".join(out)

    # ---------------------------------------------------------------- display
    def _display_kwargs(self):
        disp = dict(getattr(self, "_display", None) or {})  # (pms_batch_size: read by the pms grid)
        return {k: v for k, v in disp.items() if k not in ("extra", "pms_batch_size")}, disp.get("extra")

    def _repr_html_(self) -> str:
        """Jupyter: the summary (in its display layout, see torchscope.summary) as an HTML table."""
        import html

        kw, extra = self._display_kwargs()
        a = self._table_args(**kw, tty=False)
        a.max_width = None
        g = self._grid(a)
        if "specs" in g:  # the torchscope style's columns, as C.render_grid takes them
            from ._pyrecorder import grid_cells
            columns = [(t, grid_cells(kind, data, index, a.ascii_only, g["keep"]))
                       for t, _left, kind, data, index in g["specs"]]
        else:
            columns = g["columns"]
        footer = g["footer"]([]) if callable(g["footer"]) else [ln for b in g["footer"] for ln in b]
        esc = html.escape
        out = [f"<p>{esc(t)}</p>" for t in g.get("title", [])]
        out.append("<table><thead><tr>" + "".join(f"<th>{esc(t)}</th>" for t, _c in columns)
                   + "</tr></thead><tbody>")
        cells = [np.asarray(u, dtype=object)[i].tolist() for _t, (u, i) in columns]
        first = 1 if a.style == "lightning" else 0
        for r in zip(*cells):
            tds = []
            for j, c in enumerate(r):
                text = esc(c)
                if j == first:  # keep the tree indentation
                    stripped = text.lstrip(" ")
                    text = "&nbsp;" * (len(text) - len(stripped)) + stripped
                    tds.append(f"<td style=\"text-align:left\">{text}</td>")
                else:
                    tds.append(f"<td>{text}</td>")
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</tbody></table>")
        out.append("<pre>" + esc("\n".join(footer + ([extra] if extra else []))) + "</pre>")
        return "\n".join(out)

    def __str__(self):
        kw, extra = self._display_kwargs()
        text = self.table(**kw)
        return text + "\n" + extra if extra else text

    def __repr__(self):
        return self.__str__()


def run_meta(device: str, iters: int, warmup: int, inputs_desc: str) -> dict:
    return {
        "torch_version": torch.__version__,
        "device": device,
        "iters": iters,
        "warmup": warmup,
        "inputs": inputs_desc,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
