"""profile_summary(): capture -> attribute -> count -> report, in that order."""
from __future__ import annotations

import collections.abc
import copy
from typing import Any

import numpy as np
import torch

from . import attribute as _attribute
from . import capture as _capture
from . import count as _count
from . import peaks as _peaks
from ._ext import C as _C
from .report import ProfileSummary, check_depth, fmt_shape, run_meta


def _move(obj, device):
    if isinstance(obj, (torch.Tensor, torch.nn.utils.rnn.PackedSequence)):
        return obj.to(device)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple keeps its type
        return type(obj)(*(_move(o, device) for o in obj))
    if isinstance(obj, tuple):
        return tuple(_move(o, device) for o in obj)
    if isinstance(obj, list):
        return [_move(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


def _as_call_args(inputs) -> tuple[tuple, dict]:
    """A tensor is one positional input; a tuple/list is several; a dict is keyword inputs."""
    if inputs is None:
        return (), {}
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, torch.nn.utils.rnn.PackedSequence):  # a namedtuple, but one input
        return (inputs,), {}
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def _model_device(model) -> torch.device | None:
    devs = {t.device for t in list(model.parameters()) + list(model.buffers())}
    if len(devs) > 1:
        raise ValueError(f"model spans several devices {sorted(map(str, devs))}; pass device=None "
                         "and put the inputs where the model expects them")
    return next(iter(devs)) if devs else None


def _first_device(model) -> torch.device | None:
    """Device of the model's first parameter or buffer (lazy: stops at the first)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return None


def _default_loss(out):
    """Sum of every floating tensor in the output that requires grad."""
    found = []

    def walk(o):
        if isinstance(o, torch.Tensor):
            if o.requires_grad and (o.is_floating_point() or o.is_complex()):
                found.append(o)
        elif isinstance(o, (tuple, list)):
            for x in o:
                walk(x)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x)
        elif hasattr(o, "__dataclass_fields__"):
            for f in o.__dataclass_fields__:
                walk(getattr(o, f))

    walk(out)
    if not found:
        raise ValueError("backward=True needs a model output that requires grad (no parameter requires grad, "
                         "or the output is not floating point); pass loss_fn=... to build a loss")
    loss = found[0].real.sum() if found[0].is_complex() else found[0].sum()
    for t in found[1:]:
        loss = loss + (t.real.sum() if t.is_complex() else t.sum())
    return loss


def _has_iterator(obj) -> bool:
    if isinstance(obj, (list, tuple)):
        return any(map(_has_iterator, obj))
    if isinstance(obj, dict):
        return any(map(_has_iterator, obj.values()))
    return isinstance(obj, collections.abc.Iterator)


def _fresh(obj):
    """A copy of the list/dict containers among the inputs (tensors shared), of the same types."""
    try:  # same type (dict.copy() would turn a subclass into a plain dict)
        if isinstance(obj, list):
            out = copy.copy(obj)
            out[:] = [_fresh(x) for x in obj]
            return out
        if isinstance(obj, dict):
            d = copy.copy(obj)
            for k in list(d):
                d[k] = _fresh(d[k])
            return d
    except TypeError:  # a subclass that forbids item assignment (a frozen dict): a plain copy
        return [_fresh(x) for x in obj] if isinstance(obj, list) else {k: _fresh(v) for k, v in obj.items()}
    if type(obj) is tuple:
        return tuple(_fresh(x) for x in obj)
    return obj


def _runner(model, args, kwargs, backward: bool, loss_fn, leaves=(), n_passes: int = 2):
    # The first pass gets the caller's containers; later ones fresh copies of them as they
    # were, so a forward that appends to or pops from them (batch.pop("labels")) runs the same
    # every pass, and the caller sees one call's change.
    pristine = _fresh((args, kwargs)) if n_passes > 1 else None
    passes = [0]

    def call():
        a, k = (args, kwargs) if passes[0] == 0 else _fresh(pristine)
        passes[0] += 1
        return model(*a, **k)
    if not backward:
        return call

    def run():
        for t in leaves:  # fresh grads each pass; the user's are stashed by the caller
            t.grad = None
        with torch.enable_grad():
            out = call()
            loss = loss_fn(out) if loss_fn is not None else _default_loss(out)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}"
                                 f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}")
            loss.backward()
        return out
    return run


def _checked_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r} is not a valid torch device ({e})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} requested, but CUDA is not available on this machine "
                               f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device={device!r} requested, but only {torch.cuda.device_count()} CUDA "
                               "device(s) are visible")
    return dev


def _meta_runner(model, args, kwargs):
    """Run with meta copies of the parameters and buffers (the model's own tensors are
    neither moved nor allocated): structure and counts of models too large to run."""
    from torch.func import functional_call

    lazy = [n for n, p in model.named_parameters() if isinstance(p, torch.nn.parameter.UninitializedTensorMixin)]
    if lazy:
        raise ValueError(f"device='meta' needs every parameter's size, but {', '.join(lazy)} "
                         "(lazy modules) are uninitialized: run the model once first")
    metas = {}  # one meta tensor per tensor: tied weights stay tied

    def meta(v):
        if id(v) not in metas:
            metas[id(v)] = torch.empty_like(v, device="meta").requires_grad_(v.requires_grad)
        return metas[id(v)]
    state = {k: meta(v) for k, v in list(model.named_parameters(remove_duplicate=False))
             + list(model.named_buffers(remove_duplicate=False))}

    def meta_run():
        return functional_call(model, state, args, kwargs, tie_weights=True, strict=False)
    return meta_run


def profile_summary(model: torch.nn.Module, inputs: Any = None, device=None, *,
                    backward: bool = False, loss_fn=None, depth: int | None = None, warmup: int = 1,
                    iters: int = 3, record_shapes: bool = True, record_memory: bool = True,
                    keep_output: bool = False, progress: bool | None = None,
                    peak_flops: float | None = None, weight_stats: bool = False,
                    verbose: int = 1) -> ProfileSummary:
    """Profile one model call and return (and, with verbose=1, print) its summary table.

    inputs: a tensor (one positional input), a tuple/list (positional inputs)
    or a dict (keyword inputs). device: moves model and inputs for the call;
    the model is moved back afterwards. warmup/iters: unrecorded then recorded
    passes; times are medians over the recorded ones. Runs in the caller's grad
    mode and the model's current training mode. backward=True (or loss_fn=f,
    f(output) -> scalar; default: sum of the outputs) also runs the backward
    pass and attributes each autograd node to the module whose forward op
    created it; the .grad tensors of the model and of the inputs are left as they were.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"profile_summary expects a torch.nn.Module, got {type(model).__name__}")
    check_depth(depth)  # before the passes, not at the first print
    backward = backward or loss_fn is not None
    given = _tensors(inputs)  # the caller's tensors (before any move)
    original_device = None
    first = _first_device(model)  # (the model's device unless device= moves it)
    if device is not None:
        device = _checked_device(device)
    elif getattr(first, "type", None) == "meta":
        device = torch.device("meta")  # built under torch.device("meta"): nothing to time or allocate
    meta = device is not None and device.type == "meta"
    if device is not None and not meta:
        device = torch.device(device)
        original_device = _model_device(model)
        model.to(device)
        inputs = _move(inputs, device)
    if meta:
        device = torch.device("meta")
        inputs = _move(inputs, device)
        record_memory = False  # meta tensors have no storage
    run_device = device or first or torch.device("cpu")
    args, kwargs = _as_call_args(inputs)
    if warmup + iters > 1 and _has_iterator((args, kwargs)):
        raise ValueError("inputs contain an iterator or generator, which the first pass would use up; pass a "
                         "list or tuple instead (or warmup=0, iters=1 for a single pass)")
    # only with backward: walking the parameters costs ~0.5 ms on a 600-module model
    leaves = _grad_leaves(model, given + _tensors(inputs)) if backward else []
    stashed = [(t, t.grad) for t in leaves]
    run = _runner(model, args, kwargs, backward, loss_fn, leaves, warmup + iters)
    if meta and _first_device(model) not in (None, torch.device("meta")):
        if backward:
            raise ValueError("device='meta' with backward=True needs a model built on the meta device "
                             "(with torch.device('meta'): model = ...)")
        run = _meta_runner(model, args, kwargs)
    try:
        trace = _capture.capture(model, run, warmup=warmup, iters=iters, record_shapes=record_shapes,
                                 record_memory=record_memory, keep_output=keep_output,
                                 progress=progress if verbose or progress is not None else False,
                                 # memory: torch reports the free of a block only if it saw its allocation
                                 record_warmup=backward or record_memory,
                                 inputs=_tensors(inputs))
        if meta:
            trace.notes.append("device=meta: shapes, params and MACs are exact; times are dispatch "
                               "overhead only (no kernels run) and no memory is allocated")
    except _capture.ProfileError as e:
        if isinstance(inputs, (tuple, list)) and inputs and all(type(d) is int for d in inputs):
            size = tuple(inputs)  # the model got ints: a size was meant
            raise _capture.ProfileError(f"{e} (inputs={size} look like a size: pass a tensor such as "
                                        f"torch.randn{size}, or use torchscope.summary(model, input_size={size}))"
                                        ) from e.__cause__
        raise
    finally:
        for p, g in stashed:  # the user's gradients, untouched
            p.grad = g
        if original_device is not None:
            model.to(original_device)
    summary = _build(trace, run_device, depth, warmup, inputs, peak_flops)
    # what was timed (diff says when two runs differ in it)
    summary.meta.update({"pass": "forward + backward" if backward else "forward",
                         "mode": "train" if model.training else "eval"})
    if weight_stats:
        _add_weight_columns(summary, model)
    if verbose:
        print(summary)
    return summary


