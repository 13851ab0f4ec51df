"""Statistics over seeds: intervals, paired tests and their multiple-testing correction.

Pure functions of arrays. Each seed is one independent replicate of a cell (its own
original model, split and retrained model), so the seeds of a (dataset, scenario) pair
up across methods: method A's seed 3 and retrain's seed 3 share their original model and
forget set, which is why the tests are paired.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Below this many pairs a Wilcoxon signed-rank test cannot reach p < 0.05 two-sided
# (its smallest exact p with 5 pairs is 2/32 = 0.0625), so the paired t-test is used.
WILCOXON_MIN_PAIRS = 6
# Efron & Tibshirani (1993, ch. 19) ask for 1,000 or more resamples for percentile
# intervals; 10,000 keeps the Monte-Carlo error of the bounds far below their spread.
BOOTSTRAP_RESAMPLES = 10_000


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def t_interval(values: np.ndarray | list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean: mean ± t_{(1+c)/2, n−1}·s/√n (NaNs dropped).

    NaN bounds with fewer than 2 values; a zero-width interval when all values are equal."""
    x = _finite(values)
    if len(x) < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return (float(x.mean() - half), float(x.mean() + half))


def bootstrap_interval(
    values: np.ndarray | list[float], confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (Efron & Tibshirani 1993, ch. 13), seeded so
    that a report is reproducible. Percentile rather than BCa: with a handful of seeds BCa's
    acceleration estimate is undefined as often as not. NaN bounds with fewer than 2 values."""
    x = _finite(values)
    if len(x) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return (float(low), float(high))


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison. ``test`` is ``"wilcoxon"``, ``"t"``, or ``"none"`` (fewer
    than 2 pairs: no test, ``p`` is NaN)."""

    test: str
    n_pairs: int
    statistic: float
    p: float


def paired_test(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> PairedTest:
    """Two-sided paired test of a against b over the pairs where both are finite.

    Wilcoxon signed-rank (scipy's defaults: zero differences dropped, exact distribution
    for small samples) with at least :data:`WILCOXON_MIN_PAIRS` pairs, paired t otherwise.
    Degenerate cases, where the tests are undefined, get their limits: all differences
    zero → p = 1; a t-test whose differences are all equal and non-zero has t = ±∞ → p = 0.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    differences = x[keep] - y[keep]
    n = len(differences)
    if n < 2:
        return PairedTest("none", n, float("nan"), float("nan"))
    test = "wilcoxon" if n >= WILCOXON_MIN_PAIRS else "t"
    if np.all(differences == 0):
        return PairedTest(test, n, 0.0 if test == "t" else float("nan"), 1.0)
    if test == "wilcoxon":
        result = stats.wilcoxon(differences)
        return PairedTest(test, n, float(result.statistic), float(result.pvalue))
    if np.all(differences == differences[0]):
        return PairedTest(test, n, float(np.copysign(np.inf, differences[0])), 0.0)
    with warnings.catch_warnings():  # scipy warns of precision loss on nearly equal differences; p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_rel(x[keep], y[keep])
    return PairedTest(test, n, float(result.statistic), float(result.pvalue))


def holm(pvalues: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sorted ascending, the i-th of m
    (from 1) becomes max over j ≤ i of min(1, (m − j + 1)·p_(j)). NaN entries are not
    tests: they stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = len(tested)
    if m == 0:
        return adjusted
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted
