"""The challenge's ε estimate and forget-quality score on inputs with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.metrics.forget_quality import (
    EPSILON_CAP, epsilon_from_rates, example_epsilons, example_scores, forget_quality, logit_scaled_confidence,
    threshold_test_rates,
)


def test_logit_scaled_confidence_known_answer():
    logits = np.array([[np.log(0.5), np.log(0.3), np.log(0.2)]])
    assert logit_scaled_confidence(logits, np.array([0]))[0] == pytest.approx(np.log(0.5 / 0.5))
    assert logit_scaled_confidence(logits, np.array([2]))[0] == pytest.approx(np.log(0.2 / 0.8))
    confident = np.array([[100.0, 0.0, 0.0]])  # p_y rounds to 1 in float64; the logit form does not
    assert logit_scaled_confidence(confident, np.array([0]))[0] == pytest.approx(100 - np.log(2))


def test_epsilon_from_rates_hand_computed():
    assert epsilon_from_rates([0.1], [0.2], delta=0.0) == pytest.approx(np.log(8))
    assert epsilon_from_rates([0.1, 0.5], [0.2, 0.5], delta=0.0) == pytest.approx(np.log(8))
    assert epsilon_from_rates([0.0], [0.0]) == EPSILON_CAP  # a perfect test
    assert epsilon_from_rates([0.0, 1.0], [1.0, 0.0]) == 0.0  # only one-sided tests: discarded
    assert epsilon_from_rates([0.5], [0.5]) == 0.0  # a coin flip bounds ε by 0


def brute_force_rates(u, r):
    """Every interval (t1, t2] over the observed values and its complement, by enumeration."""
    thresholds = [-np.inf, *sorted(set(u) | set(r))]
    rates = []
    for t1, t2 in itertools.combinations(thresholds, 2):
        in_u = np.mean((u > t1) & (u <= t2))
        in_r = np.mean((r > t1) & (r <= t2))
        rates += [(in_r, 1 - in_u), (1 - in_r, in_u)]
    return sorted(rates)


def test_threshold_test_rates_match_enumeration():
    rng = np.random.default_rng(1)
    u, r = rng.normal(size=7).round(1), rng.normal(0.5, size=5).round(1)  # ties included
    fpr, fnr = threshold_test_rates(u, r)
    np.testing.assert_allclose(np.array(sorted(zip(fpr, fnr))), np.array(brute_force_rates(u, r)))


def test_identical_groups_give_small_epsilon_and_separated_ones_the_cap():
    rng = np.random.default_rng(0)
    same = rng.normal(size=(16, 40))
    assert example_epsilons(same, same.copy()).max() == pytest.approx(0.0, abs=1e-4)
    separated = example_epsilons(same, same + 100)
    assert np.all(separated == EPSILON_CAP)
    # the two-threshold test catches a group sitting inside the other's range
    inside = example_epsilons(np.zeros((16, 3)) + rng.normal(scale=0.01, size=(16, 3)),
                              np.concatenate([np.full((8, 3), -5.0), np.full((8, 3), 5.0)]))
    assert np.all(inside == EPSILON_CAP)


def test_example_scores_bins():
    assert example_scores(np.array([0.0, 0.49, 0.5, 1.2, EPSILON_CAP])).tolist() == [1.0, 1.0, 0.5, 0.25, 2.0**-100]


def test_forget_quality_combines_score_and_accuracy_ratios():
    rng = np.random.default_rng(0)
    confidences = rng.normal(size=(16, 30))
    perfect = forget_quality(confidences, confidences, [0.9, 0.9], [0.9, 0.9], [0.8], [0.8])
    assert perfect["fq_forgetting"] == 1.0 and perfect["forget_quality"] == 1.0
    worse_utility = forget_quality(confidences, confidences, [0.45], [0.9], [0.4], [0.8])
    assert worse_utility["forget_quality"] == pytest.approx(0.25)
    separated = forget_quality(confidences + 50, confidences, [0.9], [0.9], [0.8], [0.8])
    assert separated["fq_forgetting"] == pytest.approx(2.0**-100)
    assert separated["fq_epsilon_mean"] == EPSILON_CAP


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="equal example counts"):
        example_epsilons(np.zeros((4, 3)), np.zeros((4, 2)))
