"""Run the harness's benchmarks on this machine, print a table, write JSON.

    python -m benchmarks.run [--only training,data,evaluation,ray,reuse,growth,tuning] [--json FILE] [--work DIR]

Each figure is a ratio taken in one run on one machine (harness against a baseline), so
it says something about the harness rather than about the machine. Not part of the test
suite: the whole run takes about half an hour on 2 CPU cores (most of it the sweeps).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from bench.core.errors import UserError, cli_main
from bench.training.loop import resolve_device
from benchmarks.common import Measurement, machine

GROUPS = ("training", "data", "evaluation", "ray", "reuse", "growth", "tuning")


def run_groups(groups: list[str], work: Path) -> list[Measurement]:
    device = resolve_device("auto")
    results: list[Measurement] = []
    if "training" in groups:
        from benchmarks.training import gpu_resnet18_throughput, training_throughput

        results.append(training_throughput(device))
        gpu = gpu_resnet18_throughput(device)
        if gpu is not None:
            results.append(gpu)
    if "data" in groups:
        from benchmarks.datapath import data_path

        results.append(data_path())
    if "evaluation" in groups:
        from benchmarks.evaluation import evaluation_overhead, inference_batch_speedup

        results.append(evaluation_overhead(device))
        results.append(inference_batch_speedup(device))
    if "ray" in groups or "reuse" in groups:
        from benchmarks.sweeps import ray_overhead, sweep_reuse, timed_sweep

        if "ray" in groups:
            overhead, local_out, local_cache = ray_overhead(work)
            results.append(overhead)
        else:
            local_out, local_cache = work / "local", work / "local-cache"
            timed_sweep(local_out, local_cache)
        if "reuse" in groups:
            results.append(sweep_reuse(local_out, local_cache))
    if "growth" in groups:
        from benchmarks.sweeps import cost_growth

        results.extend(cost_growth(work))
    if "tuning" in groups:
        from benchmarks.tuning import trial_cell_cost, whole_tuning

        results.append(trial_cell_cost(work))
        results.append(whole_tuning(work))
    return results


def table(results: list[Measurement]) -> str:
    lines = [f"{'benchmark':<52} {'harness':>11} {'baseline':>11} {'ratio':>7} {'target':>8}  pass",
             "-" * 98]
    for m in results:
        target = "" if m.target is None else ("≥ " if m.higher_is_better else "≤ ") + f"{m.target:g}"
        passed = {True: "yes", False: "NO", None: ""}[m.passed]
        lines.append(f"{m.name:<52} {m.harness:>11.4g} {m.baseline:>11.4g} {m.ratio:>7.3g} {target:>8}  {passed}")
    return "\n".join(lines)


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated groups (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--json", default="benchmarks/results.json", help="where the figures go (default: %(default)s)")
    parser.add_argument("--work", help="scratch folder for the sweeps (default: a temporary one)")
    args = parser.parse_args(argv)
    groups = [g for g in (args.only.split(",") if args.only else GROUPS) if g]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise UserError(f"--only names {', '.join(unknown)}; allowed: {', '.join(GROUPS)}")
    with tempfile.TemporaryDirectory(prefix="unlearn-bench-benchmarks-") as scratch:
        results = run_groups(groups, Path(args.work) if args.work else Path(scratch))
    print(table(results))
    report = {
        "finished_at": datetime.now(timezone.utc).isoformat(), "machine": machine(),
        "cuda": torch.cuda.is_available(), "results": [m.as_dict() for m in results],
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
