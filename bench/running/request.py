"""One request of a cell: the method run on a copy of a model (the original, or a
sequence's model so far), timed alone, then evaluated with one pass per split against the
model retrained without everything forgotten so far. :func:`bench.running.cells.run_cell`
runs one request, :func:`bench.running.sequence.run_sequence` several."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.config.sweep import EvaluationConfig, SweepConfig
from bench.core.resources import OperationCounter, PeakMemory
from bench.data.splits import Split
from bench.evaluation.costly import (
    RunOutcome, forget_accuracy, forget_quality_metrics, map_runs, relearn_metrics, relearn_steps, retain_relearn_accuracy,
    retain_relearn_metrics, run_outcome,
)
from bench.evaluation.evaluate import Evaluation, evaluate, gap_metrics, mia_metrics, reference_metrics, weight_distance
from bench.evaluation.metrics.divergence import prediction_histogram
from bench.evaluation.reference import Reference
from bench.registry import UnlearnTask, get_method
from bench.running.grid import (
    Cell, PreparedData, evaluation_splits, forgotten_test_mask, generator_for, method_generator, record_name,
)
from bench.running.model_store import ModelStore
from bench.training.loop import CachedModel, synchronize
from bench.training.update_record import TrainingRecord


def non_finite_tensors(model: nn.Module) -> list[str]:
    state = model.state_dict()
    return [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def make_task(
    cell: Cell, prepared: PreparedData, models: ModelStore, split: Split, original: CachedModel,
    generator: torch.Generator, retrain_replica: int = 0,
) -> UnlearnTask:
    """What the cell's method is given to forget ``split``'s newest request from ``original``
    (in a sequence, the model so far); ``retrain_replica`` picks which retrained model a
    method that needs one gets (0: the reference; others: the costly tier's extra runs)."""
    data = prepared.data
    forget, retain = split.newest.to(data.train_x.device), split.retain.to(data.train_x.device)
    task = UnlearnTask(
        forget_x=data.train_x[forget],
        forget_y=data.train_y[forget],
        retain_x=data.train_x[retain],
        retain_y=data.train_y[retain],
        num_classes=data.num_classes,
        scenario=cell.scenario,
        new_model=lambda seed: models.new_model(prepared, seed),
        device=models.device,
        generator=generator,
        preprocess=prepared.preprocess,
        recipe=prepared.config.recipe,
        seed=cell.seed,
        shared=models.shared_work(original, split),
    )
    method_class = get_method(cell.method.method)
    if "retrain_reference" in method_class.needs:
        task.retrain_reference = lambda: models.retrained(prepared, cell.seed, split, replica=retrain_replica)
    if "training_record" in method_class.needs:
        task.training_record = TrainingRecord.from_tensors(original.extra, record_name(split), original.model)
    return task


@dataclass(frozen=True)
class Measure:
    """What a cell measures besides its method's result. A sweep cell: every metric, its
    peak memory, its logits saved. A tuning trial: only the attacks its objective reads
    (``attacks``; the SVC and cross-validated fits are most of an evaluation), and its cost
    as a count of floating-point operations (``count_flops``: deterministic, unlike time,
    so a cost cap rejects the same trials on every run; it intercepts every operation: 1.2x
    slower on MNIST-sized steps, up to 2x on the digits' tiny ones)."""

    attacks: frozenset[str] | None = None
    count_flops: bool = False
    memory: bool = True
    save_logits: bool = True


SWEEP = Measure()


@dataclass
class MethodRun:
    """One run of a method: the unlearned model, its wall time (device synchronised), its
    peak memory and its floating-point operations (where measured)."""

    model: nn.Module
    seconds: float
    memory: PeakMemory | None
    flops: int | None = None


def run_method(cell: Cell, task: UnlearnTask, original: CachedModel, measure_memory: bool = True) -> MethodRun:
    """Run the cell's method on a copy of the original (counting its operations where
    ``task.count_flops``); raise if it returns no usable model."""
    method_class = get_method(cell.method.method)
    method = method_class(method_class.Config.model_validate(cell.method.params))
    model = copy.deepcopy(original.model)
    synchronize(task.device)
    memory = PeakMemory(task.device) if measure_memory else None
    counter = OperationCounter(display=False) if task.count_flops else None
    with memory or contextlib.nullcontext(), counter or contextlib.nullcontext():
        start = time.perf_counter()
        unlearned = method.unlearn(model, task)
        synchronize(task.device)
        seconds = time.perf_counter() - start
    if not isinstance(unlearned, nn.Module):
        raise TypeError(f"unlearn() returned {type(unlearned).__name__}, not a torch.nn.Module")
    bad = non_finite_tensors(unlearned)
    if bad:
        raise FloatingPointError(f"non-finite weights after unlearning in {', '.join(bad[:3])}")
    flops = counter.get_total_flops() + task.reused_flops if counter is not None else None
    return MethodRun(unlearned, seconds, memory, flops)


def costly_metrics(
    cell: Cell, prepared: PreparedData, models: ModelStore, split: Split, original: CachedModel,
    unlearned: nn.Module, reference: Reference, evaluation: EvaluationConfig,
) -> dict[str, float]:
    """The costly tier: relearn steps and anamnesis index against the retrained model, the
    forget accuracy after retain-only fine-tuning beside the retrained model's (the same
    samples and order), and the challenge's forget quality from K more runs of the method
    (each with a generator of its own, from the same original) against the K retrained replicas."""
    metrics: dict[str, float] = {}
    splits = evaluation_splits(prepared, split)
    batch_size = evaluation.inference_batch(models.device)
    if evaluation.retain_relearn is not None and reference.retain_relearn is not None:
        after = retain_relearn_accuracy(
            unlearned, splits, evaluation.retain_relearn, prepared.preprocess, generator_for(cell.seed, "retain-relearn"),
            batch_size,
        )
        before = forget_accuracy(unlearned, splits["forget"], prepared.preprocess, batch_size)
        metrics.update(retain_relearn_metrics(after, reference.retain_relearn, before))
    if evaluation.relearn is not None and reference.relearn is not None:
        target = (1 - evaluation.relearn.alpha) * reference.original_forget_acc
        steps, censored = relearn_steps(
            unlearned, splits["forget"], target, evaluation.relearn, prepared.preprocess,
            generator_for(cell.seed, "relearn"), evaluation.inference_batch(models.device),
        )
        metrics.update(relearn_metrics(steps, censored, *reference.relearn))
    if evaluation.forget_quality is not None:
        runs = evaluation.forget_quality.runs

        def one_run(k: int) -> RunOutcome:
            generator = method_generator(cell, prepared, "run", k)
            task = make_task(cell, prepared, models, split, original, generator, retrain_replica=runs + k)
            unlearned = run_method(cell, task, original, measure_memory=False).model
            return run_outcome(unlearned, splits, prepared.preprocess, evaluation.inference_batch(models.device))

        outcomes = map_runs(one_run, range(1, runs + 1), models.device, evaluation.forget_quality.workers)
        metrics.update(forget_quality_metrics(outcomes, reference.replica_outcomes, evaluation.forget_quality.delta))
    return metrics


@dataclass
class RequestOutcome:
    """One request's result: the unlearned model, its evaluation and metrics, the forget
    set's prediction histograms, and what it and retraining cost."""

    model: nn.Module
    evaluation: Evaluation
    metrics: dict[str, float]
    histograms: dict[str, list[float]]
    timings: dict[str, float]
    forget_size: int
    request_size: int

    def summary(self) -> dict[str, Any]:
        return {"forget_size": self.forget_size, "request_size": self.request_size, "metrics": self.metrics,
                "timings": self.timings}


def run_request(
    cell: Cell, prepared: PreparedData, models: ModelStore, split: Split, original: CachedModel, start: CachedModel,
    config: SweepConfig, measure: Measure, generator: torch.Generator, logs: list[dict[str, Any]], request: int | None = None,
) -> RequestOutcome:
    """Run the method on a copy of ``start`` (the original, or a sequence's model so far) to
    forget ``split``'s newest request, then evaluate it against the model retrained on
    ``split``'s retain set; ``logs`` gets the method's log."""
    task = make_task(cell, prepared, models, split, start, generator)
    task.count_flops = measure.count_flops
    logs.append(task.log)
    run = run_method(cell, task, start, measure.memory)
    reference = models.reference(prepared, cell, split, original, config.evaluation, request)
    batch_size = config.evaluation.inference_batch(models.device)
    started = time.perf_counter()
    group = forgotten_test_mask(split)
    splits = evaluation_splits(prepared, split)
    evaluation = evaluate(run.model, splits, cell.scenario, prepared.preprocess, batch_size, group)
    mia = mia_metrics(
        evaluation.logits, evaluation.labels, cell.scenario, cell.seed, config.evaluation.svc_max_samples, measure.attacks,
        group,
    )
    distances, histograms = reference_metrics(
        evaluation.logits, reference.evaluation.logits, reference.random_forget_logits, prepared.data.num_classes
    )
    gaps = gap_metrics({**evaluation.metrics, **mia}, reference.metrics)
    weights = weight_distance(run.model, reference.retrained.model)
    eval_seconds = time.perf_counter() - started
    started = time.perf_counter()
    costly = costly_metrics(cell, prepared, models, split, start, run.model, reference, config.evaluation)
    costly_seconds = time.perf_counter() - started
    method_seconds = task.charged_seconds if task.charged_seconds is not None else run.seconds + task.reused_seconds
    memory = (run.memory.peak_mib, run.memory.delta_mib) if run.memory is not None else (math.nan, math.nan)
    peak_mib, delta_mib = task.charged_memory_mib or memory
    speedup = reference.retrained.train_seconds / method_seconds if method_seconds > 0 else float("inf")
    metrics = {
        **evaluation.metrics, **mia, **distances, **gaps, "weight_dist": weights,
        "time_s": method_seconds, "speedup": speedup, "peak_mem_mib": peak_mib, "mem_delta_mib": delta_mib,
        "eval_s": eval_seconds, **costly,
        **(flop_metrics(run.flops, models.retraining_flops(prepared, split)) if run.flops is not None else {}),
    }
    original_histogram = prediction_histogram(reference.original_forget_logits, len(histograms["model"]))
    timings = {"method_s": method_seconds, "method_measured_s": run.seconds, "eval_s": eval_seconds,
               "costly_s": costly_seconds, "retrain_s": reference.retrained.train_seconds}
    return RequestOutcome(
        run.model, evaluation, metrics, {**histograms, "original": original_histogram.tolist()}, timings,
        len(split.forget), len(split.newest),
    )


def flop_metrics(flops: int, retraining_flops: float) -> dict[str, float]:
    """The method's floating-point operations and their share of retraining's (its cost as
    a multiple of retraining's, machine-independent)."""
    return {"flops": float(flops), "cost_ratio": flops / retraining_flops if retraining_flops > 0 else math.inf}
