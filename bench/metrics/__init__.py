"""Metrics: pure functions of logits, labels and references (numpy arrays in, floats out)."""

from bench.metrics.accuracy import accuracy

__all__ = ["accuracy"]
