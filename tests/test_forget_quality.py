"""The challenge's ε estimate and forget-quality score against the official scorer.

``tests/reference/forget_quality/`` holds confidences with the per-example ε and the score F
that google-deepmind/unlearning_evaluation's ``metric.py`` (ffae0ff) returns for them (its
README says how they were computed); the other tests are hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.evaluation.metrics.forget_quality import (
    EPSILON_CAP, epsilon_from_rates, example_epsilons, example_scores, forget_quality, interval_test_rates,
    logit_scaled_confidence, single_test_rates,
)

REFERENCE = Path(__file__).parent / "reference" / "forget_quality"
ANSWERED = sorted(path.name for path in REFERENCE.glob("*.npz") if "epsilons" in np.load(path).files)
UNANSWERED = sorted(path.name for path in REFERENCE.glob("*.npz") if "epsilons" not in np.load(path).files)


def test_the_reference_vectors_are_present():
    assert len(ANSWERED) == 10 and UNANSWERED == ["c_const_equal_K16.npz", "c_const_equal_K64.npz"]


@pytest.mark.parametrize("name", ANSWERED)
def test_epsilons_and_score_equal_the_official_scorer(name):
    case = np.load(REFERENCE / name)
    epsilons = example_epsilons(case["unlearned"], case["retrained"])
    np.testing.assert_allclose(epsilons, case["epsilons"], rtol=0, atol=1e-5)
    score = example_scores(epsilons, case["unlearned"].shape[0]).mean()
    assert abs(score - float(case["forget_quality"])) < 1e-6


@pytest.mark.parametrize("name", UNANSWERED)
def test_no_usable_test_gives_epsilon_zero(name):
    """Both groups one equal constant: the official code fails an assertion; here ε = 0 and
    every example scores 1 (nothing tells the groups apart)."""
    case = np.load(REFERENCE / name)
    epsilons = example_epsilons(case["unlearned"], case["retrained"])
    assert np.all(epsilons == 0.0)
    assert example_scores(epsilons, case["unlearned"].shape[0]).mean() == 1.0


def test_logit_scaled_confidence_known_answer():
    logits = np.array([[np.log(0.5), np.log(0.3), np.log(0.2)]], dtype=np.float32)
    assert logit_scaled_confidence(logits, np.array([0]))[0] == pytest.approx(np.log(0.5 / 0.5), abs=1e-6)
    assert logit_scaled_confidence(logits, np.array([2]))[0] == pytest.approx(np.log(0.2 / 0.8), abs=1e-6)
    # float32's exp underflows below about -103.3: the others' mass is then 0 and the 1e-45 guard
    # holds the confidence at -ln(1e-45) = 103.616 (and -103.616 for a label of mass 0)
    saturated = logit_scaled_confidence(np.array([[200.0, 0.0, 0.0]]), np.array([0]))
    assert saturated[0] == pytest.approx(-np.log(1e-45))
    assert logit_scaled_confidence(np.array([[200.0, 0.0, 0.0]]), np.array([1]))[0] == pytest.approx(np.log(1e-45))
    moderate = logit_scaled_confidence(np.array([[50.0, 0.0, 0.0]]), np.array([0]))[0]
    assert moderate == pytest.approx(50 - np.log(2), abs=1e-4)


def test_epsilon_from_rates_hand_computed():
    assert epsilon_from_rates([0.1], [0.2], delta=0.0) == pytest.approx(np.log(8))
    assert epsilon_from_rates([0.1, 0.5], [0.2, 0.5], delta=0.0) == pytest.approx(np.log(8))
    assert epsilon_from_rates([0.0], [0.0]) == EPSILON_CAP  # a perfect test
    assert epsilon_from_rates([0.0, 1.0], [1.0, 0.0]) == 0.0  # only one-sided tests: discarded
    assert epsilon_from_rates([0.5], [0.5]) == 0.0  # a coin flip bounds ε by 0
    assert epsilon_from_rates([1.0, 0.5], [1.0, 0.25], delta=0.0) == pytest.approx(np.log(2))  # ln(1 − 1 − δ) undefined


def test_single_threshold_rates_by_hand():
    """Thresholds 0.00, 0.01, ..., 1.00 over the span [0, 1]; ``pos`` predicted at ≥ t."""
    pos, neg = np.array([0.5, 1.0]), np.array([0.0, 0.25])
    fpr, fnr = single_test_rates(pos, neg)
    assert len(fpr) == 100  # ⌈(1 − 0) × 100⌉ thresholds, endpoints included
    t = np.linspace(0, 1, 100)
    np.testing.assert_allclose(fpr, ((neg[:, None] >= t).mean(0)), atol=0)
    np.testing.assert_allclose(fnr, ((pos[:, None] < t).mean(0)), atol=0)


def test_interval_rates_cover_the_peakier_sample_on_a_grid():
    """The peakier sample (smaller range) is predicted inside [l, r]; one test of the grid
    holds it whole and none of the broad sample: a perfect test."""
    peaky, broad = np.array([0.0, 0.1]), np.array([-3.0, 3.0])
    fpr, fnr = interval_test_rates(broad, peaky)
    assert len(fpr) == 400 * 400  # right: ⌈(0.1 + 2 − (0 + 0.1 − 2)) × 100⌉ = 400 points, each with 400 left
    assert np.any((fpr == 0) & (fnr == 0))
    assert set(np.unique(fpr)) <= {0.0, 0.5, 1.0} and set(np.unique(fnr)) <= {0.0, 0.5, 1.0}


def test_narrow_sample_gets_the_cap():
    """One sample's range under 1% of the other's: ε is the cap, whatever the tests say. Here
    a broad value lies inside the narrow sample's span, so no test separates them perfectly."""
    broad = np.linspace(-1, 1, 16)[:, None]  # range 2
    centre = broad[8]
    capped = example_epsilons(centre + np.linspace(-0.009, 0.009, 16)[:, None], broad)[0]  # range 0.9% of 2
    tested = example_epsilons(centre + np.linspace(-0.011, 0.011, 16)[:, None], broad)[0]  # 1.1%
    assert capped == EPSILON_CAP
    assert 0 < tested < EPSILON_CAP


