"""The one cell runner: a method on a copy of the original, timed alone, then evaluated
with one pass per split, and its run record written atomically. The sweep, the Ray
backend and the tuner all run a cell through :func:`run_cell`."""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.config.sweep import TUNED_SUFFIX, EvaluationConfig, SweepConfig
from bench.evaluation.costly import RunOutcome, forget_quality_metrics, map_runs, relearn_metrics, relearn_steps, run_outcome
from bench.evaluation.evaluate import evaluate, gap_metrics, mia_metrics, reference_metrics, save_logits, weight_distance
from bench.running.grid import (
    Cell, PreparedData, cell_key, config_numerics, evaluation_splits, generator_for, method_generator,
    needs_update_record, planned_splits, record_name, setting_params, split_for, task_threads,
)
from bench.evaluation.metrics.divergence import prediction_histogram
from bench.running.model_store import ModelStore
from bench.evaluation.reference import Reference
from bench.registry import NotApplicable, UnlearnTask, get_method
from bench.core.resources import OperationCounter, PeakMemory
from bench.running.results import record_path, write_record
from bench.data.splits import Split
from bench.training.loop import CachedModel, synchronize, use_numerics, warm_up
from bench.training.update_record import TrainingRecord


def code_commit() -> str:
    """The git commit of the harness's code, or "" outside a git checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def environment(device: torch.device) -> dict[str, Any]:
    """Where a record was produced: enough to tell two machines' numbers apart."""
    commit = code_commit()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "hostname": platform.node(),
        "git_commit": commit,
    }


