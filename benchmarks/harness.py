"""Side-by-side overhead measurement: the bare forward and each tool, interleaved.

Each round runs every tool once in turn, so all of them see the same machine
state; ratios are the median over rounds of (tool time / bare time in the same
round). On a noisy shared VM this is far more stable than timing each tool in
its own block.
"""
from __future__ import annotations

import gc
import platform
import statistics
import time


def measure(tools: dict, rounds: int, warmup_rounds: int = 2) -> dict:
    for _ in range(warmup_rounds):
        for fn in tools.values():
            fn()
    times = {name: [] for name in tools}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in tools.items():
                t0 = time.perf_counter_ns()
                fn()
                times[name].append(time.perf_counter_ns() - t0)
            gc.collect()
    finally:
        if gc_was:
            gc.enable()
    bare = times["bare"]
    out = {}
    for name, ts in times.items():
        ratios = [t / b for t, b in zip(ts, bare)]
        out[name] = {
            "median_ms": statistics.median(ts) / 1e6,
            "min_ms": min(ts) / 1e6,
            "ratio": statistics.median(ratios),
            "ratio_iqr": (statistics.quantiles(ratios, n=4)[0], statistics.quantiles(ratios, n=4)[2])
            if len(ratios) >= 4 else (min(ratios), max(ratios)),
        }
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