def test_example_scores_bins_up_to_ln_k_minus_1():
    """K = 16: ⌈ln 15⌉ = 3, six bins of 0.5; ε ≥ 3 scores 0. K = 64: ⌈ln 63⌉ = 5."""
    epsilons = np.array([0.0, 0.49, 0.5, 1.2, 2.99, 3.0, EPSILON_CAP])
    assert example_scores(epsilons, 16).tolist() == [1.0, 1.0, 0.5, 0.25, 2.0**-5, 0.0, 0.0]
    assert example_scores(np.array([3.0, 4.99, 5.0]), 64).tolist() == [2.0**-6, 2.0**-9, 0.0]
    assert example_scores(np.array([0.0]), 2).tolist() == [0.0]  # ⌈ln 1⌉ = 0: no bin


def test_forget_quality_combines_score_and_accuracy_ratios():
    rng = np.random.default_rng(0)
    confidences = rng.normal(size=(16, 30))
    perfect = forget_quality(confidences, confidences, [0.9, 0.9], [0.9, 0.9], [0.8], [0.8])
    assert perfect["fq_forgetting"] == 1.0 and perfect["forget_quality"] == 1.0
    worse_utility = forget_quality(confidences, confidences, [0.45], [0.9], [0.4], [0.8])
    assert worse_utility["forget_quality"] == pytest.approx(0.25)
    separated = forget_quality(confidences + 50, confidences, [0.9], [0.9], [0.8], [0.8])
    assert separated["fq_forgetting"] == 0.0 and separated["fq_epsilon_mean"] == EPSILON_CAP


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="arrays of one shape"):
        example_epsilons(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="arrays of one shape"):
        example_epsilons(np.zeros((4, 3)), np.zeros((8, 3)))
