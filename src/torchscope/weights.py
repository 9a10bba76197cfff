"""Weight statistics and per-layer weight histograms.

weight_stats(model): for every module that owns parameters (each Parameter counted once,
at its first module, like the summary's params), mean/std/min/max/fraction of zeros over
its own parameters. Computed under no_grad on the parameters' own device, in float64
chunks (bounded extra memory), reading only: nothing in the model changes.

plot_weights(model, path): one PNG of per-layer histograms (needs matplotlib, imported
only here).
"""
from __future__ import annotations

import dataclasses
import math

import torch

_CHUNK = 1 << 24  # elements per float64 chunk (128 MiB of scratch at most)


@dataclasses.dataclass
class WeightStats:
    """Statistics over one module's own parameters (or one parameter, by="parameter").

    std is the sample standard deviation (torch.std's default, correction=1). Values are
    None for parameters without storage (meta device). nonfinite counts NaN/inf entries,
    which are left out of mean/std/min/max.
    """

    name: str
    type: str
    numel: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    zero_fraction: float | None
    nonfinite: int
    params: list  # parameter names (relative to the module)
    device: str
    dtype: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Acc:
    """Running count / mean / M2 (Chan et al.), min, max, zeros over float64 chunks."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.lo, self.hi = math.inf, -math.inf
        self.zeros = self.nonfinite = self.total = 0
        self.unknown = False

    def add(self, t: torch.Tensor):
        if t.is_meta or t.device.type == "meta":
            self.unknown = True
            self.total += t.numel()
            return
        flat = t.detach().reshape(-1)
        if flat.is_complex():
            flat = flat.abs()
        for start in range(0, flat.numel(), _CHUNK):
            x = flat[start:start + _CHUNK].to(torch.float64)
            self.total += x.numel()
            self.zeros += int((x == 0).sum())
            finite = torch.isfinite(x)
            nf = int(finite.sum())
            if nf != x.numel():
                self.nonfinite += x.numel() - nf
                x = x[finite]
            if x.numel() == 0:
                continue
            n_b = x.numel()
            mean_b = float(x.mean())
            m2_b = float(((x - mean_b) ** 2).sum())
            self.lo = min(self.lo, float(x.min()))
            self.hi = max(self.hi, float(x.max()))
            n = self.n + n_b
            delta = mean_b - self.mean
            self.mean += delta * n_b / n
            self.m2 += m2_b + delta * delta * self.n * n_b / n
            self.n = n

    def stats(self) -> dict:
        if self.unknown or self.total == 0:
            return {"mean": None, "std": None, "min": None, "max": None, "zero_fraction": None}
        have = self.n > 0
        return {
            "mean": self.mean if have else None,
            "std": math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else (0.0 if have else None),
            "min": self.lo if have else None,
            "max": self.hi if have else None,
            "zero_fraction": self.zeros / self.total,
        }


def _groups(model: torch.nn.Module, by: str):
    """(name, type, [(param name, Parameter)]) in named_modules() order, each Parameter once."""
    if by not in ("module", "parameter"):
        raise ValueError(f"by must be 'module' or 'parameter', got {by!r}")
    seen = set()
    for mname, mod in model.named_modules():
        own = []
        for pname, p in mod.named_parameters(recurse=False):
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            own.append((pname, p))
        if not own:
            continue
        label = mname or type(model).__name__
        if by == "module":
            yield label, type(mod).__name__, own
        else:
            for pname, p in own:
                yield (f"{mname}.{pname}" if mname else pname), type(mod).__name__, [(pname, p)]


def weight_stats(model: torch.nn.Module, by: str = "module") -> list:
    """Per module that owns parameters (by="module", all its own parameters together) or
    per parameter (by="parameter"): numel, mean, std, min, max, fraction of zeros."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"weight_stats expects a torch.nn.Module, got {type(model).__name__}")
    out = []
    with torch.no_grad():
        for name, typ, params in _groups(model, by):
            lazy = [n for n, p in params if isinstance(p, torch.nn.parameter.UninitializedTensorMixin)]
            if lazy:
                raise ValueError(f"module '{name or '(root)'}' ({typ}) has uninitialized lazy parameter(s) "
                                 f"{', '.join(lazy)}: run the model once before computing weight statistics")
            acc = _Acc()
            for _, p in params:
                acc.add(p)
            devs = sorted({str(p.device) for _, p in params})
            dtypes = sorted({str(p.dtype).replace("torch.", "") for _, p in params})
            out.append(WeightStats(name=name, type=typ, numel=sum(p.numel() for _, p in params),
                                   nonfinite=acc.nonfinite, params=[n for n, _ in params],
                                   device=",".join(devs), dtype=",".join(dtypes), **acc.stats()))
    return out


