"""`torchscope.summary()`: the call forms of torchsummary, torchinfo and pytorch-model-summary, backed by
one real profile (counted MACs, measured time and memory) and printed in the layout people know.

Call forms (all return a ProfileSummary; ``str()``/``repr()`` and Jupyter's HTML show the chosen layout,
``.table(...)`` renders any other)::

    summary(model, (3, 224, 224))                         # torchsummary: a size without the batch
    summary(model, (3, 224, 224), batch_size=-1, device="cpu")
    summary(model, [(1, 18, 18), (1, 30, 30)])            # several inputs: a list of sizes
    summary(model, input_size=(1, 3, 224, 224))           # torchinfo: a size with the batch
    summary(model, input_data=x)                          # torchinfo: tensor / list (positional inputs) /
                                                          #   dict (keyword inputs) / nested structures
    summary(model, input_size=(2, 16), dtypes=[torch.long], depth=2, mode="eval",
            col_names=("input_size", "output_size", "num_params", "params_percent", "kernel_size",
                       "mult_adds", "trainable", "self_time", "total_time", "mem_allocated",
                       "mem_retained", "num_ops", "flops"),
            row_settings=("depth", "var_names", "ascii_only", "hide_recursive_layers"), verbose=0)
    summary(model, x, y, show_input=False, show_hierarchical=False, max_depth=1,
            print_summary=False, show_parent_layers=False, batch_size=-1)   # pytorch-model-summary
    summary(model, input_size=(2, 4), style="keras")      # or "torchinfo", "torchsummary", "pms",
                                                          #   "lightning", "tree", "torchscope"
    summary(model)                                        # torchinfo without inputs: the module tree and
                                                          #   params only; nothing runs, MACs not counted

Semantics, where the three libraries (or the tutorials using them) disagree:

- Sizes with or without the batch dimension. torchsummary takes per-sample sizes and prepends a batch of
  2; torchinfo takes full shapes; tutorials call both as ``summary(model, (3, 224, 224))`` or
  ``summary(model, input_size=...)``, so the call alone does not say which is meant. Rules, in order:
  ``batch_size=`` given: per-sample sizes (batch_size rows; -1 runs a batch of 2 and shows -1, like
  torchsummary). ``batch_dim=i`` given: full shapes with a batch of 1 inserted at dim i (torchinfo).
  Otherwise the first shape-sensitive layer the input reaches decides: the model is started on the sizes
  as full shapes and stopped (before that layer runs) at the first Linear, ConvNd/ConvTransposeNd,
  pooling/padding/InstanceNorm/DropoutNd with a dimension suffix, BatchNormNd, RNN/LSTM/GRU or
  Transformer/MultiheadAttention module: if the tensor it gets has no batch dimension (a 1-d input to
  Linear, a 3-d input to Conv2d, ...), the sizes are per-sample (torchsummary) and a batch of 2 is
  prepended, shown as -1 in shapes; else they are full shapes (torchinfo). If no such layer is reached,
  they are full shapes. If the chosen reading fails to run, the other one is tried; the summary notes
  which was used. So ``(3, 224, 224)`` on a CNN and ``(4,)`` on an MLP run batched (shown ``[-1, ...]``),
  and ``(1, 3, 224, 224)`` / ``(16, 784)`` run as given.
- Inputs made from sizes: ``torch.rand`` for floating dtypes (from a private seeded generator: the
  caller's random state is left alone), zeros for integer/bool dtypes (valid indices for embeddings), like
  both libraries; ``dtypes=`` gives one dtype per size (default float32).
  A model whose float input fails in an embedding gets an error that suggests ``dtypes=[torch.long]``.
- ``input_data``: a tensor is one input; a list/tuple holds positional inputs (wrap a single tuple or
  dict argument in a list); a dict holds keyword inputs. ``dtypes`` and ``batch_dim`` do not apply to it
  (torchinfo ignores them too). With input_data, ``batch_size=-1`` shows the batch dimension as -1;
  another batch_size is only noted. In the pytorch-model-summary form ``batch_size`` is that tool's: -1
  (its default) changes nothing, another value is printed as a "Batch size: N" line under the totals.
- Extra keyword arguments go to the model's forward (torchinfo), except profile_summary's own options
  (warmup, iters, backward, loss_fn, record_shapes, record_memory, keep_output, progress, peak_flops,
  weight_stats), which configure the profile. Default: ``warmup=0`` (1 when a time column is shown),
  ``iters=1``.
- ``mode``: "eval" (default, like torchinfo and pytorch-model-summary), "train" or "same" (the model as
  it is, like torchsummary). The pass runs in that mode; every module's own training flag is restored
  afterwards, also on error.
- ``device``: where the model and inputs run (the model is moved back afterwards); default: where the
  model's parameters are. ``device="cuda"`` on a machine without CUDA runs on the CPU with a warning and a
  note, as torchsummary (whose default is "cuda") does.
- Passing the model class instead of an instance (seen in tutorials: ``summary(MyNet, (1, 28, 28))``)
  profiles ``MyNet()`` when it can be built without arguments, with a note; otherwise a TypeError.
- Layout (``style=``): default "pms" for the pytorch-model-summary form (tensors after the model, or any of
  show_input/show_hierarchical/print_summary/max_depth/show_parent_layers), "torchsummary" when
  ``batch_size=`` is given or the sizes are read as per-sample (torchsummary's reading, hence its table),
  else "torchinfo". ``depth`` (or pytorch-model-summary's ``max_depth``)
  defaults to the tool's: torchinfo 3, pms 1, lightning 1, the others every level. The torchsummary layout
  lists the rows as torchsummary does: in the order the calls return (a block after its children), each
  with its module's own parameters, so the rows add up to the total.
- Printing: torchinfo's ``verbose`` (0 silent; 1 or 2 print; default 1, or 0 in an interactive
  session/Jupyter where the returned object displays itself). The pytorch-model-summary form prints only
  with ``print_summary=True`` (or an explicit verbose).
- Memory lines ("Input size (MB)", "Forward/backward pass size (MB)", "Params size (MB)", "Estimated Total
  Size (MB)") keep the tools' labels but hold measured values: the input tensors' bytes, the peak bytes
  allocated during the pass, the unique parameters' (and buffers') bytes, and their sum; each says so.
- Totals follow torchscope's counting: each Parameter once (shared modules and tied weights are not
  counted twice, unlike torchsummary); MACs of matmul/conv-like ops only (no bias adds or norms).
  ``total_mult_adds``, ``total_input``, ``total_param_bytes``, ``total_output_bytes`` and
  ``summary_list`` are also there under torchinfo's names.
- Bad arguments raise ValueError/TypeError naming the argument: input_size with input_data, a size with a
  zero, negative or non-integer dimension, an unknown col_names entry, row setting, style or mode, dtypes
  whose length differs from the number of sizes, batch_size other than -1 or a positive integer, batch_size
  with batch_dim, no inputs at all.
"""
from __future__ import annotations

