"""The report's views of the scenarios beyond one request: sequential deletion requests (how
each method drifts from the first request to the last, at what cumulative cost), forgetting a
subpopulation (the forgotten cluster against the rest of its class) and retain-only
relearning (does forgotten knowledge come back from the retained data alone).

Pure functions of :class:`Results` (``requests`` for the sequences, ``matrix`` for the rest).
Each table and figure exists only when the records hold such scenarios or metrics, so a sweep
without them gets exactly the report it got before; the page gathers them in one section
(:data:`SECTION_TITLE`) after the other tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.drawing import LINESTYLES, MARKERS, METHOD_GID, Figure, pyplot, report_colours, save
from bench.report.figures import run_jobs
from bench.report.load import CELL, GROUP, Results
from bench.report.render import Cell, Table
from bench.report.tables import LABELS as TABLE_LABELS
from bench.report.tables import (
    ReportOptions, format_mean_std, format_value, group_cells, group_slug, group_title, method_cell, method_order, seed_values,
)

DRIFT_METRICS = ("forget_acc", "retain_acc", "test_acc", "avg_gap")
CURVE_METRICS = (*DRIFT_METRICS, "speedup")
SUBPOPULATION_METRICS = ("forget_acc", "test_forget_sub_acc", "test_rest_of_class_acc", "avg_gap")
RELEARN_METRICS = ("forget_acc", "retain_relearn_forget_acc", "retain_relearn_forget_acc_retrain", "retain_relearn_gap")
LABELS = {
    **TABLE_LABELS, "speedup": "Speed-up (cum.)", "test_forget_sub_acc": "Test acc., forgotten cluster",
    "test_rest_of_class_acc": "Test acc., rest of class", "retain_relearn_forget_acc": "Forget acc. after relearning",
    "retain_relearn_forget_acc_retrain": "Retrained, after relearning", "retain_relearn_gap": "Relearn gap",
}
DRIFT_LABELS = {"forget_acc": "Forget drift", "retain_acc": "Retain drift", "test_acc": "Test drift", "avg_gap": "Gap drift"}
TABLE_NAMES = ("requests", "subpopulation", "relearn")
FIGURE_PREFIX = "requests__"
SECTION_ID = "requests-section"
SECTION_TITLE = "Sequential requests, subpopulations, relearning"
SUBCLASS = "subclass:"


def in_section(name: str) -> bool:
    """Whether a table or figure of this name belongs to the page's section of this module."""
    return name in TABLE_NAMES or name.startswith(FIGURE_PREFIX)


def _ordered(results: Results, options: ReportOptions | None, methods: Iterable[str]) -> list[str]:
    """``methods`` in the report's row order (references first, the proposed method last)."""
    present = set(methods)
    return [m for m in method_order(results, options or ReportOptions(), include_variants=True) if m in present]


def _seeds_cell(n: int, total: int) -> Cell:
    return Cell(str(n) if n == total else f"{n} of {total}")


def _over_seeds(counts: Iterable[int]) -> str:
    """"over 3 seeds" when every row has the same count, else a pointer to the Seeds column."""
    distinct = sorted(set(counts))
    if len(distinct) == 1:
        return f"over {distinct[0]} seed{'s' if distinct[0] != 1 else ''}"
    return f"over {distinct[0]} to {distinct[-1]} seeds (each row's Seeds column)"


def _mean_sd(values: pd.Series) -> tuple[float, float]:
    """Mean and sample sd (ddof 1) of the values present (NaNs dropped); NaN where there are too few."""
    values = values.dropna()
    return (float(values.mean()) if len(values) else math.nan, float(values.std(ddof=1)) if len(values) > 1 else math.nan)


def _signed(mean: float, sd: float) -> str:
    """A drift: its sign always written, ± its sd when there is one."""
    if not math.isfinite(mean):
        return format_value("drift", mean)
    text = f"{mean:+.3f}".replace("-0.000", "+0.000")
    return text + (f" ± {sd:.3f}" if math.isfinite(sd) else "")


