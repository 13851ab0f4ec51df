"""unlearn-bench: a benchmark harness for machine-unlearning methods on image classifiers."""

__version__ = "0.1.0"