import functools
import sys
import warnings
from typing import Any, Sequence

import torch
from torch import nn

from .api import profile_summary, structure_summary
from .capture import ProfileError
from .report import ROW_SETTINGS, STYLES, ProfileSummary, check_row_settings, table_columns

__all__ = ["summary", "COL_NAMES", "ROW_SETTINGS", "STYLES"]

# torchinfo's col_names, plus torchscope's measured columns (any table column key is accepted too)
COL_NAMES = ("input_size", "output_size", "num_params", "params_percent", "kernel_size", "mult_adds",
             "trainable", "self_time", "total_time", "mem_allocated", "mem_retained", "num_ops", "flops")
_PROFILE_KEYS = ("warmup", "iters", "backward", "loss_fn", "record_shapes", "record_memory", "keep_output",
                 "progress", "peak_flops", "weight_stats")
_DEFAULT_DEPTH = {"torchinfo": 3, "pms": 1, "lightning": 1}
_TIME_COLUMNS = {"self_cpu", "cpu_total", "bwd_self", "bwd_total", "flops_per_s"}
_UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "<unset>"})()


# ------------------------------------------------------------------ sizes and inputs
def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _looks_like_sizes(x) -> bool:
    """A size (a tuple/list/torch.Size of numbers) or a non-empty list/tuple of sizes."""
    if isinstance(x, torch.Tensor) or not isinstance(x, (tuple, list)) or not x:
        return False
    if all(_is_number(d) for d in x):
        return True
    return all(isinstance(s, (tuple, list)) and s and all(_is_number(d) for d in s) for s in x)


