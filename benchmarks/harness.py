"""Side-by-side overhead measurement: the bare forward and each tool, interleaved.

Each round runs every tool once in turn, so all of them see the same machine
state; ratios are the median over rounds of (tool time / bare time in the same
round). On a noisy shared VM this is far more stable than timing each tool in
its own block.
"""
from __future__ import annotations

import gc
import random
import platform
import statistics
import time


def _time(fn) -> int:
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def measure(tools: dict, rounds: int, warmup_rounds: int = 2, seed: int = 0, steady: bool = False) -> dict:
    """Paired rounds: for each tool, `rounds` pairs of (bare, tool) in random order within the pair.

    Every tool is compared with bare forwards run right beside it, in the same machine state, and
    neither side always runs first (a bare forward right after a heavy tool runs cache-cold).
    `tools` must contain "bare".

    Default (one-shot): after the collection, one untimed bare forward warms the model for both
    sides, so the tool runs with its own code and data cold, as a user's single call does.
    steady=True: each side is timed right after an untimed call of itself (the per-call cost
    when the tool runs in a loop, as the bare forward does).
    """
    rng = random.Random(seed)
    bare_fn = tools["bare"]
    for _ in range(warmup_rounds):
        for fn in tools.values():
            fn()
    out = {}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for name, fn in tools.items():
            tool_t, bare_t = [], []
            for _ in range(rounds):
                gc.collect()
                bare_fn()  # untimed: the first call after gc.collect() runs cache-cold (~25% slower here),
                #            which would penalise whichever side of the pair runs first
                sides = [(bare_fn, bare_t), (fn, tool_t)]
                if rng.random() >= 0.5:
                    sides.reverse()
                for side, times in sides:
                    if steady:
                        side()  # untimed: this side's own code and data in cache
                    times.append(_time(side))
            ratios = [t / b for t, b in zip(tool_t, bare_t)]
            q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else (min(ratios), 0, max(ratios))
            out[name] = {
                "median_ms": statistics.median(tool_t) / 1e6,
                "min_ms": min(tool_t) / 1e6,
                "bare_median_ms": statistics.median(bare_t) / 1e6,
                "ratio": statistics.median(ratios),
                "ratio_of_mins": min(tool_t) / min(bare_t),
                "ratio_iqr": (q[0], q[2]),
            }
    finally:
        if gc_was:
            gc.enable()
    return out


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
