"""Tables and plots from a sweep's results (first cut).

    python -m bench.report --results results/quick [--plots plots/quick]

Per dataset and scenario, a Markdown table of methods × metrics (mean ± std over
seeds, with the number of seeds) under ``<results>/tables/``; one bar plot per
metric under ``plots/<sweep>/``; failed and not-applicable cells listed with their
reason in ``<results>/tables/failures.md``. Built from the run records alone, so it
can be rebuilt at any time without running anything.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from bench.errors import UserError, cli_main
from bench.results import read_records, tidy_table

# Reference rows first; the rest keep the order in which the sweep ran them.
LEADING_METHODS = ("retrain", "original")
METRIC_ORDER = ("forget_acc", "retain_acc", "test_acc", "test_forget_class_acc", "test_rest_acc", "time_s", "eval_s")


def method_order(methods: list[str]) -> list[str]:
    unique = list(dict.fromkeys(methods))
    return [m for m in LEADING_METHODS if m in unique] + [m for m in unique if m not in LEADING_METHODS]


def metric_order(metrics: list[str]) -> list[str]:
    unique = list(dict.fromkeys(metrics))
    return [m for m in METRIC_ORDER if m in unique] + sorted(m for m in unique if m not in METRIC_ORDER)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and number of seeds per (dataset, scenario, method, metric), over ok cells."""
    ok = table[(table["status"] == "ok") & (table["metric"] != "status")]
    grouped = ok.groupby(["dataset", "scenario", "method", "metric"], sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def format_mean_std(mean: float, std: float, n: int, metric: str) -> str:
    if metric.endswith("_s"):
        text = f"{mean:.3g}" if pd.isna(std) else f"{mean:.3g} ± {std:.2g}"
    else:
        text = f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"
    return f"{text} (n={n})"


def markdown_table(summary: pd.DataFrame, methods: list[str], metrics: list[str]) -> str:
    lines = ["| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    index = summary.set_index(["method", "metric"])
    for method in methods:
        cells = []
        for metric in metrics:
            if (method, metric) in index.index:
                row = index.loc[(method, metric)]
                cells.append(format_mean_std(row["mean"], row["std"], int(row["n"]), metric))
            else:
                cells.append("–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "", text.replace(":", "-"))


def write_tables(table: pd.DataFrame, records: list[dict], tables_dir: Path) -> list[Path]:
    tables_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(table)
    written = []
    for (dataset, scenario), part in summary.groupby(["dataset", "scenario"], sort=False):
        methods = method_order(list(table[(table.dataset == dataset) & (table.scenario == scenario)]["method"]))
        metrics = metric_order(list(part["metric"]))
        path = tables_dir / f"{slug(dataset)}__{slug(scenario)}.md"
        header = f"# {dataset}, {scenario}\n\nmean ± std over seeds (n = seeds); accuracies in [0, 1], times in seconds.\n\n"
        path.write_text(header + markdown_table(part, methods, metrics))
        written.append(path)
    failures = [r for r in records if r["status"] != "ok"]
    path = tables_dir / "failures.md"
    lines = ["# Cells that did not produce results\n", "| cell | status | reason |", "|---|---|---|"]
    for record in failures:
        reason = str(record.get("error") or record.get("reason") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {record.get('cell', record['method'])} | {record['status']} | {reason} |")
    if not failures:
        lines.append("| (none) | | |")
    path.write_text("\n".join(lines) + "\n")
    written.append(path)
    return written


def write_plots(table: pd.DataFrame, plots_dir: Path) -> list[Path]:
    """One grouped bar plot per metric: methods on x, datasets as hue, one panel per scenario, seed std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    plots_dir.mkdir(parents=True, exist_ok=True)
    ok = table[(table["status"] == "ok") & (table["metric"] != "status")]
    written = []
    for metric in metric_order(list(ok["metric"])):
        data = ok[ok["metric"] == metric]
        grid = sns.catplot(
            data=data, kind="bar", x="method", y="value", hue="dataset", col="scenario",
            order=method_order(list(data["method"])), errorbar="sd", palette="gray", edgecolor="black",
            height=3.2, aspect=1.3, sharey=True,
        )
        grid.set_axis_labels("", metric)
        grid.set_xticklabels(rotation=30, ha="right")
        if metric.endswith("_s"):
            grid.set(yscale="log")
        path = plots_dir / f"{slug(metric)}.png"
        grid.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(grid.figure)
        written.append(path)
    return written


def build_report(results_dir: Path, plots_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the tables and plots of one sweep; return the folders they are in."""
    if not (results_dir / "runs").is_dir():
        raise UserError(f"results folder {str(results_dir)!r} has no runs/ folder; run python -m bench.sweep first")
    records = read_records(results_dir)
    if not records:
        raise UserError(f"results folder {str(results_dir / 'runs')!r} holds no run records")
    table = tidy_table(records)
    sweep = str(table["sweep"].iloc[0])
    plots_dir = plots_dir or Path("plots") / sweep
    tables_dir = results_dir / "tables"
    write_tables(table, records, tables_dir)
    write_plots(table, plots_dir)
    return tables_dir, plots_dir


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, help="a sweep's results folder, e.g. results/quick")
    parser.add_argument("--plots", help="where the plots go (default: plots/<sweep>)")
    args = parser.parse_args(argv)
    tables_dir, plots_dir = build_report(Path(args.results), Path(args.plots) if args.plots else None)
    print(f"tables: {tables_dir}")
    print(f"plots:  {plots_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
