"""Intervals, paired tests and Holm's correction, against scipy and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bench.report.stats import bootstrap_interval, holm, paired_test, t_interval


def test_t_interval_is_scipys():
    values = np.array([0.91, 0.87, 0.95, 0.90, 0.88])
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert t_interval(values) == pytest.approx(expected, rel=1e-12)
    expected_90 = stats.t.interval(0.90, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert t_interval(values, 0.90) == pytest.approx(expected_90, rel=1e-12)
    assert t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert np.isnan(t_interval([0.5])).all() and np.isnan(t_interval([0.5, np.nan])).all()


def test_bootstrap_interval_agrees_with_scipys_percentile_bootstrap():
    rng = np.random.default_rng(3)
    values = rng.normal(2.0, 1.0, size=60)
    ours = bootstrap_interval(values, 0.95, resamples=20_000, seed=1)
    theirs = stats.bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=20_000, method="percentile", random_state=7)
    width = theirs.confidence_interval.high - theirs.confidence_interval.low
    # two independent Monte-Carlo estimates of the same interval: equal up to resampling noise
    assert ours[0] == pytest.approx(theirs.confidence_interval.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(theirs.confidence_interval.high, abs=0.05 * width)
    assert bootstrap_interval(values, seed=1) == bootstrap_interval(values, seed=1)
    assert bootstrap_interval([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2), abs=1e-15)
    assert np.isnan(bootstrap_interval([1.0])).all()


def test_paired_t_below_six_pairs_is_scipys():
    a, b = [0.90, 0.85, 0.97, 0.91], [0.80, 0.84, 0.90, 0.70]
    result = paired_test(a, b)
    expected = stats.ttest_rel(a, b)
    assert (result.test, result.n_pairs) == ("t", 4)
    assert result.p == pytest.approx(expected.pvalue, rel=1e-12) and result.statistic == pytest.approx(expected.statistic)


def test_wilcoxon_from_six_pairs_is_scipys():
    a = [0.90, 0.85, 0.97, 0.91, 0.88, 0.93, 0.89]
    b = [0.80, 0.86, 0.90, 0.70, 0.85, 0.94, 0.60]
    result = paired_test(a, b)
    expected = stats.wilcoxon(np.subtract(a, b))
    assert (result.test, result.n_pairs) == ("wilcoxon", 7)
    assert result.p == pytest.approx(expected.pvalue, rel=1e-12)
    # six positive differences: the exact two-sided p is 2 / 2^6
    assert paired_test([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]).p == pytest.approx(2 / 64)


def test_paired_test_degenerate_cases():
    assert paired_test([0.5, 0.6], [0.5, 0.6]).p == 1.0  # no difference at all
    same_shift = paired_test([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])  # t = +inf, as scipy's limit
    assert same_shift.test == "t" and same_shift.p == 0.0 and same_shift.statistic == np.inf
    alone = paired_test([0.3], [0.1])
    assert alone.test == "none" and np.isnan(alone.p)
    dropped = paired_test([0.9, np.nan, 0.8, 0.7], [0.5, 0.4, np.nan, 0.6])  # pairs with a NaN are dropped
    assert dropped.n_pairs == 2 and dropped.p == pytest.approx(stats.ttest_rel([0.9, 0.7], [0.5, 0.6]).pvalue)
    with pytest.raises(ValueError, match="differ in length"):
        paired_test([1, 2], [1, 2, 3])


def test_holm_by_hand():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to 0.06)
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    with_nan = holm([0.01, np.nan, 0.04])  # NaN is no test: m = 2
    assert with_nan[0] == pytest.approx(0.02) and np.isnan(with_nan[1]) and with_nan[2] == pytest.approx(0.04)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]).size == 0