def non_finite_tensors(model: nn.Module) -> list[str]:
    state = model.state_dict()
    return [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def make_task(
    cell: Cell, prepared: PreparedData, models: ModelStore, split: Split, original: CachedModel,
    generator: torch.Generator, retrain_replica: int = 0,
) -> UnlearnTask:
    """What the cell's method is given; ``retrain_replica`` picks which retrained model a
    method that needs one gets (0: the reference; others: the costly tier's extra runs)."""
    data = prepared.data
    forget, retain = split.forget.to(data.train_x.device), split.retain.to(data.train_x.device)
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
    """The costly tier: relearn steps and anamnesis index against the retrained model, and
    the challenge's forget quality from K more runs of the method (each with a generator of
    its own, from the same original) against the K retrained replicas."""
    metrics: dict[str, float] = {}
    splits = evaluation_splits(prepared, split)
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


def tuning_summary(config: SweepConfig, cell: Cell) -> dict[str, Any] | None:
    """For a ``<name>+tuned`` cell, how its parameters were chosen (from the tuned file)."""
    if config.tuned is None or not cell.method.name.endswith(TUNED_SUFFIX):
        return None
    entry = config.tuned.entry(cell.dataset.name, cell.scenario.spec, cell.method.name.removesuffix(TUNED_SUFFIX))
    return {
        "of": entry.method, "params": entry.params, "objective": entry.objective, "default_objective": entry.default_objective,
        "trials": entry.trials, "budget": config.tuned.budget, "tuning_seeds": config.tuned.tuning_seeds,
        "validation_objective": config.tuned.objective,
    }


def run_cell(
    cell: Cell, prepared: PreparedData, models: ModelStore, out_dir: Path, config: SweepConfig, env: dict[str, Any],
    measure: Measure = SWEEP,
) -> dict[str, Any]:
    """Run one method on one (dataset, scenario, seed), evaluate it (``measure`` says how
    fully), write its record, return it."""
    split, split_file = split_for(out_dir, prepared, cell.scenario, cell.seed)
    original = models.original(prepared, cell.seed, planned_splits(out_dir, prepared, config, cell.seed))
    task = make_task(cell, prepared, models, split, original, method_generator(cell, prepared))
    task.count_flops = measure.count_flops
    record: dict[str, Any] = {
        "sweep": config.sweep,
        "cell": cell.cell_id,
        "cell_key": cell_key(cell, prepared, config.evaluation, config_numerics(config)),
        "dataset": cell.dataset.name,
        "model": cell.dataset.model,
        "scenario": cell.scenario.spec,
        "seed": cell.seed,
        "method": cell.method.name,
        "method_class": cell.method.method,
        "params": cell.method.resolved_params(),
        "setting_params": setting_params(cell),
        "dataset_config": cell.dataset.model_dump(),
        "evaluation_config": config.evaluation.model_dump(),
        "split": {
            "file": str(split_file.relative_to(out_dir)),
            "forget_size": len(split.forget),
            "retain_size": len(split.retain),
            "forget_sha256": split.forget_sha256,
            "retain_sha256": split.retain_sha256,
        },
        "models": {"original_key": original.key, "original_train_s": original.train_seconds},
        "env": env,
        "metrics": {},
        "timings": {},
        "error": None,
    }
    tuning = tuning_summary(config, cell)
    if tuning is not None:
        record["tuning"] = tuning
    batch_size = config.evaluation.inference_batch(models.device)
    try:
        run = run_method(cell, task, original, measure.memory)
        reference = models.reference(prepared, cell, split, original, config.evaluation)
        start = time.perf_counter()
        evaluation = evaluate(run.model, evaluation_splits(prepared, split), cell.scenario, prepared.preprocess, batch_size)
        mia = mia_metrics(
            evaluation.logits, evaluation.labels, cell.scenario, cell.seed, config.evaluation.svc_max_samples, measure.attacks,
        )
        distances, histograms = reference_metrics(
            evaluation.logits, reference.evaluation.logits, reference.random_forget_logits, prepared.data.num_classes
        )
        gaps = gap_metrics({**evaluation.metrics, **mia}, reference.metrics)
        weights = weight_distance(run.model, reference.retrained.model)
        eval_seconds = time.perf_counter() - start
        start = time.perf_counter()
        costly = costly_metrics(cell, prepared, models, split, original, run.model, reference, config.evaluation)
        costly_seconds = time.perf_counter() - start
    except NotApplicable as reason:
        record.update(status="not_applicable", reason=str(reason), method_log=task.log)
    except Exception as error:  # a failing method never stops the sweep
        record.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    else:
        method_seconds = task.charged_seconds if task.charged_seconds is not None else run.seconds + task.reused_seconds
        memory = (run.memory.peak_mib, run.memory.delta_mib) if run.memory is not None else (math.nan, math.nan)
        peak_mib, delta_mib = task.charged_memory_mib or memory
        speedup = reference.retrained.train_seconds / method_seconds if method_seconds > 0 else float("inf")
        record["timings"] = {
            "method_s": method_seconds, "method_measured_s": run.seconds, "eval_s": eval_seconds, "costly_s": costly_seconds,
        }
        record["metrics"] = {
            **evaluation.metrics, **mia, **distances, **gaps, "weight_dist": weights,
            "time_s": method_seconds, "speedup": speedup, "peak_mem_mib": peak_mib, "mem_delta_mib": delta_mib,
            "eval_s": eval_seconds, **costly,
            **(flop_metrics(run.flops, models.retraining_flops(prepared, split)) if run.flops is not None else {}),
        }
        record["memory_kind"] = "cuda_max_allocated" if models.device.type == "cuda" else "process_anon_rss_sampled"
        original_histogram = prediction_histogram(reference.original_forget_logits, len(histograms["model"]))
        record["prediction_histograms"] = {**histograms, "original": original_histogram.tolist()}
        record["method_log"] = task.log
        record["status"] = "ok"
        if measure.save_logits:
            logits_file = record_path(out_dir, cell.cell_id).with_suffix(".logits.npz")
            save_logits(logits_file, evaluation)
            record["logits_file"] = str(logits_file.relative_to(out_dir))
    record["finished_at"] = datetime.now(timezone.utc).isoformat()
    write_record(out_dir, cell.cell_id, record)
    return record


def flop_metrics(flops: int, retraining_flops: float) -> dict[str, float]:
    """The method's floating-point operations and their share of retraining's (its cost as
    a multiple of retraining's, machine-independent)."""
    return {"flops": float(flops), "cost_ratio": flops / retraining_flops if retraining_flops > 0 else math.inf}


def alias_record(cell: Cell, source: dict[str, Any], config: SweepConfig) -> dict[str, Any]:
    """The record of a cell that computes exactly what ``source``'s cell did (equal keys: a
    tuned variant whose parameters resolve to the defaults): the source's results under the
    cell's own name, marked ``same_as``; nothing is run again."""
    record = {
        **source, "cell": cell.cell_id, "method": cell.method.name, "params": cell.method.resolved_params(),
        "same_as": source["cell"],
    }
    record.pop("tuning", None)
    tuning = tuning_summary(config, cell)
    if tuning is not None:
        record["tuning"] = tuning
    return record


@contextlib.contextmanager
def local_session(
    config: SweepConfig, out_dir: Path, cache: Path, device: torch.device, progress: bool, warm: bool,
) -> Iterator[tuple[ModelStore, dict[str, Any]]]:
    """The model store and environment of cells run one after the other in this process (a
    local sweep, a local tuning, a replayed trial), with the config's thread count and
    numerics for the block; ``warm``: warm up first and give what that froze back to the
    garbage collector at the end (this process may go on)."""
    models = ModelStore(
        cache, device, progress, needs_update_record(config), reference_dir=out_dir / "references",
        numerics=config_numerics(config),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(task_threads(config))
    use_numerics(config.compile, config.precision)
    if warm:
        warm_up(device)
    try:
        yield models, environment(device)
    finally:
        torch.set_num_threads(threads)
        use_numerics()
        if warm:
            gc.unfreeze()
