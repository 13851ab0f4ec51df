"""Print, as Markdown, each method's defaults against its tuned variant from a sweep's results:
forget / retain / test accuracy, MIA, average gap and time ÷ retraining's, mean over the
seeds present (the table of docs/tuning.md); the untouched original model opens each
dataset and scenario.

    python scripts/default_vs_tuned.py results/cpu [--seeds 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_entropy", "avg_gap")
SUFFIX = "+tuned"
ORIGINAL = "original"  # the untouched model, first in each group: what doing nothing scores


def table(results: Path, seeds: list[int] | None) -> str:
    frame = pd.read_csv(results / "results.csv")
    frame = frame[frame["status"] == "ok"]
    if seeds is not None:
        frame = frame[frame["seed"].isin(seeds)]
    wide = frame.pivot_table(index=["dataset", "scenario", "method", "seed"], columns="metric", values="value")
    wide["time_ratio"] = 1.0 / wide["speedup"]
    means = wide.groupby(level=["dataset", "scenario", "method"]).mean()
    lines = [
        "| dataset | scenario | method | forget acc. | retain acc. | test acc. | MIA | avg. gap | time ÷ retrain |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (dataset, scenario), group in means.groupby(level=["dataset", "scenario"]):
        methods = group.index.get_level_values("method")
        tuned = [m for m in methods if not m.endswith(SUFFIX) and m + SUFFIX in methods]
        names = ([ORIGINAL] if tuned and ORIGINAL in methods else []) + [n for m in tuned for n in (m, m + SUFFIX)]
        for name in names:
            values = means.loc[(dataset, scenario, name)]
            cells = " | ".join(f"{values[m]:.3f}" for m in METRICS)
            lines.append(f"| {dataset} | {scenario} | {name} | {cells} | {values['time_ratio']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a sweep's results folder (with results.csv)")
    parser.add_argument("--seeds", help="comma-separated seeds to average (default: all present)")
    args = parser.parse_args(argv)
    if not (args.results / "results.csv").is_file():
        print(f"error: {args.results / 'results.csv'} not found; allowed: a folder python -m bench.sweep wrote", file=sys.stderr)
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        print(f"error: --seeds {args.seeds!r} is not a comma-separated list of integers, e.g. --seeds 0,1", file=sys.stderr)
        return 2
    try:
        text = table(args.results, seeds)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, KeyError) as error:
        print(f"error: {args.results / 'results.csv'} is not a results table ({type(error).__name__}); "
              "allowed: the results.csv python -m bench.sweep wrote", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
