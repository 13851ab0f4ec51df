"""Metrics: pure functions of logits, labels and references (numpy arrays in, floats out).

``accuracy`` feeds every run record; the divergences (``bench.metrics.divergence``) and the
membership-inference attacks (``bench.metrics.mia``) are defined and tested, and are not
yet computed by the sweep (issue 4).
"""

from bench.metrics.accuracy import accuracy

__all__ = ["accuracy"]