def request_frame(results: Results) -> pd.DataFrame:
    """Every request of every sequential record, wide: index ``CELL`` + ``request``, one
    column per metric."""
    frame = results.requests
    if frame.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=[*CELL, "request"]))
    return frame.set_index([*CELL, "request", "metric"])["value"].unstack("metric").sort_index(level="request", sort_remaining=False)


def drift_by_seed(results: Results) -> pd.DataFrame:
    """One row per sequential cell and metric of :data:`CURVE_METRICS`: the value at request
    1 (``first``), at the cell's last request (``last``), ``drift`` = last − first, and the
    number of requests."""
    wide = request_frame(results)
    rows = []
    for cell, part in wide.groupby(level=CELL, sort=False):
        part = part.droplevel(CELL)
        first, last = part.loc[part.index.min()], part.loc[part.index.max()]
        for metric in CURVE_METRICS:
            a, b = float(first.get(metric, math.nan)), float(last.get(metric, math.nan))
            rows.append({**dict(zip(CELL, cell)), "metric": metric, "requests": int(part.index.max()), "first": a, "last": b,
                         "drift": b - a if math.isfinite(a) and math.isfinite(b) else math.nan})
    return pd.DataFrame(rows, columns=[*CELL, "metric", "requests", "first", "last", "drift"])


def drift_table(results: Results, options: ReportOptions | None = None) -> Table | None:
    """Per (dataset, sequential scenario, method): each of :data:`DRIFT_METRICS` at the last
    request (mean over seeds) and its drift from request 1 (per seed, mean ± sd), and the
    cumulative speed-up at the last request; ``None`` without sequential records. The drift
    says whether a method's forgetting or utility erodes as requests accumulate, which the
    last request's value alone cannot."""
    per_seed = drift_by_seed(results)
    if per_seed.empty:
        return None
    rows, data, counts = [], [], []
    for group, part in per_seed.groupby(GROUP, sort=False):
        total = int(group_cells(results, group)["seed"].nunique())
        for method in _ordered(results, options, part["method"]):
            mine = part[part["method"] == method]
            row = [method_cell(method), Cell(f"{group[0]} ({group[1]})"), Cell(str(group[2]))]
            for metric in CURVE_METRICS:
                values = mine[mine["metric"] == metric]
                last_mean, last_sd = _mean_sd(values["last"])
                drift_mean, drift_sd = _mean_sd(values["drift"])
                data.append({**dict(zip(GROUP, group)), "method": method, "metric": metric,
                             "requests": int(values["requests"].max()), "last_mean": last_mean, "last_std": last_sd,
                             "drift_mean": drift_mean, "drift_std": drift_sd, "n": int(values["drift"].notna().sum())})
                if metric == "speedup":
                    text = format_mean_std(metric, last_mean, last_sd)
                    row.append(Cell(text + ("×" if math.isfinite(last_mean) else "")))
                else:
                    row += [Cell(format_value(metric, last_mean)), Cell(_signed(drift_mean, drift_sd))]
            n = int(mine["seed"].nunique())
            counts.append(n)
            row.append(_seeds_cell(n, total))
            rows.append(row)
    columns = ["Method", "Dataset", "Scenario"]
    for metric in DRIFT_METRICS:
        columns += [LABELS[metric], DRIFT_LABELS[metric]]
    return Table(
        "requests", "Sequential requests: the last request and the drift from the first",
        f"Each metric at the last request, mean {_over_seeds(counts)}, and its drift: the value at the last request − "
        "the value at request 1 on the same seed, mean ± sd over seeds. Forget accuracy reads every request so far, and "
        "the average gap is to a model retrained without all of them. Speed-up: cumulative, retraining after every "
        "request over the method's time over all of them, mean ± sd.",
        [*columns, LABELS["speedup"], "Seeds"], rows, pd.DataFrame(data),
        notes=["A positive drift: the metric rose from the first request to the last. Retrain's row is the reference: "
               "a method whose drift departs from it forgets or degrades differently as requests accumulate."],
    )


