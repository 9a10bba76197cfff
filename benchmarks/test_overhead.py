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


def test_steady_state(benchmark):
    """The tiny MLP side by side again, each side timed right after an untimed call of itself:
    the per-call cost in a loop, beside the one-shot figures of test_side_by_side."""
    name, model, x, rounds = CASES[0]
    tools = {k: f(model, x) for k, f in TOOLS.items()}
    tools = {k: v for k, v in tools.items() if v is not None}
    res = benchmark.pedantic(lambda: measure(tools, rounds, steady=True), rounds=1, iterations=1)
    RESULTS["steady"] = (name, res)


class AddLoop(nn.Module):
    """One module issuing n cheap allocation-free ops (in-place add of a tensor): the per-op cost."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x, one):
        for _ in range(self.n):
            x.add_(one)
        return x


def _per_item_us(fn_bare, fn_tool, n, rounds=30):
    """(min tool - min bare) / n: minima are the stable statistic for a small difference."""
    res = measure({"bare": fn_bare, "tool": fn_tool}, rounds)["tool"]
    return (res["min_ms"] - res["min_ms"] / res["ratio_of_mins"]) * 1e3 / n


def test_micro_costs(benchmark):
    """Per-op (recorder callbacks) and per-module (module boundary mechanism) costs."""
    n = 20000
    m, x, one = AddLoop(n), torch.zeros(4), torch.ones(4)

    def cap(shapes, memory):
        return lambda: capture.capture(m, lambda: m(x, one), warmup=0, iters=1, record_shapes=shapes,
                                       record_memory=memory)

    def prof():
        with torch.profiler.profile(record_shapes=True) as p:
            m(x, one)
        return p

    micro = RESULTS["micro"]

    def run():
        micro["per op: torchscope recorder, shapes + memory"] = f"{_per_item_us(lambda: m(x, one), cap(True, True), n):.3f} µs"
        micro["per op: torchscope recorder, no shapes, no memory"] = f"{_per_item_us(lambda: m(x, one), cap(False, False), n):.3f} µs"
        micro["per op: torch.profiler(record_shapes) incl. its stop (no table)"] = f"{_per_item_us(lambda: m(x, one), prof, n, rounds=5):.3f} µs"

        k = 2000
        seq = nn.Sequential(*[nn.Identity() for _ in range(k)])
        y = torch.zeros(1)
        from torchscope._ext import C

        marked = nn.Sequential(*[nn.Identity() for _ in range(k)])  # same structure, markers installed

        def marked_pass(shape_log):
            # markers already installed: only the per-call enter/exit (+ optional shape log)
            def run():
                C.start(False, False)
                C.set_shape_log(shape_log)
                marked(y)
                C.set_shape_log(False)
                C.take_shape_log()
                C.stop()
            return run

        def hooks_pass():
            seq(y)  # hooked below; `marked` (no markers installed then) is its bare twin

        index = capture.module_index(marked)
        saved = capture._install_markers(index.modules)
        try:
            per_call = _per_item_us(lambda: seq(y), marked_pass(False), k)
            per_call_log = _per_item_us(lambda: seq(y), marked_pass(True), k)
        finally:
            capture._restore_markers(index.modules, saved)
        hs = []
        for mod in seq.modules():
            hs.append(mod.register_forward_pre_hook(lambda mod, a: None))
            hs.append(mod.register_forward_hook(lambda mod, a, o: None))
        try:
            hooked = measure({"bare": lambda: marked(y), "hooks": hooks_pass}, 30)["hooks"]
        finally:
            for h in hs:
                h.remove()
        per_hook = (hooked["min_ms"] - hooked["min_ms"] / hooked["ratio_of_mins"]) * 1e3 / k

        def setup_only():
            ix = capture.module_index(seq)
            capture._restore_markers(ix.modules, capture._install_markers(ix.modules))

        fixed = measure({"bare": lambda: None, "setup": setup_only}, 30)["setup"]["min_ms"] * 1e3 / k

        micro["per module call: C marker enter/exit"] = f"{per_call:.3f} µs"
        micro["per module call: C marker enter/exit + input/output shape log"] = f"{per_call_log:.3f} µs"
        micro["per module call: Python forward pre-hook + forward hook (no-op bodies)"] = f"{per_hook:.3f} µs"
        micro["per module, once per profile: index + install + restore markers"] = f"{fixed:.3f} µs"

    benchmark.pedantic(run, rounds=1, iterations=1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_self_time_accuracy(benchmark, case):
    """Sum of per-module self times vs the measured wall time of the whole pass (goal: within 3%)."""
    import torchscope

    name, model, x, rounds = case

    def run():
        s = torchscope.profile_summary(model, x, warmup=2, iters=5, verbose=0)
        self_sum = sum(r.fwd_self_time_ns for r in s.rows)
        return self_sum, s.total_time_ns

    self_sum, total = benchmark.pedantic(run, rounds=1, iterations=1)
    RESULTS.setdefault("accuracy", {})[name] = (self_sum, total)


def test_phases(benchmark):
    """Where the tiny MLP's overhead goes: each stage added in turn, paired with the bare forward."""
    import torchscope
    from torchscope import api
    from torchscope._ext import C

    name, model, x, rounds = CASES[0]
    index = capture.module_index(model)
    skip = [False] * len(index.modules)

    def recorder_pass():  # callbacks with shapes and memory, plus module markers: the recorded pass alone
        saved = C.install_markers(index.modules, skip)
        C.start(True, True)
        model(x)
        C.stop()
        C.restore_markers(index.modules, saved)
        C.collect()

    def run_capture():
        return capture.capture(model, lambda: model(x), warmup=0, iters=1)

    def capture_build():
        return api._build(run_capture(), torch.device("cpu"), None, 0, x)

    tools = {"bare": lambda: model(x), "recorded pass (ops + markers)": recorder_pass,
             "capture (+ walk, shape log, state, collect)": run_capture,
             "capture + attribute/count/build": capture_build,
             "full: profile_summary + str": lambda: str(torchscope.profile_summary(model, x, warmup=0, iters=1,
                                                                                    verbose=0))}
    res = benchmark.pedantic(lambda: measure(tools, rounds), rounds=1, iterations=1)
    RESULTS["phases"] = (name, res)


