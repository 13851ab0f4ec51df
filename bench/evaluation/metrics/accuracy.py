"""Top-1 accuracy."""

from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose arg-max logit is the label; NaN for no rows.

    Ties go to the lowest class index (``np.argmax``).
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"accuracy needs logits (N, K) and labels (N,), got {logits.shape} and {labels.shape}")
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(logits.argmax(axis=1) == labels))