def _malformed_size(x) -> bool:
    """What a user meant as a size but is not one: a bare int ((4) for (4,)) or a size with None
    in it (Keras' unknown batch). Positionally, these must not be taken for model inputs."""
    if isinstance(x, int) and not isinstance(x, bool):
        return True
    if isinstance(x, (tuple, list)) and x and not any(isinstance(d, torch.Tensor) for d in x):
        flat = [d for e in x for d in (e if isinstance(e, (tuple, list)) else [e])]
        return any(d is None for d in flat) and all(d is None or _is_number(d) for d in flat)
    return False


def _sizes(input_size) -> list[tuple]:
    """input_size -> a list of checked sizes (one per input)."""
    if not _looks_like_sizes(input_size):
        hint = ""
        if isinstance(input_size, int) and not isinstance(input_size, bool):
            hint = f"; a one-dimensional size needs a comma: ({input_size},)"
        elif _malformed_size(input_size):
            hint = ("; None is not a dimension: give the size without the batch and batch_size=-1 "
                    "(shown as -1, run with 2), or a concrete batch")
        raise ValueError(f"input_size={input_size!r}: expected a size such as (3, 224, 224) or a list of "
                         f"sizes [(1, 18, 18), (1, 30, 30)] (one per input){hint}")
    sizes = [tuple(input_size)] if all(_is_number(d) for d in input_size) else [tuple(s) for s in input_size]
    for s in sizes:
        for d in s:
            if not isinstance(d, int):
                raise ValueError(f"input_size: dimension {d!r} in {s} is not an integer")
            if d <= 0:
                raise ValueError(f"input_size: {s} has a zero or negative dimension; every dimension must be "
                                 "a positive integer (give the batch with batch_size=-1, not as -1)")
    return sizes


def _make(size, dtype, device):
    if dtype.is_floating_point or dtype.is_complex:  # a private generator: the caller's RNG is not drawn from
        return torch.rand(size, dtype=dtype, generator=torch.Generator().manual_seed(0)).to(device)
    return torch.zeros(size, dtype=dtype, device=device)  # valid indices for embeddings


def _from_sizes(sizes, dtypes, device, prepend=None, batch_dim=None):
    out = []
    for s, dt in zip(sizes, dtypes):
        if prepend is not None:
            s = (prepend,) + s
        elif batch_dim is not None:
            i = batch_dim if batch_dim >= 0 else len(s) + 1 + batch_dim
            s = s[:i] + (1,) + s[i:]
        out.append(_make(s, dt, device))
    return out[0] if len(out) == 1 else tuple(out)


def _model_device(model) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


# ------------------------------------------------------------------ batched or not? (see module docstring)
class _ProbeDone(BaseException):  # BaseException: a model's `except Exception` must not swallow it
    pass


def _unbatched_ranks() -> list:
    """(module class, rank of an input WITHOUT a batch dimension)."""
    out = [(nn.Linear, 1), (nn.Bilinear, 1), (nn.modules.rnn.RNNBase, 2), (nn.MultiheadAttention, 2),
           (nn.TransformerEncoderLayer, 2), (nn.TransformerDecoderLayer, 2), (nn.TransformerEncoder, 2),
           (nn.TransformerDecoder, 2), (nn.Transformer, 2), (nn.BatchNorm1d, 1), (nn.BatchNorm2d, 3),
           (nn.BatchNorm3d, 4)]
    for base in ("Conv", "ConvTranspose", "LazyConv", "LazyConvTranspose", "MaxPool", "AvgPool",
                 "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool", "FractionalMaxPool", "InstanceNorm",
                 "LazyInstanceNorm", "Dropout", "ReflectionPad", "ReplicationPad", "ZeroPad", "ConstantPad",
                 "CircularPad"):
        for n in (1, 2, 3):
            cls = getattr(nn, f"{base}{n}d", None)
            if isinstance(cls, type):
                out.append((cls, n + 1))
    return out


_RANKS = _unbatched_ranks()


def _first_tensor(obj):
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)) and not isinstance(obj, nn.utils.rnn.PackedSequence):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    if isinstance(obj, dict):
        for o in obj.values():
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _opaque(model) -> bool:
    """Compiled or scripted code inside: no hooks there (they would recompile or never fire)."""
    for m in model.modules():
        if isinstance(m, torch.jit.ScriptModule) or type(m).__name__ == "OptimizedModule" or \
                m.__dict__.get("_compiled_call_impl") is not None:
            return True
    return False


