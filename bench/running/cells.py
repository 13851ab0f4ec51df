"""The one cell runner: a method's request (or a sequence of them, :mod:`bench.running.request`,
:mod:`bench.running.sequence`) and its run record written atomically. The sweep, the Ray
backend and the tuner all run a cell through :func:`run_cell`."""

from __future__ import annotations

import contextlib
import gc
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

from bench.config.sweep import TUNED_SUFFIX, SweepConfig
from bench.evaluation.evaluate import save_logits
from bench.registry import NotApplicable
from bench.running.grid import (
    Cell, PreparedData, cell_key, config_numerics, method_generator, needs_update_record, planned_splits, scenario_splits,
    setting_params, task_threads,
)
from bench.running.model_store import ModelStore
from bench.running.request import SWEEP, Measure, run_request
from bench.running.results import record_path, write_record
from bench.running.sequence import run_sequence
from bench.training.loop import use_numerics, warm_up


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


def tuning_summary(config: SweepConfig, cell: Cell) -> dict[str, Any] | None:
    """For a ``<name>+tuned`` cell, how its parameters were chosen (from the tuned file)."""
    if config.tuned is None or not cell.method.name.endswith(TUNED_SUFFIX):
        return None
    source = config.tuned_scenario(cell.scenario.spec)
    entry = config.tuned.entry(cell.dataset.name, source, cell.method.name.removesuffix(TUNED_SUFFIX))
    return {
        "scenario": source,
        "of": entry.method, "params": entry.params, "objective": entry.objective, "default_objective": entry.default_objective,
        "trials": entry.trials, "budget": config.tuned.budget_of(entry), "tuning_seeds": config.tuned.tuning_seeds,
        "validation_objective": config.tuned.objective,
    }


def run_cell(
    cell: Cell, prepared: PreparedData, models: ModelStore, out_dir: Path, config: SweepConfig, env: dict[str, Any],
    measure: Measure = SWEEP,
) -> dict[str, Any]:
    """Run one method on one (dataset, scenario, seed), evaluate it (``measure`` says how
    fully), write its record, return it. A sequence runs its requests one after the other
    (:func:`bench.running.sequence.run_sequence`); its record's metrics are the last
    request's, and ``requests`` holds every request's."""
    splits = scenario_splits(out_dir, prepared, cell.scenario, cell.seed)
    split, split_file = splits[-1]
    original = models.original(prepared, cell.seed, planned_splits(out_dir, prepared, config, cell.seed))
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
    logs: list[dict[str, Any]] = []
    try:
        if cell.scenario.sequential:
            outcomes = run_sequence(cell, prepared, models, [s for s, _ in splits], original, config, measure, logs)
        else:
            generator = method_generator(cell, prepared)
            outcomes = [run_request(cell, prepared, models, split, original, original, config, measure, generator, logs)]
    except NotApplicable as reason:
        record.update(status="not_applicable", reason=str(reason), method_log=logs[-1] if logs else {})
    except Exception as error:  # a failing method never stops the sweep
        record.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    else:
        last = outcomes[-1]
        record["timings"] = last.timings
        record["metrics"] = last.metrics
        if cell.scenario.sequential:
            record["requests"] = [outcome.summary() for outcome in outcomes]
        record["memory_kind"] = "cuda_max_allocated" if models.device.type == "cuda" else "process_anon_rss_sampled"
        record["prediction_histograms"] = last.histograms
        record["method_log"] = logs[-1]
        record["status"] = "ok"
        if measure.save_logits:
            logits_file = record_path(out_dir, cell.cell_id).with_suffix(".logits.npz")
            save_logits(logits_file, last.evaluation)
            record["logits_file"] = str(logits_file.relative_to(out_dir))
    record["finished_at"] = datetime.now(timezone.utc).isoformat()
    write_record(out_dir, cell.cell_id, record)
    return record


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
