"""Overhead of torchscope vs the bare forward and vs peers, side by side in one run.

    .venv/bin/python -m pytest benchmarks/ --benchmark-only

Writes benchmarks/RESULTS.md (see conftest.py). Timing goals live here, not in tests/.
"""
import statistics
import time

import pytest
import torch
from torch import nn

from conftest import RESULTS
from harness import measure
from models import cases
from tools import TOOLS

from torchscope import capture

CASES = cases()
IDS = [c[0].split(":")[0].split(",")[0].split(" (")[0].replace(" ", "_") for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("tool", list(TOOLS))
def test_tool(benchmark, case, tool):
    """pytest-benchmark's own statistics for each tool on each model."""
    name, model, x, rounds = case
    fn = TOOLS[tool](model, x)
    if fn is None:
        pytest.skip(f"{tool} not installed")
    benchmark.extra_info["model"] = name
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=2, iterations=1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_side_by_side(benchmark, case):
    """Interleaved rounds: the ratios written to RESULTS.md."""
    name, model, x, rounds = case
    tools = {k: f(model, x) for k, f in TOOLS.items()}
    tools = {k: v for k, v in tools.items() if v is not None}
    res = benchmark.pedantic(lambda: measure(tools, rounds), rounds=1, iterations=1)
    RESULTS["cases"][name] = res
    benchmark.extra_info.update({k: round(v["ratio"], 3) for k, v in res.items()})


class AddLoop(nn.Module):
    """One module issuing n cheap allocation-free ops: isolates the per-op cost."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        for _ in range(self.n):
            x.add_(1.0)
        return x


def _per_item_us(fn_bare, fn_tool, n, rounds=15):
    res = measure({"bare": fn_bare, "tool": fn_tool}, rounds)
    return (res["tool"]["median_ms"] - res["bare"]["median_ms"]) * 1e3 / n


def test_micro_costs(benchmark):
    """Per-op (recorder callbacks) and per-module (module boundary mechanism) costs."""
    n = 20000
    m, x = AddLoop(n), torch.zeros(4)

    def cap(shapes, memory):
        return lambda: capture.capture(m, lambda: m(x), warmup=0, iters=1, record_shapes=shapes,
                                       record_memory=memory)

    def prof():
        with torch.profiler.profile(record_shapes=True) as p:
            m(x)
        return p

    micro = RESULTS["micro"]

    def run():
        micro["per op: torchscope recorder, shapes + memory"] = f"{_per_item_us(lambda: m(x), cap(True, True), n):.3f} µs"
        micro["per op: torchscope recorder, no shapes, no memory"] = f"{_per_item_us(lambda: m(x), cap(False, False), n):.3f} µs"
        micro["per op: torch.profiler(record_shapes) incl. its stop (no table)"] = f"{_per_item_us(lambda: m(x), prof, n, rounds=5):.3f} µs"

        k = 2000
        seq = nn.Sequential(*[nn.Identity() for _ in range(k)])
        y = torch.zeros(1)

        def markers(shapes):
            return lambda: capture.capture(seq, lambda: seq(y), warmup=0, iters=1, record_shapes=shapes,
                                           record_memory=False)

        def hooks():
            hs = []
            for mod in seq.modules():
                hs.append(mod.register_forward_pre_hook(lambda mod, a: None))
                hs.append(mod.register_forward_hook(lambda mod, a, o: None))
            seq(y)
            for h in hs:
                h.remove()

        micro["per module call: C marker (install + enter/exit + restore), no shape log"] = \
            f"{_per_item_us(lambda: seq(y), markers(False), k):.3f} µs"
        micro["per module call: C marker with input/output shape log"] = \
            f"{_per_item_us(lambda: seq(y), markers(True), k):.3f} µs"
        micro["per module call: Python forward pre-hook + hook (no-op bodies)"] = \
            f"{_per_item_us(lambda: seq(y), hooks, k):.3f} µs"

    benchmark.pedantic(run, rounds=1, iterations=1)
