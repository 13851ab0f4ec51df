"""What every cell of one (dataset, scenario, seed) is compared with, and its file.

The reference (the retrained model's logits and metrics on every split, a random model's
and the original's forget-set logits, and with the costly tier the retrained model's
relearn steps, the K replicas' outcomes and its forget accuracy after retain-only
fine-tuning) is computed once and saved beside the run
records, keyed by the models and the evaluation config it comes from. A method added to
a finished sweep, or a worker of a Ray cluster, loads it instead of evaluating the
retrained model again. One ``.npz`` file, written atomically, read without pickle.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.costly import RunOutcome
from bench.evaluation.evaluate import Evaluation
from bench.core.store import atomic_write_bytes
from bench.training.loop import CachedModel


@dataclass(frozen=True)
class Reference:
    """What every cell of one (dataset, scenario, seed) is compared with."""

    retrained: CachedModel
    evaluation: Evaluation
    metrics: dict[str, float]
    random_forget_logits: np.ndarray
    original_forget_logits: np.ndarray
    original_forget_acc: float
    relearn: tuple[int, bool] | None
    replica_outcomes: list[RunOutcome]
    retain_relearn: float | None = None
    """The retrained model's forget accuracy after retain-only fine-tuning (costly tier)."""


def save_reference(path: Path, key: str, reference: Reference) -> None:
    outcomes = reference.replica_outcomes
    arrays = {f"logits_{name}": value for name, value in reference.evaluation.logits.items()}
    arrays.update({f"labels_{name}": value.astype(np.int64) for name, value in reference.evaluation.labels.items()})
    arrays["random_forget"] = reference.random_forget_logits
    arrays["original_forget"] = reference.original_forget_logits
    if outcomes:
        arrays["replica_forget_confidence"] = np.stack([o.forget_confidence for o in outcomes])
        arrays["replica_accuracies"] = np.array([[o.retain_acc, o.test_acc] for o in outcomes], dtype=np.float64)
    header = {
        "key": key, "evaluation_metrics": reference.evaluation.metrics, "evaluation_seconds": reference.evaluation.seconds,
        "metrics": reference.metrics, "original_forget_acc": reference.original_forget_acc,
        "relearn": list(reference.relearn) if reference.relearn is not None else None,
        "retain_relearn": reference.retain_relearn,
    }
    arrays["header"] = np.array(json.dumps(header))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_reference(path: Path, key: str, retrained: CachedModel) -> Reference | None:
    """The saved reference if it is there, readable, complete and made for ``key``; else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            if header.get("key") != key:
                return None
            arrays = {name: archive[name] for name in archive.files}
        return _reference(header, arrays, retrained)
    except (OSError, ValueError, KeyError, TypeError, IndexError, json.JSONDecodeError, zipfile.BadZipFile):
        return None


def _reference(header: dict, arrays: dict[str, np.ndarray], retrained: CachedModel) -> Reference:
    """A reference from a file's header and arrays; a missing entry raises ``KeyError``."""
    logits = {k.removeprefix("logits_"): v for k, v in arrays.items() if k.startswith("logits_")}
    labels = {k.removeprefix("labels_"): v for k, v in arrays.items() if k.startswith("labels_")}
    outcomes = []
    if "replica_forget_confidence" in arrays:
        outcomes = [
            RunOutcome(confidence, float(accuracies[0]), float(accuracies[1]))
            for confidence, accuracies in zip(arrays["replica_forget_confidence"], arrays["replica_accuracies"])
        ]
    relearn = header["relearn"]
    return Reference(
        retrained, Evaluation(logits, labels, header["evaluation_metrics"], header["evaluation_seconds"]), header["metrics"],
        arrays["random_forget"], arrays["original_forget"], header["original_forget_acc"],
        (int(relearn[0]), bool(relearn[1])) if relearn is not None else None, outcomes, header.get("retain_relearn"),
    )
