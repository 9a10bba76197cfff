"""Stage 2: attribute. Maps recorded ops and memory events to module calls.

Input: a capture.Trace. Output: an Attribution of per-row numpy columns, one
row per module call of the first measured iteration, in execution order.
All work is vectorised over the recorded arrays (no Python loop per op).
"""
from __future__ import annotations

import dataclasses
import statistics

import numpy as np

from ._ext import C
from .capture import Trace

OPC, CALLC, MEMC = C.OP_COLS, C.CALL_COLS, C.MEM_COLS
SCOPE_FUNCTION, SCOPE_BACKWARD = 0, 1
# The autograd engine wraps each backward node in a FUNCTION-scope record with
# this prefix; it also holds engine work for the node (e.g. reducing a bias
# gradient), so its duration is the node's backward time.
ENGINE_PREFIX = "autograd::engine::evaluate_function"
DEVICE_TYPE_CPU, DEVICE_TYPE_CUDA = 0, 1


@dataclasses.dataclass
class Attribution:
    call_ids: np.ndarray        # call id of each row (iteration 0)
    module: np.ndarray          # module index of each row
    parent: np.ndarray          # parent row (-1 for roots)
    depth: np.ndarray
    fwd_time_ns: np.ndarray     # median over iterations, children included
    fwd_self_time_ns: np.ndarray
    fwd_time_min_ns: np.ndarray
    num_ops: np.ndarray         # top-level dispatcher ops issued in the call and its children
    op_row: np.ndarray          # per op: row it belongs to (-1: outside any module / other iteration)
    op_mask: np.ndarray         # per op: forward op of iteration 0 inside a module call
    bwd_time_ns: np.ndarray | None       # per row, backward of the ops it issued, children included
    bwd_self_time_ns: np.ndarray | None
    accumulate_grad_ns: float | None     # AccumulateGrad nodes (gradient accumulation into .grad)
    bwd_outside_ns: float | None         # backward of ops issued outside any module (e.g. the loss)
    bwd_total_ns: float | None           # whole backward pass (all engine nodes)
    bwd_mem_allocated: np.ndarray | None  # per row, bytes allocated by its backward nodes (children incl.)
    mem: dict | None            # allocated/freed/retained/peak per row (bytes) or None
    total_time_ns: float        # median wall time of the measured pass
    peak_memory: int | None     # peak live bytes above the pass's starting level
    notes: list


