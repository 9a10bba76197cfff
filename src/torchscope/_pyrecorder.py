"""Pure-Python recorder: the fallback when the C++ extension cannot be built.

Same interface and array layouts as torchscope._C (csrc/recorder.h), so the
attribute/count/report stages do not know which one ran. Differences, stated
in every summary it produces (FALLBACK_NOTE):
- ops are seen by a TorchDispatchMode, i.e. below autograd and after
  composite ops decompose (aten::linear appears as t + addmm), without nesting;
- no allocator events (memory columns empty) and no sequence numbers (no
  backward attribution);
- module markers are Python wrappers (~1 µs per call instead of ~0.05 µs).
"""
from __future__ import annotations

import copy
import struct
import threading
import time

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

FALLBACK_NOTE = ("pure-Python fallback backend (no C++ extension): ops recorded below autograd "
                 "without nesting; no memory columns, no backward attribution")

OP_COLS = {k: i for i, k in enumerate(
    ["name", "scope", "seq_nr", "fwd_thread", "thread", "start", "end", "parent", "call", "args_off",
     "args_len", "iter"])}
CALL_COLS = {k: i for i, k in enumerate(
    ["module", "parent", "depth", "enter", "exit", "thread", "iter", "failed"])}
MEM_COLS = {k: i for i, k in enumerate(
    ["time", "ptr", "bytes", "total_allocated", "total_reserved", "device_type", "device_index", "op",
     "call", "thread"])}
ARG_TAGS = {"none": 0, "tensor": 1, "int": 2, "double": 3, "bool": 4, "list": 5, "undef_tensor": 6,
            "other": 7, "opaque_tensor": 8}

# c10::ScalarType codes, as the C++ recorder writes them
_DTYPE_CODE = {torch.uint8: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.int64: 4,
               torch.float16: 5, torch.float32: 6, torch.float64: 7, torch.complex64: 9,
               torch.complex128: 10, torch.bool: 11, torch.bfloat16: 15}

_TORCH_MINOR = ".".join(torch.__version__.split("+")[0].split(".")[:2])


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.active = False
        self.recording = False
        self.record_shapes = True
        self.iteration = 0
        self.names: list = []
        self.name_ids: dict = {}
        self.reset()
        self.mode = None
        self.tls = threading.local()
        self.thread_ids: dict = {}
        self.shape_log: list = []   # (call, signature) while shape_log_on
        self.shape_log_on = False
        self.failure_log = None

    def reset(self):
        self.ops: list = []      # rows of OP_COLS
        self.args: list = []
        self.calls: list = []    # rows of CALL_COLS (row index == call id)
        self.owner = threading.get_ident()  # the profiling thread: the only one recorded
        self.foreign_calls = 0

    def stack(self):
        st = getattr(self.tls, "calls", None)
        if st is None:
            st = self.tls.calls = []
        return st

    def thread(self):
        ident = threading.get_ident()
        tid = self.thread_ids.get(ident)
        if tid is None:
            tid = self.thread_ids[ident] = len(self.thread_ids) + 1
        return tid

    def intern(self, name):
        i = self.name_ids.get(name)
        if i is None:
            i = self.name_ids[name] = len(self.names)
            self.names.append(name)
        return i


_S = _State()


def _encode(v, out, depth=0):
    if isinstance(v, torch.Tensor):
        code = _DTYPE_CODE.get(v.dtype, 6)
        if v.is_nested:
            out += (8, code)
        else:
            try:
                sizes = [int(d) for d in v.shape]
            except Exception:  # symbolic sizes
                out += (8, code)
                return
            out += (1, code, len(sizes), *sizes)
    elif v is None:
        out.append(0)
    elif isinstance(v, bool):
        out += (4, int(v))
    elif isinstance(v, int):
        out += (2, v)
    elif isinstance(v, float):
        out += (3, struct.unpack("<q", struct.pack("<d", v))[0])
    elif isinstance(v, (list, tuple)) and depth == 0:
        out += (5, len(v))
        for e in v:
            _encode(e, out, 1)
    else:
        out.append(7)


