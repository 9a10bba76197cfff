"""Before/after for the C++ recorder alone: two builds of the extension loaded in one process,
timed interleaved on the tiny MLP (per op, minus the bare forward), so both see the same machine.

    .venv/bin/python benchmarks/recorder_ab.py OLD_SO NEW_SO [--rounds 30]

Each SO is a built `torchscope/_C*.so` (e.g. a worktree of the old commit built with
`python setup.py build_ext --inplace`, and src/torchscope/ here).
"""
import argparse
import importlib.machinery
import importlib.util
import os
import sys
import timeit
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(path, package):
    # A module named "<package>._C" runs PyInit__C: each build keeps its own recorder state.
    sys.modules[package] = types.ModuleType(package)
    loader = importlib.machinery.ExtensionFileLoader(package + "._C", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(package + "._C", loader))
    loader.exec_module(module)
    return module


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rounds", type=int, default=30)
    a = p.parse_args()
    builds = {"old": _load(a.old, "torchscope_old"), "new": _load(a.new, "torchscope_new")}
    sys.path.insert(0, HERE)
    from models import tiny_mlp_case

    model, x = tiny_mlp_case()
    packed = {}
    for label, C in builds.items():  # one pass with shapes: ops, and the argument stream's size
        C.start(True, False)
        model(x)
        C.stop()
        snap = C.collect()
        n_ops, packed[label] = len(snap["ops"]), len(snap["args"])

    def recorded(C, shapes, memory):
        def run():
            C.start(shapes, memory)
            model(x)
            C.stop()
            C.collect()
        return run
    variants = {"bare": lambda: model(x)}
    for label, C in builds.items():
        for shapes, memory in ((False, False), (True, False), (True, True)):
            variants[f"{label}: shapes={shapes:d} memory={memory:d}"] = recorded(C, shapes, memory)
    best = {k: float("inf") for k in variants}
    for _ in range(a.rounds):  # interleaved; the minimum of each
        for k, fn in variants.items():
            best[k] = min(best[k], min(timeit.repeat(fn, number=10, repeat=3)) / 10)
    print(f"tiny MLP, {n_ops} ops, torch {torch.__version__}; packed argument values per pass: "
          + ", ".join(f"{k} {v:,}" for k, v in packed.items()))
    print("ns per op over the bare forward")
    for k, v in best.items():
        if k != "bare":
            print(f"  {k:28s} {(v - best['bare']) / n_ops * 1e9:6.0f}")


if __name__ == "__main__":
    main()
