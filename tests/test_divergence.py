"""Divergences between predictions, on hand-made inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.evaluation.metrics.divergence import (
    activation_distance, js_rows, kl_rows, mean_js, mean_kl, prediction_distribution_js, prediction_histogram, zrf,
    zrf_compat,
)

BIG = 80.0  # logits this far apart give one-hot softmax to float64 precision


def test_js_identical_is_zero_and_disjoint_one_hot_is_ln2():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]])
    assert mean_js(logits, logits) == pytest.approx(0.0, abs=1e-12)
    a = np.array([[BIG, 0.0, 0.0]])
    b = np.array([[0.0, BIG, 0.0]])
    assert mean_js(a, b) == pytest.approx(math.log(2), abs=1e-9)


def test_js_is_symmetric_and_bounded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 10)) * 3, rng.normal(size=(50, 10)) * 3
    assert mean_js(a, b) == pytest.approx(mean_js(b, a), abs=1e-12)
    values = js_rows(np.exp(a) / np.exp(a).sum(1, keepdims=True), np.exp(b) / np.exp(b).sum(1, keepdims=True))
    assert (values >= 0).all() and (values <= math.log(2) + 1e-12).all()


def test_kl_matches_a_hand_computation():
    p, q = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_rows(p, q)[0] == pytest.approx(expected)
    logits_p, logits_q = np.log(p), np.log(q)
    assert mean_kl(logits_p, logits_q) == pytest.approx(expected)
    assert kl_rows(q, p)[0] != pytest.approx(expected)  # KL is not symmetric


def test_prediction_distribution():
    a = np.eye(3)[[0, 1, 1, 2]]
    b = np.eye(3)[[1, 2, 1, 0]]  # same histogram, different samples
    assert prediction_histogram(a, 3).tolist() == [0.25, 0.5, 0.25]
    assert prediction_distribution_js(a, b, 3) == pytest.approx(0.0, abs=1e-12)
    assert prediction_distribution_js(np.eye(3)[[0, 0]], np.eye(3)[[2, 2]], 3) == pytest.approx(math.log(2))


def test_activation_distance_known_answer():
    a, b = np.array([[BIG, 0.0]]), np.array([[0.0, BIG]])
    assert activation_distance(a, b) == pytest.approx(math.sqrt(2))
    assert activation_distance(a, a) == 0.0


def test_zrf_is_one_for_the_random_model_itself_and_compat_differs():
    rng = np.random.default_rng(1)
    teacher = rng.normal(size=(20, 10))
    assert zrf(teacher, teacher) == pytest.approx(1.0)
    assert zrf_compat(teacher, teacher) == pytest.approx(1.0)
    far = np.array([[BIG, 0.0, 0.0, 0.0]])
    near_random = np.array([[0.0, BIG, 0.0, 0.0]])
    assert zrf(far, near_random) == pytest.approx(1 - math.log(2), abs=1e-9)
    # the published formula averages over the 4 classes and reverses the KL: a different number
    assert zrf_compat(far, near_random) != pytest.approx(zrf(far, near_random), abs=1e-3)
