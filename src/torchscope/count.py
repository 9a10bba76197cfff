"""Stage 3: count. Parameters per module and MACs/FLOPs per op from recorded shapes.

Convention (../shared/DESIGN.md): FLOPs come from per-op formulas over the
recorded input shapes, MACs = FLOPs / 2. The outermost op that has a formula
is counted and its descendants are skipped; an op without a formula, or whose
formula cannot read its arguments (opaque/nested tensors), is transparent. Ops
with neither a usable formula nor a counted descendant are reported (as
`uncounted_ops`), never silently taken as 0.

Formulas (MAC_FORMULAS) take the decoded arguments in schema order, as the
recorder gives them (csrc/recorder.h: strings are not recorded, so einsum has
no formula and is counted through its bmm/mm children).
"""
from __future__ import annotations

import dataclasses
import math
import re
import struct

import numpy as np
import torch

from ._ext import C
from .attribute import PerName

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


def _bcast(a, b):
    """Broadcast two batch shapes, right-aligned, taking the larger size per dim.

    Plain broadcasting for 1-vs-n dims; also covers grouped-query attention,
    where the query has Hq heads and key/value Hkv heads with Hq % Hkv == 0.
    """
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(max(x, y) for x, y in zip(a, b))


# --- matrix products. [M, K] @ [K, N] = M*N*K MACs (one multiply-add per k per output).

def _mm(args):
    # mm(a [M,K], b [K,N]); also _int_mm, _scaled_mm (scales are elementwise)
    a, b = _shape(args[0]), _shape(args[1])
    return a[0] * a[1] * b[1]


def _addmm(args):
    # addmm(bias, a [M,K], b [K,N]): the bias add is not a MAC; also addmm_, _addmm_activation
    a, b = _shape(args[1]), _shape(args[2])
    return a[0] * a[1] * b[1]


def _bmm(args):
    # bmm(a [B,M,K], b [B,K,N]) = B*M*K*N
    a, b = _shape(args[0]), _shape(args[1])
    return a[0] * a[1] * a[2] * b[2]


def _baddbmm(args):
    # baddbmm(self, a [B,M,K], b [B,K,N]); addbmm sums the B products into one [M,N]
    # (the sum over B is the accumulation): same B*M*K*N
    return _bmm(args[1:3])


def _mv(args):
    # mv(mat [M,K], vec [K]) = M*K
    m = _shape(args[0])
    return m[0] * m[1]


def _addmv(args):
    # addmv(self, mat [M,K], vec [K]) = M*K
    return _mv(args[1:])


def _dot(args):
    # dot / vdot(a [K], b [K]) = K
    return _shape(args[0])[0]


def _vecdot(args):
    # linalg_vecdot(x, y, dim): one K-long dot product per broadcast position
    return _prod(_bcast(_shape(args[0]), _shape(args[1])))


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
    # linear(x [..., in], w [out, in], b): every row of x meets every row of w
    x, w = _shape(args[0]), _shape(args[1])
    if len(w) == 1:  # weight as a vector: dot product per row
        return _prod(x)
    return _prod(x[:-1]) * x[-1] * w[0]


def _convolution(args):
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    # (_convolution and convolution_overrideable share these first 9 arguments)
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


# --- attention. Scores q·kᵀ: L*S*E MACs and attn·v: L*S*Ev MACs per (batch, head); the
# scale, the mask add and the softmax are elementwise (not MACs). A mask or is_causal does
# not change the count: kernels and the math path compute the full L x S score matrix
# (as do FlopCounterMode and the explicit matmul version of the same block).

def _sdpa(args):
    # q [..., L, E], k [..., S, E], v [..., S, Ev] as the first three arguments of
    # scaled_dot_product_attention, _scaled_dot_product_{flash_attention[_for_cpu],
    # efficient_attention, cudnn_attention, attention_math[_for_mps],
    # fused_attention_overrideable}. Batch dims broadcast; with GQA (enable_gqa) the
    # query's head count Hq multiplies (each of the Hkv key/value heads serves Hq/Hkv).
    q, k, v = _shape(args[0]), _shape(args[1]), _shape(args[2])
    batch = _bcast(q[:-2], k[:-2])
    return _prod(batch) * q[-2] * k[-2] * (q[-1] + v[-1])


