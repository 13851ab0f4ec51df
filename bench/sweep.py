"""``python -m bench.sweep``: the sweep's command, and :func:`run_sweep` for scripts (see
:mod:`bench.running.sweep`)."""

import sys

from bench.running.sweep import SweepSummary, main, run_sweep

__all__ = ["SweepSummary", "main", "run_sweep"]

if __name__ == "__main__":
    sys.exit(main())
