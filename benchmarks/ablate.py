"""What each part of the full call costs on the tiny MLP: the paired harness on the full call
and on the same call without memory tracking, without op shapes, and without the table.

    .venv/bin/python benchmarks/ablate.py [--rounds 40]    (PYTHONPATH=src for the checkout)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import measure  # noqa: E402
from models import tiny_mlp_case  # noqa: E402

import torchscope  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=40)
    a = p.parse_args()
    model, x = tiny_mlp_case()

    def call(table=True, **kw):
        return lambda: (str if table else id)(torchscope.profile_summary(model, x, warmup=0, iters=1, verbose=0, **kw))
    tools = {"bare": lambda: model(x), "full call": call(), "record_memory=False": call(record_memory=False),
             "record_shapes=False": call(record_shapes=False), "no table": call(table=False)}
    print(f"torchscope from {os.path.dirname(torchscope.__file__)}")
    for k, r in measure(tools, a.rounds).items():
        if k != "bare":
            print(f"  {k:22s} {r['ratio']:.2f}x  (median {r['median_ms']:.2f} ms, bare {r['bare_median_ms']:.2f} ms)")


if __name__ == "__main__":
    main()
