"""`torchscope` command line (also `python -m torchscope`).

    torchscope                                   profile the embedded default model (SmallResNet)
    torchscope MODULE:CALLABLE --input-size 64,3,224,224 [options]
    torchscope ./mymodel.py:build --input-size 1,128 --dtype int64
    torchscope torchvision:resnet50 --input-size 1,3,224,224 --device meta
    torchscope diff BASE.json NEW.json [--max-time +10%] [--max-memory +5%] [--max-params 0]

MODULE:CALLABLE names an importable module (or a .py file) and a callable in it that
returns an nn.Module (a class, a factory function, or a module instance; a factory may also
return (model, example_input)). `torchvision:NAME` builds torchvision.models.NAME(weights=None).
Errors print one line on stderr and exit non-zero; --debug shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="torchscope", formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Profile a PyTorch model: module tree, params, MACs and measured time/memory per module.\n"
        "With no MODEL, profiles an embedded small ResNet-style CNN (SmallResNet).\n"
        "Compare two --json outputs with: torchscope diff BASE.json NEW.json [--max-time +10%] ..."),
        epilog=("MODEL forms: package.module:factory, path/to/file.py:factory, torchvision:resnet50.\n"
                "Examples:\n"
                "  torchscope torchscope.models:SmallResNet --input-size 2,3,32,32 --json out.json\n"
                "  torchscope torchvision:resnet50 --input-size 1,3,224,224 --device meta"))
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="MODULE:CALLABLE returning an nn.Module (default: the embedded SmallResNet)")
    p.add_argument("--input-size", action="append", metavar="N,C,H,W", default=None,
                   help="shape of one input tensor, batch first; repeat for several inputs")
    p.add_argument("--dtype", action="append", choices=DTYPES, default=None,
                   help="input dtype (repeat to give one per --input-size; default float32). A float16/"
                        "bfloat16/float64 input also converts the model to that dtype; int inputs are "
                        "random token ids below the smallest nn.Embedding size")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or meta (default: cpu)")
    p.add_argument("--backward", action="store_true", help="also profile the backward pass (sum of outputs)")
    p.add_argument("--train", action="store_true", help="profile in training mode (default: eval mode)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded passes first (default 1)")
    p.add_argument("--iters", type=int, default=3, help="recorded passes; times are medians (default 3)")
    p.add_argument("--depth", type=int, default=None, help="deepest module level shown")
    p.add_argument("--json", metavar="PATH", help="also write the summary as JSON (input of `torchscope diff`)")
    p.add_argument("--csv", metavar="PATH", help="also write one CSV row per module call")
    p.add_argument("--trace", metavar="PATH", help="also write a Chrome/Perfetto trace (module ranges and ops)")
    p.add_argument("--ops", metavar="MODULE_NAME", action="append",
                   help="print the op drill-down of one module (e.g. layer1.0.conv1); repeatable")
    p.add_argument("--weights", action="store_true", help="print per-layer weight statistics")
    p.add_argument("--plot-weights", metavar="PNG", help="save per-layer weight histograms (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed before building the model (default 0)")
    p.add_argument("--ascii", action="store_true", help="ASCII-only table")
    p.add_argument("--columns", metavar="A,B,...", default=None,
                   help="table columns (keys: " + ", ".join(_table_columns()) + ")")
    p.add_argument("--sort", metavar="COLUMN", default=None, help="flat list sorted by a column, largest first")
    p.add_argument("--top", type=int, default=None, help="keep the first N rows")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _build_diff_parser() -> argparse.ArgumentParser:
    from . import diff as _diff
    p = _Parser(prog="torchscope diff", description=(
        "Compare two summaries written with --json: added/removed/changed module calls and totals. "
        "Exit status 1 when a threshold is exceeded (thresholds apply to the totals)."))
    _diff.add_arguments(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


# ------------------------------------------------------------------ model spec
def parse_size(text: str) -> tuple:
    """'64,3,224,224' (also '64x3x224x224', '(64, 3, 224, 224)') -> (64, 3, 224, 224)."""
    s = text.strip().strip("()[]")
    sep = "," if "," in s else "x" if "x" in s.lower() else None  # one separator: "1,3,x,64" is an error
    parts = [x.strip() for x in (s.lower().split(sep) if sep else s.split())]
    if sep == "," and parts and parts[-1] == "":
        parts.pop()  # "(64,)": a one-tuple
    try:
        dims = tuple(int(x) for x in parts)
    except ValueError:  # "", "x", "3.5": every dimension must be written
        dims = ()
    if not dims or any(d < 0 for d in dims):
        raise CliError(f"bad --input-size {text!r}: expected comma-separated non-negative integers, "
                       "batch first, like 64,3,224,224")
    return dims


def _import_file(path: str):
    if not os.path.isfile(path):
        raise CliError(f"model file not found: {path}")
    name = "_torchscope_user_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {path} as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # its sibling imports work, as with `python file.py`
    try:
        spec.loader.exec_module(mod)
    except ImportError as e:
        raise CliError(f"importing {path} failed: {e}") from e
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return mod


def _import_module(modname: str):
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # `torchscope mymodel:build` finds ./mymodel.py, like python -m
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        missing = e.name or modname
        if missing == modname or modname.startswith(missing + "."):
            raise CliError(f"cannot import module {modname!r}: no module named {missing!r} "
                           f"(is it installed, or on PYTHONPATH?)") from e
        raise CliError(f"importing {modname!r} failed: no module named {missing!r} "
                       f"(pip install {missing.split('.')[0]}?)") from e


def resolve_callable(spec: str):
    """The object a MODEL spec names (callable or module instance), and a display name."""
    if ":" not in spec or spec.endswith(":") or spec.startswith(":"):
        raise CliError(f"bad model spec {spec!r}: expected MODULE:CALLABLE (e.g. torchscope.models:SmallResNet, "
                       "./mymodel.py:build or torchvision:resnet50)")
    modpart, _, attr = spec.rpartition(":")
    if modpart == "torchvision":
        try:
            import torchvision.models as tvm
        except ImportError as e:
            raise CliError(f"{spec}: torchvision is not installed (pip install torchvision)") from e
        fn = getattr(tvm, attr, None)
        if not callable(fn) or isinstance(fn, type(tvm)):
            try:
                available = tvm.list_models()
            except Exception:  # older torchvision
                available = []
            if attr in available:
                return (lambda: tvm.get_model(attr, weights=None)), f"torchvision.models.{attr}"
            import difflib
            close = difflib.get_close_matches(attr, available, n=3)
            raise CliError(f"torchvision has no model {attr!r}"
                           + (f" (did you mean {', '.join(close)}?)" if close else ""))
        return (lambda: fn(weights=None)), f"torchvision.models.{attr}"
    is_file = modpart.endswith(".py") or os.sep in modpart or "/" in modpart
    mod = _import_file(modpart) if is_file else _import_module(modpart)
    obj = mod
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"{modpart} has no attribute {attr!r}") from None
    return obj, f"{modpart}:{attr}"


def build_model(spec: str, on_meta: bool = False):
    """(model, example_input or None, display name) for a MODEL spec."""
    import torch

    obj, label = resolve_callable(spec)
    if isinstance(obj, torch.nn.Module):
        return obj, None, label
    if not callable(obj):
        raise CliError(f"{spec} is a {type(obj).__name__}, not a callable returning an nn.Module")

    def make():
        if on_meta:  # build without allocating; fall back to a normal build if the code can't
            try:
                with torch.device("meta"):
                    return obj()
            except Exception:
                pass
        return obj()

    try:
        made = make()
    except TypeError as e:
        raise CliError(f"calling {label}() failed: {e} (the callable must work without arguments; "
                       "wrap it in a factory function in a .py file)") from e
    example = None
    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], torch.nn.Module):
        made, example = made
    if not isinstance(made, torch.nn.Module):
        raise CliError(f"{label}() returned {type(made).__name__}, not a torch.nn.Module")
    return made, example, label


def make_inputs(model, sizes, dtypes, device):
    """Random inputs on the CPU (profile_summary moves them), or empty ones on meta."""
    import torch

    if dtypes and len(dtypes) not in (1, len(sizes)):
        raise CliError(f"got {len(dtypes)} --dtype values for {len(sizes)} --input-size values "
                       "(give one for all, or one per input)")
    dts = [getattr(torch, d) for d in (dtypes or ["float32"])]
    dts = dts * len(sizes) if len(dts) == 1 else dts
    vocab = [m.num_embeddings for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    high = min(vocab) if vocab else 2
    dev = "cpu" if device is None or not str(device).startswith("meta") else device
    gen = torch.Generator().manual_seed(0)
    out = []
    for size, dt in zip(sizes, dts):
        if str(dev).startswith("meta"):
            out.append(torch.empty(size, dtype=dt, device="meta"))
        elif dt.is_floating_point:
            out.append(torch.randn(size, generator=gen, dtype=torch.float32).to(dtype=dt))
        else:  # profile_summary moves inputs (and the model) to --device
            out.append(torch.randint(0, high, size, generator=gen, dtype=dt))
    return out


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    more = " (more with --debug)" if "\n" in text else ""
    if isinstance(e, CliError):
        return f"{first}{more}"
    if isinstance(e, FileNotFoundError):
        return f"no such file: {e.filename}" if getattr(e, "filename", None) else first
    return f"{type(e).__name__}: {first}{more}"


# ------------------------------------------------------------------------ main
def _table_columns():
    from torchscope.report import TABLE_COLUMNS
    return list(TABLE_COLUMNS)


def _glue_negative_limits(argv: list) -> list:
    """`--max-params -1%`: argparse would take "-1%" for an option; pass it as `--max-params=-1%`."""
    out = []
    for a in argv:
        if out and out[-1] in ("--max-time", "--max-memory", "--max-params", "--max-macs") \
                and len(a) > 1 and a[0] == "-" and (a[1].isdigit() or a[1] == "."):
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "diff":
        parser = _build_diff_parser()
        args = parser.parse_args(_glue_negative_limits(argv[1:]))
        return _guard(args, lambda: _diff_cmd(args), parser.prog)
    parser = _build_parser()
    args = parser.parse_args(argv)
    return _guard(args, lambda: _profile_cmd(args), parser.prog)


def _guard(args, fn, prog) -> int:
    try:
        return fn()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `torchscope ... | head`
        return 0
    except Exception as e:  # one clear line, no traceback unless --debug
        if args.debug:
            raise
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, CliError) else 1


def _diff_cmd(args) -> int:
    from . import diff as _diff
    for kind in ("time", "memory", "params", "macs"):  # bad thresholds before reading files
        v = getattr(args, f"max_{kind}")
        if v is not None:
            try:
                _diff.parse_threshold(v, kind)
            except ValueError as e:
                raise CliError(str(e)) from None
    try:
        base, new = _diff.load(args.base), _diff.load(args.new)
    except (OSError, ValueError) as e:  # unreadable input: status 2, never mistaken for a regression
        raise CliError(_one_line(e)) from None
    res = _diff.diff(base, new, max_time=args.max_time, max_memory=args.max_memory,
                     max_params=args.max_params, max_macs=args.max_macs, show_all=args.all,
                     base_label=args.base, new_label=args.new)
    print(res.text)
    return res.exit_code


def _check_table_options(args):
    """Table options and output paths, checked before the (possibly long) profile."""
    from .report import _SORT_FIELDS, check_depth, table_columns
    if args.columns:
        args.columns = ",".join(c.strip() for c in args.columns.split(","))
    try:
        check_depth(args.depth)
        if args.columns:
            table_columns(args.columns.split(","), "--columns")
    except ValueError as e:
        raise CliError(_one_line(e)) from None
    if args.sort is not None and args.sort not in _SORT_FIELDS:
        raise CliError(f"--sort {args.sort}: choose one of {', '.join(_SORT_FIELDS)}")
    if args.plot_weights and not os.path.splitext(args.plot_weights)[1]:
        args.plot_weights += ".png"  # (matplotlib would add it, and we would name the wrong file)
    for opt in ("json", "csv", "trace", "plot_weights"):
        path = getattr(args, opt)
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise CliError(f"--{opt.replace('_', '-')} {path}: folder {folder} does not exist")


def _profile_cmd(args) -> int:
    if args.iters < 1:
        raise CliError(f"--iters must be >= 1, got {args.iters}")
    if args.warmup < 0:
        raise CliError(f"--warmup must be >= 0, got {args.warmup}")
    if args.top is not None and args.top < 1:
        raise CliError(f"--top must be >= 1, got {args.top}")
    _check_table_options(args)
    sizes = [parse_size(s) for s in (args.input_size or [])]
    import torch

    import torchscope
    from . import export

    device = args.device
    on_meta = device is not None and device.startswith("meta")
    if device is not None:
        from .api import _checked_device
        try:
            _checked_device(device)  # one clear line for a bad or unavailable device, before any work
        except (ValueError, RuntimeError) as e:
            raise CliError(f"--device {device}: {e}") from None
    torch.manual_seed(args.seed)
    if args.model is None:
        from torchscope.models import default_model

        model, example = default_model()
        label = "embedded default model SmallResNet"
    else:
        model, example, label = build_model(args.model, on_meta=on_meta)
    if not args.train:
        model.eval()
    if sizes:
        floats = [d for d in (args.dtype or []) if d in ("float16", "bfloat16", "float64")]
        if floats:
            if len(set(floats)) > 1:
                raise CliError(f"inputs of several float dtypes ({', '.join(sorted(set(floats)))}): "
                               "the model can run in only one")
            model.to(getattr(torch, floats[0]))
        inputs = make_inputs(model, sizes, args.dtype, device)
        inputs = inputs[0] if len(inputs) == 1 else tuple(inputs)
    elif example is not None:
        if args.dtype:
            raise CliError(f"--dtype {' '.join(args.dtype)} applies to inputs made from --input-size; "
                           f"{label} brings its own example input (give --input-size to choose)")
        inputs = example
    else:
        raise CliError(f"--input-size is required for {args.model} (e.g. --input-size 1,3,224,224)")

    shown = [list(x.shape) for x in (inputs if isinstance(inputs, tuple) else (inputs,))
             if isinstance(x, torch.Tensor)]
    print(f"torchscope {torchscope.__version__}: {label}, input "
          f"{shown[0] if len(shown) == 1 else shown}")
    columns = args.columns.split(",") if args.columns else None
    s = torchscope.profile_summary(model, inputs, device=device, backward=args.backward, depth=args.depth,
                                   warmup=args.warmup, iters=args.iters, verbose=0, progress=sys.stderr.isatty(),
                                   weight_stats=any(c.strip().startswith("w_") for c in columns or ()))
    names = {r.name for r in s.rows}
    unknown = [n for n in args.ops or [] if n not in names]
    if unknown:  # before the table: an error at the end reads as if the run failed late
        raise CliError(f"--ops {', '.join(unknown)}: no such module in the summary (names as in the Layer "
                       f"column, e.g. {', '.join(r.name for r in s.rows[1:4]) or s.rows[0].name})")
    print(s.table(ascii_only=args.ascii or None, sort=args.sort, top=args.top, columns=columns))
    for name in args.ops or []:
        print()
        print(export.format_op_rows(export.op_rows(s, name), title=f"Ops of {name} (iteration 0, forward):",
                                    ascii_only=args.ascii))
    if args.weights or args.plot_weights:
        from . import weights
        if args.weights:
            print()
            print(weights.format_weight_stats(weights.weight_stats(model)))
        if args.plot_weights:
            weights.plot_weights(model, args.plot_weights)
            print(f"wrote {args.plot_weights}")
    if args.json:
        export.to_json(s, args.json)
        print(f"wrote {args.json}")
    if args.csv:
        export.to_csv(s, args.csv)
        print(f"wrote {args.csv}")
    if args.trace:
        export.to_chrome_trace(s, args.trace)
        print(f"wrote {args.trace} (open in https://ui.perfetto.dev or chrome://tracing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
