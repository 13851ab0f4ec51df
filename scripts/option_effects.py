"""Print, as Markdown, each method at its defaults beside the sweep's variants of it (entries
running the same method class with other parameters): forget / retain / test accuracy, the
other classes' test accuracy (class scenarios), average gap and time ÷ retraining's, mean over
the seeds present (the measured-effects table of docs/methods.md).

    python scripts/option_effects.py results/fidelity [--seeds 0]
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.running.cli import results_table_command
from bench.core.errors import cli_main
from bench.running.results import read_records

METRICS = ("forget_acc", "retain_acc", "test_acc", "test_rest_acc", "avg_gap")


def changed(params: dict, defaults: dict) -> str:
    """The parameters a variant sets differently from its method's default entry."""
    diff = [f"{key}={value}" for key, value in sorted(params.items()) if defaults.get(key) != value]
    return ", ".join(diff) or "defaults"


def table(results: Path, seeds: list[int] | None) -> str:
    records = [r for r in read_records(results) if r["status"] == "ok" and (seeds is None or r["seed"] in seeds)]
    cells: dict[tuple, list[dict]] = defaultdict(list)
    params: dict[str, dict] = {}
    for record in records:
        cells[(record["dataset"], record["scenario"], record["method_class"], record["method"])].append(record["metrics"])
        params[record["method"]] = record["params"]
    lines = [
        "| dataset | scenario | method | option | forget acc. | retain acc. | test acc. | test acc., other classes | avg. gap | time ÷ retrain |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (dataset, scenario, method_class, method), runs in sorted(cells.items(), key=lambda item: (*item[0][:3], item[0][3] != item[0][2], item[0][3])):
        variants = [m for (d, s, c, m) in cells if (d, s, c) == (dataset, scenario, method_class) and m != method_class]
        if (dataset, scenario, method_class, method_class) not in cells or not variants:
            continue
        option = "defaults" if method == method_class else changed(params[method], params[method_class])
        means = [np.mean([run.get(metric, math.nan) for run in runs]) for metric in METRICS]
        ratio = np.mean([1 / run.get("speedup", math.nan) for run in runs])  # a record without a time: –
        values = " | ".join("–" if math.isnan(v) else f"{v:.3f}" for v in means)
        lines.append(f"| {dataset} | {scenario} | {method_class} | {option} | {values} | {'–' if math.isnan(ratio) else f'{ratio:.2f}'} |")
    return "\n".join(lines)


@cli_main
def main(argv: list[str] | None = None) -> int:
    return results_table_command(__doc__, "runs", table, argv)


if __name__ == "__main__":
    sys.exit(main())
