"""Membership-inference attacks: chance on one distribution, about 1 on separable ones."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evaluation.metrics.mia import (
    entropy, mia_auc, mia_conf_svc, mia_entropy, mia_loss_cv, mia_mentr_svc, modified_entropy, per_example_loss,
)


def logits_with_confidence(rng, n, k, sharpness):
    """Logits whose true class (0) leads by ``sharpness`` plus noise."""
    logits = rng.normal(size=(n, k))
    logits[:, 0] += sharpness + rng.normal(scale=0.3, size=n)
    return logits, np.zeros(n, dtype=int)


def test_entropy_and_loss_known_answers():
    uniform = np.zeros((1, 4))
    assert entropy(uniform)[0] == pytest.approx(np.log(4))
    assert per_example_loss(uniform, np.array([2]))[0] == pytest.approx(np.log(4))


def test_loss_attacks_at_chance_on_one_distribution():
    rng = np.random.default_rng(0)
    forget, test = rng.exponential(size=2000), rng.exponential(size=2000)
    assert mia_loss_cv(forget, test) == pytest.approx(0.5, abs=0.04)
    auc, _ = mia_auc(forget, test)
    assert auc == pytest.approx(0.5, abs=0.04)


def test_loss_attacks_near_one_when_separable():
    rng = np.random.default_rng(1)
    forget, test = rng.uniform(0, 0.1, size=500), rng.uniform(1, 2, size=500)
    assert mia_loss_cv(forget, test) > 0.99
    auc, tpr = mia_auc(forget, test)
    assert auc == pytest.approx(1.0) and tpr == pytest.approx(1.0)


def test_entropy_attack_reads_members_and_non_members():
    rng = np.random.default_rng(2)
    retain, _ = logits_with_confidence(rng, 600, 10, 12.0)  # members: confident, low entropy
    test, _ = logits_with_confidence(rng, 600, 10, 0.0)  # non-members: unsure, high entropy
    member_like, _ = logits_with_confidence(rng, 300, 10, 12.0)
    non_member_like, _ = logits_with_confidence(rng, 300, 10, 0.0)
    assert mia_entropy(retain, test, member_like) > 0.95
    assert mia_entropy(retain, test, non_member_like) < 0.05


@pytest.mark.parametrize("attack", [mia_conf_svc, mia_mentr_svc])
def test_svc_attacks_efficacy(attack):
    rng = np.random.default_rng(3)
    retain, retain_y = logits_with_confidence(rng, 1000, 10, 12.0)
    test, test_y = logits_with_confidence(rng, 400, 10, 0.0)
    member_like, member_y = logits_with_confidence(rng, 200, 10, 12.0)
    forgotten, forgotten_y = logits_with_confidence(rng, 200, 10, 0.0)
    assert attack(retain, retain_y, test, test_y, member_like, member_y) < 0.05  # not forgotten
    assert attack(retain, retain_y, test, test_y, forgotten, forgotten_y) > 0.95  # looks unseen
    # capped at 100 a side, the 1-D boundary is the same
    assert attack(retain, retain_y, test, test_y, member_like, member_y, max_samples=100) < 0.05
    assert attack(retain, retain_y, test, test_y, forgotten, forgotten_y, max_samples=100) > 0.95
    # one distribution: chance on average, though a single draw's RBF boundary swings widely
    draws = []
    for seed in range(12):
        draw = np.random.default_rng(100 + seed)
        members, members_y = logits_with_confidence(draw, 400, 10, 0.0)
        non_members, non_members_y = logits_with_confidence(draw, 400, 10, 0.0)
        target, target_y = logits_with_confidence(draw, 400, 10, 0.0)
        draws.append(attack(members, members_y, non_members, non_members_y, target, target_y))
    assert 0.3 < np.mean(draws) < 0.7


def test_modified_entropy_known_answers_and_rows_use_their_own_label():
    uniform = np.zeros((1, 4))
    expected = -(0.75 * np.log(0.25)) - 3 * 0.25 * np.log(0.75)
    assert modified_entropy(uniform, np.array([0]))[0] == pytest.approx(expected)
    confident = np.array([[30.0, 0.0, 0.0]])
    assert modified_entropy(confident, np.array([0]))[0] == pytest.approx(0.0, abs=1e-9)
    assert modified_entropy(confident, np.array([1]))[0] > 20  # confidently wrong
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(5, 4)), np.array([0, 1, 2, 3, 1])
    one_by_one = [modified_entropy(logits[i : i + 1], labels[i : i + 1])[0] for i in range(5)]
    np.testing.assert_allclose(modified_entropy(logits, labels), one_by_one)
