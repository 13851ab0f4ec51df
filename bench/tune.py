"""``python -m bench.tune``: the tuner's command (see :mod:`bench.tuning.command`)."""

import sys

from bench.tuning.command import main

if __name__ == "__main__":
    sys.exit(main())
