"""Sequential deletion requests (``seq:<n>:<base>``): request i is forgotten from the model
request i − 1 left, given that request's samples and the data still retained, and the
result is measured against a model retrained without every request so far (n retrained
references per seed, cached and shared by every method, as for one request).

Cost is cumulative: after request i, ``time_s`` is the method's time over requests 1..i
and ``speedup`` retraining's over the same requests (retraining after each of them) divided
by it; ``request_time_s`` is request i's own time. ``request_forget_acc`` is the accuracy on
request i's samples alone; ``forget_acc`` and every other forget-set metric read the union
of the requests so far, which is what the retrained reference never saw.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from bench.config.sweep import SweepConfig
from bench.core.store import stable_hash
from bench.data.splits import Split
from bench.evaluation.metrics import accuracy
from bench.registry import NotApplicable, get_method
from bench.running.grid import Cell, PreparedData, method_generator
from bench.running.model_store import ModelStore
from bench.running.request import Measure, RequestOutcome, run_request
from bench.training.loop import CachedModel


def run_sequence(
    cell: Cell, prepared: PreparedData, models: ModelStore, splits: list[Split], original: CachedModel, config: SweepConfig,
    measure: Measure, logs: list[dict[str, Any]],
) -> list[RequestOutcome]:
    """Every request of the cell's sequence in order, each on the previous request's model;
    ``splits[i]`` is what request i + 1 leaves (:func:`bench.data.splits.sequence_splits`)."""
    if "training_record" in get_method(cell.method.method).needs:
        raise NotApplicable(
            "needs the original training's updates of the forget set; after the first request the model is no longer "
            "the one those updates describe, and its paper does not say how to undo a second request"
        )
    outcomes: list[RequestOutcome] = []
    start = original
    for number, split in enumerate(splits, start=1):
        generator = method_generator(cell, prepared, "request", number)
        outcome = run_request(cell, prepared, models, split, original, start, config, measure, generator, logs, number)
        outcomes.append(with_sequence_metrics(outcome, split, outcomes))
        start = CachedModel(outcome.model, 0.0, False, stable_hash([original.key, cell.cell_id, number], length=64))
    return outcomes


def with_sequence_metrics(outcome: RequestOutcome, split: Split, earlier: list[RequestOutcome]) -> RequestOutcome:
    """``outcome`` with the cumulative cost after it and its own request's forget accuracy."""
    method_s = sum(o.timings["method_s"] for o in earlier) + outcome.timings["method_s"]
    retrain_s = sum(o.timings["retrain_s"] for o in earlier) + outcome.timings["retrain_s"]
    newest = torch.isin(split.forget, split.newest).numpy()
    logits, labels = outcome.evaluation.logits["forget"], outcome.evaluation.labels["forget"]
    metrics = {
        **outcome.metrics,
        "request_time_s": outcome.timings["method_s"],
        "time_s": method_s,
        "speedup": retrain_s / method_s if method_s > 0 else math.inf,
        "request_forget_acc": accuracy(logits[newest], labels[newest]) if bool(np.any(newest)) else math.nan,
    }
    return replace(outcome, metrics=metrics)
