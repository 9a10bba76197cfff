"""Stage 3: count. Parameters per module and MACs/FLOPs per op from recorded shapes.

Convention (../shared/DESIGN.md): FLOPs come from per-op formulas over the
recorded input shapes, MACs = FLOPs / 2. The outermost op that has a formula
is counted and its descendants are skipped; an op without a formula is
transparent. Ops with neither a formula nor a counted descendant are reported
(as `uncounted_ops`), never silently taken as 0.
"""
from __future__ import annotations

import math
import re
import struct

import numpy as np
import torch

from ._ext import C

OPC = C.OP_COLS
TAG = C.ARG_TAGS
_T_TENSOR, _T_INT, _T_DOUBLE, _T_BOOL, _T_LIST = (TAG["tensor"], TAG["int"], TAG["double"],
                                                 TAG["bool"], TAG["list"])
_T_OPAQUE = TAG["opaque_tensor"]


class TensorMeta(tuple):
    """Decoded tensor argument: (dtype code, shape). Shape is None when unknown."""

    @property
    def shape(self):
        return self[1]


def _decode_one(a, i):
    tag = a[i]
    if tag == _T_TENSOR:
        ndim = a[i + 2]
        return TensorMeta((a[i + 1], tuple(a[i + 3:i + 3 + ndim]))), i + 3 + ndim
    if tag == _T_INT or tag == _T_BOOL:
        return (a[i + 1] if tag == _T_INT else bool(a[i + 1])), i + 2
    if tag == _T_DOUBLE:
        return struct.unpack("<d", struct.pack("<q", a[i + 1]))[0], i + 2
    if tag == _T_OPAQUE:
        return TensorMeta((a[i + 1], None)), i + 2
    if tag == _T_LIST:
        n, i = a[i + 1], i + 2
        out = []
        for _ in range(n):
            v, i = _decode_one(a, i)
            out.append(v)
        return out, i
    return None, i + 1  # none / undefined tensor / other


def decode_args(args: np.ndarray, off: int, length: int) -> list:
    """Decode one op's packed arguments (csrc/recorder.h) into Python values."""
    a = args[off:off + length].tolist()
    out, i = [], 0
    while i < len(a):
        v, i = _decode_one(a, i)
        out.append(v)
    return out


def tensor_shapes(decoded: list) -> list:
    """Shapes of the tensor arguments ([] for non-tensors), like torch.profiler's input_shapes."""
    out = []
    for v in decoded:
        if isinstance(v, TensorMeta):
            out.append(list(v[1]) if v[1] is not None else [])
        elif isinstance(v, list) and v and all(isinstance(e, TensorMeta) for e in v):
            out.append([list(e[1]) if e[1] is not None else [] for e in v])
        else:
            out.append([])
    return out


# --------------------------------------------------------------------- formulas
# Each returns MACs for one op from its decoded arguments, or None if the
# arguments are not what the formula understands (then the op is uncounted).

def _shape(v):
    return v[1] if isinstance(v, TensorMeta) else None


def _prod(xs):
    return math.prod(int(x) for x in xs)


def _mm(args):
    a, b = _shape(args[0]), _shape(args[1])
    return a[0] * a[1] * b[1]


def _addmm(args):
    a, b = _shape(args[1]), _shape(args[2])
    return a[0] * a[1] * b[1]


def _bmm(args):
    a, b = _shape(args[0]), _shape(args[1])
    return a[0] * a[1] * a[2] * b[2]


def _baddbmm(args):
    return _bmm(args[1:3])


def _matmul(args):
    a, b = _shape(args[0]), _shape(args[1])
    if len(a) == 1 and len(b) == 1:
        return a[0]
    if len(a) == 1:
        a = (1,) + tuple(a)
    if len(b) == 1:
        b = tuple(b) + (1,)
    batch = torch.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    return _prod(batch) * a[-2] * a[-1] * b[-1]


def _linear(args):
    x, w = _shape(args[0]), _shape(args[1])
    if len(w) == 1:  # weight as a vector: dot product per row
        return _prod(x)
    return _prod(x[:-1]) * x[-1] * w[0]