def _groups(results: Results) -> list[tuple]:
    return list(results.cells.groupby(GROUP, sort=False).groups)


def _stats_table(results: Results, options: ReportOptions | None, groups: list[tuple], metrics: tuple[str, ...],
                 keep: str | None, name: str, title: str, caption: str, notes: list[str]) -> Table | None:
    """Rows = (group, method), columns = ``metrics`` as mean ± sd over seeds (``(n=k)`` where
    a metric has fewer values than the method's ok cells); a method appears in a group when
    it has a value of ``keep`` (of any metric when ``None``). ``None`` when no row does."""
    matrix = results.matrix
    rows, data, counts = [], [], []
    for group in groups:
        cells = group_cells(results, group)
        total = int(cells["seed"].nunique())
        for method in _ordered(results, options, cells["method"]):
            values = {metric: seed_values(matrix, group, method, metric) for metric in metrics}
            if not (len(values[keep]) if keep else any(len(v) for v in values.values())):
                continue
            ok = int(((cells["method"] == method) & (cells["status"] == "ok")).sum())
            row = [method_cell(method), Cell(f"{group[0]} ({group[1]})"), Cell(str(group[2]))]
            for metric in metrics:
                mean, sd = _mean_sd(values[metric])
                n = len(values[metric])
                data.append({**dict(zip(GROUP, group)), "method": method, "metric": metric, "mean": mean, "std": sd, "n": n})
                row.append(Cell(format_mean_std(metric, mean, sd) + (f" (n={n})" if 0 < n < ok else "")))
            counts.append(ok)
            row.append(_seeds_cell(ok, total))
            rows.append(row)
    if not rows:
        return None
    return Table(name, title, f"Mean ± sd {_over_seeds(counts)}. {caption}",
                 ["Method", "Dataset", "Scenario", *(LABELS.get(m, m) for m in metrics), "Seeds"], rows,
                 pd.DataFrame(data, columns=[*GROUP, "method", "metric", "mean", "std", "n"]), notes=notes)


def subpopulation_table(results: Results, options: ReportOptions | None = None) -> Table | None:
    """Per ``subclass:`` scenario and method: forget accuracy, test accuracy on the forgotten
    cluster and on the rest of its class, and the average gap, with retrain's row as the
    reference; ``None`` without such scenarios. Forgetting a subpopulation should cost the
    cluster what never having seen it costs, and leave the rest of the class alone."""
    groups = [g for g in _groups(results) if str(g[2]).startswith(SUBCLASS)]
    return _stats_table(
        results, options, groups, SUBPOPULATION_METRICS, None, "subpopulation", "Forgetting a subpopulation",
        "One cluster of a class forgotten: test accuracy on that cluster's test samples and on the rest of the class.",
        ["Retrain's row is the reference: an unlearning method should match it on the forgotten cluster (never having "
         "seen it) and on the rest of the class (still known)."],
    )


def relearn_table(results: Results, options: ReportOptions | None = None) -> Table | None:
    """Per (dataset, scenario, method) with retain-only relearning measured: forget accuracy
    before, after fine-tuning on the retain data alone, the retrained model's after the same
    fine-tuning, and their difference; ``None`` when no record has it. A positive gap: the
    method's model recovers the forgotten samples from retained data more than a model that
    never saw them, so the knowledge was hidden, not removed."""
    metric = "retain_relearn_forget_acc"
    if metric not in results.matrix.columns or not results.matrix[metric].notna().any():
        return None
    return _stats_table(
        results, options, _groups(results), RELEARN_METRICS, metric, "relearn", "Relearning from the retain data alone",
        "Forget accuracy before, after fine-tuning on the retain data only (the method's model and the retrained model), "
        "and the relearn gap: the method's after − the retrained model's after.",
        ["A relearn gap above 0: the forgotten samples come back from retained data alone more than to a model that never "
         "saw them (hidden rather than removed)."],
    )