def _attention_forward(cu_seq_arg):
    # _flash_attention_forward / _efficient_attention_forward: q [B, L, H, E],
    # k [B, S, Hkv, E], v [B, S, Hkv, Ev] (sequence before heads). With cumulative sequence
    # lengths (varlen / nested) only their sum is recorded, not the per-sequence lengths
    # the product needs: then the formula declines (None) and the op is listed as
    # uncounted rather than guessed.
    def formula(args):
        if args[cu_seq_arg] is not None:
            return None
        q, k, v = _shape(args[0]), _shape(args[1]), _shape(args[2])
        return q[0] * q[2] * q[1] * k[1] * (q[3] + v[3])
    return formula


def _native_mha(args):
    # _native_multi_head_attention(query [B, L, E], key [B, S, E], value [B, S, E], embed_dim,
    # num_head, qkv_weight, qkv_bias, proj_weight, ...): nn.MultiheadAttention's fused path.
    # q projection B*L*E*E, k and v projections 2*B*S*E*E, scores + values over all heads
    # B*L*S*E*2, output projection B*L*E*E.
    q, k, e = _shape(args[0]), _shape(args[1]), int(args[3])
    b, l, s = q[0], q[1], k[1]
    return b * (2 * l + 2 * s) * e * e + 2 * b * l * s * e


def _encoder_layer(args):
    # _transformer_encoder_layer_fwd(src [B, L, E], embed_dim, num_heads, qkv_weight, qkv_bias,
    # proj_weight, proj_bias, use_gelu, norm_first, eps, norm_weight_1, norm_bias_1,
    # norm_weight_2, norm_bias_2, ffn_weight_1 [F, E], ffn_bias_1, ffn_weight_2 [E, F], ...):
    # self-attention as above with S = L, plus the two feed-forward products B*L*E*F each.
    x = _shape(args[0])
    attn = _native_mha([args[0], args[0], args[0], args[1]])
    return attn + x[0] * x[1] * (_prod(_shape(args[14])) + _prod(_shape(args[16])))


# --- recurrent layers. Gate products only: per token, per layer and direction, every
# 2-d weight matrix W [rows, cols] costs rows*cols MACs: w_ih [G*H, in] and w_hh [G*H, R]
# with G = 4 (LSTM), 3 (GRU), 1 (RNN) gates and R = H (or proj_size for a projected
# LSTM, which adds w_hr [proj_size, H]). So MACs = tokens * sum of 2-d weight sizes over
# `params`, which lists every layer and direction (a layer > 0 has in = D * H or D * P).
# Biases are 1-d and skipped (not MACs). tokens = T*B; for a packed sequence the data is
# [sum of lengths, in], so padding is (correctly) not counted.

def _rnn(args):
    # lstm/gru/rnn_tanh/rnn_relu.input(input, hx, params, has_biases, ...)
    # lstm/gru/rnn_tanh/rnn_relu.data(data, batch_sizes, hx, params, has_biases, ...)
    params = args[2] if isinstance(args[3], bool) else args[3]
    x = _shape(args[0])
    per_token = sum(_prod(p[1]) for p in params if len(p[1]) == 2)
    return _prod(x[:-1]) * per_token


def _rnn_kernel(weights_arg):
    # the per-backend kernels under aten::lstm/gru/rnn_* (counted when those are not seen,
    # e.g. by a dispatch-level recorder): _cudnn_rnn / miopen_rnn(input, weight[], ...) take
    # the same flat weight list as `params`; mkldnn_rnn_layer(input, w_ih, w_hh, b_ih, b_hh,
    # ...) runs one layer and direction.
    def formula(args):
        x = _shape(args[0])
        ws = args[weights_arg] if weights_arg is not None else [args[1], args[2]]
        return _prod(x[:-1]) * sum(_prod(w[1]) for w in ws if len(w[1]) == 2)
    return formula


def _rnn_cell(args):
    # lstm_cell/gru_cell/rnn_tanh_cell/rnn_relu_cell(input [B, in] or [in], hx, w_ih, w_hh, ...)
    x, w_ih, w_hh = _shape(args[0]), _shape(args[2]), _shape(args[3])
    return _prod(x[:-1]) * (_prod(w_ih) + _prod(w_hh))


