"""Metrics: pure functions of logits, labels and references (numpy arrays in, floats out).

``accuracy``, the divergences to the retrained and a random model (``bench.evaluation.metrics.divergence``)
and the membership-inference attacks (``bench.evaluation.metrics.mia``) feed every run record through
:mod:`bench.evaluation.evaluate`; the challenge's forget-quality score (``bench.evaluation.metrics.forget_quality``)
feeds the costly tier through :mod:`bench.evaluation.costly`. Each is defined in ``docs/metrics.md``.
"""

from bench.evaluation.metrics.accuracy import accuracy

__all__ = ["accuracy"]
