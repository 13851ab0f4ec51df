"""Print, as Markdown, each method's defaults against its tuned variant from a sweep's results:
forget / retain / test accuracy, MIA, average gap and time ÷ retraining's, mean over the
seeds present (the table of docs/tuning.md); the untouched original model opens each
dataset and scenario.

    python scripts/default_vs_tuned.py results/cpu [--seeds 0]
"""

from __future__ import annotations

import sys

import pandas as pd

from bench.running.cli import results_table_command
from bench.core.errors import cli_main
from bench.running.results import read_results_table, seed_matrix

METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_entropy", "avg_gap")
SUFFIX = "+tuned"
ORIGINAL = "original"  # the untouched model, first in each group: what doing nothing scores


def table(frame: pd.DataFrame, seeds: list[int] | None) -> str:
    wide = seed_matrix(frame, seeds)
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


@cli_main
def main(argv: list[str] | None = None) -> int:
    return results_table_command(__doc__, "results.csv", lambda folder, seeds: table(read_results_table(folder / "results.csv"), seeds), argv)


if __name__ == "__main__":
    sys.exit(main())