MAC_FORMULAS = {
    # matrix products
    "aten::mm": _mm,
    "aten::_int_mm": _mm,
    "aten::_scaled_mm": _mm,
    "aten::addmm": _addmm,
    "aten::addmm_": _addmm,
    "aten::_addmm_activation": _addmm,  # fused Linear+ReLU/GELU (TransformerEncoderLayer fast path)
    "aten::bmm": _bmm,
    "aten::baddbmm": _baddbmm,
    "aten::baddbmm_": _baddbmm,
    "aten::addbmm": _baddbmm,
    "aten::addbmm_": _baddbmm,
    "aten::mv": _mv,
    "aten::addmv": _addmv,
    "aten::addmv_": _addmv,
    "aten::dot": _dot,
    "aten::vdot": _dot,
    "aten::linalg_vecdot": _vecdot,
    "aten::matmul": _matmul,
    "aten::linear": _linear,
    # einsum is deliberately absent: the recorder does not keep its equation string, so it
    # stays transparent and its bmm/mm children are counted.
    # convolutions (conv1d/2d/3d, conv_transpose*, _convolution_mode reach aten::convolution)
    "aten::convolution": _convolution,
    "aten::_convolution": _convolution,
    "aten::convolution_overrideable": _convolution,
    # attention
    "aten::scaled_dot_product_attention": _sdpa,
    "aten::_scaled_dot_product_flash_attention_for_cpu": _sdpa,
    "aten::_scaled_dot_product_flash_attention": _sdpa,
    "aten::_scaled_dot_product_efficient_attention": _sdpa,
    "aten::_scaled_dot_product_cudnn_attention": _sdpa,
    "aten::_scaled_dot_product_attention_math": _sdpa,
    "aten::_scaled_dot_product_attention_math_for_mps": _sdpa,
    "aten::_scaled_dot_product_fused_attention_overrideable": _sdpa,
    "aten::_flash_attention_forward": _attention_forward(3),      # cum_seq_q
    "aten::_efficient_attention_forward": _attention_forward(4),  # cu_seqlens_q
    # nn.MultiheadAttention / TransformerEncoderLayer fast paths (eval + no_grad). Over nested
    # tensors (padding masks) the formulas cannot read the shapes and the ops turn transparent:
    # their dense mm/bmm children then count the real (unpadded) tokens.
    "aten::_native_multi_head_attention": _native_mha,
    "aten::_transformer_encoder_layer_fwd": _encoder_layer,
    # recurrent layers and cells
    "aten::lstm": _rnn,
    "aten::gru": _rnn,
    "aten::rnn_tanh": _rnn,
    "aten::rnn_relu": _rnn,
    "aten::_cudnn_rnn": _rnn_kernel(1),
    "aten::miopen_rnn": _rnn_kernel(1),
    "aten::mkldnn_rnn_layer": _rnn_kernel(None),
    "aten::lstm_cell": _rnn_cell,
    "aten::gru_cell": _rnn_cell,
    "aten::rnn_tanh_cell": _rnn_cell,
    "aten::rnn_relu_cell": _rnn_cell,
}

