"""Does a tuning's ranking survive the tuning seed? Two sweeps of one profile, each run with
a tuned file from another set of tuning seeds, rank the methods' tuned variants per dataset
and scenario by the reported seeds' mean objective; print Spearman's rank correlation of
the two rankings and every pair that swaps, with whether the swap lies within the seeds'
noise (in either sweep, the pair's paired difference over seeds within 2 standard errors).

    python scripts/rank_stability.py results/a results/b [--objective avg_gap_auc]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from bench.core.errors import UserError, cli_main
from bench.running.results import last_requests, read_results_table

SUFFIX = "+tuned"


def tuned_values(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    """The objective of every tuned variant's ok cells: rows (dataset, scenario, method),
    one column per seed (a sequence's last request)."""
    frame = last_requests(frame)
    rows = frame[(frame["status"] == "ok") & (frame["metric"] == objective) & frame["method"].str.endswith(SUFFIX)]
    return rows.pivot_table(index=["dataset", "scenario", "method"], columns="seed", values="value")


def within_noise(values: pd.DataFrame, a: str, b: str) -> bool:
    """|mean paired difference of a and b over seeds| ≤ 2 standard errors (n ≥ 2)."""
    difference = (values.loc[a] - values.loc[b]).dropna().to_numpy()
    if len(difference) < 2:
        return True
    return abs(difference.mean()) <= 2 * difference.std(ddof=1) / np.sqrt(len(difference))


def compare(first: pd.DataFrame, second: pd.DataFrame) -> list[dict]:
    """Per (dataset, scenario): Spearman of the two rankings over the tuned variants both
    have, the number of pairs, and the pairs that swap (and how many of those within noise)."""
    rows = []
    for group in sorted(set(first.index.droplevel("method")) & set(second.index.droplevel("method"))):
        a, b = first.loc[group], second.loc[group]
        methods = sorted(set(a.index) & set(b.index))
        mean_a, mean_b = a.loc[methods].mean(axis=1), b.loc[methods].mean(axis=1)
        rho = float(spearmanr(mean_a, mean_b).statistic) if len(methods) > 2 else float("nan")
        swaps = [(m, n) for m, n in itertools.combinations(methods, 2)
                 if np.sign(mean_a[m] - mean_a[n]) * np.sign(mean_b[m] - mean_b[n]) < 0]
        noisy = [(m, n) for m, n in swaps if within_noise(a, m, n) or within_noise(b, m, n)]
        rows.append({"dataset": group[0], "scenario": group[1], "methods": len(methods), "spearman": rho,
                     "swaps": swaps, "swaps_within_noise": noisy})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | scenario | tuned variants | Spearman | pairs swapped | of them within the seeds' noise | swapped beyond noise |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        beyond = [f"{m} / {n}" for m, n in row["swaps"] if (m, n) not in row["swaps_within_noise"]]
        lines.append(f"| {row['dataset']} | {row['scenario']} | {row['methods']} | {row['spearman']:.3f} | {len(row['swaps'])} | "
                     f"{len(row['swaps_within_noise'])} | {', '.join(beyond) or '–'} |")
    return "\n".join(lines)


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="a sweep's results folder (with results.csv)")
    parser.add_argument("second", type=Path, help="the same profile swept with a tuned file from other tuning seeds")
    parser.add_argument("--objective", default="avg_gap_auc", help="the metric ranked (default: avg_gap_auc)")
    args = parser.parse_args(argv)
    tables = []
    for folder in (args.first, args.second):
        if not (folder / "results.csv").is_file():
            raise UserError(f"{folder / 'results.csv'} not found; allowed: a folder python -m bench.sweep wrote")
        tables.append(tuned_values(read_results_table(folder / "results.csv"), args.objective))
    if tables[0].empty or tables[1].empty:
        raise UserError(f"no tuned variant has {args.objective!r} in one of the folders; allowed: sweeps run with a tuned file")
    print(markdown(compare(*tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
