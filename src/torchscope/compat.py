"""`torchscope.summary()`: the call forms of torchsummary, torchinfo and pytorch-model-summary,
backed by a real profile (measured memory, counted MACs) and rendered in their layouts.

Call forms
- torchsummary: ``summary(model, (3, 224, 224))``, ``summary(model, [(1, 18, 18), (1, 30, 30)])``,
  ``summary(model, input_size=(4,), batch_size=-1, device="cpu")``.
- torchinfo: ``summary(model, input_size=(1, 3, 224, 224))``, ``input_data=`` (tensor, list, dict,
  nested), ``col_names=``, ``depth=``, ``dtypes=``, ``batch_dim=``, ``mode=``, ``row_settings=``,
  ``verbose=``.
- pytorch-model-summary: ``summary(model, x, y, show_input=False, show_hierarchical=False,
  max_depth=1, print_summary=False, show_parent_layers=False)``.

Semantics chosen where the libraries disagree (the same call means different shapes to them):
- ``batch_size=`` given: sizes exclude the batch dimension (torchsummary); ``batch_size=-1`` is shown as
  -1 in shapes and run with a batch of 2, like torchsummary.
- otherwise sizes are full shapes (torchinfo). If that forward fails, the sizes are retried as
  per-sample sizes with a batch of 2 prepended (torchsummary's convention), and the summary says so.
- ``batch_dim=i`` (torchinfo) inserts a batch dimension of 1 at index i.
- Inputs made from sizes are ``torch.randn`` for floating dtypes and zeros for integer dtypes (valid
  indices for embeddings); ``dtypes=`` gives one dtype per input.
- ``mode="eval"|"train"`` sets the mode for the pass and restores every module's own flag after;
  ``"same"`` (default) keeps it.
- Memory lines are measured, not estimated: input bytes, peak bytes allocated during the pass, unique
  parameter bytes and their sum.
The returned object is a ProfileSummary whose ``str()`` is the chosen layout (``style=``:
"torchinfo" (default), "torchsummary", "keras", "lightning", "tree", or "pms" for
pytorch-model-summary's); ``.table()`` still gives torchscope's own table.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .api import profile_summary
from .capture import ProfileError
from .report import ProfileSummary, fmt_count, fmt_shape

COL_NAMES = ("input_size", "output_size", "num_params", "params_percent", "kernel_size", "mult_adds",
             "trainable", "flops", "self_time", "total_time", "mem_allocated", "mem_retained", "num_ops")
STYLES = ("torchinfo", "torchsummary", "keras", "lightning", "tree", "pms")
ROW_SETTINGS = ("depth", "var_names", "ascii_only", "hide_recursive_layers")
_HEADERS = {"input_size": "Input Shape", "output_size": "Output Shape", "num_params": "Param #",
            "params_percent": "Param %", "kernel_size": "Kernel Shape", "mult_adds": "Mult-Adds",
            "trainable": "Trainable", "flops": "FLOPs", "self_time": "Self Time", "total_time": "Total Time",
            "mem_allocated": "Mem Alloc", "mem_retained": "Mem Retained", "num_ops": "Ops"}


def _is_size(x) -> bool:
    return isinstance(x, (tuple, list, torch.Size)) and len(x) > 0 and all(
        isinstance(d, int) and not isinstance(d, bool) for d in x)


def _sizes(input_size) -> list:
    """A size or a list of sizes -> list of sizes, checked."""
    sizes = [tuple(input_size)] if _is_size(input_size) else [tuple(s) for s in input_size]
    for s in sizes:
        if not _is_size(s):
            raise ValueError(f"input_size must be a tuple of ints or a list of them, got {input_size!r}")
        if any(d <= 0 for d in s):
            raise ValueError(f"input_size {s} has a zero or negative dimension")
    return sizes


def _make(size, dtype, device):
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(size, dtype=dtype, device=device)
    return torch.zeros(size, dtype=dtype, device=device)


def _inputs_from_sizes(sizes, dtypes, device, prepend_batch=None, batch_dim=None):
    dtypes = list(dtypes) if dtypes is not None else [torch.float32] * len(sizes)
    if len(dtypes) != len(sizes):
        raise ValueError(f"dtypes has {len(dtypes)} entries for {len(sizes)} inputs")
    out = []
    for s, dt in zip(sizes, dtypes):
        if prepend_batch is not None:
            s = (prepend_batch,) + s
        elif batch_dim is not None:
            s = s[:batch_dim] + (1,) + s[batch_dim:]
        out.append(_make(s, dt, device))
    return out


def summary(model: torch.nn.Module, *args: Any, input_size=None, input_data=None, batch_size=None,
            device=None, dtypes: Sequence[torch.dtype] | None = None, batch_dim: int | None = None,
            col_names: Sequence[str] | None = None, depth: int | None = None, mode: str = "same",
            row_settings: Sequence[str] | None = None, verbose: int = 1, style: str | None = None,
            show_input: bool = False, show_hierarchical: bool = False, max_depth: int | None = None,
            print_summary: bool = False, show_parent_layers: bool = False, **profile_kwargs):
    """Profile `model` once and render the summary in a familiar layout (see module docstring)."""
    pms = any(isinstance(a, torch.Tensor) for a in args) or show_input or show_hierarchical or \
        print_summary or show_parent_layers or max_depth is not None
    if style is None:
        style = "pms" if pms and not (input_size or input_data is not None) else (
            "torchsummary" if batch_size is not None else "torchinfo")
    if style not in STYLES:
        raise ValueError(f"style={style!r} is not one of {', '.join(STYLES)}")
    if mode not in ("same", "train", "eval"):
        raise ValueError(f"mode={mode!r} must be 'same', 'train' or 'eval'")
    for c in col_names or ():
        if c not in COL_NAMES:
            raise ValueError(f"col_names: unknown column {c!r}; known: {', '.join(COL_NAMES)}")
    for r in row_settings or ():
        if r not in ROW_SETTINGS:
            raise ValueError(f"row_settings: unknown setting {r!r}; known: {', '.join(ROW_SETTINGS)}")

    # ----------------------------------------------------------- inputs
    if args and _is_size(args[0]) or (args and isinstance(args[0], list) and args[0] and _is_size(args[0][0])):
        if input_size is not None:
            raise ValueError("input_size given both positionally and as a keyword")
        input_size, args = args[0], args[1:]
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if input_size is not None and (input_data is not None or tensors):
        raise ValueError("give either input_size or input_data (or input tensors), not both")
    dev = torch.device(device) if device is not None else _param_device(model)
    notes = []
    show_batch = None
    if input_data is not None or tensors:
        if input_data is not None:  # torchinfo: each element of a list/tuple is one positional input
            data = tuple(input_data) if isinstance(input_data, (list, tuple)) else input_data
        else:
            data = tensors[0] if len(tensors) == 1 else tuple(tensors)
        attempts = [(data, None)]
    elif input_size is not None:
        sizes = _sizes(input_size)
        if batch_size is not None:  # torchsummary: per-sample sizes
            run_batch = 2 if batch_size in (-1, None) else int(batch_size)
            show_batch = -1 if batch_size == -1 else None
            attempts = [(_inputs_from_sizes(sizes, dtypes, dev, prepend_batch=run_batch), None)]
        else:
            attempts = [(_inputs_from_sizes(sizes, dtypes, dev, batch_dim=batch_dim), None),
                        (_inputs_from_sizes(sizes, dtypes, dev, prepend_batch=2),
                         f"input_size {input_size} did not run as full shapes; taken as per-sample sizes "
                         "with a batch of 2 prepended (torchsummary's convention)")]
            if batch_dim is not None:
                attempts = attempts[:1]
    else:
        raise ValueError("summary() needs input_size=..., input_data=... or input tensors")

    # ----------------------------------------------------------- profile
    flags = [m.training for m in model.modules()]
    if mode != "same":
        model.train(mode == "train")
    try:
        last_error = None
        s = None
        for data, note in attempts:
            # made from sizes: a list of tensors, one per input
            inputs = data if not isinstance(data, list) else (data[0] if len(data) == 1 else tuple(data))
            try:
                s = profile_summary(model, inputs, device=device, verbose=0,
                                    warmup=profile_kwargs.pop("warmup", 1),
                                    iters=profile_kwargs.pop("iters", 1), **profile_kwargs)
                if note:
                    notes.append(note)
                break
            except ProfileError as e:
                last_error = e
        if s is None:
            msg = str(last_error)
            if input_size is not None and dtypes is None and ("Long" in msg or "indices" in msg):
                raise ProfileError(f"{msg}\nhint: inputs made from input_size are float32; pass "
                                   "dtypes=[torch.long] for models whose input is token indices") from last_error
            raise last_error
        training = {(n or type(model).__name__): m.training for n, m in model.named_modules()}
    finally:
        for m, f in zip(model.modules(), flags):
            m.training = f

    s.__class__ = StyledSummary
    s.notes.extend(notes)
    s._training = training
    s._style = dict(style=style, col_names=tuple(col_names) if col_names else None,
                    depth=depth if depth is not None else (max_depth if max_depth is not None else
                                                           (1 if style == "pms" else 3)),
                    row_settings=tuple(row_settings or ()), show_batch=show_batch, show_input=show_input,
                    show_hierarchical=show_hierarchical, show_parent_layers=show_parent_layers,
                    model_repr=repr(model) if show_hierarchical or style == "tree" else None)
    if (verbose and style != "pms") or print_summary:
        print(s)
    return s


def _param_device(model):
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _mb(b) -> str:
    return f"{b / 1e6:.2f}"


def _shape_str(shape, show_batch):
    if shape is None:
        return "--"
    if show_batch is not None and isinstance(shape, torch.Size) and len(shape) > 0:
        shape = [show_batch] + list(shape[1:])
    return fmt_shape(shape)


class StyledSummary(ProfileSummary):
    """A ProfileSummary printed in a peer tool's layout (compat.summary)."""

    @property
    def total_mult_adds(self) -> int:  # torchinfo's name
        return self.total_macs

    @property
    def total_input(self) -> int:
        return self.input_bytes

    def __str__(self):
        return self.render()

    def __repr__(self):
        return self.render()

    def render(self) -> str:
        st = self._style
        rows = [r for r in self.rows if r.depth <= st["depth"]]
        if "hide_recursive_layers" in st["row_settings"]:
            rows = [r for r in rows if not r.repeat]
        return getattr(self, "_render_" + st["style"])(rows, st)

    # ---------------------------------------------------------- helpers
    def _layer_label(self, r, i, st, counters):
        counters[r.depth] = counters.get(r.depth, 0) + 1
        label = r.type
        if "var_names" in st["row_settings"] and r.depth > 0:
            label += f" ({r.name.rpartition('.')[2]})"
        if "depth" in st["row_settings"] or st["style"] == "torchinfo":
            label += f": {r.depth}-{counters[r.depth]}"
        ascii_only = "ascii_only" in st["row_settings"]
        prefix = ("|    " if ascii_only else "│    ") * max(r.depth - 1, 0)
        branch = ("+-" if ascii_only else "├─") if r.depth > 0 else ""
        return prefix + branch + label

    def _cell(self, col, r, st):
        if col == "input_size":
            return _shape_str(r.input_shapes[0] if isinstance(r.input_shapes, tuple) and len(r.input_shapes) == 1
                              else r.input_shapes, st["show_batch"])
        if col == "output_size":
            return _shape_str(r.output_shapes, st["show_batch"])
        if col == "num_params":
            return "(recursive)" if r.repeat else (f"{r.params:,}" if r.params else "--")
        if col == "params_percent":
            return f"{100 * r.params / self.total_params:.2f}%" if self.total_params and r.params else "--"
        if col == "kernel_size":
            return str(list(r.kernel_size)) if r.kernel_size else "--"
        if col == "mult_adds":
            return f"{r.macs:,}" if r.macs else "--"
        if col == "flops":
            return fmt_count(r.flops) if r.flops else "--"
        if col == "trainable":
            if not r.params:
                return "--"
            return "True" if r.trainable_params == r.params else ("False" if not r.trainable_params else "Partial")
        if col == "self_time":
            return f"{r.fwd_self_time_ns / 1e3:.1f} us" if r.fwd_self_time_ns is not None else "--"
        if col == "total_time":
            return f"{r.fwd_time_ns / 1e3:.1f} us" if r.fwd_time_ns is not None else "--"
        if col == "mem_allocated":
            return _mb(r.mem_allocated) + " MB" if r.mem_allocated is not None else "--"
        if col == "mem_retained":
            return _mb(r.mem_retained) + " MB" if r.mem_retained is not None else "--"
        if col == "num_ops":
            return str(r.num_ops)
        raise AssertionError(col)

    @staticmethod
    def _grid(header, body, ascii_only=False, first_left=True):
        widths = [max([len(h)] + [len(b[j]) for b in body]) for j, h in enumerate(header)]

        def line(cells):
            return "  ".join((c.ljust(w) if (j == 0 and first_left) else c.rjust(w))
                             for j, (c, w) in enumerate(zip(cells, widths))).rstrip()
        width = sum(widths) + 2 * (len(widths) - 1)
        rule = ("=" if ascii_only else "=") * width
        thin = "-" * width
        return [rule, line(header), rule] + [line(b) for b in body] + [rule], width

    def _param_lines(self):
        return [f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.total_params - self.trainable_params:,}"]

    def _memory_lines(self):
        peak = self.peak_memory
        total = self.input_bytes + (peak or 0) + self.param_bytes + self.buffer_bytes
        return [f"Input size (MB): {_mb(self.input_bytes)}",
                f"Forward/backward pass size (MB): {_mb(peak) if peak is not None else 'not measured'}"
                "   (measured: peak allocated during the pass)",
                f"Params size (MB): {_mb(self.param_bytes + self.buffer_bytes)}",
                f"Total size (MB): {_mb(total)}   (measured, not estimated)"]

    def _footer(self, lines, width):
        lines += [f"Note: {n}" for n in self.notes]
        lines.append("=" * width)
        return "\n".join(lines)

    # ---------------------------------------------------------- layouts
    def _render_torchinfo(self, rows, st):
        cols = st["col_names"] or ("output_size", "num_params")
        counters: dict = {}
        body = [[self._layer_label(r, i, st, counters)] + [self._cell(c, r, st) for c in cols]
                for i, r in enumerate(rows)]
        header = ["Layer (type:depth-idx)"] + [_HEADERS[c] for c in cols]
        lines, width = self._grid(header, body, "ascii_only" in st["row_settings"])
        lines += self._param_lines()
        lines.append(f"Total mult-adds (M): {self.total_macs / 1e6:.2f}")
        lines.append("=" * width)
        lines += self._memory_lines()
        return self._footer(lines, width)

    def _render_torchsummary(self, rows, st):
        body, counter = [], 0
        for r in rows:
            if r.depth == 0 and len(rows) > 1:
                continue  # torchsummary lists the layers, not the model itself
            counter += 1
            body.append([f"{r.type}-{counter}", _shape_str(r.output_shapes, st["show_batch"]),
                         "0" if not r.params or r.repeat else f"{r.params:,}"])
        lines, width = self._grid(["Layer (type)", "Output Shape", "Param #"], body)
        lines += self._param_lines()
        lines.append("-" * width)
        lines += self._memory_lines()
        return self._footer(lines, width)

    def _render_keras(self, rows, st):
        body = [[f"{r.name.rpartition('.')[2] or r.name} ({r.type})", _shape_str(r.output_shapes, None),
                 "0" if not r.params or r.repeat else f"{r.params:,}"] for r in rows if r.depth > 0 or len(rows) == 1]
        lines, width = self._grid(["Layer (type)", "Output Shape", "Param #"], body)
        lines = [f'Model: "{self.rows[0].type}"'] + lines + self._param_lines()
        return self._footer(lines, width)

    def _render_lightning(self, rows, st):
        body = []
        for i, r in enumerate(rr for rr in rows if rr.depth == 1):
            body.append([str(i), r.name, r.type, fmt_count(r.params),
                         "train" if self._mode(r) else "eval",
                         _shape_str(r.input_shapes[0] if isinstance(r.input_shapes, tuple) and
                                    len(r.input_shapes) == 1 else r.input_shapes, None),
                         _shape_str(r.output_shapes, None)])
        lines, width = self._grid(["", "Name", "Type", "Params", "Mode", "In sizes", "Out sizes"], body)
        lines += [f"{fmt_count(self.trainable_params)}    Trainable params",
                  f"{fmt_count(self.total_params - self.trainable_params)}    Non-trainable params",
                  f"{fmt_count(self.total_params)}    Total params",
                  f"{self.param_bytes / 1e6:.3f}    Total estimated model params size (MB)"]
        return self._footer(lines, width)

    def _mode(self, r):
        return self._training.get(r.name, True)

    def _render_pms(self, rows, st):
        shape_col = "Input Shape" if st["show_input"] else "Output Shape"
        header = ["Layer (type)"] + (["Parent Layers"] if st["show_parent_layers"] else []) + \
            [shape_col, "Param #", "Tr. Param #"]
        body = []
        for r in rows:
            if r.depth == 0 and len(rows) > 1:
                continue
            shape = r.input_shapes if st["show_input"] else r.output_shapes
            if st["show_input"] and isinstance(shape, tuple) and len(shape) == 1:
                shape = shape[0]
            cells = [f"{r.name.rpartition('.')[2]} ({r.type})" if r.depth else r.type]
            if st["show_parent_layers"]:
                cells.append(r.name.rpartition(".")[0] or self.rows[0].type)
            cells += [_shape_str(shape, None), f"{r.params:,}" if not r.repeat else "0",
                      f"{r.trainable_params:,}" if not r.repeat else "0"]
            body.append(cells)
        lines, width = self._grid(header, body)
        lines += self._param_lines()
        if st["show_hierarchical"] and st["model_repr"]:
            lines += ["", st["model_repr"]]
        return self._footer(lines, width)

    def _render_tree(self, rows, st):
        """print(model)-style tree with params, output shape and MACs appended."""
        out = []
        shown = [r for r in self.rows if r.depth <= st["depth"]]
        for i, r in enumerate(shown):
            name = r.name.rpartition(".")[2] if r.depth else ""
            head = "  " * r.depth + (f"({name}): " if name else "") + r.type
            extra = f"  # params={fmt_count(r.params)} out={_shape_str(r.output_shapes, None)} macs={fmt_count(r.macs)}"
            nxt = shown[i + 1].depth if i + 1 < len(shown) else 0
            if nxt > r.depth:  # a container: its children follow inside parentheses
                out.append(head + "(" + extra)
            else:
                out.append(head + "()" + extra)
                for d in range(r.depth - 1, nxt - 1, -1):  # close the containers that end here
                    out.append("  " * d + ")")
        width = max(len(x) for x in out) if out else 40
        return self._footer(out + [""] + self._param_lines(), width)