# Ops that carry no multiply-accumulates by convention (views, copies,
# elementwise, norms, pooling, reductions, factories). They are grouped, not
# listed one by one, among the uncounted ops.
_ZERO_MAC = re.compile(
    r"aten::_?(view|reshape|t_?|transpose_?|permute|expand|as_strided_?|contiguous|clone|copy_?|detach_?|"
    r"alias|slice|select|unsqueeze_?|squeeze_?|flatten|unflatten|cat|stack|split|chunk|narrow|unbind|"
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
    r"view_as|reshape_as|split_with_sizes|_reshape_alias|new_.*|detach_|"
    # attention / RNN helpers around counted products (softmax variants, qkv bias, masks)
    r"safe_softmax|masked_softmax|transform_bias_rescale_qkv|isneginf|isposinf|scalar_tensor|"
    r"repeat_interleave|cudnn_is_acceptable|nnpack_available|unsafe_chunk|unsafe_split.*|"
    r"diagonal|movedim|moveaxis|numpy_T|mT|mH|adjoint|resize_.*|"
    # products without accumulation are elementwise by convention
    r"outer|ger|kron|addr_?|"
    # more elementwise math, activations and complex views
    r"hardsigmoid_?|dropout_|alpha_dropout_?|feature_dropout_|feature_alpha_dropout_?|view_as_real|"
    r"view_as_complex|real|imag|conj|_conj|angle|sin_?|cos_?|tan_?|sinh_?|cosh_?|asin_?|acos_?|atan2?_?|"
    r"erfc?_?|reciprocal_?|sign_?|floor_?|ceil_?|round_?|trunc_?|log1p_?|log2_?|log10_?|expm1_?|square_?|"
    r"logsumexp|prod|cumprod|glu|prelu|_prelu_kernel|celu_?|selu_?|rrelu_?|softsign|tanhshrink|hardshrink|"
    r"softshrink|log_sigmoid.*|addcmul_?|addcdiv_?|lerp_?|minimum|maximum|fmod_?|remainder_?|floor_divide_?|"
    r"true_divide_?|histc|bincount|histogram.*|"
    r"__i?(and|or|xor|lshift|rshift)__|broadcast_tensors|meshgrid|swapaxes_?|swapdims_?|matrix_H|"
    r"linalg_vector_norm|_weight_norm.*|norm_except_dim|rand.*|uniform_|normal_|random_|exponential_|"
    r"multinomial|nonzero.*|argsort|_?unique.*|one_hot|bucketize|searchsorted|grid_sampler.*|normal|"
    r"pixel_(un)?shuffle|channel_shuffle|im2col|col2im|"
    # quantization bookkeeping (the quantized:: compute ops themselves are listed: no formula)
    r"quantize_per_tensor.*|quantize_per_channel|dequantize|int_repr|q_scale|q_zero_point|q_per_channel_.*|"
    r"_make_per_(tensor|channel)_quantized_tensor|_?fake_quantize.*|_fused_moving_avg_obs_fq_helper|"
    r"fused_moving_avg_obs_fake_quant|_choose_qparams_per_tensor|choose_qparams.*|"
    # gradients of elementwise ops, norms and pooling (autograd.grad inside a forward)
    r"(tanh|sigmoid|threshold|relu|gelu|silu|hardtanh|hardswish|hardsigmoid|leaky_relu|elu|softplus|mish|"
    r"_softmax|_log_softmax|native_dropout|native_layer_norm|native_batch_norm|native_group_norm|"
    r"embedding_dense|max_pool\dd_with_indices|avg_pool\dd|adaptive_avg_pool\dd|upsample.*|"
    r"_adaptive_avg_pool\dd)_backward.*|"
    # losses: elementwise terms and reductions
    r"l1_loss|smooth_l1_loss|huber_loss|mse_loss|nll_loss.*|cross_entropy_loss|binary_cross_entropy.*|"
    r"kl_div|soft_margin_loss|hinge_embedding_loss|margin_ranking_loss|cosine_embedding_loss|"
    # nested-tensor conversions (fast paths with padding masks)
    r"nested_.*|to_padded_tensor|equal|is_same_size)$"
)


# Per op-name id (computed once per name): zero-MAC by convention (autograd-engine wrappers, run by
# autograd.grad inside a forward, do no work either), and not a dispatcher op ("::" absent)
_zero_names = PerName(lambda nm: bool(_ZERO_MAC.match(nm)) or nm.startswith("autograd::engine::"), bool)
_plain_names = PerName(lambda nm: "::" not in nm, bool)