def _convolution(args):
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    x, w = _shape(args[0]), _shape(args[1])
    transposed, groups = bool(args[6]), int(args[8])
    kernel = _prod(w[2:])
    if transposed:
        # every input element meets (C_out / groups) * kernel weights
        return _prod(x) * w[1] * kernel
    stride, padding, dilation = args[3], args[4], args[5]
    spatial = x[2:]
    nd = len(spatial)
    stride = list(stride) * nd if len(stride) == 1 else list(stride)
    padding = list(padding) * nd if len(padding) == 1 else list(padding)
    dilation = list(dilation) * nd if len(dilation) == 1 else list(dilation)
    out = [(spatial[i] + 2 * padding[i] - dilation[i] * (w[2 + i] - 1) - 1) // stride[i] + 1
           for i in range(nd)]
    return x[0] * w[0] * _prod(out) * (x[1] // groups) * kernel


def _sdpa(args):
    q, k, v = _shape(args[0]), _shape(args[1]), _shape(args[2])
    batch = _prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


MAC_FORMULAS = {
    "aten::mm": _mm,
    "aten::addmm": _addmm,
    "aten::bmm": _bmm,
    "aten::baddbmm": _baddbmm,
    "aten::matmul": _matmul,
    "aten::linear": _linear,
    "aten::convolution": _convolution,
    "aten::scaled_dot_product_attention": _sdpa,
}

# Ops that carry no multiply-accumulates by convention (views, copies,
# elementwise, norms, pooling, reductions, factories). They are grouped, not
# listed one by one, among the uncounted ops.
_ZERO_MAC = re.compile(
    r"aten::_?(view|reshape|t|transpose|permute|expand|as_strided|contiguous|clone|copy_?|detach|"
    r"alias|slice|select|unsqueeze|squeeze|flatten|unflatten|cat|stack|split|chunk|narrow|unbind|"
    r"to|_to_copy|empty.*|zeros.*|ones.*|full.*|fill_|zero_|resolve_conj|resolve_neg|lift.*|"
    r"unsafe_view|reshape_alias|index.*|gather|scatter.*|masked_fill_?|where|"
    r"relu_?|gelu_?|silu_?|sigmoid_?|tanh_?|hardtanh_?|hardswish_?|leaky_relu_?|elu_?|mish_?|"
    r"softplus|clamp.*|threshold_?|add_?|sub_?|mul_?|div_?|rsub|neg_?|pow_?|sqrt|rsqrt|exp_?|log_?|"
    r"abs_?|sum|mean|max.*|min.*|amax|amin|argmax|argmin|var.*|std.*|norm|softmax|log_softmax|"
    r"_softmax|_log_softmax|dropout|native_dropout|feature_dropout|bernoulli_?|"
    r"layer_norm|native_layer_norm|batch_norm|native_batch_norm|_batch_norm_impl_index|"
    r"_native_batch_norm_legit.*|cudnn_batch_norm|group_norm|native_group_norm|instance_norm|"
    r"rms_norm|_fused_rms_norm|embedding|embedding_bag|_embedding_bag|"
    r"max_pool\d?d?.*|avg_pool\d?d?|adaptive_(avg|max)_pool\d?d?|_adaptive_avg_pool\d?d?|mkldnn_.*pool.*|"
    r"pad|constant_pad_nd|reflection_pad.*|replication_pad.*|upsample.*|arange|linspace|"
    r"eq|ne|lt|le|gt|ge|logical_.*|bitwise_.*|isnan|isinf|any|all|item|_local_scalar_dense|"
    r"set_|result_type|is_nonzero|numel|size|stride|dim|_has_compatible_shallow_copy_type|"
    r"roll|flip|repeat|tile|tril|triu|masked_select|topk|sort|cumsum|type_as|expand_as|"
    r"view_as|reshape_as|split_with_sizes|_reshape_alias|new_.*|detach_)$"
)


def op_formula_flags(names: list) -> tuple[np.ndarray, np.ndarray]:
    """Per op-name id: has a MAC formula / is zero-MAC by convention."""
    has = np.fromiter((n in MAC_FORMULAS for n in names), dtype=bool, count=len(names))
    zero = np.fromiter((bool(_ZERO_MAC.match(n)) for n in names), dtype=bool, count=len(names))
    return has, zero


def count_ops(ops: np.ndarray, args: np.ndarray, names: list, mask: np.ndarray):
    """MACs per op (int64, 0 where not counted) for the ops selected by `mask`.

    Returns (macs, counted, uncounted) where `uncounted` maps op name -> calls
    for ops that have no formula and no counted descendant, zero-MAC ops
    grouped under one key.
    """
    n = len(ops)
    macs = np.zeros(n, dtype=np.int64)
    counted = np.zeros(n, dtype=bool)
    if n == 0:
        return macs, counted, {}
    has, zero = op_formula_flags(names)
    name = ops[:, OPC["name"]]
    parent = ops[:, OPC["parent"]]
    candidate = mask & has[name]
    # Skip candidates with a candidate ancestor (outermost formula wins).
    covered = np.zeros(n, dtype=bool)
    anc = parent.copy()
    while True:
        live = anc >= 0
        if not live.any():
            break
        covered[live] |= candidate[anc[live]]
        anc = np.where(live, parent[np.maximum(anc, 0)], -1)
    counted_idx = np.nonzero(candidate & ~covered)[0]
    failed = {}
    off, ln = ops[:, OPC["args_off"]], ops[:, OPC["args_len"]]
    # Identical (op, arguments) pairs are common (a model repeats its layers):
    # group them with a vectorised hash of the packed arguments, decode once each.
    groups, rep = _group_identical(name, off, ln, args, counted_idx)
    for g, i in enumerate(rep.tolist()):
        o, l = int(off[i]), int(ln[i])
        try:
            v = int(MAC_FORMULAS[names[name[i]]](decode_args(args, o, l)))
        except Exception:  # shapes not understood (e.g. opaque tensors): uncounted
            v = -1
        members = counted_idx[groups == g]
        if v >= 0:
            macs[members] = v
            counted[members] = True
        else:
            failed[names[name[i]]] = failed.get(names[name[i]], 0) + len(members)

    # Ops with a counted descendant are accounted for.
    has_counted_desc = np.zeros(n, dtype=bool)
    anc = parent[counted]
    while len(anc):
        anc = anc[anc >= 0]
        has_counted_desc[anc] = True
        anc = parent[anc]
    covered_by_counted = np.zeros(n, dtype=bool)
    anc = parent.copy()
    while True:
        live = anc >= 0
        if not live.any():
            break
        covered_by_counted[live] |= counted[anc[live]]
        anc = np.where(live, parent[np.maximum(anc, 0)], -1)
    # Report at the top of each uncounted chain only: ops whose parent is not itself reported.
    open_ = mask & ~counted & ~has_counted_desc & ~covered_by_counted
    top = open_ & ~np.where(parent >= 0, open_[np.maximum(parent, 0)], False)
    uncounted = dict(failed)
    ids, cnt = np.unique(name[top], return_counts=True)
    trivial = 0
    for i, c in zip(ids.tolist(), cnt.tolist()):
        if zero[i]:
            trivial += c
        else:
            uncounted[names[i]] = uncounted.get(names[i], 0) + c
    if trivial:
        uncounted[ZERO_MAC_KEY] = trivial
    return macs, counted, uncounted


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
    with np.errstate(over="ignore"):  # arithmetic wraps mod 2**64: fine for a hash
        h = np.add.reduceat(vals * _HASH_W[0][rel] + rel, starts)
        h = h * _HASH_W[1][0] + name[idx] * _HASH_W[1][1] + lens * _HASH_W[1][2]
    _, first, groups = np.unique(h, return_index=True, return_inverse=True)
    return groups.reshape(-1), idx[first]


ZERO_MAC_KEY = "(views, elementwise, norms, pooling: no MACs by convention)"


def param_counts(index):
    """Per module index: (params, trainable, own params, own trainable), each Parameter once.

    Rows count every parameter their module uses (a tied head shows its
    weight); model totals (sum of `own`) count each Parameter object once.
    """
    n = len(index.modules)
    own = [0] * n
    own_tr = [0] * n
    first_owner = set()
    shared = False
    for i, m in enumerate(index.modules):
        for p in m._parameters.values():
            if p is None:
                continue
            key = id(p)
            if key in first_owner:
                shared = True
                continue
            first_owner.add(key)
            k = p.numel()
            own[i] += k
            if p.requires_grad:
                own_tr[i] += k
    own = np.array(own, dtype=np.int64)
    own_tr = np.array(own_tr, dtype=np.int64)
    if shared:  # a module's row counts every parameter it uses, shared or not
        total = np.array([sum(p.numel() for p in m.parameters()) for m in index.modules], dtype=np.int64)
        total_tr = np.array([sum(p.numel() for p in m.parameters() if p.requires_grad)
                             for m in index.modules], dtype=np.int64)
        return total, total_tr, own, own_tr
    from .attribute import subtree_sum
    return (subtree_sum(own, index.parent, index.depth), subtree_sum(own_tr, index.parent, index.depth),
            own, own_tr)
