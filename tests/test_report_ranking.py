"""The summary's statistics on hand-worked inputs: a clear winner, a three-way tie, a chain
of overlapping ties, a method missing on one seed, the seeds a difference needs, and a
proposed method's claims against its baselines."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report.ranking import CLAIMS, check_claims, claim_lines, letter_display, rank_methods, seeds_to_separate
from bench.report.summary import claim_text


def series(*values: float, seeds=None) -> pd.Series:
    return pd.Series(values, index=seeds if seeds is not None else range(len(values)), dtype=float)


BASE = np.array([0.10, 0.11, 0.12, 0.10, 0.11])
NOISE = np.array([0.01, -0.01, 0.0, 0.02, -0.02])


def test_a_clear_winner_has_a_letter_of_its_own():
    """Five seeds, each method 0.2 above the one before with differences of sd 0.016: every
    paired t is about 28 (p < 1e-5, ×3 by Holm), so each pair differs: a, b, c."""
    values = {"c": series(*(BASE + 0.4 - NOISE)), "a": series(*BASE), "b": series(*(BASE + 0.2 + NOISE))}
    ranked = rank_methods(values)
    assert ranked["method"].tolist() == ["a", "b", "c"] and ranked["rank"].tolist() == [1, 2, 3]
    assert ranked["letters"].tolist() == ["a", "b", "c"]
    assert ranked["mean"].tolist() == pytest.approx([0.108, 0.308, 0.508])
    low, high = ranked.loc[0, ["low", "high"]]
    half = 2.7764451 * BASE.std(ddof=1) / math.sqrt(5)  # t(0.975, 4)
    assert (low, high) == pytest.approx((0.108 - half, 0.108 + half))


def test_a_three_way_tie_shares_one_letter():
    values = {"x": series(0.1, 0.2, 0.3), "y": series(0.2, 0.1, 0.3), "z": series(0.3, 0.2, 0.1)}
    ranked = rank_methods(values)
    assert ranked["letters"].tolist() == ["a", "a", "a"] and ranked["n_seeds"].tolist() == [3, 3, 3]


def test_overlapping_ties_share_letters_exactly_where_the_tests_could_not_separate():
    """Insert-absorb by hand: A≠C, A≠D, B≠D leave the groups {A,B}, {B,C}, {C,D}."""
    different = {frozenset("AC"), frozenset("AD"), frozenset("BD")}
    letters = letter_display(list("ABCD"), different)
    assert letters == {"A": "a", "B": "ab", "C": "bc", "D": "c"}
    for x in "ABCD":
        for y in "ABCD":
            if x < y:
                assert bool(set(letters[x]) & set(letters[y])) == (frozenset((x, y)) not in different)


def test_a_method_missing_on_a_seed_is_compared_on_the_seeds_it_has_and_one_without_values_comes_last():
    values = {
        "full": series(*BASE),
        "short": series(*(BASE[[0, 2, 4]] + 0.5), seeds=[0, 2, 4]),  # seeds 1 and 3 failed
        "none": pd.Series(dtype=float),
    }
    ranked = rank_methods(values).set_index("method")
    assert ranked.loc["short", "n_seeds"] == 3 and ranked.loc["short", "mean"] == pytest.approx(0.11 + 0.5)
    # paired on seeds 0, 2, 4: differences exactly 0.5, a t of +inf, p = 0: separated
    assert ranked.loc["full", "letters"] == "a" and ranked.loc["short", "letters"] == "b"
    assert math.isnan(ranked.loc["none", "rank"]) and ranked.loc["none", "letters"] == "" and ranked.index[-1] == "none"


def test_seeds_to_separate_matches_the_power_tables():
    """Paired (one-sample) t, two-sided 0.05, power 0.8: effect size 1 needs 10 pairs and
    0.5 needs 34 (Cohen 1988, table 2.4.1)."""
    assert seeds_to_separate(np.array([0.0, 1.0, 2.0])) == 10  # mean 1, sd 1
    assert seeds_to_separate(np.array([-0.5, 0.5, 1.5])) == 34  # mean 0.5, sd 1
    assert seeds_to_separate(np.array([0.0, 0.0, 0.0])) == math.inf
    assert seeds_to_separate(np.array([0.3, 0.3])) == 2  # no spread: the seeds at hand already separate them
    assert math.isnan(seeds_to_separate(np.array([0.3])))


def test_claims_are_checked_per_baseline_with_holm_and_oriented_effects():
    """The proposed method P against B1 (P better on retain accuracy and time, worse on
    forgetting) and B2 (the same values as P up to noise: no verdict)."""
    p_retain, p_forget, p_time = BASE + 0.8, np.array([0.0, 0.01, 0.0, 0.02, 0.01]), BASE * 10
    values = {
        "retain_acc": {"P": series(*p_retain), "B1": series(*(p_retain - 0.2 + NOISE)), "B2": series(*(p_retain + NOISE))},
        "test_acc": {"P": series(*p_retain), "B1": series(*p_retain), "B2": series(*p_retain)},
        # retrain forgets everything; B1 forgets nothing of what P forgets, B2 as much as P
        "forget_acc": {"retrain": series(0, 0, 0, 0, 0), "P": series(*(p_forget + 0.3)),
                       "B1": series(*(p_forget + NOISE / 10)), "B2": series(*(p_forget + 0.3 + NOISE))},
        "pred_dist_js": {"P": series(*BASE), "B1": series(*(BASE + NOISE)), "B2": series(*(BASE - NOISE))},
        "time_s": {"P": series(*p_time), "B1": series(*(p_time * 3 + NOISE)), "B2": series(*(p_time + NOISE))},
    }
    checked = check_claims(values, "P", ["B1", "B2"]).set_index(["baseline", "metric"])
    assert len(checked) == 2 * len(CLAIMS) and set(checked["n_pairs"]) == {5}
    assert checked.loc[("B1", "retain_acc"), "verdict"] == "better"
    assert checked.loc[("B1", "retain_acc"), "effect"] == pytest.approx(0.2)  # oriented: higher is better
    assert checked.loc[("B1", "time_s"), "verdict"] == "better"
    assert checked.loc[("B1", "time_s"), "effect"] == pytest.approx(2 * p_time.mean())  # oriented: lower is better
    assert checked.loc[("B1", "forget_acc"), "verdict"] == "worse"  # |0.3 + f − 0| against |f + noise/10 − 0|
    assert checked.loc[("B1", "forget_acc"), "effect"] == pytest.approx(-0.3)
    assert checked.loc[("B1", "test_acc"), "verdict"] == "not distinguishable"  # all differences zero: p = 1
    assert set(checked.loc["B2", "verdict"]) == {"not distinguishable"}
    assert (checked["p_holm"] >= checked["p"]).all()
    lines = claim_lines(checked.reset_index())
    assert lines[0] == "retain accuracy: better than 1 of 2 baselines, not distinguishable from 1, worse than 0"
    assert lines[2] == "forgetting (|forget acc. − retrain's|): better than 0 of 2 baselines, not distinguishable from 1, worse than 1 (B1)"


def test_a_claim_on_one_paired_seed_says_it_has_no_test():
    """P on seeds 0-2, B on seeds 2-4: one seed pairs up, so no test runs; the cell gives the
    effect (0.9 − 0.8 on retain accuracy) and says why there is no p."""
    values = {"retain_acc": {"P": series(0.7, 0.7, 0.9), "B": series(0.8, 0.6, 0.6, seeds=[2, 3, 4])}}
    row = check_claims(values, "P", ["B"]).set_index("metric").loc["retain_acc"]
    assert row["n_pairs"] == 1 and math.isnan(row["p_holm"]) and row["verdict"] == "not distinguishable"
    assert claim_text(row["verdict"], row["effect"], row["p_holm"], row["n_pairs"]) == "not distinguishable (+0.1; 1 paired seed, no test)"
    assert claim_text("better", 0.2, 0.01234, 5) == "better (+0.2, p 0.012)"
    assert claim_text("not distinguishable", float("nan"), float("nan"), 0) == "–"