def _probe(model, inputs, fw_kwargs) -> str:
    """Start the model on `inputs` (full shapes) and stop at the first shape-sensitive layer:
    "batched", "unbatched" (its input lacks a batch dimension), "unknown" (none reached) or "error"."""
    if _opaque(model):
        return "unknown"
    verdict = []

    def pre(mod, args, kwargs):
        for cls, rank in _RANKS:
            if isinstance(mod, cls):
                t = _first_tensor(args)
                if t is None:
                    t = _first_tensor(kwargs)
                if t is None:
                    return None
                verdict.append("unbatched" if t.dim() <= rank else "batched")
                raise _ProbeDone
        return None

    args, kwargs = (inputs if isinstance(inputs, tuple) else (inputs,)), dict(fw_kwargs)
    handles = [m.register_forward_pre_hook(pre, with_kwargs=True) for m in model.modules()]
    dev = _model_device(model)
    try:
        cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda, device_type="cuda"):
            model(*args, **kwargs)
        return "unknown"
    except _ProbeDone:
        return verdict[0]
    except Exception:  # the model does not run on these shapes as they are
        return "error"
    finally:
        for h in handles:
            h.remove()


# ------------------------------------------------------------------ pytorch-model-summary's hierarchical view
def _hierarchical(model) -> str:
    """pytorch-model-summary's show_hierarchical=True text: print(model) with parameter counts."""
    def rep(m):
        extra = m.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines, total = [], 0
        for key, sub in m._modules.items():
            if sub is None:
                continue
            text, n = rep(sub)
            child_lines.append(f"({key}): " + nn.modules.module._addindent(text, 2))
            total += n
        total += sum(p.numel() for p in m._parameters.values() if p is not None)
        lines = extra_lines + child_lines
        head = m._get_name() + "("
        if lines:
            head += extra_lines[0] if len(extra_lines) == 1 and not child_lines else \
                "\n  " + "\n  ".join(lines) + "\n"
        return head + f"), {total:,} params", total

    text, _n = rep(model)
    pad = max(max(len(line) for line in text.split("\n")) - 20, 0) // 2
    return "\n".join(["", "", "=" * pad + " Hierarchical Summary " + "=" * pad, "", text, "", "",
                      "=" * (2 * pad + 22)])


