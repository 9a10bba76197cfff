"""Before/after: the tiny MLP's full-run ratio for two torchscope source trees, alternating processes.

    .venv/bin/python benchmarks/ab.py OLD_SRC NEW_SRC [--runs 3]

Each SRC is a `src/` folder with the extension built in place (`python setup.py build_ext --inplace`
in its checkout). Every run is a fresh process timing paired rounds (harness.measure) of the bare forward
and `str(profile_summary(..., warmup=0, iters=1))`, so both trees see the same machine drift.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

_ONE = r"""
import sys
src, here = sys.argv[1], sys.argv[2]
sys.path[:0] = [src, here]
import torchscope
assert torchscope.__file__.startswith(src), torchscope.__file__
from harness import measure
from models import cases
name, model, x, rounds = cases()[0]
r = measure({"bare": lambda: model(x),
             "tool": lambda: str(torchscope.profile_summary(model, x, warmup=0, iters=1, verbose=0))}, 60)["tool"]
print(f"{r['ratio']:.2f}x (ratio of minima {r['ratio_of_mins']:.2f}x)")
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    for i in range(a.runs):
        for label, src in (("old", a.old), ("new", a.new)):
            out = subprocess.run([sys.executable, "-c", _ONE, os.path.abspath(src), HERE], capture_output=True,
                                 text=True, cwd="/")
            print(f"run {i + 1} {label}: {out.stdout.strip() or out.stderr.strip()[-300:]}", flush=True)


if __name__ == "__main__":
    main()