def structure_summary(model: torch.nn.Module, depth: int | None = None) -> ProfileSummary:
    """The module tree and its parameters without running the model (torchinfo's and Keras'
    input-less summary): one row per module, each module once; shapes, MACs, times and memory
    need a forward pass and are None (shown as not measured, never as 0)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    index = _capture.module_index(model)
    tc = _count.tensor_counts(index)
    n = len(index.modules)
    idx = np.arange(n, dtype=np.int64)
    none = [None] * n
    cols = {f: None for f in ("macs", "flops", "self_macs", "fwd_time_ns", "fwd_self_time_ns", "fwd_time_min_ns",
                              "bwd_time_ns", "bwd_self_time_ns", "fwd_device_time_ns", "bwd_device_time_ns",
                              "mem_allocated", "mem_freed", "mem_retained", "mem_peak", "num_ops",
                              "bwd_mem_allocated", "flops_per_s")}
    cols.update({
        "name": [nm or tp for nm, tp in zip(index.names, index.types)], "type": list(index.types),
        "depth": index.depth, "parent": index.parent, "module_index": idx, "call_id": np.full(n, -1),
        "repeat": [False] * n, "input_shapes": none, "output_shapes": list(none),
        "params": tc.params, "trainable_params": tc.trainable, "buffers": tc.buffers,
        "kernel_size": _kernel_sizes(index.kernel_size, idx.tolist()),
    })
    dev = _first_device(model) or torch.device("cpu")
    summary = ProfileSummary(
        columns=cols, total_params=int(tc.own.sum()), trainable_params=int(tc.own_trainable.sum()),
        total_macs=None, uncounted_ops={}, total_time_ns=None, device=str(dev), peak_memory=None,
        meta=dict(run_meta(str(dev), 0, 0, "none"), device_name=_device_name(dev)),
        notes=["no input given: the module tree and its parameters only (shapes, MACs, times and memory "
               "need a forward pass: pass input_size= or input_data=)"],
        depth=depth, param_bytes=tc.param_bytes, buffer_bytes=tc.buffer_bytes, input_bytes=0,
        param_bytes_by_dtype=tc.param_bytes_by_dtype)
    summary._modules = index.modules  # extra_repr and training flags (tree and Lightning styles)
    return summary


def _build(trace, run_device: torch.device, depth, warmup, inputs, peak_flops=None) -> ProfileSummary:
    dev_type = _attribute.DEVICE_TYPE_CUDA if run_device.type == "cuda" else _attribute.DEVICE_TYPE_CPU
    att = _attribute.attribute(trace, dev_type)
    n = len(att.call_ids)

    tc = _count.tensor_counts(trace.index, trace.tensor_stats)
    macs_missing = None if trace.op_shapes else "op input shapes not recorded: record_shapes=False"
    if macs_missing:  # nothing to count from: shown as not counted, never as 0
        macs_per_op, uncounted = np.zeros(len(att.op_row), dtype=np.int64), {}
        listed = np.zeros(len(att.op_row), dtype=bool)
    else:
        macs_per_op, listed, uncounted = _count.count_ops(trace.ops, trace.args, trace.names, att.op_mask)
    args = (att.op_row, macs_per_op, listed, att.parent, att.module, att.fwd_time_ns, tc.params, tc.trainable,
            tc.buffers)
    counts = _C.count_columns(*args)  # one C sweep; None: rows out of pre-order, or the Python recorder
    if counts is None:
        counts = count_columns_numpy(*args, att.depth)
    total_macs = None if macs_missing else counts.pop("total_macs")
    if macs_missing:
        for k in ("self_macs", "macs", "flops", "macs_uncounted_ops", "flops_per_s"):
            counts[k] = None
        macs_per_op = None
    module = att.module
    ins, outs = _row_shapes(trace, att.call_ids)
    mlist = module.tolist()
    mod_names, mod_types = trace.index.names, trace.index.types
    types = list(map(mod_types.__getitem__, mlist))
    labels = list(mod_names)  # qualified names; the root (index 0, the only one named "") by its type
    if labels and not labels[0]:
        labels[0] = mod_types[0]
    names = list(map(labels.__getitem__, mlist))
    mem = att.mem
    cols = {
        "name": names, "type": types, "depth": att.depth, "parent": att.parent,
        "module_index": module, "call_id": att.call_ids, "repeat": counts["repeat"],
        "input_shapes": ins, "output_shapes": outs,
        "params": counts["params"], "trainable_params": counts["trainable_params"],
        "macs": counts["macs"], "flops": counts["flops"], "self_macs": counts["self_macs"],
        "macs_uncounted_ops": counts["macs_uncounted_ops"],
        "fwd_time_ns": att.fwd_time_ns, "fwd_self_time_ns": att.fwd_self_time_ns,
        "fwd_time_min_ns": att.fwd_time_min_ns,
        "bwd_time_ns": att.bwd_time_ns, "bwd_self_time_ns": att.bwd_self_time_ns,
        "fwd_device_time_ns": None, "bwd_device_time_ns": None,
        "mem_allocated": mem["allocated"] if mem else None,
        "mem_freed": mem["freed"] if mem else None,
        "mem_retained": mem["retained"] if mem else None,
        "mem_peak": mem["peak"] if mem else None,
        "num_ops": att.num_ops,
        "kernel_size": _kernel_sizes(trace.index.kernel_size, mlist),
        "buffers": counts["buffers"],
        "bwd_mem_allocated": att.bwd_mem_allocated,
        "flops_per_s": counts["flops_per_s"],
    }
    total_params, total_trainable = int(tc.own.sum()), int(tc.own_trainable.sum())  # each Parameter once
    notes = list(trace.notes) + list(att.notes)
    times = trace.pass_times_ns
    if len(times) >= 3:
        med = float(np.median(times))
        spread = (max(times) - min(times)) / med if med > 0 else 0.0
        if spread > 0.25:  # say so: the medians are less trustworthy than they look
            notes.append(f"pass times vary by {spread:.0%} of the median over {len(times)} iterations "
                         f"(min {min(times) / 1e6:.2f} ms, max {max(times) / 1e6:.2f} ms); "
                         "consider more warmup/iters")
    sizes = {"param_bytes": tc.param_bytes, "buffer_bytes": tc.buffer_bytes, "input_bytes": _tensor_bytes(inputs),
             "param_bytes_by_dtype": tc.param_bytes_by_dtype}
    backward_times = {"backward_time_ns": att.bwd_total_ns, "accumulate_grad_time_ns": att.accumulate_grad_ns,
                      "backward_outside_modules_ns": att.bwd_outside_ns}
    input_dtype = _input_dtype(inputs)
    summary = ProfileSummary(
        columns=cols, total_params=total_params, trainable_params=total_trainable,
        total_macs=total_macs, uncounted_ops=uncounted, total_time_ns=att.total_time_ns,
        device=str(run_device), peak_memory=att.peak_memory,
        meta=dict(run_meta(str(run_device), trace.iters, warmup, fmt_shape(_json_inputs(inputs))),
                  dtype=str(input_dtype).replace("torch.", ""), batch_size=_batch_size(inputs),
                  device_name=_device_name(run_device),
                  **({"macs_not_counted": macs_missing} if macs_missing else {})),
        notes=notes, depth=depth, output=trace.output, **sizes,
    )
    for k, v in backward_times.items():  # None when backward was not run
        setattr(summary, k, v)
    if peak_flops is None:
        peak_flops = _peaks.peak_flops(run_device, input_dtype)
    summary.peak_flops = peak_flops
    summary.achieved_flops_per_s = (2 * total_macs / att.fwd_time_ns[0] * 1e9
                                    if total_macs is not None and n and att.fwd_time_ns[0] > 0 else None)
    summary.percent_of_peak = (100.0 * summary.achieved_flops_per_s / peak_flops
                               if peak_flops and summary.achieved_flops_per_s else None)
    # Raw recording, for op drill-down and trace export (not serialised to JSON):
    # the Trace, each op's row (-1: not in a module call of iteration 0) and MACs.
    summary._trace = trace
    summary._op_row = att.op_row
    summary._op_macs = macs_per_op
    return summary


def count_columns_numpy(op_row, op_macs, listed, parent, module, fwd_time_ns, params, trainable, buffers,
                        depth) -> dict:
    """The per-row count columns (C.count_columns in numpy, for any tree: the reference the C
    sweep is tested against). Per op: its row (-1: none), MACs, listed as uncounted work; per
    row: parent row, module index, forward time; per module index: params (children included),
    trainable params, buffer elements."""
    n = len(module)
    in_rows = op_row >= 0
    # ops without a MAC formula in each row's subtree: its MACs are a lower bound
    unc = np.bincount(op_row[listed & in_rows], minlength=n).astype(np.int64)
    self_macs = np.zeros(n, dtype=np.int64)
    np.add.at(self_macs, op_row[in_rows], op_macs[in_rows])  # (exact in int64)
    macs = _attribute.subtree_sum_levels(self_macs, parent, depth)
    repeat = np.ones(n, dtype=bool)  # a module's second and later calls
    repeat[np.unique(module, return_index=True)[1]] = False
    return {"self_macs": self_macs, "macs": macs, "flops": 2 * macs,
            "macs_uncounted_ops": _attribute.subtree_sum_levels(unc, parent, depth),
            "params": params[module], "trainable_params": trainable[module], "buffers": buffers[module],
            # achieved FLOP/s of the forward: counted FLOPs over measured time (children included)
            "flops_per_s": np.where(fwd_time_ns > 0, 2 * macs / np.maximum(fwd_time_ns, 1) * 1e9, 0.0),
            "repeat": repeat.tolist(), "total_macs": int(op_macs[in_rows].sum())}


def _batch_size(inputs) -> int | None:
    """First dimension of the first tensor input (the usual batch dimension)."""
    stack = [inputs]
    while stack:
        o = stack.pop(0)
        if isinstance(o, torch.Tensor):
            return int(o.size(0)) if o.dim() else None  # size(0): nested tensors too
        if isinstance(o, (tuple, list)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
    return None


_CPU_NAME: list = []  # the CPU's name does not change while the process runs


def _device_name(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        if not _CPU_NAME:
            import platform
            _CPU_NAME.append(platform.processor() or platform.machine())
        return _CPU_NAME[0]
    return str(device)


def _input_dtype(inputs) -> torch.dtype:
    """dtype of the first floating input tensor (what the model computes in), else float32."""
    stack = [inputs]
    while stack:
        o = stack.pop(0)
        if isinstance(o, torch.Tensor):
            if o.is_floating_point():
                return o.dtype
        elif isinstance(o, (tuple, list)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
    return torch.float32


def _add_weight_columns(summary, model):
    """Per-row statistics of the module's own parameters (seed 004: weight distributions)."""
    from .weights import weight_stats

    by_name = {w.name: w for w in weight_stats(model)}
    # rows -> weight_stats' labels (qualified name; the root is labelled with its type)
    qual = [n or type(model).__name__ for n, _ in model.named_modules()]
    names = [qual[m] if 0 <= m < len(qual) else None for m in np.asarray(summary._cols["module_index"]).tolist()]
    for field, attr in (("w_mean", "mean"), ("w_std", "std"), ("w_min", "min"), ("w_max", "max"),
                        ("w_zeros", "zero_fraction")):
        vals = [getattr(by_name[n], attr) if n in by_name and getattr(by_name[n], attr) is not None
                else np.nan for n in names]
        summary._cols[field] = np.array(vals, dtype=np.float64)
    summary._rows = None
    summary._tables.clear()