# ------------------------------------------------------------------ the function
def summary(model: nn.Module, *args: Any, input_size=None, input_data=None, batch_size: int | None = None,
            device=None, dtypes: Sequence[torch.dtype] | None = None, batch_dim: int | None = None,
            col_names: Sequence[str] | None = None, col_width: int | None = None, depth: int | None = None,
            mode: str | None = None, row_settings: Sequence[str] | None = None, verbose: int | None = None,
            style: str | None = None, cache_forward_pass: bool | None = None,
            show_input=_UNSET, show_hierarchical=_UNSET, print_summary=_UNSET, max_depth=_UNSET,
            show_parent_layers=_UNSET, **kwargs: Any) -> ProfileSummary:
    """Profile `model` once and show the summary in torchinfo's, torchsummary's, pytorch-model-summary's,
    Keras', Lightning's or print(model)'s layout. See this module's docstring for the call forms and the
    exact semantics."""
    del cache_forward_pass  # torchinfo's; one profile is all there is to cache
    notes: list[str] = []
    model = _instance(model, notes)

    # ------------------------------------------------ positional arguments
    args = list(args)
    if args and (_looks_like_sizes(args[0]) or isinstance(args[0], torch.Size) or _malformed_size(args[0])):
        if input_size is not None:
            raise ValueError("input_size given twice: positionally and as input_size=")
        input_size = args.pop(0)
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):  # torchsummary's order
            if batch_size is not None:
                raise ValueError("batch_size given twice: positionally and as batch_size=")
            batch_size = args.pop(0)
        if args and isinstance(args[0], (str, torch.device)):
            if device is not None:
                raise ValueError("device given twice: positionally and as device=")
            device = args.pop(0)
        if args:
            raise TypeError(f"summary(): unexpected positional argument(s) after input_size: {args!r} "
                            "(torchsummary's order is model, input_size, batch_size, device)")
    tensors = args  # pytorch-model-summary: the model's positional inputs
    pms_kw = {k: v for k, v in dict(show_input=show_input, show_hierarchical=show_hierarchical,
                                    print_summary=print_summary, max_depth=max_depth,
                                    show_parent_layers=show_parent_layers).items() if v is not _UNSET}
    pms = bool(tensors) or bool(pms_kw)

    # ------------------------------------------------ checks (each names its argument)
    given = [n for n, v in (("input_size", input_size), ("input_data", input_data)) if v is not None]
    if len(given) == 2:
        raise ValueError("give either input_size or input_data, not both")
    if tensors and given:
        raise ValueError(f"model inputs given both positionally and as {given[0]}=; give one of them")
    structure_only = not tensors and not given  # torchinfo's summary(model): the tree and params, nothing runs
    style_given, depth_given = style is not None, depth is not None
    if style is None:
        style = "pms" if pms else "torchsummary" if batch_size is not None else "torchinfo"
    if style not in STYLES:
        raise ValueError(f"style={style!r}: choose one of {', '.join(STYLES)}")
    mode = _check_mode(mode)
    if verbose is not None and verbose not in (0, 1, 2):
        raise ValueError(f"verbose={verbose!r}: must be 0 (quiet), 1 or 2 (print)")
    columns = None
    if col_names is not None:
        columns = table_columns(col_names, "col_names")
    rows = check_row_settings(row_settings)
    if col_width is not None and (isinstance(col_width, bool) or not isinstance(col_width, int) or col_width <= 0):
        raise ValueError(f"col_width={col_width!r}: must be a positive integer")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or (batch_size <= 0 and batch_size != -1)):
        raise ValueError(f"batch_size={batch_size!r}: must be -1 (shown as -1, run with 2) or a positive integer")
    if pms and batch_size is not None:
        # pytorch-model-summary's batch_size: -1 (its default) is "not given"; another value is only
        # printed as a line under the totals (its shapes are the real ones)
        if batch_size != -1:
            pms_kw["batch_size"] = batch_size
        batch_size = None if tensors or batch_size == -1 else batch_size
    if batch_dim is not None:
        if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
            raise ValueError(f"batch_dim={batch_dim!r}: must be an integer")
        if batch_size is not None:
            raise ValueError("give either batch_size (sizes without the batch, torchsummary) or batch_dim "
                             "(where to insert a batch of 1, torchinfo), not both")
    if "max_depth" in pms_kw:
        md = pms_kw["max_depth"]
        if depth is not None and md is not None and md != depth:
            raise ValueError(f"depth={depth} and max_depth={md} disagree; give one")
        if depth is None and md is not None:
            depth = md  # (max_depth=None: every level, as pytorch-model-summary)
    elif depth is None:
        depth = _DEFAULT_DEPTH.get(style)
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"depth={depth!r}: must be a non-negative integer")
    if dtypes is not None:
        dtypes = list(dtypes) if isinstance(dtypes, (list, tuple)) else [dtypes]
        bad = [d for d in dtypes if not isinstance(d, torch.dtype)]
        if bad:
            raise ValueError(f"dtypes: {bad!r} are not torch dtypes (e.g. dtypes=[torch.long])")
    if style == "pms" and columns is None:
        columns = (["parent_layers"] if pms_kw.get("show_parent_layers") else []) + \
            ["input_shape" if pms_kw.get("show_input") else "output_shape", "params", "trainable_params"]
    profile_kw = {k: kwargs.pop(k) for k in _PROFILE_KEYS if k in kwargs}
    fw_kwargs = kwargs  # torchinfo: the rest go to the model's forward
    if structure_only:
        if fw_kwargs:
            raise TypeError(f"summary(): forward arguments {sorted(fw_kwargs)} given without inputs; pass "
                            "input_size= or input_data= to run the model")
        if style == "torchinfo" and columns is None:
            columns = ["params"]  # torchinfo without inputs shows only Param #
        return _show(structure_summary(model), model, notes, style, columns, depth, rows, None, col_width,
                     pms, pms_kw, verbose)

    # ------------------------------------------------ device
    if device is not None:
        dev = device if isinstance(device, torch.device) else _device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(f"device={device!r}: CUDA is not available; running on the CPU", stacklevel=2)
            notes.append(f"device={device!r} requested but CUDA is not available: ran on the CPU "
                         "(as torchsummary does)")
            dev = torch.device("cpu")
        device = dev
    make_on = _model_device(model)  # inputs start where the model is; profile_summary moves both

    # ------------------------------------------------ inputs: one or more readings to try
    batch_as = None
    if tensors or input_data is not None:
        if tensors:
            # pytorch-model-summary calls model(*inputs): a single list or dict is one argument
            data = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], torch.Tensor) else tuple(tensors)
        elif isinstance(input_data, nn.utils.rnn.PackedSequence):
            data = input_data
        elif isinstance(input_data, (list, tuple)):
            data = tuple(input_data)  # torchinfo: each element is one positional input
            if len(data) == 1 and isinstance(data[0], torch.Tensor):
                data = data[0]
        else:
            data = input_data
        if isinstance(data, dict) and fw_kwargs:  # keyword inputs and torchinfo's forward kwargs: one call
            data, fw_kwargs = {**data, **fw_kwargs}, {}
        if batch_size == -1:
            batch_as = -1
        elif batch_size is not None:
            notes.append(f"batch_size={batch_size} (the pass ran with the given inputs' batch)")
        attempts = [(lambda: data, None, None)]
    else:
        sizes = _sizes(input_size)
        if dtypes is None:
            dtypes = [torch.float32] * len(sizes)
        if len(dtypes) != len(sizes):
            raise ValueError(f"dtypes has {len(dtypes)} entr{'y' if len(dtypes) == 1 else 'ies'} for "
                             f"{len(sizes)} input size(s); give one dtype per input")
        if batch_dim is not None:
            for s in sizes:
                if not -len(s) - 1 <= batch_dim <= len(s):
                    raise ValueError(f"batch_dim={batch_dim} is out of range for input_size {s}")
        shown = sizes[0] if len(sizes) == 1 else sizes
        per_sample_note = (f"input_size {shown} taken as per-sample size(s) (torchsummary's convention): "
                           "ran with a batch of 2, shown as -1")
        full = (lambda: _from_sizes(sizes, dtypes, make_on), None, None)
        per = (lambda: _from_sizes(sizes, dtypes, make_on, prepend=2), per_sample_note, -1)
        if batch_size is not None:
            run = 2 if batch_size == -1 else batch_size
            attempts = [(lambda: _from_sizes(sizes, dtypes, make_on, prepend=run), None,
                         -1 if batch_size == -1 else None)]
        elif batch_dim is not None:
            attempts = [(lambda: _from_sizes(sizes, dtypes, make_on, batch_dim=batch_dim), None, None)]
        else:
            attempts = [full, per]

    # ------------------------------------------------ profile, in the requested mode
    shown_cols = columns if columns is not None else ()
    times_shown = bool(_TIME_COLUMNS & set(shown_cols)) or (columns is None and style in ("torchscope", "tree"))
    profile_kw.setdefault("warmup", 1 if times_shown else 0)
    profile_kw.setdefault("iters", 1)
    flags = [(m, m.training) for m in model.modules()]
    patched = _forward_kwargs(model, fw_kwargs)
    try:
        if mode != "same":
            model.train(mode == "train")
        if not (tensors or input_data is not None) and len(attempts) == 2:
            verdict = _probe(model, attempts[0][0](), {})
            if verdict in ("unbatched", "error"):
                attempts.reverse()
        s, failures = None, []
        for make, note, shown_batch in attempts:
            try:
                s = profile_summary(model, make(), device=device, verbose=0, **profile_kw)
            except ProfileError as e:
                failures.append((note, e))
                continue
            if note:
                notes.append(note)
            batch_as = shown_batch if shown_batch is not None else batch_as
            if note and shown_batch == -1 and not style_given and not pms:
                style = "torchsummary"  # sizes read as torchsummary reads them: its layout too
                depth = depth if depth_given else _DEFAULT_DEPTH.get(style)
            break
        if s is None:
            raise _failure(failures, input_size, dtypes)
        trace = getattr(s, "_trace", None)
        if trace is not None:  # the Mode column (Lightning's): each module's own flag, as restored below
            own = {id(m): f for m, f in flags}
            s._module_training = [own.get(id(m), m.training) for m in trace.index.modules]
            changed = sum(m.training != own.get(id(m), m.training) for m in trace.index.modules)
            if changed and (style == "lightning" or "mode" in (columns or ())):
                notes.append(f"the pass ran in {mode} mode (mode={mode!r}); the Mode column shows each "
                             "module's own flag, which summary() leaves as it was")
    finally:
        if patched:
            del model.__dict__["forward"]
            if patched is not True:
                model.__dict__["forward"] = patched
        for m, f in flags:
            m.training = f
    return _show(s, model, notes, style, columns, depth, rows, batch_as, col_width, pms, pms_kw, verbose)


