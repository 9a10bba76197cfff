"""`python -m torchscope`: the same command line as `torchscope`."""
import sys

from torchscope.cli import main

if __name__ == "__main__":
    sys.exit(main())
