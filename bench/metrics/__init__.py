"""Metrics: pure functions of logits, labels and references (numpy arrays in, floats out).

``accuracy``, the divergences to the retrained and a random model (``bench.metrics.divergence``)
and the membership-inference attacks (``bench.metrics.mia``) feed every run record through
:mod:`bench.evaluate`.
"""

from bench.metrics.accuracy import accuracy

__all__ = ["accuracy"]
