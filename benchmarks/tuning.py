"""The tuner's cost: a trial's cell against a sweep cell's (a trial measures only what its
objective reads and counts its operations), and a whole tuning against the protocol before
issue 25 (every trial on every seed, every metric) at the same trials × seeds."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch
import yaml

from bench.running.cells import SWEEP, run_cell
from bench.config.sweep import load_config
from bench.running.grid import Cell, config_numerics
from bench.running.model_store import ModelStore
from bench.data.splits import parse_scenario
from bench.tuning import trials
from bench.tuning.command import run_tune
from bench.tuning.local import prepare_tuning_data, tuning_view
from benchmarks.common import Measurement, paired_seconds

METHODS = ["finetune", "ssd", "rl", "salun", "scrub", "fcalb"]


def quick_config(work: Path, **tuning):
    """The quick profile's digits, one thread, the methods above at their defaults."""
    raw = yaml.safe_load(Path("configs/quick.yaml").read_text())
    raw.update(methods=METHODS, tuned=None, resources={"cpus": 1}, tuning={**raw["tuning"], **tuning})
    raw.pop("tuned")
    work.mkdir(parents=True, exist_ok=True)
    path = work / "tuning-bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def trial_cell_cost(work: Path, repeats: int = 3) -> Measurement:
    """Seconds of a trial's three cells of one method (the first counting its operations, the
    others not) against three sweep cells, summed over the methods; each cell the best of
    ``repeats`` back-to-back pairs on the same warm models (work kept across runs cleared
    before each, so both sides compute it)."""
    config = tuning_view(quick_config(work))
    prepared = prepare_tuning_data(config, torch.device("cpu"))["digits"]
    models = ModelStore(work / "cache", torch.device("cpu"), False, numerics=config_numerics(config))
    torch.set_num_threads(1)
    first, later = trials.trial_measure(config.tuning), trials.trial_measure(config.tuning, first_seed=False)
    ours, theirs = 0.0, 0.0
    details = {}
    for method in config.methods:
        cell = Cell(config.datasets[0], parse_scenario("random:0.1", 10), 100, method)

        def run(m, c=cell):
            models._shared.clear()
            run_cell(c, prepared, models, work / "cells", config, {}, m)

        counted, sweep = paired_seconds(lambda: run(first), lambda: run(SWEEP), repeats)
        uncounted, _ = paired_seconds(lambda: run(later), lambda: None, repeats)
        trial = min(counted) + 2 * min(uncounted)
        details[method.name] = {"first_seed_s": min(counted), "later_seed_s": min(uncounted), "sweep_s": min(sweep)}
        ours, theirs = ours + trial, theirs + 3 * min(sweep)
    return Measurement(
        "tuning: a trial's 3 cells ÷ 3 sweep cells (6 methods, digits)", ours, theirs, "s", ours / theirs, 1.0, False,
        "best of 3 back-to-back runs per cell, one thread; a trial skips the SVC and cross-validated attacks its "
        "objective does not read, and counts operations (the cost cap) on its first seed", details,
    )


@contextlib.contextmanager
def protocol_before_issue_25():
    """Trials measured as sweep cells (every metric), for the comparison only."""
    lean = trials.trial_measure
    trials.trial_measure = lambda tuning, first_seed=True: SWEEP
    try:
        yield
    finally:
        trials.trial_measure = lean


def whole_tuning(work: Path, trials_per_study: int = 8) -> Measurement:
    """Wall time of tuning 6 methods × 2 scenarios, 8 trials on 3 seeds each, locally on one
    thread: raced and lean against every trial on every seed with every metric."""
    seconds = {}
    runs = {}
    run_tune(quick_config(work, trials=1), work / "tune-warm", cache_dir=work / "cache", progress=False)  # trains the models
    for name, settings in (("raced", {}), ("before", {"race_z": None})):
        config = quick_config(work, trials=trials_per_study, **settings)
        out = work / f"tune-{name}"
        context = protocol_before_issue_25() if name == "before" else contextlib.nullcontext()
        start = time.perf_counter()
        with context:
            run_tune(config, out, cache_dir=work / "cache", progress=False)
        seconds[name] = time.perf_counter() - start
        runs[name] = len(list(out.glob("studies/*/runs/*.json")))
    return Measurement(
        "tuning: raced, lean trials ÷ every seed, every metric", seconds["raced"], seconds["before"], "s",
        seconds["raced"] / seconds["before"], 1.0, False,
        f"6 methods × 2 scenarios × {trials_per_study} trials × 3 seeds, digits, one thread, models cached before both",
        {"cells_raced": runs["raced"], "cells_before": runs["before"]},
    )
