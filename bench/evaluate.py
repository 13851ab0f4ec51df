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

from bench.metrics import accuracy
from bench.splits import Scenario
from bench.store import atomic_write_bytes
from bench.train import Preprocess, autocast, synchronize

SPLITS = ("forget", "retain", "test")


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, preprocess: Preprocess, batch_size: int = 1024) -> np.ndarray:
    """Logits of ``model`` (in eval mode) on uint8 ``images``, as float32 ``(N, K)``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, non_blocking=True)
        with autocast(device):
            outputs.append(model(preprocess(batch)).float())
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


def split_metrics(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], scenario: Scenario) -> dict[str, float]:
    """Accuracy on the forget, retain and test sets; for a class scenario also on the
    test samples of the forgotten class (``test_forget_class_acc``) and of the rest
    (``test_rest_acc``), which the test accuracy alone would blend."""
    metrics = {f"{name}_acc": accuracy(logits[name], labels[name]) for name in SPLITS}
    if scenario.kind == "class":
        in_class = labels["test"] == scenario.forget_class
        metrics["test_forget_class_acc"] = accuracy(logits["test"][in_class], labels["test"][in_class])
        metrics["test_rest_acc"] = accuracy(logits["test"][~in_class], labels["test"][~in_class])
    return metrics


def evaluate(
    model: nn.Module, splits: dict[str, SplitData], scenario: Scenario, preprocess: Preprocess, batch_size: int = 1024
) -> Evaluation:
    """One pass per split, then every metric from the logits; timed as a whole."""
    device = next(model.parameters()).device
    synchronize(device)
    start = time.perf_counter()
    logits = {name: predict_logits(model, split.images, preprocess, batch_size) for name, split in splits.items()}
    labels = {name: split.labels for name, split in splits.items()}
    metrics = split_metrics(logits, labels, scenario)
    seconds = time.perf_counter() - start
    return Evaluation(logits=logits, labels=labels, metrics=metrics, seconds=seconds)


def save_logits(path: Path, evaluation: Evaluation) -> None:
    """Logits (float32) and labels of every split, compressed, written atomically."""
    arrays = {f"logits_{name}": value for name, value in evaluation.logits.items()}
    arrays.update({f"labels_{name}": value.astype(np.int64) for name, value in evaluation.labels.items()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_logits(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The logits and labels saved by :func:`save_logits` (no pickle)."""
    with np.load(path, allow_pickle=False) as archive:
        logits = {k.removeprefix("logits_"): archive[k] for k in archive.files if k.startswith("logits_")}
        labels = {k.removeprefix("labels_"): archive[k] for k in archive.files if k.startswith("labels_")}
    return logits, labels
