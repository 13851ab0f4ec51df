"""Whole sweeps: reuse when a method is added, Ray's overhead, and how cost grows with
seeds and forget fractions. Each runs the quick profile from an empty model cache."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.config.sweep import SweepConfig, load_config
from bench.running.results import read_records
from bench.sweep import run_sweep
from benchmarks.common import Measurement

QUICK = Path(__file__).resolve().parent.parent / "configs" / "quick.yaml"
ADDED = "finetune_added"  # the method added to a finished sweep: finetune under a new name, 2 epochs
UNTUNED = ["tuned=null"]  # the grid these benchmarks have always timed: the defaults, without the tuned variants


def timed_sweep(out: Path, cache: Path, backend: str = "local", overrides: list[str] | None = None,
                seeds: list[int] | None = None, methods: list[str] | None = None) -> float:
    config = load_config(QUICK, UNTUNED + (overrides or []), seeds, methods)
    start = time.perf_counter()
    run_sweep(config, out, cache, progress=False, backend=backend)
    return time.perf_counter() - start


def ray_overhead(work: Path) -> tuple[Measurement, Path, Path]:
    """The quick sweep on a local Ray instance (started by the sweep, as a user would) against
    the local backend, each from an empty model cache. Returns the local run's folders too."""
    local_out, local_cache = work / "local", work / "local-cache"
    local = timed_sweep(local_out, local_cache)
    remote = timed_sweep(work / "ray", work / "ray-cache", backend="ray")
    return Measurement(
        "Ray overhead (quick sweep)", remote, local, "s", remote / local, 1.5, False,
        "local Ray instance started by the sweep (all cores), against the local backend; both from an empty model cache",
    ), local_out, local_cache


def sweep_reuse(out: Path, cache: Path, repeats: int = 3) -> Measurement:
    """Wall time of adding one method to a finished quick sweep, against the time of that
    method's own cells (method + evaluation, from their records). Each of ``repeats``
    measurements adds the method to a fresh copy of the finished sweep (copying is not
    timed); the ratio is their median, the times those of the median measurement."""
    config = load_config(QUICK, UNTUNED)
    entries = [m.model_dump() for m in config.methods] + [{"name": ADDED, "method": "finetune", "params": {"epochs": 2}}]
    extended = SweepConfig.model_validate({**config.model_dump(mode="json"), "methods": entries})
    runs = []
    for k in range(repeats):
        copy, copy_cache = out.parent / f"{out.name}-reuse{k}", cache.parent / f"{cache.name}-reuse{k}"
        shutil.copytree(out, copy)
        shutil.copytree(cache, copy_cache)
        start = time.perf_counter()
        summary = run_sweep(extended, copy, copy_cache, progress=False)
        wall = time.perf_counter() - start
        cells = [r for r in read_records(copy) if r["method"] == ADDED]
        own = sum(r["timings"]["method_s"] + r["timings"]["eval_s"] + r["timings"].get("costly_s", 0.0) for r in cells)
        runs.append((wall / own, wall, own))
        shutil.rmtree(copy)
        shutil.rmtree(copy_cache)
    ratio, wall, own = sorted(runs)[len(runs) // 2]
    return Measurement(
        "sweep reuse (add one method)", wall, own, "s", ratio, 1.1, False,
        f"{summary.ran} new cells of '{ADDED}' added to the finished quick sweep; baseline: their method + evaluation "
        f"time; median of {repeats} (ratios {', '.join(f'{r:.3f}' for r, _, _ in runs)})",
        {"ratios": [r for r, _, _ in runs]},
    )


def median_sweep(work: Path, label: str, repeats: int, **options) -> float:
    """The median wall time of ``repeats`` runs of the same sweep, each from an empty model cache."""
    times = [timed_sweep(work / f"{label}-{k}", work / f"{label}-{k}-cache", **options) for k in range(repeats)]
    return sorted(times)[len(times) // 2]


def cost_growth(work: Path, baseline_repeats: int = 3) -> list[Measurement]:
    """The quick sweep's wall time for 1, 2, 4 and 8 seeds, and for one random scenario of
    1%, 10% and 30% (seed 0), each from an empty model cache; ratio = time per seed (or per
    unit of forget fraction) relative to the smallest run. Every ratio divides by the
    smallest run, so that run is the median of ``baseline_repeats`` (one slow or fast spell
    of a shared machine would otherwise tilt the whole table)."""
    rows = []
    times = {}
    for seeds in (1, 2, 4, 8):
        repeats = baseline_repeats if seeds == 1 else 1
        times[seeds] = median_sweep(work, f"seeds{seeds}", repeats, seeds=list(range(seeds)))
        rows.append(Measurement(
            f"cost growth: {seeds} seed(s)", times[seeds], times[1] * seeds, "s", times[seeds] / (times[1] * seeds), None, False,
            "baseline: the 1-seed time x seeds (ratio 1 = linear)" + (f"; median of {repeats} runs" if repeats > 1 else ""),
        ))
    fraction_times = {}
    for fraction in (0.01, 0.1, 0.3):
        repeats = baseline_repeats if fraction == 0.01 else 1
        fraction_times[fraction] = median_sweep(
            work, f"fraction{fraction}", repeats, overrides=[f"scenarios=[random:{fraction}]"], seeds=[0],
        )
        rows.append(Measurement(
            f"cost growth: forget {fraction:.0%}", fraction_times[fraction], fraction_times[0.01], "s",
            fraction_times[fraction] / fraction_times[0.01], None, False,
            "baseline: the 1% time (seed 0, one scenario)" + (f"; median of {repeats} runs" if repeats > 1 else ""),
        ))
    return rows