def request_tables(results: Results, options: ReportOptions | None = None) -> list[Table]:
    """The tables of this module that the results call for, in the page's order."""
    built = (drift_table(results, options), subpopulation_table(results, options), relearn_table(results, options))
    return [t for t in built if t is not None]


def request_curves(results: Results, group: tuple, options: ReportOptions | None, folder: Path,
                   colours: dict[str, str]) -> Figure | None:
    """One panel per metric of :data:`CURVE_METRICS` (speed-up on a log axis), x = request
    number, one line per method in its colour: the mean over seeds, the band min–max."""
    wide = request_frame(results).reset_index()
    wide = wide[(wide["dataset"] == group[0]) & (wide["model"] == group[1]) & (wide["scenario"] == group[2])]
    if wide.empty:
        return None
    methods = _ordered(results, options, wide["method"])
    requests = int(wide["request"].max())
    plt = pyplot()
    figure, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(2.8 * len(CURVE_METRICS), 2.6), squeeze=False)
    for i, method in enumerate(methods):
        mine = wide[wide["method"] == method].reindex(columns=["request", *CURVE_METRICS]).astype(float)
        mine = mine.replace([np.inf, -np.inf], np.nan)
        stacked = mine.groupby("request")
        mean, low, high = stacked.mean(), stacked.min(), stacked.max()
        for ax, metric in zip(axes[0], CURVE_METRICS):
            if not mean[metric].notna().any():
                continue
            (line,) = ax.plot(mean.index, mean[metric], color=colours.get(method, "0.5"), linestyle=LINESTYLES[i % len(LINESTYLES)],
                              marker=MARKERS[i % len(MARKERS)], markersize=3, linewidth=1.0, label=method)
            line.set_gid(METHOD_GID + method)
            ax.fill_between(mean.index, low[metric], high[metric], color=colours.get(method, "0.5"), alpha=0.15, linewidth=0)
    for ax, metric in zip(axes[0], CURVE_METRICS):
        ax.set_title(LABELS[metric] if metric != "speedup" else "Speed-up (cumulative, log)")
        ax.set_xlabel("request")
        ax.set_xticks(range(1, requests + 1))
        ax.set_xlim(0.8, requests + 0.2)
        positive = wide[metric].replace([np.inf, -np.inf], np.nan) if metric in wide else pd.Series(dtype=float)
        if metric == "speedup" and bool((positive > 0).any()):
            ax.set_yscale("log")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        axes[0][-1].legend(handles, labels, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(f"Sequential requests: {group_title(group)}", fontsize=9)
    figure.tight_layout()
    seeds = int(wide["seed"].nunique())
    return save(
        figure, folder, f"{FIGURE_PREFIX}{group_slug(group)}", f"Sequential requests: {group_title(group)}",
        f"Per request (x: its number), each method's mean over {seeds} seed{'s' if seeds != 1 else ''} (band: min–max over "
        "seeds) of forget, retain and test accuracy, the average gap, and the cumulative speed-up over retraining after "
        "every request (log axis); the forget-set metrics read every request so far.",
    )


def request_figures(results: Results, options: ReportOptions | None, folder: Path, colours: dict[str, str] | None = None,
                    workers: int | None = None) -> list[Figure]:
    """One :func:`request_curves` figure per sequential (dataset, model, scenario), drawn by
    forked workers as the other figures are; none without sequential records."""
    if results.requests.empty:
        return []
    options = options or ReportOptions()
    colours = colours or report_colours(results, options)
    groups = list(dict.fromkeys(zip(results.requests["dataset"], results.requests["model"], results.requests["scenario"])))
    jobs = [partial(request_curves, results, group, options, folder, colours) for group in groups]
    return [figure for figure in run_jobs(jobs, workers) if figure is not None]