def _show(s, model, notes, style, columns, depth, rows, batch_as, col_width, pms, pms_kw, verbose):
    """Attach the chosen layout to the summary (str/repr/HTML show it) and print it when asked."""
    s.notes.extend(notes)
    if any(c.startswith("w_") for c in columns or ()) and s._cols.get("w_mean") is None:
        from .api import _add_weight_columns  # a w_* column asks for the weight statistics
        _add_weight_columns(s, model)
    display = {"style": style, "columns": columns, "depth": depth, "row_settings": rows, "batch_as": batch_as,
               "col_width": col_width}
    if style == "pms" and pms_kw.get("show_hierarchical"):
        display["extra"] = _hierarchical(model)
    if style == "pms":
        display["pms_batch_size"] = pms_kw.get("batch_size")
    s._display = {k: v for k, v in display.items() if v is not None}
    s._tables.clear()
    if verbose is None:
        verbose = (1 if pms_kw.get("print_summary") else 0) if pms else (0 if _interactive() else 1)
    if verbose or pms_kw.get("print_summary"):
        print(s)
    return s


def _instance(model, notes):
    if isinstance(model, type) and issubclass(model, nn.Module):
        try:
            inst = model()
        except TypeError as e:
            raise TypeError(f"summary() got the class {model.__name__}, not a model; pass an instance, e.g. "
                            f"{model.__name__}(...) ({e})") from None
        notes.append(f"summary() was given the class {model.__name__}: profiled a new instance "
                     f"{model.__name__}()")
        return inst
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary() expects a torch.nn.Module as its first argument, got {type(model).__name__}")
    return model