def _row_shapes(trace, call_ids) -> tuple[list, list]:
    """Input and output shapes of each row's call, from the interned shape log."""
    sig = np.full(len(trace.calls), -1, dtype=np.int64)
    if len(trace.shape_calls):
        sig[trace.shape_calls[:, 0]] = trace.shape_calls[:, 1]
    sig_in = [pos if not kw else (pos, kw) for pos, kw, _ in trace.shape_signatures] + [None]
    sig_out = [out for _, _, out in trace.shape_signatures] + [None]
    rows = sig[call_ids].tolist()  # -1: not logged -> the trailing None
    return [sig_in[r] for r in rows], [sig_out[r] for r in rows]


def _kernel_sizes(raw: list, modules: list) -> list:
    """Per row: the module's kernel_size attribute as a tuple (None for modules without one)."""
    if raw.count(None) == len(raw):  # (no module has one: the common case for MLPs and transformers)
        return [None] * len(modules)
    has = {i: (k,) if isinstance(k, int) else tuple(k) if isinstance(k, (tuple, list)) else None
           for i, k in enumerate(raw) if k is not None}
    return [has.get(m) for m in modules] if has else [None] * len(modules)


def _grad_leaves(model, inputs: list) -> list:
    """What backward passes accumulate .grad into: the parameters, and the buffers, tensor
    attributes and inputs that are leaves requiring grad."""
    held = [v for m in model.modules() for v in list(m._buffers.values()) + list(vars(m).values())
            if isinstance(v, torch.Tensor)]
    leaves = list(model.parameters()) + [t for t in held + inputs if t.requires_grad and t.is_leaf]
    return list({id(t): t for t in leaves}.values())


def _tensors(obj) -> list:
    """The tensors among the inputs (PackedSequence: its data)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, torch.nn.utils.rnn.PackedSequence):
        return [obj.data]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _tensor_bytes(obj) -> int:
    return sum(t.numel() * t.element_size() for t in _tensors(obj))


def _json_inputs(inputs):
    if isinstance(inputs, torch.Tensor):
        return None if inputs.is_nested else inputs.shape  # a nested tensor has no single shape
    if isinstance(inputs, (tuple, list)):
        return tuple(_json_inputs(i) for i in inputs)
    if isinstance(inputs, dict):
        return {k: _json_inputs(v) for k, v in inputs.items()}
    return None
