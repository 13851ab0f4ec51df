"""One trial of the tuner: a method's parameters run as sweep cells, seed after seed.

A trial is the cell runner's work (:func:`bench.running.cells.run_cell`, the same code and records
as a sweep, measuring only what the objective reads and the method's operations), on the
tuner's view of the data (validation in the test set's place), once per tuning seed in
order. After each seed it may end: failed (the method failed), rejected (over a cost cap)
or pruned (the race: clearly worse than the best trial on the same seeds). Only a trial
run on every seed is complete; its value is the mean of the objective over the seeds.
The local backend calls :func:`run_trial` in the driver; the Ray backend in a task.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.running.cells import Measure, run_cell
from bench.config.sweep import SweepConfig
from bench.evaluation.evaluate import ATTACKS, metric_terms
from bench.running.grid import Cell, PreparedData
from bench.running.model_store import ModelStore
from bench.config.tuning import TuningConfig
from bench.tuning.studies import Race, StudySpec, TrialOutcome


def trial_measure(tuning: TuningConfig, first_seed: bool = True) -> Measure:
    """What a trial's cells measure: the attacks the objective reads, no memory sampling, no
    logits file, and on its first seed the operations the cost cap reads (a method does the
    same work on every seed: the forget sets of a scenario are of one size; counting slows a
    small model's steps, up to 2x on the digits, so it is done once)."""
    attacks = frozenset(term for term in metric_terms(tuning.objective) if term in ATTACKS)
    return Measure(attacks=attacks, count_flops=first_seed, memory=False, save_logits=False)


def run_trial(
    spec: StudySpec, params: dict[str, Any], number: int, race: Race, prepared: PreparedData, models: ModelStore,
    out_dir: Path, config: SweepConfig, env: dict[str, Any],
) -> TrialOutcome:
    """Run the trial's cells, one tuning seed after the other, until it is complete or ends
    early; never raises for a failing method."""
    records: list[dict[str, Any]] = []
    for index, seed in enumerate(config.tuning.seeds):
        cell = Cell(spec.dataset, spec.scenario, seed, spec.trial_entry(params, number))
        measure = trial_measure(config.tuning, first_seed=index == 0)
        records.append(run_cell(cell, prepared, models, study_dir(out_dir, spec), config, env, measure))
        outcome = judge(records, config.tuning)
        if outcome.state != "complete":
            return outcome
        if race.stops(list(outcome.seed_values)):
            mean = float(np.mean(outcome.seed_values))
            reason = f"raced out after {len(records)} of {len(config.tuning.seeds)} seeds: mean {mean:.4g} against the best's {float(np.mean(race.incumbent[:len(records)])):.4g}"
            return TrialOutcome("pruned", value=mean, reason=reason, time_ratio=outcome.time_ratio,
                                cost_ratio=outcome.cost_ratio, seed_values=outcome.seed_values)
    return outcome


def study_dir(out_dir: Path, spec: StudySpec) -> Path:
    """Where a study's trial records go (``runs/``, with their splits): a folder per study,
    so that a new study (a changed setting) never overwrites an old one's records."""
    return out_dir / "studies" / spec.name


def judge(records: list[dict[str, Any]], tuning: TuningConfig) -> TrialOutcome:
    """The outcome of a trial from the run records of the seeds it ran so far: failed if any
    cell did not end ``ok`` or gave a non-finite objective; rejected if the method did more
    operations than ``max_cost_ratio`` of retraining's, or took longer than
    ``max_time_ratio`` of its time (mean over seeds; the operations are counted on the first
    seed); else the mean objective."""
    for record in records:
        if record["status"] != "ok":
            return TrialOutcome("failed", reason=f"{record['cell']}: {record.get('error') or record.get('reason')}")
    values = tuple(float(record["metrics"][tuning.objective]) for record in records)
    if not all(math.isfinite(v) for v in values):
        return TrialOutcome("failed", reason=f"{tuning.objective} is not finite: {list(values)}", seed_values=values)
    ratios = [1.0 / record["metrics"]["speedup"] if record["metrics"]["speedup"] > 0 else math.inf for record in records]
    time_ratio = float(np.mean(ratios))
    costs = [record["metrics"]["cost_ratio"] for record in records if "cost_ratio" in record["metrics"]]
    cost_ratio = float(max(costs)) if costs else None
    if tuning.max_cost_ratio is not None and cost_ratio is not None and cost_ratio > tuning.max_cost_ratio:
        return TrialOutcome(
            "rejected", reason=f"did {cost_ratio:.3f} of retraining's operations, over max_cost_ratio {tuning.max_cost_ratio:g}",
            time_ratio=time_ratio, cost_ratio=cost_ratio, seed_values=values,
        )
    if tuning.max_time_ratio is not None and time_ratio > tuning.max_time_ratio:
        return TrialOutcome(
            "rejected", reason=f"took {time_ratio:.3f} of retraining's time, over max_time_ratio {tuning.max_time_ratio:g}",
            time_ratio=time_ratio, cost_ratio=cost_ratio, seed_values=values,
        )
    return TrialOutcome("complete", value=float(np.mean(values)), time_ratio=time_ratio, cost_ratio=cost_ratio, seed_values=values)