def format_weight_stats(stats: list) -> str:
    """A text table of weight_stats() output."""
    def num(v):
        return "-" if v is None else f"{v:.4g}"

    head = ("Module (type)", "Numel", "Mean", "Std", "Min", "Max", "Zeros")
    body = [(f"{s.name} ({s.type})", f"{s.numel:,}", num(s.mean), num(s.std), num(s.min), num(s.max),
             "-" if s.zero_fraction is None else f"{100 * s.zero_fraction:.1f}%") for s in stats]
    w = [max([len(head[j])] + [len(b[j]) for b in body]) for j in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(cells))

    lines = [line(head), "-" * len(line(head))] + [line(b) for b in body]
    bad = [s.name for s in stats if s.nonfinite]
    if bad:
        lines.append(f"Non-finite values (NaN/inf, left out of the statistics) in: {', '.join(bad)}")
    return "\n".join(lines)


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("torchscope.plot_weights needs matplotlib, which is not installed: "
                          "pip install matplotlib  (or pip install 'torchscope[plot]')") from e
    return Figure, FigureCanvasAgg


def _pick(n: int, k: int) -> list:
    """k indices spread evenly over range(n), first and last included."""
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def plot_weights(model: torch.nn.Module, path, max_layers: int = 16, bins: int = 50,
                 by: str = "module", include_1d: bool = False) -> list:
    """Save per-layer weight histograms as one PNG at `path`: one panel per module with
    weight tensors (or per parameter, by="parameter"), at most `max_layers`, spread evenly
    over the model when there are more. 1-d parameters (biases, norm scales) are left out
    unless include_1d=True: a norm's ones and zeros would hide the weights' shape.
    Histograms are computed on the parameters' device (torch.histc); only the bin counts
    reach matplotlib. Returns the names of the plotted layers."""
    Figure, FigureCanvasAgg = _matplotlib()
    if max_layers < 1:
        raise ValueError(f"max_layers must be >= 1, got {max_layers}")
    panels = []  # (name, type, params, stats)
    with torch.no_grad():
        for name, typ, params in _groups(model, by):
            params = [(n, p) for n, p in params if include_1d or p.dim() >= 2]
            if not params:
                continue
            acc = _Acc()
            for _, p in params:
                acc.add(p)
            st = acc.stats()
            if st["min"] is not None:
                panels.append((name, typ, params, st, acc.n))
    chosen = [panels[i] for i in _pick(len(panels), max_layers)]
    cols = min(4, max(1, len(chosen)))
    rows = max(1, math.ceil(len(chosen) / cols))
    fig = Figure(figsize=(4 * cols, 2.8 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    with torch.no_grad():
        for k, (name, typ, params, st, n) in enumerate(chosen):
            ax = axes[k // cols][k % cols]
            lo, hi = st["min"], st["max"]
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            counts = None
            for _, p in params:
                flat = p.detach().reshape(-1)
                flat = (flat.abs() if flat.is_complex() else flat).float()
                flat = flat[torch.isfinite(flat)]
                h = torch.histc(flat, bins=bins, min=lo, max=hi).cpu().double()
                counts = h if counts is None else counts + h
            edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
            ax.stairs(counts.numpy(), edges.numpy(), fill=True)
            ax.set_title(f"{name} ({typ})\nmean {st['mean']:.3g}  std {st['std']:.3g}  n {n:,}", fontsize=8)
            ax.tick_params(labelsize=7)
        for k in range(len(chosen), rows * cols):
            axes[k // cols][k % cols].set_visible(False)
    if not chosen:
        axes[0][0].set_visible(True)
        axes[0][0].text(0.5, 0.5, "no parameters to plot", ha="center", va="center")
    shown = f" ({len(chosen)} of {len(panels)} layers)" if len(chosen) < len(panels) else ""
    fig.suptitle(f"{type(model).__name__} weight distributions{shown}", fontsize=11)
    fig.savefig(path, dpi=100)
    return [c[0] for c in chosen]


__all__ = ["WeightStats", "weight_stats", "format_weight_stats", "plot_weights"]
