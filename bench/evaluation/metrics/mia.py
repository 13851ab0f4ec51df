"""Membership-inference attacks (pure functions of logits and labels).

Each docstring states the attack's members, non-members and target set. Randomness
(sub-sampling, cross-validation folds) comes from ``seed``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
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


def modified_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal's (2021) modified entropy, per row:
    −(1 − p_y) ln p_y − Σ_{c≠y} p_c ln(1 − p_c). Low for a confident correct prediction, high
    for a confident wrong one. Each row uses its own label (the published ``SVC_MIA`` code's
    ``m_entropy`` assigns ``[:, labels]``, which rewrites the columns of every label in the
    batch in every row)."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    p = np.exp(log_p)
    log_not_p = np.log1p(-np.minimum(p, 1 - 1e-16))
    rows, labels = np.arange(len(p)), np.asarray(labels)
    true_term = -(1 - p[rows, labels]) * log_p[rows, labels]
    other = -(p * log_not_p)
    other[rows, labels] = 0.0
    return true_term + other.sum(axis=1)


def mia_entropy(retain_logits: np.ndarray, test_logits: np.ndarray, forget_logits: np.ndarray) -> float:
    """Entropy attack of the bad-teacher, UNSIR and SSD papers' code: a class-balanced
    logistic regression on the softmax entropy, fit with retain samples as members (1) and
    test samples as non-members (0); the score is the share of forget samples predicted
    "member". A retrained model gives the share a never-seen sample gets."""
    x = np.concatenate([entropy(retain_logits), entropy(test_logits)])[:, None]
    y = np.concatenate([np.ones(len(retain_logits)), np.zeros(len(test_logits))])
    attack = LogisticRegression(class_weight="balanced").fit(x, y)
    return float(attack.predict(entropy(forget_logits)[:, None]).mean())


def _svc_non_member_share(
    member_feature: np.ndarray, non_member_feature: np.ndarray, target_feature: np.ndarray, seed: int,
    max_samples: int | None,
) -> float:
    """Fit SalUn's RBF SVC (C = 3, gamma "auto") on members (1) and non-members (0) of one
    feature, as many members as non-members, each side capped at ``max_samples`` by a seeded
    sample; return the share of the target predicted non-member."""
    rng = np.random.default_rng(seed)
    n_non = len(non_member_feature) if max_samples is None else min(len(non_member_feature), max_samples)
    n_members = min(len(member_feature), n_non)
    members = member_feature[rng.choice(len(member_feature), size=n_members, replace=False)]
    non_members = non_member_feature[rng.choice(len(non_member_feature), size=n_non, replace=False)]
    x = np.concatenate([members, non_members])[:, None]
    y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    attack = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float((attack.predict(np.asarray(target_feature)[:, None]) == 0).mean())


def mia_conf_svc(
    retain_logits: np.ndarray, retain_labels: np.ndarray, test_logits: np.ndarray, test_labels: np.ndarray,
    forget_logits: np.ndarray, forget_labels: np.ndarray, seed: int = 0, max_samples: int | None = None,
) -> float:
    """SalUn's MIA-efficacy (Fan et al. 2024): an RBF SVC (C = 3) on the true-class
    confidence, members = a seeded sample of retain samples as many as the test set,
    non-members = the test set; the score is the share of forget samples predicted
    non-member (higher = more forgotten). ``max_samples`` caps each side by a seeded
    sample (the fit's cost grows about quadratically); ``None`` keeps SalUn's sizes."""
    return _svc_non_member_share(
        true_class_confidence(retain_logits, retain_labels), true_class_confidence(test_logits, test_labels),
        true_class_confidence(forget_logits, forget_labels), seed, max_samples,
    )


def mia_mentr_svc(
    retain_logits: np.ndarray, retain_labels: np.ndarray, test_logits: np.ndarray, test_labels: np.ndarray,
    forget_logits: np.ndarray, forget_labels: np.ndarray, seed: int = 0, max_samples: int | None = None,
) -> float:
    """The same SVC attack on the modified entropy (:func:`modified_entropy`, correctly
    indexed), the ``m_entropy`` variant of SalUn's ``SVC_MIA``; share of forget samples
    predicted non-member."""
    return _svc_non_member_share(
        modified_entropy(retain_logits, retain_labels), modified_entropy(test_logits, test_labels),
        modified_entropy(forget_logits, forget_labels), seed, max_samples,
    )


def mia_loss_cv(forget_loss: np.ndarray, test_loss: np.ndarray, seed: int = 0, folds: int = 10) -> float:
    """The NeurIPS 2023 unlearning challenge starting kit's attack: logistic regression on
    the per-example loss telling forget samples from an equal number of test samples (the
    caller passes class-matched test samples in class scenarios), mean accuracy over
    ``folds`` stratified shuffle splits (a tenth held out each, the kit's
    ``StratifiedShuffleSplit`` defaults). 0.5: the attacker cannot tell them apart."""
    rng = np.random.default_rng(seed)
    n = min(len(forget_loss), len(test_loss))
    f = rng.choice(np.asarray(forget_loss), size=n, replace=False)
    t = rng.choice(np.asarray(test_loss), size=n, replace=False)
    x = np.concatenate([f, t])[:, None]
    y = np.concatenate([np.ones(n), np.zeros(n)])
    if n < 2:
        return float("nan")
    held_out = max(2, round(0.1 * 2 * n))  # one of each kind at least
    splitter = StratifiedShuffleSplit(n_splits=folds, test_size=held_out, random_state=seed)
    return float(cross_val_score(LogisticRegression(), x, y, cv=splitter, scoring="accuracy").mean())


def mia_auc(forget_loss: np.ndarray, test_loss: np.ndarray) -> tuple[float, float]:
    """ROC AUC of the loss as a membership score (lower loss = member) between forget
    (positives) and test (negatives) samples, and the true-positive rate at 1% false positives."""
    scores = -np.concatenate([forget_loss, test_loss])
    truth = np.concatenate([np.ones(len(forget_loss)), np.zeros(len(test_loss))])
    fpr, tpr, _ = roc_curve(truth, scores)
    return float(roc_auc_score(truth, scores)), float(np.interp(0.01, fpr, tpr))