def test_recorder_floor(benchmark, tmp_path):
    """torchscope's per-op cost against torch's own: an empty RecordFunction callback (floor/)."""
    import os
    import timeit

    from torch.utils.cpp_extension import load

    from torchscope._ext import C

    ext = load("torchscope_bench_empty_callback",
               [os.path.join(os.path.dirname(__file__), "floor", "empty_callback.cpp")],
               extra_cflags=["-O2", "-DNDEBUG"], build_directory=str(tmp_path), verbose=False)
    name, model, x, rounds = CASES[0]
    n_ops = len(capture.capture(model, lambda: model(x), warmup=0, iters=1, record_memory=False).ops)

    def empty(inputs):
        def run():
            ext.start(inputs)
            model(x)
            ext.stop()
        return run

    def ours(shapes):
        def run():
            C.start(shapes, False)
            model(x)
            C.stop()
            C.collect()
        return run

    variants = {"bare": lambda: model(x), "empty callback": empty(False), "empty callback + inputs": empty(True),
                "torchscope, no shapes": ours(False), "torchscope, shapes": ours(True)}

    def run():  # interleaved; the minimum of each: the steady-state cost
        best = {k: float("inf") for k in variants}
        for _ in range(9):
            for k, fn in variants.items():
                best[k] = min(best[k], min(timeit.repeat(fn, number=10, repeat=3)) / 10)
        return best
    best = benchmark.pedantic(run, rounds=1, iterations=1)
    for k, v in best.items():
        if k != "bare":
            RESULTS["micro"][f"per op, tiny MLP ({n_ops} ops, no memory events): {k}"] = \
                f"{(v - best['bare']) / n_ops * 1e9:.0f} ns"
