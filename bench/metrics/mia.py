"""Membership-inference attacks (pure functions of logits and labels).

Each docstring states the attack's members, non-members and target set. Randomness
(sub-sampling, cross-validation folds) comes from ``seed``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.svm import SVC


def entropy(logits: np.ndarray) -> np.ndarray:
    """Per-row entropy (nats) of the softmax."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    return -(np.exp(log_p) * log_p).sum(axis=1)


def per_example_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row cross-entropy of the true label."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    return -log_p[np.arange(len(labels)), np.asarray(labels)]


def true_class_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row softmax probability of the true label."""
    return np.exp(-per_example_loss(logits, labels))


def mia_entropy(retain_logits: np.ndarray, test_logits: np.ndarray, forget_logits: np.ndarray) -> float:
    """Entropy attack of the bad-teacher, UNSIR and SSD papers' code: a class-balanced
    logistic regression on the softmax entropy, fit with retain samples as members (1) and
    test samples as non-members (0); the score is the share of forget samples predicted
    "member". A retrained model gives the share a never-seen sample gets."""
    x = np.concatenate([entropy(retain_logits), entropy(test_logits)])[:, None]
    y = np.concatenate([np.ones(len(retain_logits)), np.zeros(len(test_logits))])
    attack = LogisticRegression(class_weight="balanced").fit(x, y)
    return float(attack.predict(entropy(forget_logits)[:, None]).mean())


def mia_conf_svc(
    retain_logits: np.ndarray, retain_labels: np.ndarray, test_logits: np.ndarray, test_labels: np.ndarray,
    forget_logits: np.ndarray, forget_labels: np.ndarray, seed: int = 0,
) -> float:
    """SalUn's MIA-efficacy (Fan et al. 2024): an RBF SVC (C = 3) on the true-class
    confidence, members = a seeded sample of retain samples as many as the test set,
    non-members = the test set; the score is the share of forget samples predicted
    non-member (higher = more forgotten)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(retain_logits), size=min(len(test_logits), len(retain_logits)), replace=False)
    x = np.concatenate([true_class_confidence(retain_logits[chosen], retain_labels[chosen]),
                        true_class_confidence(test_logits, test_labels)])[:, None]
    y = np.concatenate([np.ones(len(chosen)), np.zeros(len(test_logits))])
    attack = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float((attack.predict(true_class_confidence(forget_logits, forget_labels)[:, None]) == 0).mean())


def mia_loss_cv(forget_loss: np.ndarray, test_loss: np.ndarray, seed: int = 0, folds: int = 10) -> float:
    """The NeurIPS 2023 unlearning challenge starting kit's attack: logistic regression on
    the per-example loss telling forget samples from an equal number of test samples (the
    caller passes class-matched test samples in class scenarios), mean accuracy over
    ``folds`` stratified folds. 0.5: the attacker cannot tell them apart."""
    rng = np.random.default_rng(seed)
    n = min(len(forget_loss), len(test_loss))
    f = rng.choice(np.asarray(forget_loss), size=n, replace=False)
    t = rng.choice(np.asarray(test_loss), size=n, replace=False)
    x = np.concatenate([f, t])[:, None]
    y = np.concatenate([np.ones(n), np.zeros(n)])
    splitter = StratifiedKFold(n_splits=min(folds, n), shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(), x, y, cv=splitter, scoring="accuracy").mean())


def mia_auc(forget_loss: np.ndarray, test_loss: np.ndarray) -> tuple[float, float]:
    """ROC AUC of the loss as a membership score (lower loss = member) between forget
    (positives) and test (negatives) samples, and the true-positive rate at 1% false positives."""
    scores = -np.concatenate([forget_loss, test_loss])
    truth = np.concatenate([np.ones(len(forget_loss)), np.zeros(len(test_loss))])
    fpr, tpr, _ = roc_curve(truth, scores)
    return float(roc_auc_score(truth, scores)), float(np.interp(0.01, fpr, tpr))
