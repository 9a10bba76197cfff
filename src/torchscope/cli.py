"""`torchscope` command line. With no arguments: profile the embedded default model."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="torchscope", description=(
        "Profile a PyTorch model: module tree, params, MACs and measured time/memory per module. "
        "With no arguments, profiles an embedded small ResNet-style CNN."))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--depth", type=int, default=None, help="deepest module level shown")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    parser.add_argument("--ascii", action="store_true", help="ASCII-only table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        import torchscope
        from torchscope.models import default_model

        model, x = default_model()
        print(f"torchscope {torchscope.__version__}: embedded default model SmallResNet, input {list(x.shape)}")
        s = torchscope.profile_summary(model, x, warmup=args.warmup, iters=args.iters, depth=args.depth,
                                       verbose=0)
        print(s.table(ascii_only=args.ascii or None))
        if args.json:
            import json
            with open(args.json, "w") as f:
                json.dump(s.to_dict(), f, indent=1)
            print(f"wrote {args.json}")
    except Exception as e:  # one clear line, no traceback unless --debug
        if args.debug:
            raise
        print(f"torchscope: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
