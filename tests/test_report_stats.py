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


def test_paired_check_tuned_against_defaults_by_hand():
    from bench.report.tuning import paired_check

    defaults = {0: 0.20, 1: 0.30, 2: 0.25}
    clear = paired_check(defaults, {0: 0.30, 1: 0.41, 2: 0.37})  # differences 0.10, 0.11, 0.12
    assert (clear.n, clear.worse) == (3, True)
    assert clear.mean == pytest.approx(0.11) and clear.se == pytest.approx(0.01 / np.sqrt(3))
    noise = paired_check(defaults, {0: 0.30, 1: 0.20, 2: 0.30})  # 0.1, −0.1, 0.05: mean 0.0167, SE 0.0601
    assert (noise.n, noise.worse) == (3, False) and noise.se == pytest.approx(0.0601, abs=5e-5)
    # mean / SE = 2.65 (marked) and 1.73 (not): the line is at 2 SE, not 1 or 3
    assert paired_check(defaults, {0: 0.30, 1: 0.50, 2: 0.30}).worse  # 0.1, 0.2, 0.05
    assert not paired_check(defaults, {0: 0.30, 1: 0.50, 2: 0.25}).worse  # 0.1, 0.2, 0.0
    better = paired_check(defaults, {0: 0.10, 1: 0.19, 2: 0.13})  # tuned better by 2 SE and more: not worse
    assert better.mean == pytest.approx(-0.11) and not better.worse
    one = paired_check(defaults, {1: 0.90})  # one pair: no SE, never marked
    assert one.n == 1 and one.mean == pytest.approx(0.6) and np.isnan(one.se) and not one.worse
    gap = paired_check({0: 0.20, 1: 0.22, 2: 0.90}, {0: 0.25, 1: 0.29})  # seed 2 has no tuned value: pairs 0 and 1
    assert (gap.n, gap.worse) == (2, True) and gap.mean == pytest.approx(0.06) and gap.se == pytest.approx(0.01)
    assert paired_check(defaults, {0: float("nan"), 1: 0.40}).n == 1  # a NaN is no value
    assert paired_check(defaults, {}).n == 0
    same = paired_check(defaults, dict(defaults))  # differences all 0: not worse
    assert same.mean == 0 and same.se == 0 and not same.worse


def test_best_so_far_and_late_best_share_by_hand():
    from bench.report.tuning import best_so_far, best_trial, late_best_share
    from bench.config.tuning import TunedEntry

    assert best_so_far([0.4, None, 0.2, 0.3, 0.1]) == [0.4, 0.4, 0.2, 0.2, 0.1]
    assert best_so_far([None, 0.5, None]) == [None, 0.5, 0.5] and best_so_far([]) == []
    assert best_trial([0.5, 0.2, 0.3, 0.2]) == 1 and best_trial([None, None]) is None  # the first of equal bests

    def entry(history):
        return TunedEntry(dataset="d", scenario="s", method="m", method_class="m", dataset_hash="h", history=history)

    entries = [
        entry([0.5, 0.4, None, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.1]),  # best at 9
        entry([0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.2, 0.3, 0.3]),  # best at 7
        entry([0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.2, None]),  # best at 8
        entry([0.5, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.2]),  # best first at 1, equalled at 9
        entry([0.5, 0.1]),  # a short study: best at 1
        entry([None, None, None]),  # every trial failed: no best, not counted
        entry([]),  # no search space: no study
    ]
    assert late_best_share(entries, 10) == (2, 5)  # index >= 8: 9 and 8; 7 is not in the last fifth
    assert late_best_share(entries, 5) == (3, 5)  # index >= 4: 9, 7 and 8
    assert late_best_share(entries[5:], 10) == (0, 0)
    # 13 trials: index >= 10.4, so 11 and 12; a best at 10 is not late
    assert late_best_share([entry([0.5] * 10 + [0.1, 0.2, 0.3]), entry([0.5] * 11 + [0.1, 0.2])], 13) == (1, 2)