def op_formula_flags(names: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per op-name id: has a MAC formula (read now: MAC_FORMULAS may gain or lose entries) /
    is zero-MAC by convention / is a scope that is not a dispatcher op (a Python
    autograd.Function, record_function: no work of its own)."""
    has = np.fromiter((n in MAC_FORMULAS for n in names), dtype=bool, count=len(names))
    return has, _zero_names(names), _plain_names(names) & ~has


def count_ops(ops: np.ndarray, args: np.ndarray, names: list, mask: np.ndarray):
    """MACs per op (int64, 0 where not counted) for the ops selected by `mask`.

    Returns (macs, listed, uncounted) where `uncounted` maps op name -> calls
    for ops that have no formula and no counted descendant, zero-MAC ops
    grouped under one key, and `listed` marks the ops counted there by name
    (work whose MACs are unknown, not zero by convention). A formula that
    cannot read its op's arguments
    (opaque/nested tensors, variable-length attention) makes that op
    transparent: its children are examined instead (a fused op over nested
    tensors still reaches dense mm/bmm children), and it is listed under its
    own name only if none of them is counted.
    """
    n = len(ops)
    macs = np.zeros(n, dtype=np.int64)
    counted = np.zeros(n, dtype=bool)
    if n == 0:
        return macs, counted, {}  # (all False: no op listed either)
    has, zero, scope = op_formula_flags(names)
    name = ops[:, OPC["name"]]
    candidate = mask & has[name]
    failed = np.zeros(n, dtype=bool)
    while True:
        # The outermost candidates not yet evaluated (outermost formula wins), grouped by
        # (op, arguments): a model repeats its layers, so each group is decoded once. A second
        # round happens only when a formula failed and uncovered the ops below it.
        todo, groups, rep = C.count_todo(ops, args, candidate, counted)
        if len(todo) == 0:
            break
        again = False
        for g, i in enumerate(rep.tolist()):
            op = ops[i]
            try:
                v = int(MAC_FORMULAS[names[op[OPC["name"]]]](decode_args(args, int(op[OPC["args_off"]]),
                                                                         int(op[OPC["args_len"]]))))
            except Exception:  # arguments not understood (e.g. opaque tensors, None): transparent
                v = -1
            members = todo[groups == g] if len(rep) > 1 else todo
            if v >= 0:
                macs[members] = v
                counted[members] = True
            else:
                candidate[members] = False
                failed[members] = True
                again = True
        if not again:
            break

    # Ops with a counted descendant or ancestor are accounted for; transparent scopes' children
    # stand for themselves. Each uncounted chain is reported once: at the outermost failed
    # formula op inside it (the actionable name), else at its top.
    top = C.count_top(ops, mask, counted, failed, scope)
    uncounted = {}
    conventional = zero & ~has  # per name: no MACs by convention
    per_name = np.bincount(name[top], minlength=len(names))
    ids = np.nonzero(per_name)[0]
    trivial = 0
    for i, c in zip(ids.tolist(), per_name[ids].tolist()):
        if conventional[i]:
            trivial += c
        else:
            uncounted[names[i]] = c
    if trivial:
        uncounted[ZERO_MAC_KEY] = trivial
    return macs, top & ~conventional[name], uncounted


ZERO_MAC_KEY = "(views, elementwise, norms, pooling: no MACs by convention)"


@dataclasses.dataclass
class TensorCounts:
    """Parameter and buffer sizes of the model's modules (per module index)."""

    params: np.ndarray          # every parameter the module uses, children included (a tied head shows its weight)
    trainable: np.ndarray
    own: np.ndarray             # each Parameter once, at its first module: sums are model totals
    own_trainable: np.ndarray
    buffers: np.ndarray         # buffer elements, children included
    param_bytes: int            # distinct tensors
    buffer_bytes: int
    param_bytes_by_dtype: dict  # "float32" -> bytes


def tensor_counts(index, stats: dict | None = None) -> TensorCounts:
    """Parameter and buffer sizes from `stats` (C.tensor_stats of index.modules, e.g. what a
    capture's markers gathered), else one pass over every module's own tensors."""
    from .attribute import subtree_sum

    s = stats if stats is not None else C.tensor_stats(index.modules, torch.nn.parameter.UninitializedTensorMixin)
    if s["uninitialized"]:
        where = ", ".join(f"'{index.names[i] or '(root)'}' ({index.types[i]})" for i in s["uninitialized"])
        raise ValueError(f"lazy module(s) {where} still have uninitialized parameters, so their size is "
                         "unknown; run the model once (or profile on a real device) before summarising")
    own, own_tr = s["own_params"], s["own_trainable"]
    if s["shared"] or index.shared_modules:  # a module's row counts every parameter it uses, shared or not
        total = np.array([sum(p.numel() for p in m.parameters()) for m in index.modules], dtype=np.int64)
        total_tr = np.array([sum(p.numel() for p in m.parameters() if p.requires_grad)
                             for m in index.modules], dtype=np.int64)
    else:
        total, total_tr = subtree_sum(own, index.parent, index.depth), subtree_sum(own_tr, index.parent, index.depth)
    by_dtype = {str(k).replace("torch.", ""): v for k, v in s["param_bytes_by_dtype"].items()}
    return TensorCounts(total, total_tr, own, own_tr, subtree_sum(s["buffer_elems"], index.parent, index.depth),
                        s["param_bytes"], s["buffer_bytes"], by_dtype)
