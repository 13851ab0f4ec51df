"""One trial of the tuner: a method's parameters run as sweep cells on every tuning seed.

A trial is the cell runner's work (:func:`bench.cells.run_cell`, the same metrics and the
same records as a sweep), on the tuner's view of the data (validation in the test set's
place), once per tuning seed; its value is the mean of the objective over those seeds.
The local backend calls :func:`run_trial` in the driver; the Ray backend in a task.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.cells import run_cell
from bench.config import SweepConfig
from bench.grid import Cell, PreparedData
from bench.model_store import ModelStore
from bench.tuning.studies import StudySpec, TrialOutcome
from bench.tuning.config import TuningConfig


def run_trial(
    spec: StudySpec, params: dict[str, Any], number: int, prepared: PreparedData, models: ModelStore, out_dir: Path,
    config: SweepConfig, env: dict[str, Any],
) -> TrialOutcome:
    """Run the trial's cells (one per tuning seed) and judge them; never raises for a
    failing method."""
    records = []
    for seed in config.tuning.seeds:
        cell = Cell(spec.dataset, spec.scenario, seed, spec.trial_entry(params, number))
        records.append(run_cell(cell, prepared, models, study_dir(out_dir, spec), config, env))
    return judge(records, config.tuning)


def study_dir(out_dir: Path, spec: StudySpec) -> Path:
    """Where a study's trial records go (``runs/``, with their splits): a folder per study,
    so that a new study (a changed setting) never overwrites an old one's records."""
    return out_dir / "studies" / spec.name


def judge(records: list[dict[str, Any]], tuning: TuningConfig) -> TrialOutcome:
    """The outcome of a trial from its run records: failed if any cell did not end ``ok``
    or gave a non-finite objective; rejected if the method took longer than
    ``max_time_ratio`` of retraining (mean over seeds); else the mean objective."""
    for record in records:
        if record["status"] != "ok":
            return TrialOutcome("failed", reason=f"{record['cell']}: {record.get('error') or record.get('reason')}")
    values = [float(record["metrics"][tuning.objective]) for record in records]
    if not all(math.isfinite(v) for v in values):
        return TrialOutcome("failed", reason=f"{tuning.objective} is not finite: {values}")
    ratios = [1.0 / record["metrics"]["speedup"] if record["metrics"]["speedup"] > 0 else math.inf for record in records]
    ratio = float(np.mean(ratios))
    if tuning.max_time_ratio is not None and ratio > tuning.max_time_ratio:
        return TrialOutcome(
            "rejected", reason=f"took {ratio:.3f} of retraining's time, over max_time_ratio {tuning.max_time_ratio:g}",
            time_ratio=ratio,
        )
    return TrialOutcome("complete", value=float(np.mean(values)), time_ratio=ratio)
