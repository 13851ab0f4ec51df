"""Evaluation: ONE inference pass per split and model, then every metric from the logits.

The logits of the forget, retain and test sets are returned (and persisted with the
run record), so later metrics can be computed again without running the model.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.evaluation.metrics import accuracy
from bench.evaluation.metrics.divergence import (
    activation_distance, mean_js, mean_kl, prediction_distribution_js, prediction_histogram, zrf, zrf_compat,
)
from bench.evaluation.metrics.mia import mia_auc, mia_conf_svc, mia_entropy, mia_loss_cv, mia_mentr_svc, per_example_loss
from bench.data.splits import Scenario
from bench.core.store import atomic_write_bytes
from bench.training.loop import Preprocess, autocast, compiled, synchronize

SPLITS = ("forget", "retain", "test")


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, preprocess: Preprocess, batch_size: int = 1024) -> np.ndarray:
    """Logits of ``model`` (in eval mode) on uint8 ``images``, as float32 ``(N, K)``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    forward = compiled(model)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, non_blocking=True)
        with autocast(device):
            outputs.append(forward(preprocess(batch)).float())
    model.train(was_training)
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(outputs).cpu().numpy()


@dataclass(frozen=True)
class SplitData:
    """The images and labels of one evaluation split."""

    images: torch.Tensor
    labels: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    logits: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    metrics: dict[str, float]
    seconds: float


def default_test_group(scenario: Scenario, test_labels: np.ndarray) -> np.ndarray | None:
    """A class scenario's forgotten group in the test set (its class); None for the others,
    whose caller passes the group (a subpopulation, a sequence's classes) or has none."""
    return test_labels == scenario.forget_class if scenario.kind == "class" else None


def split_metrics(
    logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], scenario: Scenario, test_group: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy on the forget, retain and test sets, and on the test samples of the forgotten
    group, which the test accuracy alone would blend: for a class (or a sequence of classes)
    ``test_forget_class_acc`` and ``test_rest_acc`` (every other class); for a subpopulation
    ``test_forget_sub_acc`` and ``test_rest_of_class_acc`` (the rest of its class)."""
    metrics = {f"{name}_acc": accuracy(logits[name], labels[name]) for name in SPLITS}
    group = test_group if test_group is not None else default_test_group(scenario, labels["test"])
    if group is None:
        return metrics
    test_logits, test_labels = logits["test"], labels["test"]
    if scenario.kind == "subclass":
        rest_of_class = (test_labels == scenario.forget_class) & ~group
        metrics["test_forget_sub_acc"] = accuracy(test_logits[group], test_labels[group])
        metrics["test_rest_of_class_acc"] = accuracy(test_logits[rest_of_class], test_labels[rest_of_class])
    else:
        metrics["test_forget_class_acc"] = accuracy(test_logits[group], test_labels[group])
        metrics["test_rest_acc"] = accuracy(test_logits[~group], test_labels[~group])
    return metrics


def evaluate(
    model: nn.Module, splits: dict[str, SplitData], scenario: Scenario, preprocess: Preprocess, batch_size: int = 1024,
    test_group: np.ndarray | None = None,
) -> Evaluation:
    """One pass per split, then every metric from the logits; timed as a whole (``test_group``:
    see :func:`split_metrics`)."""
    device = next(model.parameters()).device
    synchronize(device)
    start = time.perf_counter()
    logits = {name: predict_logits(model, split.images, preprocess, batch_size) for name, split in splits.items()}
    labels = {name: split.labels for name, split in splits.items()}
    metrics = split_metrics(logits, labels, scenario, test_group)
    seconds = time.perf_counter() - start
    return Evaluation(logits=logits, labels=labels, metrics=metrics, seconds=seconds)


def save_logits(path: Path, evaluation: Evaluation) -> None:
    """Logits (float32) and labels of every split, written atomically. Not compressed:
    float32 logits shrink by under 10% (measured on digits) at ten times the time."""
    arrays = {f"logits_{name}": value for name, value in evaluation.logits.items()}
    arrays.update({f"labels_{name}": value.astype(np.int64) for name, value in evaluation.labels.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_logits(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The logits and labels saved by :func:`save_logits` (no pickle)."""
    with np.load(path, allow_pickle=False) as archive:
        logits = {k.removeprefix("logits_"): archive[k] for k in archive.files if k.startswith("logits_")}
        labels = {k.removeprefix("labels_"): archive[k] for k in archive.files if k.startswith("labels_")}
    return logits, labels


ACCURACIES = ("forget_acc", "retain_acc", "test_acc")
ATTACKS = ("mia_entropy", "mia_conf_svc", "mia_mentr_svc", "mia_loss_cv", "mia_auc", "mia_tpr_1fpr")
GAP_METRICS = (*ACCURACIES, "mia_entropy", "mia_conf_svc", "mia_auc")
# Each average gap: the mean of |Δ| to the retrained model over its terms. avg_gap is SalUn's
# Avg. Gap (Fan et al., ICLR 2024): the three accuracies and MIA-efficacy (mia_conf_svc).
AVERAGE_GAPS = {
    "avg_gap": (*ACCURACIES, "mia_conf_svc"),
    "avg_gap_entropy": (*ACCURACIES, "mia_entropy"),
    "avg_gap_auc": (*ACCURACIES, "mia_auc"),
    "acc_gap": ACCURACIES,
}


