"""The NeurIPS 2023 machine-unlearning challenge's forget-quality score (pure functions of arrays).

Triantafillou et al. 2024, "Are we making progress in unlearning? Findings from the first
NeurIPS unlearning competition". For every forget example, the logit-scaled confidences it
gets under K unlearned models (one per run of the method) and under K retrained models are
two samples; the best threshold test telling them apart gives an (ε, δ) estimate for that
example; each example scores 2^(−⌊ε / 0.5⌋); the forget quality is their mean, and the final
score multiplies it by the retain- and test-accuracy ratios against retraining.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

DELTA = 1e-5
EPSILON_CAP = 50.0
BIN_WIDTH = 0.5


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, log p_y − log Σ_{y'≠y} p_{y'} = z_y − logsumexp(z_{y'≠y}), computed from the
    logits so that confident rows do not round to log(0)."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(z))
    true_logit = z[rows, labels]
    others = z.copy()
    others[rows, labels] = -np.inf
    return true_logit - logsumexp(others, axis=1)


def threshold_test_rates(unlearned: np.ndarray, retrained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and FNR of every single- and two-threshold test on one example's two samples.

    A test predicts "unlearned" (positive) for values in an interval (t1, t2] of the
    thresholds −∞ < observed values, which covers the single-threshold tests (t2 = the
    largest value), or outside it (the complementary tests). FPR is the share of retrained
    values predicted positive, FNR the share of unlearned values predicted negative.
    """
    u, r = np.sort(np.asarray(unlearned, dtype=np.float64)), np.sort(np.asarray(retrained, dtype=np.float64))
    thresholds = np.concatenate([[-np.inf], np.unique(np.concatenate([u, r]))])
    above_u = len(u) - np.searchsorted(u, thresholds, side="right")  # count of values > t
    above_r = len(r) - np.searchsorted(r, thresholds, side="right")
    i, j = np.triu_indices(len(thresholds), k=1)
    inside_u = (above_u[i] - above_u[j]) / len(u)
    inside_r = (above_r[i] - above_r[j]) / len(r)
    fpr = np.concatenate([inside_r, 1 - inside_r])
    fnr = np.concatenate([1 - inside_u, inside_u])
    return fpr, fnr


def epsilon_from_rates(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA, cap: float = EPSILON_CAP) -> float:
    """ε = max over tests of max(ln(1 − δ − FPR) − ln FNR, ln(1 − δ − FNR) − ln FPR), capped.

    A test with both error rates 0 separates the samples perfectly (ε = the cap); a test with
    exactly one of them 0 is discarded, since finite samples bound nothing there (as in the
    challenge's scoring code as publicly reproduced). Without any usable test, ε = 0.
    """
    fpr, fnr = np.asarray(fpr, dtype=np.float64), np.asarray(fnr, dtype=np.float64)
    if np.any((fpr == 0) & (fnr == 0)):
        return cap
    usable = (fpr > 0) & (fnr > 0)
    if not usable.any():
        return 0.0
    fpr, fnr = fpr[usable], fnr[usable]
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.log(1 - delta - fpr) - np.log(fnr)
        second = np.log(1 - delta - fnr) - np.log(fpr)
    estimates = np.concatenate([first, second])
    estimates = estimates[np.isfinite(estimates)]
    return float(np.clip(estimates.max(), 0.0, cap)) if len(estimates) else 0.0


def example_epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA, cap: float = EPSILON_CAP) -> np.ndarray:
    """ε per forget example from ``(K_u, S)`` and ``(K_r, S)`` logit-scaled confidences."""
    unlearned, retrained = np.asarray(unlearned), np.asarray(retrained)
    if unlearned.ndim != 2 or retrained.ndim != 2 or unlearned.shape[1] != retrained.shape[1]:
        raise ValueError(f"expected (runs, examples) arrays with equal example counts, got {unlearned.shape} and {retrained.shape}")
    return np.array([
        epsilon_from_rates(*threshold_test_rates(unlearned[:, s], retrained[:, s]), delta=delta, cap=cap)
        for s in range(unlearned.shape[1])
    ])


def example_scores(epsilons: np.ndarray, bin_width: float = BIN_WIDTH) -> np.ndarray:
    """2^(−⌊ε / bin_width⌋): 1 for ε below one bin, halving with every further bin."""
    return np.exp2(-np.floor(np.asarray(epsilons, dtype=np.float64) / bin_width))


def forget_quality(
    unlearned_confidences: np.ndarray, retrained_confidences: np.ndarray,
    unlearned_retain_acc: np.ndarray, retrained_retain_acc: np.ndarray,
    unlearned_test_acc: np.ndarray, retrained_test_acc: np.ndarray,
    delta: float = DELTA,
) -> dict[str, float]:
    """The challenge's score and its parts.

    ``fq_forgetting``: mean example score (1 = no example tells the two groups apart);
    ``forget_quality``: that × (mean retain accuracy of the unlearned runs / of the retrained
    models) × (the same for test accuracy); ``fq_epsilon_mean``: the mean ε, for diagnosis.
    """
    epsilons = example_epsilons(unlearned_confidences, retrained_confidences, delta)
    forgetting = float(example_scores(epsilons).mean())
    retain_ratio = float(np.mean(unlearned_retain_acc) / np.mean(retrained_retain_acc))
    test_ratio = float(np.mean(unlearned_test_acc) / np.mean(retrained_test_acc))
    return {
        "forget_quality": forgetting * retain_ratio * test_ratio,
        "fq_forgetting": forgetting,
        "fq_epsilon_mean": float(epsilons.mean()),
    }
