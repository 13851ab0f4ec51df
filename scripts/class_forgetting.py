"""Print, as Markdown, one table per class-forgetting group of a sweep: every method's forget
accuracy, test accuracy on the other classes and average gap as mean (standard deviation) over
the seeds present, its time ÷ retraining's, whether it meets issue 15's bar (forget
accuracy ≤ 0.05, other classes' test accuracy within 0.05 of the original's) on the means,
and on how many seeds it meets it (each seed against its own original). The
class-forgetting tables of docs/tuning.md.

    python scripts/class_forgetting.py results/cpu [--seeds 0,1,2]
"""

from __future__ import annotations

import math
import sys

import pandas as pd

from bench.running.cli import results_table_command
from bench.core.errors import cli_main
from bench.running.results import read_results_table, seed_matrix

METRICS = ("forget_acc", "test_rest_acc", "avg_gap")
FORGET_AT_MOST = 0.05
REST_WITHIN = 0.05
TIE = 1e-9  # accuracies are ratios of counts: 0.40 - 0.05 must not put 0.35 below the bar
ORIGINAL = "original"  # the untouched model: the other classes' accuracy to keep


def mean_sd(values: pd.Series) -> str:
    """``mean (sd)``; the sd needs two seeds."""
    return f"{values.mean():.3f}" + (f" ({values.std():.3f})" if values.count() > 1 else "")


def meets_bar(forget_acc: float | pd.Series, rest_acc: float | pd.Series, kept: float | pd.Series) -> bool | pd.Series:
    """Issue 15's bar, on numbers or element-wise on series: the class forgotten, the other
    classes' accuracy ``kept`` within ``REST_WITHIN`` (never met against a missing original)."""
    return (forget_acc <= FORGET_AT_MOST + TIE) & (rest_acc >= kept - REST_WITHIN - TIE)


def seeds_meeting(runs: pd.DataFrame, kept_by_seed: pd.Series) -> str:
    """``k of n``: the seeds on which one method meets the bar against that seed's original."""
    meets = meets_bar(runs["forget_acc"], runs["test_rest_acc"], kept_by_seed.reindex(runs.index))
    return f"{int(meets.sum())} of {len(runs)}"


def group_table(wide: pd.DataFrame, dataset: str, scenario: str) -> list[str]:
    """The rows of one dataset and class scenario; the bar needs the original's cells."""
    seeds = sorted(int(s) for s in wide.index.get_level_values("seed").unique())
    kept = wide.groupby(level="method")["test_rest_acc"].mean().get(ORIGINAL, math.nan)
    methods = wide.index.get_level_values("method")
    kept_by_seed = wide.xs(ORIGINAL, level="method")["test_rest_acc"] if ORIGINAL in methods else pd.Series(dtype=float)
    lines = [
        f"{dataset} {scenario}: mean (sd) over seeds {', '.join(map(str, seeds))}; the original's other classes {kept:.3f}",
        "",
        "| method | forget acc. | test acc., other classes | avg. gap | time ÷ retrain | meets the bar | seeds meeting it |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, runs in wide.groupby(level="method"):
        ratio = (1.0 / runs["speedup"]).mean()  # the original: 1 / inf = 0
        meets = meets_bar(runs["forget_acc"].mean(), runs["test_rest_acc"].mean(), kept)
        cells = " | ".join(mean_sd(runs[metric]) for metric in METRICS)
        lines.append(f"| {method} | {cells} | {ratio:.2f} | {'yes' if meets else 'no'} | {seeds_meeting(runs.droplevel('method'), kept_by_seed)} |")
    return lines


def table(frame: pd.DataFrame, seeds: list[int] | None) -> str:
    wide = seed_matrix(frame[frame["scenario"].str.startswith("class:")], seeds)
    blocks = []
    for (dataset, scenario), group in wide.groupby(level=["dataset", "scenario"]):
        blocks.append("\n".join(group_table(group.droplevel(["dataset", "scenario"]), dataset, scenario)))
    return "\n\n".join(blocks) or "no class-forgetting cells"


@cli_main
def main(argv: list[str] | None = None) -> int:
    return results_table_command(__doc__, "results.csv", lambda folder, seeds: table(read_results_table(folder / "results.csv"), seeds), argv)


if __name__ == "__main__":
    sys.exit(main())
