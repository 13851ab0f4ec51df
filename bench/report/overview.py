"""The report's tables over a whole sweep: the cost table, the cells without results, and
the list of every table in reading order (per-group tables come from :mod:`tables`, the
tuning tables and the check of whether tuning held from :mod:`tuning`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.load import CELL, GROUP, Results
from bench.report.render import Cell, Table
from bench.report.tables import (
    COST_METRICS, RETRAIN, ReportOptions, _best, ablation_table, format_mean_std, gap_table, main_table, method_order,
    significance,
)
from bench.report.summary import claims_table, summary_table
from bench.report.tuning import tuning_held_table, tuning_tables


def cost_table(results: Results, options: ReportOptions) -> Table:
    """Wall time, speed-up over retraining and peak memory per method and dataset, over
    all its scenarios and seeds, with the device and memory measure they come from."""
    matrix = results.matrix.reset_index()
    cells = results.cells
    order = method_order(results, options, include_variants=True)
    data, rows = [], []
    for (dataset, model), part in cells.groupby(["dataset", "model"], sort=False):
        values = matrix[(matrix["dataset"] == dataset) & (matrix["model"] == model)]
        stats = {}
        for method in [m for m in order if m in set(part["method"])]:
            mine = values[values["method"] == method]
            entry = {"dataset": dataset, "model": model, "method": method}
            for metric in COST_METRICS:
                column = mine[metric].dropna() if metric in mine else pd.Series(dtype=float)
                entry[f"{metric}_mean"] = column.mean() if len(column) else np.nan
                entry[f"{metric}_std"] = column.std(ddof=1) if len(column) > 1 else np.nan
            ok_cells = part[(part["method"] == method) & (part["status"] == "ok")]
            entry["cells"] = len(ok_cells)
            entry["device"] = "; ".join(sorted(set(ok_cells["device"]))) or "–"
            entry["memory_kind"] = "; ".join(sorted(set(ok_cells["memory_kind"]) - {""})) or "–"
            stats[method] = entry
        for metric in COST_METRICS:
            best = _best({m: e[f"{metric}_mean"] for m, e in stats.items()}, metric, np.nan)
            for method, entry in stats.items():
                entry[f"{metric}_best"] = method in best
        for method, entry in stats.items():
            data.append(entry)
            row = [Cell(method), Cell(f"{dataset} ({model})")]
            for metric in COST_METRICS:
                text = format_mean_std(metric, entry[f"{metric}_mean"], entry[f"{metric}_std"])
                row.append(Cell(text + ("×" if metric == "speedup" and np.isfinite(entry[f"{metric}_mean"]) else ""), bold=entry[f"{metric}_best"]))
            row += [Cell(str(entry["cells"])), Cell(entry["device"]), Cell(entry["memory_kind"])]
            rows.append(row)
    return Table(
        "cost", "Cost", "Mean ± std over every scenario and seed of a dataset. Speed-up: retraining time / method time, per cell.",
        ["Method", "Dataset", "Time (s)", "Speed-up", "Peak mem. (MiB)", "Cells", "Device", "Memory measure"], rows,
        pd.DataFrame(data),
        notes=["Bold: best unlearning method per dataset. Memory: CUDA peak allocation on a GPU, sampled process RSS on a CPU."],
    )


def missing_cells(results: Results) -> pd.DataFrame:
    """Cells of a group's grid (its methods × its seeds) that no record holds."""
    rows = []
    for group, part in results.cells.groupby(GROUP, sort=False):
        present = set(zip(part["seed"], part["method"]))
        for seed in sorted(set(part["seed"])):
            for method in dict.fromkeys(part["method"]):
                if (seed, method) not in present:
                    rows.append({**dict(zip(GROUP, group)), "seed": seed, "method": method, "status": "missing",
                                 "reason": "no run record (sweep interrupted, or not in every merged sweep)", "path": ""})
    return pd.DataFrame(rows, columns=[*CELL, "status", "reason", "path"])


def failures_table(results: Results) -> Table:
    """Every failed, not-applicable and missing cell, with its reason."""
    failed = results.cells[results.cells["status"] != "ok"][[*CELL, "status", "reason", "path"]]
    frame = pd.concat([failed, missing_cells(results)], ignore_index=True) if len(failed) else missing_cells(results)
    rows = [
        [Cell(f"{r.dataset}/{r.scenario}/s{r.seed}/{r.method}"), Cell(r.status), Cell(r.reason.splitlines()[0] if r.reason else "")]
        for r in frame.itertuples()
    ]
    if not rows:
        rows = [[Cell("(none)"), Cell(""), Cell("")]]
    return Table("failures", "Cells without results", "Failed, not-applicable and missing cells, with their reason.",
                 ["Cell", "Status", "Reason"], rows, frame)


def all_tables(results: Results, options: ReportOptions) -> tuple[list[Table], pd.DataFrame]:
    """Every table of the report, in reading order (the summary and the claims check first),
    and the significance frame."""
    sig = significance(results, options)
    groups = list(results.cells.groupby(GROUP, sort=False).groups)
    tables = [t for t in (summary_table(results, options), claims_table(results, options)) if t is not None]
    for group in groups:
        tables.append(main_table(results, group, sig, options))
        if RETRAIN in set(results.cells["method"]):
            tables.append(gap_table(results, group, options))
        ablation = ablation_table(results, group, sig, options)
        if ablation is not None:
            tables.append(ablation)
    tables += tuning_tables(results)
    held = tuning_held_table(results)
    tables += [held] if held is not None else []
    tables += [cost_table(results, options), failures_table(results)]
    return tables, sig