def subtree_sum(values: np.ndarray, parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Inclusive sums over the call tree (children before parents, level by level).
    Integers over a pre-order tree go through C (one sweep instead of a numpy call per level)."""
    fast = C.subtree_sum(values, parent)
    if fast is not None:
        return fast
    return subtree_sum_levels(values, parent, depth)


def subtree_sum_levels(values: np.ndarray, parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """subtree_sum in numpy, any tree (the reference the C sweep is tested against)."""
    acc = values.astype(np.float64 if values.dtype.kind == "f" else np.int64, copy=True)
    if len(acc) == 0:
        return acc
    for d in range(int(depth.max()), 0, -1):
        m = depth == d
        if m.any():
            np.add.at(acc, parent[m], acc[m])
    return acc


def _children_sum(values: np.ndarray, parent: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values)
    has = parent >= 0
    np.add.at(out, parent[has], values[has])
    return out


def _sparse_table_max(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(a[lo:hi]) for many ranges at once (sparse table, n log n memory); requires lo < hi."""
    n = len(a)
    levels = [a]
    span = 1
    while span * 2 <= n:
        prev = levels[-1]
        levels.append(np.maximum(prev[:-span], prev[span:]))
        span *= 2
    table = np.full((len(levels), n), np.iinfo(np.int64).min, dtype=np.int64)
    for k, lv in enumerate(levels):
        table[k, : len(lv)] = lv
    k = np.floor(np.log2(np.maximum(hi - lo, 1))).astype(np.int64)
    return np.maximum(table[k, lo], table[k, hi - (1 << k)])


_BLOCK = 1024


def _range_max(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(a[lo:hi]) for many ranges at once; requires lo < hi. Long arrays (millions of memory
    events) go by blocks: a sparse table over block maxima plus the partial blocks at the ends,
    so memory stays O(n) instead of O(n log n)."""
    n = len(a)
    if n <= 64 * _BLOCK:
        return _sparse_table_max(a, lo, hi)
    nb = -(-n // _BLOCK)
    padded = np.full(nb * _BLOCK, np.iinfo(np.int64).min, dtype=np.int64)
    padded[:n] = a
    block_max = padded.reshape(nb, _BLOCK).max(axis=1)
    out = np.empty(len(lo), dtype=np.int64)
    b_lo, b_hi = lo // _BLOCK, (hi - 1) // _BLOCK
    inner = b_hi - b_lo >= 2
    if inner.any():
        out[inner] = _sparse_table_max(block_max, b_lo[inner] + 1, b_hi[inner])
    out[~inner] = np.iinfo(np.int64).min
    for i in np.nonzero(b_hi > b_lo)[0].tolist():  # the partial blocks at both ends
        out[i] = max(out[i], a[lo[i]:(b_lo[i] + 1) * _BLOCK].max(), a[b_hi[i] * _BLOCK:hi[i]].max())
    for i in np.nonzero(b_hi == b_lo)[0].tolist():
        out[i] = a[lo[i]:hi[i]].max()
    return out


def _memory(trace: Trace, call_ids, id_to_row, parent, depth, enter, exit_, device_type):
    mem = trace.mem
    if not trace.memory_tracking:
        return None, None
    n = len(call_ids)
    dev = mem[:, MEMC["device_type"]]
    if len(mem) and not (dev.min() == dev.max() == device_type):  # (copies only when devices mix)
        mem = mem[dev == device_type]
    times = mem[:, MEMC["time"]]
    if len(times) > 1 and (times[1:] < times[:-1]).any():  # several threads' buffers: interleave by time
        mem = mem[np.argsort(times, kind="stable")]
        times = mem[:, MEMC["time"]]
    nbytes = mem[:, MEMC["bytes"]]
    call = mem[:, MEMC["call"]]
    row = np.where(call >= 0, id_to_row[np.maximum(call, 0)], -1)
    in_rows = row >= 0

    alloc = in_rows & (nbytes > 0)
    freed = in_rows & (nbytes < 0)
    allocated = np.bincount(row[alloc], weights=nbytes[alloc], minlength=n).astype(np.int64)
    freed_b = np.bincount(row[freed], weights=-nbytes[freed], minlength=n).astype(np.int64)
    allocated = subtree_sum(allocated, parent, depth)
    freed_b = subtree_sum(freed_b, parent, depth)

    # Retained: blocks allocated inside the call and still alive at its exit.
    # Pair each allocation with the next event on the same pointer.
    ptr = mem[:, MEMC["ptr"]]
    by_ptr = np.lexsort((times, ptr))
    free_time = np.full(len(mem), np.iinfo(np.int64).max, dtype=np.int64)
    if len(by_ptr) > 1:
        a, b = by_ptr[:-1], by_ptr[1:]
        pair = (ptr[a] == ptr[b]) & (nbytes[a] > 0) & (nbytes[b] < 0)
        free_time[a[pair]] = times[b[pair]]
    retained = np.zeros(n, dtype=np.int64)
    cur, ft, sz = row[alloc], free_time[alloc], nbytes[alloc]
    while len(cur):
        keep = ft > exit_[cur]  # inner calls exit first: once freed inside, freed for all ancestors
        cur, ft, sz = cur[keep], ft[keep], sz[keep]
        np.add.at(retained, cur, sz)
        cur = parent[cur]
        live = cur >= 0
        cur, ft, sz = cur[live], ft[live], sz[live]

    # Peak: highest live level inside the call's window, above the level at entry.
    level = np.cumsum(nbytes)
    peak = np.zeros(n, dtype=np.int64)
    pass_peak = 0 if n else None  # tracked, and nothing allocated: a measured 0
    if len(level):
        lo = np.searchsorted(times, enter, side="left")
        hi = np.searchsorted(times, exit_, side="right")
        nonempty = hi > lo
        base = np.where(lo > 0, level[np.maximum(lo - 1, 0)], 0)
        if nonempty.any():
            top = _range_max(level, lo[nonempty], hi[nonempty])
            peak[nonempty] = np.maximum(top - base[nonempty], 0)
        if n:
            roots = parent < 0
            w_lo, w_hi = int(lo[roots].min()), int(hi[roots].max())
            if w_hi > w_lo:
                start_level = level[w_lo - 1] if w_lo > 0 else 0
                pass_peak = int(max(level[w_lo:w_hi].max() - start_level, 0))
            else:
                pass_peak = 0
    return {"allocated": allocated, "freed": freed_b, "retained": retained, "peak": peak}, pass_peak


def _marked_ancestor(parent: np.ndarray, marked: np.ndarray, outermost: bool, self_too: bool = True,
                     rows: np.ndarray | None = None) -> np.ndarray:
    """Per op (or per op of `rows`): its nearest (or outermost) ancestor with `marked` set,
    itself included when self_too; -1 if none. One vectorised step per nesting level."""
    idx = np.arange(len(parent)) if rows is None else np.asarray(rows, dtype=np.int64)
    pos = np.arange(len(idx))  # where each answer goes
    out = np.where(marked[idx], idx, -1) if self_too else np.full(len(idx), -1, dtype=np.int64)
    if not outermost and self_too:
        pos = pos[out < 0]
    anc = parent[idx[pos]]
    live = anc >= 0
    pos, anc = pos[live], anc[live]
    while len(pos):
        hit = marked[anc]
        out[pos[hit]] = anc[hit]
        if not outermost:  # the nearest: done with those
            pos, anc = pos[~hit], anc[~hit]
        anc = parent[anc]
        live = anc >= 0
        pos, anc = pos[live], anc[live]
    return out


def _outermost_engine(parent: np.ndarray, engine: np.ndarray) -> np.ndarray:
    """Per op: its outermost engine record (itself included), -1 if none. Engine records
    normally sit at the top of their thread's op stack: then that is the top ancestor."""
    nested = engine & (parent >= 0)
    if nested.any() and not engine[parent[nested]].all():  # an engine under a forward op (rare)
        return _marked_ancestor(parent, engine, outermost=True)
    top = np.arange(len(parent))
    while True:
        p = parent[top]
        up = p >= 0
        if not up.any():
            break
        top[up] = p[up]
    return np.where(engine[top], top, -1)


def _end_times(ops, rows) -> np.ndarray:
    """End stamps of records `rows`; a record whose end was not seen (raised) ends where it starts."""
    start, end = ops[rows, OPC["start"]], ops[rows, OPC["end"]]
    return np.where(end >= start, end, start)


def _link_nodes(ops, nodes) -> np.ndarray:
    """Per backward node: the forward op that created it (same forward thread and sequence
    number; the latest op that took that number), -1 if none was recorded. A thread's sequence
    numbers only grow, so the key is unique across passes: a node reused by a later pass
    (autocast's cached weight cast) still finds the op of the pass that created it."""
    fwd = np.nonzero((ops[:, OPC["scope"]] == SCOPE_FUNCTION) & (ops[:, OPC["seq_nr"]] >= 0))[0]
    seq = ops[nodes, OPC["seq_nr"]]
    if not len(fwd):
        return np.full(len(nodes), -1, dtype=np.int64)

    def key(t, s):
        return (t.astype(np.int64) << 40) ^ s.astype(np.int64)
    fkeys = key(ops[fwd, OPC["thread"]], ops[fwd, OPC["seq_nr"]])
    order = np.lexsort((fwd, fkeys))           # by key, then by record order
    fkeys, fwd = fkeys[order], fwd[order]
    last = np.r_[fkeys[1:] != fkeys[:-1], True]  # the latest op of each key
    fkeys, fwd = fkeys[last], fwd[last]
    bkeys = key(ops[nodes, OPC["fwd_thread"]], seq)
    pos = np.clip(np.searchsorted(fkeys, bkeys), 0, len(fkeys) - 1)
    return np.where((seq >= 0) & (fkeys[pos] == bkeys), fwd[pos], -1)


def _backward(trace: Trace, ops, parent, depth, n, engine_ids, backward_op, node_fop, device_type,
              call_alias) -> dict:
    """Backward time per row: each autograd node is linked to the forward op that created it
    (same forward thread and sequence number; the latest op that peeked that number), hence
    to that op's module call (DESIGN.md)."""
    none = {"bwd_time_ns": None, "bwd_self_time_ns": None, "accumulate_grad_ns": None,
            "bwd_outside_ns": None, "bwd_total_ns": None, "bwd_mem_allocated": None}
    scope = ops[:, OPC["scope"]]
    # Backward nodes of the measured passes (warm-up passes, recorded with negative
    # iterations, only provide forward ops to link to); nodes run by autograd.grad inside
    # a forward call are that call's forward work.
    nodes = np.nonzero((scope == SCOPE_BACKWARD) & (ops[:, OPC["iter"]] >= 0) & backward_op)[0]
    if len(nodes) == 0:
        return none
    # A node's time is its engine wrapper's (the parent record), when there is one, less the
    # nodes nested in it (a reentrant checkpoint runs a whole backward inside one node).
    wrapper = ops[nodes, OPC["parent"]]
    has_wrapper = (wrapper >= 0) & np.isin(ops[np.maximum(wrapper, 0), OPC["name"]], engine_ids)
    timed = np.where(has_wrapper, wrapper, nodes)
    dur = (_end_times(ops, timed) - ops[timed, OPC["start"]]).astype(np.float64)
    is_timed = np.zeros(len(ops), dtype=bool)
    is_timed[timed] = True
    outer = _marked_ancestor(ops[:, OPC["parent"]], is_timed, outermost=False, self_too=False, rows=timed)
    slot = np.full(len(ops), -1, dtype=np.int64)
    slot[timed] = np.arange(len(timed))
    nested = outer >= 0
    if nested.any():
        inner = np.zeros(len(timed))
        np.add.at(inner, slot[outer[nested]], dur[nested])
        dur = dur - inner
    it = ops[nodes, OPC["iter"]]

    fop = node_fop[nodes]
    fcall = np.where(fop >= 0, ops[np.maximum(fop, 0), OPC["call"]], -1)
    fcall = np.where(fcall >= 0, call_alias[np.maximum(fcall, 0)], -1)  # a re-run forward: its module's call
    calls = trace.calls
    # Map the forward call of any iteration to the iteration-0 row at the same position.
    row = np.full(len(nodes), -1, dtype=np.int64)
    ok = fcall >= 0
    if ok.any():
        it_col = calls[:, CALLC["iter"]]
        first_of_iter = {int(i): int(np.nonzero(it_col == i)[0][0]) for i in np.unique(it_col)}
        base = np.array([first_of_iter.get(int(i), 0) for i in it_col[fcall[ok]]], dtype=np.int64)
        r = fcall[ok] - base
        r = np.where((r >= 0) & (r < n), r, -1)
        row[ok] = r
    iters = trace.iters
    per_iter_self = np.zeros((iters, n))
    mine = row >= 0
    np.add.at(per_iter_self, (it[mine], row[mine]), dur[mine])
    per_iter_total = np.stack([subtree_sum(r_, parent, depth) for r_ in per_iter_self])
    acc = np.array([trace.names[i].endswith("AccumulateGrad") for i in ops[nodes, OPC["name"]]], dtype=bool)
    outside = ~mine & ~acc

    def per_iter_sum(mask):
        return float(np.median(np.bincount(it[mask], weights=dur[mask], minlength=iters)))

    # Say what the "outside modules" time is when it is a real share of the backward.
    notes = []
    total, out_ns = per_iter_sum(np.ones(len(nodes), dtype=bool)), per_iter_sum(outside)
    if total > 0 and out_ns > 0.1 * total:
        by_name: dict = {}
        for i, d in zip(ops[nodes[outside], OPC["name"]].tolist(), dur[outside].tolist()):
            by_name[trace.names[i]] = by_name.get(trace.names[i], 0.0) + d
        top = ", ".join(sorted(by_name, key=by_name.get, reverse=True)[:3])
        notes.append(f"{out_ns / total:.0%} of the backward time is in autograd nodes not created by an op of a "
                     f"module's forward (mostly {top}): shown as 'outside modules'")

    # Backward memory: allocations inside a node (or its engine wrapper) go to the node's row.
    bwd_mem = None
    if trace.memory_tracking and len(trace.mem):
        node_row = np.full(len(ops), -1, dtype=np.int64)   # record index -> row, for wrappers and nodes
        node_row[timed[mine & (it == 0)]] = row[mine & (it == 0)]
        node_row[nodes[mine & (it == 0)]] = row[mine & (it == 0)]
        is_timed[nodes] = True
        mem = trace.mem[trace.mem[:, MEMC["device_type"]] == device_type]
        op = mem[:, MEMC["op"]]
        ev_row = np.full(len(mem), -1, dtype=np.int64)
        has_op = op >= 0
        ev_owner = _marked_ancestor(ops[:, OPC["parent"]], is_timed, outermost=False, rows=op[has_op])  # innermost
        ev_row[has_op] = np.where(ev_owner >= 0, node_row[np.maximum(ev_owner, 0)], -1)
        alloc = (ev_row >= 0) & (mem[:, MEMC["bytes"]] > 0)
        self_bytes = np.bincount(ev_row[alloc], weights=mem[alloc, MEMC["bytes"]], minlength=n).astype(np.int64)
        bwd_mem = subtree_sum(self_bytes, parent, depth)

    return {
        "bwd_self_time_ns": np.median(per_iter_self, axis=0),
        "bwd_time_ns": np.median(per_iter_total, axis=0),
        "accumulate_grad_ns": per_iter_sum(acc),
        "bwd_outside_ns": out_ns,
        "bwd_total_ns": total,
        "bwd_mem_allocated": bwd_mem,
        "notes": notes,
    }


def _backward_calls(trace: Trace, engine: np.ndarray, node_fop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per call: made inside an autograd-engine record on its thread (activation checkpointing
    re-runs forwards in the backward; those calls are part of a backward node's time, not
    forward rows), and the call that stands for it: the forward call of the same module that
    created the node re-running it (overlapping that node's forward op), else the module's
    first forward call of that pass (itself for a forward call). node_fop: per op, the
    forward op that created it when it is a backward node (-1 otherwise)."""
    calls, ops = trace.calls, trace.ops
    out, alias = np.zeros(len(calls), dtype=bool), np.arange(len(calls))
    if not len(calls) or not engine.any():
        return out, alias
    rec = np.nonzero(engine)[0]
    r_thread, r_start, r_end = ops[rec, OPC["thread"]], ops[rec, OPC["start"]], _end_times(ops, rec)
    c_it, enter, mod = calls[:, CALLC["iter"]], calls[:, CALLC["enter"]], calls[:, CALLC["module"]]
    c_thread = calls[:, CALLC["thread"]]
    for t in np.unique(c_thread).tolist():
        mine = r_thread == t
        if not mine.any():
            continue
        order = np.argsort(r_start[mine], kind="stable")
        starts, reach = r_start[mine][order], np.maximum.accumulate(r_end[mine][order])
        cs = np.nonzero(c_thread == t)[0]
        pos = np.searchsorted(starts, enter[cs], side="right") - 1  # the last record started before
        ok = pos >= 0
        out[cs[ok]] = enter[cs[ok]] <= reach[pos[ok]]
    again = np.nonzero(out)[0]
    if not len(again):
        return out, alias
    # The node that re-ran a call: the innermost backward node above the call's first op.
    op_call = ops[:, OPC["call"]]
    is_node = ops[:, OPC["scope"]] == SCOPE_BACKWARD
    with_ops, first_op = np.unique(op_call, return_index=True)
    first = np.full(len(calls), -1, dtype=np.int64)
    first[with_ops[with_ops >= 0]] = first_op[with_ops >= 0]
    node = np.full(len(calls), -1, dtype=np.int64)
    has = first[again] >= 0
    node[again[has]] = _marked_ancestor(ops[:, OPC["parent"]], is_node, outermost=False, rows=first[again[has]])
    # Forward calls of each (iteration, module), in entry order, for the overlap test.
    fwd_calls = np.nonzero(~out)[0]
    key = c_it * (int(mod.max()) + 1) + mod
    groups: dict = {}
    for c, k in zip(fwd_calls.tolist(), key[fwd_calls].tolist()):
        groups.setdefault(k, []).append(c)
    exit_ = calls[:, CALLC["exit"]]
    for c in again.tolist():
        same = groups.get(int(key[c]))
        if not same:
            continue
        alias[c] = same[0]
        f = node_fop[node[c]] if node[c] >= 0 else -1
        if f < 0:
            continue
        f_start, f_end = ops[f, OPC["start"]], _end_times(ops, [f])[0]
        for cand in same:  # the forward call whose window overlaps the node's forward op
            if enter[cand] <= f_end and f_start <= (exit_[cand] if exit_[cand] >= 0 else enter[cand]):
                alias[c] = cand
                break
    return out, alias


def _adopt_worker_ops(ops, calls, op_call, which) -> np.ndarray:
    """op_call with the ops in `which` that ran on a worker thread inheriting the recorder
    (torch.jit.fork and other at::launch tasks, CUDA's autograd device threads) given the call
    open on the profiling thread when they started: they have no module stack of their own,
    and that call launched them or waits for them."""
    if not len(calls):
        return op_call
    owner = calls[0, CALLC["thread"]]
    thread = ops[:, OPC["thread"]]
    if not len(thread) or thread.min() == thread.max() == owner:  # one thread: nothing to adopt
        return op_call
    orphan = np.nonzero(which & (op_call < 0) & (thread != owner))[0]
    if not len(orphan):
        return op_call
    op_call = op_call.copy()
    enter, exit_, parent = calls[:, CALLC["enter"]], calls[:, CALLC["exit"]], calls[:, CALLC["parent"]]
    t = ops[orphan, OPC["start"]]
    cand = np.searchsorted(enter, t, side="right") - 1  # call ids follow entry order
    idx = np.nonzero(cand >= 0)[0]
    while len(idx):  # climb to the innermost call still open at t
        c = cand[idx]
        closed = (exit_[c] >= 0) & (exit_[c] < t[idx])
        cand[idx[closed]] = parent[c[closed]]
        idx = idx[closed & (parent[c] >= 0)]
    op_call[orphan] = cand
    return op_call


def attribute(trace: Trace, device_type: int = DEVICE_TYPE_CPU) -> Attribution:
    fast = _forward_kernel(trace, device_type)
    return fast if fast is not None else attribute_vectorised(trace, device_type)


class PerName:
    """fn(name) per op-name id, computed once per name: the recorder's name table only grows for the
    process (a profile of a known model meets no new name). A table that does not extend the one
    seen (a summary from another process, a test) starts over."""

    def __init__(self, fn, dtype):
        self.fn, self.names, self.values = fn, [], np.zeros(0, dtype=dtype)

    def __call__(self, names: list) -> np.ndarray:
        if names[:len(self.names)] != self.names:
            self.names, self.values = [], self.values[:0]
        if len(names) > len(self.names):
            new = names[len(self.names):]
            self.values = np.concatenate([self.values, np.array([self.fn(nm) for nm in new], dtype=self.values.dtype)])
            self.names = self.names + list(new)
        return self.values


_engine_names = PerName(lambda nm: nm.startswith(ENGINE_PREFIX), np.uint8)  # an autograd-engine record


def _forward_kernel(trace: Trace, device_type: int) -> Attribution | None:
    """The common case (forward passes on one thread, no autograd-engine work, no call that
    raised) in one C sweep (csrc/kernels.cpp: 0.06 instead of 0.32 ms for the tiny MLP's 601
    rows). None outside that case, and always with the pure-Python recorder, which has no
    kernel: attribute_vectorised, the reference, then does the work."""
    r = C.attribute_forward(trace.ops, trace.calls, trace.mem if trace.memory_tracking else None,
                            _engine_names(trace.names), trace.iters, device_type)
    if r is None:
        return None
    notes = [f"iteration {it} made different module calls; its times are not used" for it in r["differing_iters"]]
    op_row = r["op_row"]
    return Attribution(
        call_ids=r["call_ids"], module=r["module"], parent=r["parent"], depth=r["depth"],
        fwd_time_ns=r["fwd_time_ns"], fwd_self_time_ns=r["fwd_self_time_ns"], fwd_time_min_ns=r["fwd_time_min_ns"],
        num_ops=r["num_ops"], op_row=op_row, op_mask=op_row >= 0, mem=r["mem"], bwd_time_ns=None,
        bwd_self_time_ns=None, accumulate_grad_ns=None, bwd_outside_ns=None, bwd_total_ns=None,
        bwd_mem_allocated=None, total_time_ns=float(statistics.median(trace.pass_times_ns)),
        peak_memory=r["peak_memory"], notes=notes,
    )


def attribute_vectorised(trace: Trace, device_type: int = DEVICE_TYPE_CPU) -> Attribution:
    """Every case, in numpy (the reference the C kernel is tested against)."""
    calls = trace.calls
    notes = []
    it_col = calls[:, CALLC["iter"]] if len(calls) else np.zeros(0, dtype=np.int64)
    ops = trace.ops
    op_parent = ops[:, OPC["parent"]]
    engine_ids = np.nonzero(_engine_names(trace.names))[0]
    engine = ops[:, OPC["scope"]] == SCOPE_BACKWARD
    if len(engine_ids):
        engine |= np.isin(ops[:, OPC["name"]], engine_ids)
    node_fop = np.full(len(ops), -1, dtype=np.int64)  # per backward node: the forward op that created it
    all_nodes = np.nonzero(ops[:, OPC["scope"]] == SCOPE_BACKWARD)[0]
    if len(all_nodes):
        node_fop[all_nodes] = _link_nodes(ops, all_nodes)
    in_backward, call_alias = _backward_calls(trace, engine, node_fop)
    if in_backward.any():
        idx = trace.index
        again = sorted({idx.names[m] or idx.types[m] for m in calls[in_backward & (it_col == 0), CALLC["module"]]})
        shown = ", ".join(again[:5]) + (f" and {len(again) - 5} more" if len(again) > 5 else "")
        notes.append(f"{len(again)} module(s) ran again during the backward pass (activation checkpointing: {shown}): "
                     "that time is in the backward of the node that re-ran them, not in extra forward rows")
        it_col = np.where(in_backward, np.iinfo(np.int64).min, it_col)  # in no iteration's forward
    call_ids = np.nonzero(it_col == 0)[0]
    n = len(call_ids)
    id_to_row = np.full(max(len(calls), 1), -1, dtype=np.int64)
    id_to_row[call_ids] = np.arange(n)
    c0 = calls[call_ids]
    module = c0[:, CALLC["module"]]
    pcall = c0[:, CALLC["parent"]]
    parent = np.where(pcall >= 0, id_to_row[np.maximum(pcall, 0)], -1)
    depth = c0[:, CALLC["depth"]]
    enter, exit_ = c0[:, CALLC["enter"]], c0[:, CALLC["exit"]]

    # Times: per iteration when every iteration made the same calls, else iteration 0.
    durations = [exit_ - enter]
    for it in range(1, trace.iters):
        ids = np.nonzero(it_col == it)[0]
        ci = calls[ids]
        if len(ids) == n and np.array_equal(ci[:, CALLC["module"]], module):
            durations.append(ci[:, CALLC["exit"]] - ci[:, CALLC["enter"]])
        else:
            notes.append(f"iteration {it} made different module calls; its times are not used")
    dur = np.stack(durations).astype(np.float64)               # iters x rows
    self_dur = dur - np.stack([_children_sum(d, parent) for d in dur])
    if len(dur) == 1:
        fwd_time, fwd_self, fwd_min = dur[0], self_dur[0], dur[0]
    else:
        fwd_time = np.median(dur, axis=0)
        fwd_self = np.median(self_dur, axis=0)
        fwd_min = dur.min(axis=0)

    op_call = ops[:, OPC["call"]]
    forward = (ops[:, OPC["iter"]] == 0) & (ops[:, OPC["scope"]] == SCOPE_FUNCTION)
    backward_op = np.zeros(len(ops), dtype=bool)
    if engine.any():
        # Ops under an engine record belong to the backward pass, unless the engine ran inside
        # a forward call (autograd.grad in forward): then they are its forward work. On a worker
        # thread (CUDA's device threads) the record's call is the one open on the profiling
        # thread when it started.
        outer = _outermost_engine(op_parent, engine)
        tops = outer == np.arange(len(ops))
        e_call = _adopt_worker_ops(ops, calls, op_call, tops)
        e_call = np.where(outer >= 0, e_call[np.maximum(outer, 0)], -1)
        call_in_backward = np.r_[in_backward, True]  # [-1]: no call, as in the backward pass
        backward_op = (outer >= 0) & call_in_backward[e_call]
        forward &= ~backward_op
    op_call = _adopt_worker_ops(ops, calls, op_call, forward)
    if len(calls):
        # A call that raised, which the model caught (try a fast path, fall back): its ops did
        # no counted work (the failing op is typically a shape check).
        failed = calls[:, CALLC["failed"]] != 0
        caught = failed[call_ids]
        if caught.any():
            c_parent = calls[:, CALLC["parent"]]
            while True:  # and the calls inside it
                more = failed | ((c_parent >= 0) & failed[np.maximum(c_parent, 0)])
                if (more == failed).all():
                    break
                failed = more
            forward &= ~np.r_[failed, False][op_call]
            idx = trace.index
            what = sorted({idx.names[m] or idx.types[m] for m in module[caught].tolist()})
            notes.append(f"{int(caught.sum())} module call(s) raised an exception the model caught ({', '.join(what)}): "
                         "their ops are not counted")
    op_row = np.where(forward & (op_call >= 0), id_to_row[np.maximum(op_call, 0)], -1)
    op_mask = op_row >= 0
    # An op is top-level in its call when no op of the same call encloses it (a module called
    # inside an autograd.Function's forward runs under that Function's record).
    enclosing_call = np.where(op_parent >= 0, op_call[np.maximum(op_parent, 0)], -1)
    top = op_mask & ((op_parent < 0) | (enclosing_call != op_call))
    num_ops = subtree_sum(np.bincount(op_row[top], minlength=n), parent, depth)
    bwd = _backward(trace, ops, parent, depth, n, engine_ids, backward_op, node_fop, device_type, call_alias)
    notes += bwd.pop("notes", [])

    mem, peak = _memory(trace, call_ids, id_to_row, parent, depth, enter, exit_, device_type)
    return Attribution(
        call_ids=call_ids, module=module, parent=parent, depth=depth,
        fwd_time_ns=fwd_time, fwd_self_time_ns=fwd_self, fwd_time_min_ns=fwd_min,
        num_ops=num_ops, op_row=op_row, op_mask=op_mask, mem=mem, **bwd,
        total_time_ns=float(statistics.median(trace.pass_times_ns)), peak_memory=peak, notes=notes,
    )