def metric_terms(metric: str) -> tuple[str, ...]:
    """The per-model metrics a gap metric is made of (``avg_gap`` → its four terms,
    ``gap_x`` → x); any other metric stands for itself."""
    if metric in AVERAGE_GAPS:
        return AVERAGE_GAPS[metric]
    return (metric.removeprefix("gap_"),) if metric.startswith("gap_") else (metric,)


def mia_metrics(
    logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], scenario: Scenario, seed: int,
    svc_max_samples: int | None = None, only: frozenset[str] | None = None, test_group: np.ndarray | None = None,
) -> dict[str, float]:
    """Every membership-inference score of one model (see :mod:`bench.evaluation.metrics.mia`), or only
    those named in ``only`` (a tuning trial computes what its objective reads; the SVC and
    cross-validated fits are most of an evaluation's cost). Where the forgotten group has
    test samples (``test_group``: a class, a sequence's classes, a subpopulation) the loss
    attacks compare the forget set with those, so group identity alone cannot separate them."""
    wanted = set(ATTACKS if only is None else only)
    test_logits, test_labels = logits["test"], labels["test"]
    group = test_group if test_group is not None else default_test_group(scenario, test_labels)
    if group is not None:
        test_logits, test_labels = test_logits[group], test_labels[group]
    forget_loss = per_example_loss(logits["forget"], labels["forget"])
    test_loss = per_example_loss(test_logits, test_labels)
    svc_args = (logits["retain"], labels["retain"], logits["test"], labels["test"], logits["forget"], labels["forget"], seed,
                svc_max_samples)
    attacks = {
        "mia_entropy": lambda: mia_entropy(logits["retain"], logits["test"], logits["forget"]),
        "mia_conf_svc": lambda: mia_conf_svc(*svc_args),
        "mia_mentr_svc": lambda: mia_mentr_svc(*svc_args),
        "mia_loss_cv": lambda: mia_loss_cv(forget_loss, test_loss, seed),
    }
    scores = {name: attack() for name, attack in attacks.items() if name in wanted}
    if wanted & {"mia_auc", "mia_tpr_1fpr"}:
        scores["mia_auc"], scores["mia_tpr_1fpr"] = mia_auc(forget_loss, test_loss)
    return scores


def reference_metrics(
    logits: dict[str, np.ndarray], reference: dict[str, np.ndarray], random_forget: np.ndarray, num_classes: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Distances to the retrained model (same dataset, scenario and seed) and to a randomly
    initialised one, and the forget set's predicted-class histograms of both models. A model
    with more outputs than the references (boundary expand unpruned) is compared with them
    as references that never predict the extra classes."""
    width = logits["forget"].shape[1]
    reference = {name: with_missing_outputs(value, width) for name, value in reference.items()}
    random_forget = with_missing_outputs(random_forget, width)
    num_classes = max(num_classes, width)
    metrics = {
        "js_retrain": mean_js(logits["forget"], reference["forget"]),
        "js_retrain_test": mean_js(logits["test"], reference["test"]),
        "kl_retrain": mean_kl(reference["forget"], logits["forget"]),
        "pred_dist_js": prediction_distribution_js(logits["forget"], reference["forget"], num_classes),
        "act_dist": activation_distance(logits["forget"], reference["forget"]),
        "zrf": zrf(logits["forget"], random_forget),
        "zrf_compat": zrf_compat(logits["forget"], random_forget),
    }
    histograms = {
        "model": prediction_histogram(logits["forget"], num_classes).tolist(),
        "retrain": prediction_histogram(reference["forget"], num_classes).tolist(),
    }
    return metrics, histograms


def with_missing_outputs(logits: np.ndarray, width: int) -> np.ndarray:
    """``logits`` widened to ``width`` columns by outputs the model lacks: each 100 below the
    row's smallest logit, so their probability is under e^-100 and every divergence stays finite."""
    missing = width - logits.shape[1]
    if missing <= 0 or len(logits) == 0:
        return logits
    floor = logits.min(axis=1, keepdims=True) - 100
    return np.concatenate([logits, np.repeat(floor, missing, axis=1)], axis=1).astype(logits.dtype)


def gap_metrics(metrics: dict[str, float], reference_metrics: dict[str, float]) -> dict[str, float]:
    """``gap_<m>`` = |m − retrain's m| for accuracy on the three sets and three attacks, and
    the average gaps of :data:`AVERAGE_GAPS` (``avg_gap``: SalUn's Avg. Gap); a model
    evaluated on fewer metrics (a tuning trial) gets the gaps its metrics allow."""
    gaps = {f"gap_{name}": abs(metrics[name] - reference_metrics[name]) for name in GAP_METRICS if name in metrics}
    for name, terms in AVERAGE_GAPS.items():
        if all(f"gap_{term}" in gaps for term in terms):
            gaps[name] = float(np.mean([gaps[f"gap_{term}"] for term in terms]))
    return gaps


def weight_distance(model: nn.Module, reference: nn.Module) -> float:
    """‖θ_u − θ_r‖ / ‖θ_r‖ over the parameters; meaningful only where both share an
    initialisation (the retrained model shares the original's, so methods that edit the
    original do). NaN when the architectures differ."""
    ours, theirs = dict(model.named_parameters()), dict(reference.named_parameters())
    if ours.keys() != theirs.keys() or any(ours[k].shape != theirs[k].shape for k in ours):
        return float("nan")
    diff = sum(float((ours[k].detach().double() - theirs[k].detach().double()).square().sum()) for k in ours)
    norm = sum(float(theirs[k].detach().double().square().sum()) for k in ours)
    return float(np.sqrt(diff / norm))