class _OpRecorder(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not _S.recording:
            return func(*args, **kwargs)
        schema = func._schema
        packed = []
        if _S.record_shapes:  # schema order, defaults filled, like RecordFunction::inputs()
            for i, a in enumerate(schema.arguments):
                if i < len(args):
                    v = args[i]
                elif a.name in kwargs:
                    v = kwargs[a.name]
                elif a.has_default_value():
                    v = a.default_value
                else:
                    v = None
                _encode(v, packed)
        st = _S.stack()
        row = [_S.intern(schema.name), 0, -1, 0, _S.thread(), 0, -1, -1, st[-1] if st else -1,
               len(_S.args), len(packed), _S.iteration]
        _S.args.extend(packed)
        _S.ops.append(row)
        row[5] = time.perf_counter_ns()
        out = func(*args, **kwargs)
        row[6] = time.perf_counter_ns()
        return out


def now_ns():
    return time.perf_counter_ns()


def built_for_torch():
    return _TORCH_MINOR


def start(record_shapes=True, record_memory=True):
    with _S.lock:
        if _S.active:
            return "a torchscope session is already active in this process"
        _S.reset()
        _S.record_shapes = record_shapes
        _S.iteration = 0
        _S.mode = _OpRecorder()
        _S.mode.__enter__()
        _S.active = True
        _S.recording = True
        return ""


def stop():
    with _S.lock:
        if not _S.active:
            return ""
        _S.recording = False
        try:
            _S.mode.__exit__(None, None, None)
        finally:
            _S.mode = None
            _S.active = False
        return ""


def active():
    return _S.active


def memory_tracking():
    return False


def profiler_state_occupied():
    return False


def thread_has_callbacks():
    return False


def set_iteration(it):
    _S.iteration = int(it)


_graph_task_id = getattr(torch._C, "_current_graph_task_id", lambda: -1)


def module_enter(module_index):
    if not _S.recording:
        return -1
    if threading.get_ident() != _S.owner:  # see the C recorder: the profiling thread only
        # counted for the note: measured passes, not autograd worker threads (checkpoint re-runs)
        _S.foreign_calls += _S.iteration >= 0 and _graph_task_id() == -1
        return -1
    if _graph_task_id() != -1:  # the autograd engine runs it (checkpoint recompute): not a forward row
        return -1
    st = _S.stack()
    call = len(_S.calls)
    _S.calls.append([module_index, st[-1] if st else -1, len(st), 0, -1, _S.thread(), _S.iteration, 0])
    st.append(call)
    _S.calls[call][3] = time.perf_counter_ns()
    return call


def module_exit(call, failed):
    t = time.perf_counter_ns()
    if call < 0:
        return
    st = _S.stack()
    while st:
        top = st.pop()
        if top == call:
            _S.calls[call][4] = t
            _S.calls[call][7] = int(bool(failed))
            return


def _summarize(obj, depth=0):
    if isinstance(obj, torch.Tensor):
        if obj.is_nested:
            return None
        return obj.shape
    if depth < 4 and isinstance(obj, (tuple, list)):
        return tuple(_summarize(o, depth + 1) for o in obj)
    if depth < 4 and isinstance(obj, dict):
        return {k: _summarize(v, depth + 1) for k, v in obj.items()}
    return None


def _in_chain(e, v) -> bool:
    """Whether exception e is v or in the chain v was raised from (its causes and contexts)."""
    todo, seen = [v], 0
    while todo and seen < 64:
        x = todo.pop()
        seen += 1
        if x is e:
            return True
        todo += [y for y in (x.__cause__, x.__context__) if y is not None]
    return False


class ModuleMarker:
    """Brackets a module's forward with module marks (Python twin of the C marker)."""

    __slots__ = ("__wrapped__", "module_index")

    def __init__(self, wrapped, module_index):
        self.__wrapped__ = wrapped
        self.module_index = module_index

    # Copied or pickled with its module (an EMA teacher made inside forward): the forward it wraps.
    def __deepcopy__(self, memo):
        return copy.deepcopy(self.__wrapped__, memo)

    def __reduce__(self):
        return self.__wrapped__.__reduce__()

    def __call__(self, *args, **kwargs):
        log = _S.failure_log
        if log:  # stale: the model caught it and runs on (see the C marker)
            log.clear()
        call = module_enter(self.module_index)
        logged = _S.shape_log_on and call >= 0
        if logged:  # inputs as they reach forward (it may change them in place)
            inputs = (_summarize(args, 1), _summarize(kwargs, 1) if kwargs else None)
        try:
            out = self.__wrapped__(*args, **kwargs)
        except BaseException as exc:
            module_exit(call, True)
            log = _S.failure_log
            if log is not None:  # see the C marker: drop entries of exceptions the model caught
                log[:] = [e for e in log if _in_chain(e[3], exc)]
                log.append((self.module_index, _summarize(args, 1), _summarize(kwargs, 1) if kwargs else None, exc))
            raise
        module_exit(call, False)
        if log:
            log.clear()
        if logged and _S.shape_log_on:
            _S.shape_log.append((call, inputs + (_summarize(out),)))
        return out


def install_markers(modules, skip):
    previous = []
    try:
        for i, mod in enumerate(modules):
            d = getattr(mod, "__dict__", None)
            how = skip[i]  # as in C: False wraps forward, True skips, a str names the attribute to wrap
            if d is None or (how is not False and not isinstance(how, str)):
                previous.append(Ellipsis)
                continue
            key = how if isinstance(how, str) else "forward"
            prev = d.get(key)
            bound = getattr(mod, key)
            previous.append((key, prev) if key != "forward" else prev)
            d[key] = ModuleMarker(bound, i)
    except BaseException:
        restore_markers(modules, previous)
        raise
    return previous


def restore_markers(modules, previous):
    for mod, prev in zip(modules, previous):
        if prev is Ellipsis:
            continue
        key = "forward"
        if isinstance(prev, tuple) and len(prev) == 2 and isinstance(prev[0], str):
            key, prev = prev
        if prev is None:
            mod.__dict__.pop(key, None)
        else:
            mod.__dict__[key] = prev


def set_shape_log(enabled):
    if enabled and not _S.shape_log_on:
        _S.shape_log = []
    _S.shape_log_on = bool(enabled)


def _frozen(sig):
    """A hashable key for a shape signature (dicts become tagged item tuples)."""
    if isinstance(sig, dict):
        return (dict, tuple((k, _frozen(v)) for k, v in sig.items()))
    if isinstance(sig, tuple) and not isinstance(sig, torch.Size):
        return tuple(_frozen(v) for v in sig)
    return sig


def take_shape_log():
    """(calls: n x 2 array of call id, signature id; signatures), as the C++ log returns them."""
    log, _S.shape_log, _S.shape_log_on = _S.shape_log, [], False
    ids, sigs, calls = {}, [], []
    for call, sig in log:
        key = _frozen(sig)
        k = ids.get(key)
        if k is None:
            k = ids[key] = len(sigs)
            sigs.append(sig)
        calls.append((call, k))
    return np.array(calls, dtype=np.int64).reshape(-1, 2), sigs


def set_failure_log(log):
    _S.failure_log = log


def collect():
    with _S.lock:
        return {
            "ops": np.array(_S.ops, dtype=np.int64).reshape(-1, len(OP_COLS)),
            "args": np.array(_S.args, dtype=np.int64),
            "calls": np.array(_S.calls, dtype=np.int64).reshape(-1, len(CALL_COLS)),
            "mem": np.zeros((0, len(MEM_COLS)), dtype=np.int64),
            "names": list(_S.names),
            "dropped_ends": 0,
            "foreign_calls": _S.foreign_calls,
        }


_REGION = {"compiled in place": 1, "compiled": 2, "scripted": 3}


def walk_modules(root, script_module_type, generator_type):
    """Python twin of modules.cpp walk_modules (named_modules() order, first occurrence wins)."""
    names, types, mods, parent, depth, region, kernel, buffers, slots = [], [], [], [], [], [], [], [], []
    generators, seen_generators = [], set()
    seen, seen_buffers = {id(root)}, set()

    def visit(mod, name, par, d):
        md = getattr(mod, "__dict__", {})
        names.append(name)
        types.append(type(mod).__name__)
        mods.append(mod)
        parent.append(par)
        depth.append(d)
        kernel.append(md.get("kernel_size"))
        if md.get("_compiled_call_impl") is not None:
            region.append(1)
        elif type(mod).__name__ == "OptimizedModule" and "_orig_mod" in md.get("_modules", {}):
            region.append(2)
        else:
            region.append(3 if script_module_type is not None and isinstance(mod, script_module_type) else 0)
        for k, b in md.get("_buffers", {}).items():
            if b is None:
                continue
            slots.append((mod, k, b))
            if id(b) not in seen_buffers:
                seen_buffers.add(id(b))
                buffers.append(b)
        where = getattr(type(mod), "__module__", None) or ""
        own_attrs = not (where == "torch" or where.startswith("torch."))  # torch's classes hold none
        for v in md.values() if generator_type is not None and own_attrs else ():
            if isinstance(v, generator_type) and id(v) not in seen_generators:
                seen_generators.add(id(v))
                generators.append(v)
        me = len(mods) - 1
        for key, child in md.get("_modules", {}).items():
            if child is None:
                continue
            if id(child) in seen:
                shared[0] = True  # a module under two parents (see the C walk)
                continue
            seen.add(id(child))
            visit(child, f"{name}.{key}" if name else str(key), me, d + 1)

    shared = [False]
    visit(root, "", -1, 0)
    return {"modules": mods, "names": names, "types": types, "kernel_size": kernel, "buffers": buffers,
            "buffer_slots": slots, "generators": generators, "shared_modules": shared[0],
            "parent": np.array(parent, dtype=np.int64), "depth": np.array(depth, dtype=np.int64),
            "region": np.array(region, dtype=np.int64)}


def tensor_stats(modules, uninitialized_type):
    """Python twin of modules.cpp tensor_stats."""
    n = len(modules)
    own, own_tr, buf, uninit = [0] * n, [0] * n, [0] * n, []
    seen, shared, pbytes, bbytes, by_dtype = set(), False, 0, 0, {}
    for i, m in enumerate(modules):
        md = getattr(m, "__dict__", {})
        for p in md.get("_parameters", {}).values():
            if not isinstance(p, torch.Tensor):
                continue
            if uninitialized_type is not None and isinstance(p, uninitialized_type):
                if not uninit or uninit[-1] != i:
                    uninit.append(i)
                continue
            if id(p) in seen:
                shared = True
                continue
            seen.add(id(p))
            k = p.numel()
            own[i] += k
            if p.requires_grad:
                own_tr[i] += k
            nbytes = k * p.element_size()
            pbytes += nbytes
            by_dtype[p.dtype] = by_dtype.get(p.dtype, 0) + nbytes
        for b in md.get("_buffers", {}).values():
            if not isinstance(b, torch.Tensor):
                continue
            buf[i] += b.numel()
            if id(b) not in seen:
                seen.add(id(b))
                bbytes += b.numel() * b.element_size()
    arr = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    return {"own_params": arr(own), "own_trainable": arr(own_tr), "buffer_elems": arr(buf),
            "uninitialized": uninit, "shared": shared, "param_bytes": pbytes, "buffer_bytes": bbytes,
            "param_bytes_by_dtype": by_dtype}


_stats_type: list = []  # begin_tensor_stats' uninitialized_type, for finish


def begin_tensor_stats(modules, uninitialized_type):
    """Twin of modules.cpp begin_tensor_stats: the markers count nothing here; finish counts all."""
    _stats_type[:] = [uninitialized_type]


def pause_tensor_stats(keep=True):
    if not keep:
        _stats_type.clear()


def finish_tensor_stats(modules):
    if not _stats_type:
        raise RuntimeError("finish_tensor_stats: no counting begun for these modules")
    return tensor_stats(modules, _stats_type.pop())


def pad_rows(columns, sep, end):
    """Twin of the C line assembly (modules.h: pad_rows), with its checks and messages."""
    out, n_lines = [], None
    for title, cells, inv, width, left in columns:
        inv = np.asarray(inv, dtype=np.int64).tolist()
        if n_lines is not None and len(inv) + 1 != n_lines:
            raise ValueError("pad_rows: columns differ in length")
        n_lines = len(inv) + 1
        if not all(isinstance(c, str) for c in cells):
            raise TypeError(f"pad_rows: column '{title}' has a cell that is not a str")
        bad = [i for i, k in enumerate(inv) if not 0 <= k < len(cells)]
        if bad:
            raise IndexError(f"pad_rows: column '{title}' line {bad[0] + 1} refers to cell {inv[bad[0]]} "
                             f"of {len(cells)}")
        just = str.ljust if left else str.rjust
        padded = [just(c, width) for c in cells]
        out.append([just(title, width)] + [padded[i] for i in inv])
    return [sep.join(r) + end for r in zip(*out)] if out else [end]


def grid_cells(kind, data, index, ascii_only, keep=None):
    """(distinct cells, index per row) of one render_grid column (see modules.h: render_grid); keep:
    the rows of its numbers shown (None: all)."""
    if kind < 0:
        return list(data), np.asarray(index, dtype=np.int64)
    if keep is not None:
        data, index = np.asarray(data)[keep], None if index is None else np.asarray(index)[keep]
    uniq, inv = number_cells(np.asarray(data), kind, ascii_only)
    marks = None if index is None else np.asarray(index, dtype=np.uint8)
    if marks is not None and (marks == 3).any():  # params of a repeated call
        uniq, inv = uniq + ["(shared)"], np.where(marks == 3, len(uniq), inv)
    if marks is not None and ((marks == 1) | (marks == 2)).any():  # MACs: lower bound, unknown
        k = len(uniq)
        uniq = uniq + [u + "+" for u in uniq] + ["?"]
        inv = np.where(marks == 2, 2 * k, np.where(marks == 1, inv + k, inv))
    return uniq, inv


def render_grid(columns, keep, sep, ascii_only, max_width):
    """Twin of the C table body (modules.h: render_grid): (title line, rows joined by "\\n", width,
    columns kept), from cells and pad_rows as the Python layouts build them."""
    cols, n_rows = [], None
    for title, left, kind, data, index in columns:
        uniq, inv = grid_cells(kind, data, index, ascii_only, keep)
        if n_rows is not None and len(inv) != n_rows:
            raise ValueError("render_grid: columns differ in length")
        n_rows = len(inv)
        cols.append((title, uniq, inv, max(max(map(len, uniq), default=0), len(title)), left))
    kept = len(cols)
    if max_width and max_width > 0:
        while kept > 2 and sum(c[3] for c in cols[:kept]) + len(sep) * (kept - 1) > max_width:
            kept -= 1
    lines = pad_rows(cols[:kept], sep, "")
    return lines[0], "\n".join(lines[1:]), len(lines[0]), kept


def tree_labels(names, types, keep, depth, repeat, flat):
    """Twin of the C row labels (modules.h: tree_labels)."""
    return [f"{'' if flat else '  ' * d}{names[k] if flat or not d else names[k].rpartition('.')[2]} "
            f"({types[k]}){' *' if r else ''}"
            for k, d, r in zip(np.asarray(keep).tolist(), np.asarray(depth).tolist(), np.asarray(repeat).tolist())]


def factorize(values):
    """Twin of the C factorize (modules.h): distinct values in order of first appearance,
    the first index of each, and per element the index of its value."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError("factorize: expects a one-dimensional array")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"factorize: expects an integer, bool or float array, got dtype kind '{a.dtype.kind}'")
    a = a.astype(np.float64 if a.dtype.kind == "f" else np.int64)
    if a.dtype.kind == "f":
        a = np.where(a == 0, 0.0, a)  # -0.0 is 0.0 (NaNs already compare as one in np.unique)
    uniq, first, inv = np.unique(a, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # sorted -> order of first appearance
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return uniq[order], first[order].astype(np.int64), rank[inv.reshape(-1)].astype(np.int64)


NUMBER_KINDS = {"time": 0, "bytes": 1, "count": 2, "int": 3}


def factorize_objects(items, keep):
    """Twin of the C factorize_objects: (first position of each distinct object, index per
    position) of items[keep[i]], by identity."""
    keep = np.asarray(keep, dtype=np.int64)
    _ids, first, inv = factorize(np.fromiter((id(items[k]) for k in keep.tolist()), np.int64, len(keep)))
    return first, inv


def subtree_sum(values, parent):
    """The C subtree sum has no twin here: None sends attribute.subtree_sum to its numpy path."""
    return None


def count_columns(*args):
    """No twin here either: None sends api._build to its numpy reference (count_columns_numpy)."""
    return None


def number_cells(values, kind, ascii_only):
    """Twin of the C numeric cells (modules.h: number_cells), with report.py's formatters."""
    from .report import _round3, fmt_bytes, fmt_count, fmt_time

    if kind == NUMBER_KINDS["int"]:
        uniq, _first, inv = factorize(np.asarray(values, dtype=np.int64))
        return [str(x) for x in uniq.tolist()], inv
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError("number_cells: expects a one-dimensional array")
    if kind == NUMBER_KINDS["time"]:
        a = _round3(a)
    fmt = {NUMBER_KINDS["time"]: lambda x: fmt_time(x, ascii_only), NUMBER_KINDS["bytes"]: fmt_bytes,
           NUMBER_KINDS["count"]: fmt_count, NUMBER_KINDS["int"]: lambda x: str(int(x))}[kind]
    uniq, _first, inv = factorize(a)
    return ["-" if x != x else fmt(x) for x in uniq.tolist()], inv


def attribute_forward(ops, calls, mem, engine_names, iters, device_type):
    """The C++ module's attribution kernel has no twin here: attribute.py's vectorised path,
    which the kernel is tested against, handles every trace."""
    return None


def flags_under(flag, parent):
    """Twin of the C op-tree flags (kernels.h): per op, whether some proper ancestor has
    `flag` set (one vectorised step per nesting level, over the ops still undecided)."""
    flag, parent = np.asarray(flag, dtype=bool), np.asarray(parent, dtype=np.int64)
    out = np.zeros(len(parent), dtype=bool)
    idx = np.nonzero(parent >= 0)[0]
    anc = parent[idx]
    while len(idx):
        hit = flag[anc]
        out[idx[hit]] = True
        idx, anc = idx[~hit], parent[anc[~hit]]
        live = anc >= 0
        idx, anc = idx[live], anc[live]
    return out


def flags_above(flag, parent):
    """Twin of the C op-tree flags: per op, whether some proper descendant has `flag` set."""
    flag, parent = np.asarray(flag, dtype=bool), np.asarray(parent, dtype=np.int64)
    out = np.zeros(len(parent), dtype=bool)
    anc = parent[flag]
    while len(anc):
        anc = anc[anc >= 0]
        anc = anc[~out[anc]]  # already marked: its ancestors are too
        out[anc] = True
        anc = parent[anc]
    return out


def count_todo(ops, args, candidate, counted):
    """Twin of the C counting round (kernels.h: count_todo): the outermost candidates not yet
    counted, grouped by (name, packed arguments) with a vectorised hash."""
    parent = ops[:, OP_COLS["parent"]]
    todo = np.nonzero(candidate & ~counted & ~flags_under(candidate, parent))[0]
    groups, rep = _group_identical(ops[:, OP_COLS["name"]], ops[:, OP_COLS["args_off"]], ops[:, OP_COLS["args_len"]],
                                   args, todo)
    return todo, groups, rep


def count_top(ops, mask, counted, failed, scope_name):
    """Twin of the C uncounted-op selection (kernels.h: count_top)."""
    name, parent = ops[:, OP_COLS["name"]], ops[:, OP_COLS["parent"]]
    open_ = mask & ~counted & ~flags_above(counted, parent) & ~flags_under(counted, parent) & ~scope_name[name]
    failed = failed & open_
    parent_open = np.where(parent >= 0, open_[np.maximum(parent, 0)], False)
    top = open_ & ~parent_open
    if failed.any():
        top = (failed & ~flags_under(failed, parent)) | (top & ~flags_above(failed, parent))
    return top


_HASH_W = np.random.default_rng(12345).integers(1, 2**62, size=(2, 64), dtype=np.int64) | 1


def _group_identical(name, off, ln, args, idx):
    """Group ops `idx` by (name, packed args). Returns (group id per op, representative op per group)."""
    if len(idx) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lens = ln[idx]
    starts = np.cumsum(lens) - lens
    rel = np.arange(int(lens.sum())) - np.repeat(starts, lens)
    vals = args[np.repeat(off[idx], lens) + rel]
    rel = np.minimum(rel, _HASH_W.shape[1] - 1)
    h = np.zeros(len(idx), dtype=np.int64)
    some = lens > 0  # reduceat would give an op without arguments its neighbour's first value
    with np.errstate(over="ignore"):  # arithmetic wraps mod 2**64: fine for a hash
        if some.any():
            h[some] = np.add.reduceat(vals * _HASH_W[0][rel] + rel, starts[some])
        h = h * _HASH_W[1][0] + name[idx] * _HASH_W[1][1] + lens * _HASH_W[1][2]
    _, first, groups = factorize(h)
    return groups, idx[first]
