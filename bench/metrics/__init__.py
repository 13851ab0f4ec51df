"""Metrics: pure functions of logits, labels and references (numpy arrays in, floats out).

``accuracy``, the divergences to the retrained and a random model (``bench.metrics.divergence``)
and the membership-inference attacks (``bench.metrics.mia``) feed every run record through
:mod:`bench.evaluate`; the challenge's forget-quality score (``bench.metrics.forget_quality``)
feeds the costly tier through :mod:`bench.costly`. Each is defined in ``docs/metrics.md``.
"""

from bench.metrics.accuracy import accuracy

__all__ = ["accuracy"]