def _check_mode(mode) -> str:
    if mode is None:
        return "eval"
    value = getattr(mode, "value", mode)  # torchinfo's Mode enum
    if not isinstance(value, str) or value.lower() not in ("eval", "train", "same"):
        raise ValueError(f"mode={mode!r}: choose 'eval' (default), 'train' or 'same' (the model's own)")
    return value.lower()


def _device(device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r} is not a valid torch device ({e})") from None


def _interactive() -> bool:
    if hasattr(sys, "ps1"):
        return True
    ipy = sys.modules.get("IPython")
    get = getattr(ipy, "get_ipython", None)
    return bool(get and get() is not None)


def _forward_kwargs(model, fw_kwargs):
    """Bind torchinfo's extra keyword arguments to the model's forward for the pass (restored after):
    returns False (nothing to do), True (added) or the instance-level forward it replaced."""
    if not fw_kwargs:
        return False
    previous = model.__dict__.get("forward", True)
    model.__dict__["forward"] = functools.partial(model.forward, **fw_kwargs)
    return previous


def _failure(failures, input_size, dtypes) -> ProfileError:
    """The error when no reading of the inputs ran: the literal reading's (full shapes) when both were
    tried, saying so, plus a dtypes hint when float inputs reached an index-taking op."""
    note, err = failures[0]
    msg = str(err)
    if len(failures) > 1:
        err = next(e for n, e in failures if n is None)  # the full-shape attempt
        msg = (f"{err}\n(summary tried input_size {input_size} both as full shapes and as per-sample sizes "
               "with a batch of 2 prepended; neither ran)")
    if input_size is not None and all(d.is_floating_point or d.is_complex for d in dtypes) and \
            any(w in msg for w in ("Long", "Int", "indices", "Embedding")):
        msg += ("\nhint: inputs made from input_size are float32; pass dtypes=[torch.long] for models whose "
                "input is token indices")
    out = ProfileError(msg)
    out.__cause__ = err
    return out
