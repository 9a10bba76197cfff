import sys

from torchscope.cli import main

sys.exit(main())
