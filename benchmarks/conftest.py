"""Collects the side-by-side results of this run and writes benchmarks/RESULTS.md."""
import datetime
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))

from harness import machine  # noqa: E402

RESULTS = {"cases": {}, "micro": {}}
_HERE = os.path.dirname(os.path.abspath(__file__))


def _fmt_case(name, res):
    lines = [f"### {name}", "",
             "| tool | median ms | bare median ms (its pairs) | ratio (median of paired ratios) | IQR | ratio of minima |",
             "|---|---:|---:|---:|---|---:|"]
    for tool, r in res.items():
        lo, hi = r["ratio_iqr"]
        lines.append(f"| {tool} | {r['median_ms']:.2f} | {r['bare_median_ms']:.2f} | **{r['ratio']:.2f}x** | "
                     f"{lo:.2f}–{hi:.2f} | {r['ratio_of_mins']:.2f}x |")
    return lines + [""]


def _differs_from_checkout():
    """The first file in which the imported torchscope differs from this checkout (None: same).
    A venv's installed copy goes stale while the checkout changes: measuring it would report
    old code (`bash .ci/setup` reinstalls; PYTHONPATH=src imports the checkout)."""
    import torchscope

    pkg = os.path.dirname(os.path.abspath(torchscope.__file__))
    src = os.path.join(_HERE, "..", "src", "torchscope")
    if os.path.samefile(pkg, src):
        return None
    pairs = [(os.path.join(src, n), os.path.join(pkg, n)) for n in sorted(os.listdir(src)) if n.endswith(".py")]
    csrc = os.path.join(_HERE, "..", "csrc")
    pairs += [(os.path.join(csrc, n), os.path.join(pkg, "_csrc", n)) for n in sorted(os.listdir(csrc))
              if n.endswith((".cpp", ".h"))]
    for mine, theirs in pairs:
        if not os.path.exists(theirs):
            return os.path.relpath(mine, os.path.join(_HERE, ".."))
        with open(mine, "rb") as a, open(theirs, "rb") as b:
            if a.read() != b.read():
                return os.path.relpath(mine, os.path.join(_HERE, ".."))
    return None


def _revision() -> str:
    """The checkout measured: its commit, and whether files differed from it."""
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_HERE, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "csrc"], cwd=_HERE, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "checkout of unknown commit"
    return f"commit {rev}" + (" with uncommitted changes" if dirty else "") if rev else "checkout of unknown commit"


def pytest_sessionstart(session):
    stale = _differs_from_checkout()
    if stale:
        import pytest
        import torchscope

        pytest.exit(f"benchmarks/: the torchscope imported from {os.path.dirname(torchscope.__file__)} differs from this "
                    f"checkout ({stale}); run `bash .ci/setup` first, or PYTHONPATH=src", returncode=2)


def pytest_sessionfinish(session, exitstatus):
    if not RESULTS["cases"] and not RESULTS["micro"] and not RESULTS.get("phases") and not RESULTS.get("steady"):
        return
    import torchscope

    lines = [
        "# torchscope benchmark results",
        "",
        "Written by `.venv/bin/python -m pytest benchmarks/ --benchmark-only` (see benchmarks/README.md).",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- torch {torch.__version__}, torchscope {torchscope.__version__} ({_revision()}), threads {torch.get_num_threads()}",
        f"- device: CPU (no GPU on this machine)",
        "",
        "Each tool is timed in pairs with the bare forward (order randomised within each pair); its ratio is",
        "the median over pairs of tool time / bare time, with the ratio of the minima beside it. torchscope = full capture",
        "(`warmup=0, iters=1`: exactly one recorded pass) + building the table string. torch.profiler =",
        "`record_shapes, profile_memory, with_flops` + `key_averages().table()`. torchinfo = `summary(depth=10)`",
        "+ str. FlopCounterMode = one pass + `get_table()`.",
        "",
        "## Full run + report, side by side",
        "",
    ]
    for name, res in RESULTS["cases"].items():
        lines += _fmt_case(name, res)
    if RESULTS.get("steady"):
        name, res = RESULTS["steady"]
        lines += ["## Steady state (tiny MLP)", "",
                  "The tables above are one-shot calls: after `gc.collect()` one untimed bare forward warms the",
                  "model for both sides, and each tool then runs with its own code and data cache-cold, as a",
                  "user's single call does. Here each side is timed right after an untimed call of itself: the",
                  "per-call cost when the tool runs in a loop, as the bare forward does.", ""]
        lines += _fmt_case(name, res)[2:]
    if RESULTS.get("accuracy"):
        lines += ["## Per-module self times vs the measured pass", "",
                  "Sum of every module's median self time against the median wall time of the whole pass",
                  "(`warmup=2, iters=5`); the gap is Python call overhead outside the root module's forward.", "",
                  "| model | sum of self times | pass wall time | difference |", "|---|---:|---:|---:|"]
        for name, (self_sum, total) in RESULTS["accuracy"].items():
            lines.append(f"| {name} | {self_sum / 1e6:.3f} ms | {total / 1e6:.3f} ms | "
                         f"{100 * (total - self_sum) / total:.2f}% |")
        lines.append("")
    if RESULTS.get("phases"):
        name, res = RESULTS["phases"]
        lines += ["## Where the overhead goes (tiny MLP)", "",
                  f"Each stage added in turn, {name}; same paired measurement as above.", "",
                  "| stage | median ms | ratio to bare (median of pairs) | ratio of minima |", "|---|---:|---:|---:|"]
        for stage, r in res.items():
            lines.append(f"| {stage} | {r['median_ms']:.2f} | {r['ratio']:.2f}x | {r['ratio_of_mins']:.2f}x |")
        lines.append("")
    if RESULTS["micro"]:
        lines += ["## Per-op and per-module costs", "",
                  "| what | cost |", "|---|---:|"]
        for k, v in RESULTS["micro"].items():
            lines.append(f"| {k} | {v} |")
        lines.append("")
    with open(os.path.join(_HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))
