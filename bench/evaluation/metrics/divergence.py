"""Distances between two models' predictions on the same samples (pure functions of logits).

Natural logarithms throughout, so the Jensen–Shannon divergence is bounded by ln 2.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

EPS = 1e-12


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64), axis=1))


def kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row KL(p ‖ q) = Σ_c p_c (ln p_c − ln q_c), with 0·ln 0 = 0."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    terms = np.where(p > 0, p * (np.log(np.maximum(p, EPS)) - np.log(np.maximum(q, EPS))), 0.0)
    return terms.sum(axis=1)


def js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row Jensen–Shannon divergence ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2; in [0, ln 2]."""
    m = (np.asarray(p, dtype=np.float64) + np.asarray(q, dtype=np.float64)) / 2
    return 0.5 * kl_rows(p, m) + 0.5 * kl_rows(q, m)


def mean_js(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """Mean per-example JS divergence between the softmax outputs of two models."""
    return float(js_rows(softmax(logits_a), softmax(logits_b)).mean())


def mean_kl(logits_reference: np.ndarray, logits_model: np.ndarray) -> float:
    """Mean per-example KL(reference ‖ model) between softmax outputs."""
    return float(kl_rows(softmax(logits_reference), softmax(logits_model)).mean())


def prediction_histogram(logits: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of samples predicted as each class (arg-max), length ``num_classes``."""
    predictions = np.asarray(logits).argmax(axis=1)
    counts = np.bincount(predictions, minlength=num_classes).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def prediction_distribution_js(logits_a: np.ndarray, logits_b: np.ndarray, num_classes: int) -> float:
    """JS divergence between two models' histograms of predicted classes on the same samples:
    how differently they redistribute those samples over the classes."""
    a, b = prediction_histogram(logits_a, num_classes), prediction_histogram(logits_b, num_classes)
    return float(js_rows(a[None], b[None])[0])


def activation_distance(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """Mean L2 distance between two models' softmax vectors (Chundawat et al. 2023)."""
    return float(np.linalg.norm(softmax(logits_a) - softmax(logits_b), axis=1).mean())


def zrf(logits_model: np.ndarray, logits_random: np.ndarray) -> float:
    """Zero-retrain forgetting score (Chundawat et al. 2023): 1 − mean JS divergence to a
    randomly initialised model of the same architecture; 1 when they agree exactly."""
    return 1.0 - mean_js(logits_model, logits_random)


def zrf_compat(logits_model: np.ndarray, logits_random: np.ndarray) -> float:
    """ZRF as the published code computes it, for comparison with published numbers only:
    its "JS" is ½·mean_{i,c} m(ln m − ln p) + ½·mean_{i,c} m(ln m − ln q), i.e. PyTorch's
    ``kl_div(log p, m)`` — KL in the reverse direction, KL(m ‖ p), averaged over classes as
    well as samples instead of summed over classes."""
    p, q = softmax(logits_model), softmax(logits_random)
    m = (p + q) / 2
    reverse = lambda x: (m * (np.log(np.maximum(m, EPS)) - np.log(np.maximum(x, EPS)))).mean()  # noqa: E731
    return float(1.0 - (0.5 * reverse(p) + 0.5 * reverse(q)))
