"""The NeurIPS 2023 machine-unlearning challenge's forget-quality score (pure functions of arrays).

Triantafillou et al. 2024, "Are we making progress in unlearning? Findings from the first
NeurIPS unlearning competition"; the score as the official scorer computes it,
google-deepmind/unlearning_evaluation `metric.py` (ffae0ff: `compute_logit_scaled_confidence`,
`compute_forget_score_from_confs` and the functions it calls) and `main.py` (the accuracy
ratios). For every forget example, the logit-scaled confidences it gets under K unlearned
models and K retrained models are two samples; the best of a grid of threshold tests telling
them apart gives an (ε, δ) estimate; each example scores by the bin of its ε; F is their mean.
The only departure: where no test is usable (both samples one equal constant) the official
code fails an assertion; here ε = 0 (nothing tells the two samples apart).
"""

from __future__ import annotations

import math

import numpy as np
import torch

DELTA = 1e-5
EPSILON_CAP = 50.0
BIN_WIDTH = 0.5
GRID_PER_UNIT = 100  # thresholds per unit of confidence
WINDOW = 2.0  # how far the two-threshold grid reaches beyond the peakier sample
NARROW_RATIO = 0.01  # one sample's range under 1% of the other's: ε is the cap


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, ln(p_y + 1e-45) − ln(Σ_{y'≠y} p_y' + 1e-45), the softmax taken as the official
    code takes it: logits in float32 shifted by their row maximum, exponentiated in float32,
    normalised in float64. Saturates at about ±103.6, where float32's exp underflows."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=1, keepdims=True)
    probs = np.exp(z).astype(np.float64)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(len(probs))
    correct = probs[rows, labels].copy()
    probs[rows, labels] = 0.0
    return np.log(correct + 1e-45) - np.log(probs.sum(axis=1) + 1e-45)


def _inside_share(sorted_values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The share of the values in [left, right] (0 where left > right)."""
    count = np.searchsorted(sorted_values, right, side="right") - np.searchsorted(sorted_values, left, side="left")
    return np.maximum(count, 0) / len(sorted_values)


def interval_test_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and FNR of the two-threshold tests: predict the peakier sample (the one of smaller
    range; ``neg`` on a tie) for values in [l, r], r on a 0.01 grid from the peakier sample's
    minimum + the smaller range − 2 to its maximum + 2, l on a grid of 400 within ±2 of r −
    the smaller range. FPR: share of the other sample inside; FNR: of the peakier outside."""
    pos_range, neg_range = np.ptp(pos), np.ptp(neg)
    width = neg_range if pos_range > neg_range else pos_range
    peaky, broad = (neg, pos) if pos_range >= neg_range else (pos, neg)
    low, high = peaky.min() + width - WINDOW, peaky.max() + WINDOW
    right = np.linspace(low, high, int(np.ceil((high - low) * GRID_PER_UNIT)))
    left = np.linspace(right - width - WINDOW, right - width + WINDOW, int(np.ceil(2 * WINDOW * GRID_PER_UNIT)), axis=1)
    right = np.broadcast_to(right[:, None], left.shape)
    fpr = _inside_share(np.sort(broad), left, right).ravel()
    fnr = 1.0 - _inside_share(np.sort(peaky), left, right).ravel()
    return fpr, fnr


def single_test_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and FNR of the one-threshold tests: predict ``pos`` (the sample of larger median)
    for values ≥ t, t on a 0.01 grid over both samples' span (float32 thresholds, as
    ``torch.linspace`` makes them in the official code)."""
    low, high = min(pos.min(), neg.min()), max(pos.max(), neg.max())
    count = int(math.ceil((high - low) * GRID_PER_UNIT))
    thresholds = torch.linspace(float(low), float(high), count, dtype=torch.float32).double().numpy()
    fpr = 1.0 - np.searchsorted(np.sort(neg), thresholds, side="left") / len(neg)
    fnr = np.searchsorted(np.sort(pos), thresholds, side="left") / len(pos)
    return fpr, fnr


def epsilon_from_rates(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA, cap: float = EPSILON_CAP) -> float:
    """ε = max over tests of max(ln(1 − δ − FPR) − ln FNR, ln(1 − δ − FNR) − ln FPR), at least 0.

    A test with both error rates 0 separates the samples perfectly (ε = the cap); a test with
    exactly one of them 0 is discarded (finite samples bound nothing there), and so is one
    where both logarithms are undefined. Without any usable test, ε = 0 (see the module)."""
    fpr, fnr = np.asarray(fpr, dtype=np.float64), np.asarray(fnr, dtype=np.float64)
    if np.any((fpr == 0) & (fnr == 0)):
        return cap
    usable = (fpr > 0) & (fnr > 0)
    fpr, fnr = fpr[usable], fnr[usable]
    with np.errstate(invalid="ignore", divide="ignore"):
        estimates = np.fmax(np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr))
    estimates = estimates[~np.isnan(estimates)]
    return float(np.clip(estimates.max(), 0.0, cap)) if len(estimates) else 0.0


def example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float = DELTA, cap: float = EPSILON_CAP) -> float:
    """ε of one example from its two samples (``pos`` the one of larger median)."""
    pos_range, neg_range = np.ptp(pos), np.ptp(neg)
    largest, smallest = max(pos_range, neg_range), min(pos_range, neg_range)
    if largest > 0 and smallest / largest < NARROW_RATIO:
        return cap
    interval_fpr, interval_fnr = interval_test_rates(pos, neg)
    single_fpr, single_fnr = single_test_rates(pos, neg)
    return epsilon_from_rates(np.concatenate([interval_fpr, single_fpr]), np.concatenate([interval_fnr, single_fnr]), delta, cap)


def example_epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA, cap: float = EPSILON_CAP) -> np.ndarray:
    """ε per forget example from ``(K, S)`` logit-scaled confidences of each group; per example
    the group of larger median is ``pos`` (unlearned on a tie, as in the official code)."""
    unlearned, retrained = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if unlearned.ndim != 2 or unlearned.shape != retrained.shape:
        raise ValueError(f"expected two (runs, examples) arrays of one shape, got {unlearned.shape} and {retrained.shape}")
    retrained_is_pos = np.median(retrained, axis=0) > np.median(unlearned, axis=0)
    pos = np.where(retrained_is_pos, retrained, unlearned)
    neg = np.where(retrained_is_pos, unlearned, retrained)
    return np.array([example_epsilon(pos[:, s], neg[:, s], delta, cap) for s in range(pos.shape[1])])


def example_scores(epsilons: np.ndarray, runs: int, bin_width: float = BIN_WIDTH) -> np.ndarray:
    """2^(−⌊ε / bin_width⌋) for ε below ⌈ln(K − 1)⌉ (what K runs a group can resolve), else 0."""
    epsilons = np.asarray(epsilons, dtype=np.float64)
    bins = int(math.ceil(math.log(runs - 1)) / bin_width) if runs > 2 else 0
    index = np.floor(epsilons / bin_width)
    return np.where(index < bins, np.exp2(-index), 0.0)


def forget_quality(
    unlearned_confidences: np.ndarray, retrained_confidences: np.ndarray,
    unlearned_retain_acc: np.ndarray, retrained_retain_acc: np.ndarray,
    unlearned_test_acc: np.ndarray, retrained_test_acc: np.ndarray,
    delta: float = DELTA,
) -> dict[str, float]:
    """The challenge's score and its parts.

    ``fq_forgetting``: F, the mean example score (1 = no example tells the two groups apart);
    ``forget_quality``: F × (mean retain accuracy of the unlearned runs / of the retrained
    models) × (the same for test accuracy), as ``main.py``; ``fq_epsilon_mean``: the mean ε.
    """
    epsilons = example_epsilons(unlearned_confidences, retrained_confidences, delta)
    forgetting = float(example_scores(epsilons, np.shape(unlearned_confidences)[0]).mean())
    retain_ratio = float(np.mean(unlearned_retain_acc) / np.mean(retrained_retain_acc))
    test_ratio = float(np.mean(unlearned_test_acc) / np.mean(retrained_test_acc))
    return {
        "forget_quality": forgetting * retain_ratio * test_ratio,
        "fq_forgetting": forgetting,
        "fq_epsilon_mean": float(epsilons.mean()),
    }
