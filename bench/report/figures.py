"""The report's figures, each saved as PNG and PDF, drawn to be read in grayscale.

Grays, hatches, markers and line styles carry the distinctions, not hue. Every figure
is built from the run records alone (means over seeds, error bars = std over seeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.load import GROUP, Results, balance_log
from bench.report.tables import (
    HIGHER_IS_BETTER, RETRAIN, ReportOptions, group_slug, group_title, method_order,
)
from bench.report.tuning import tuned_groups, tuned_slug

HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
GRAYS = ("0.15", "0.45", "0.7", "0.9")
# Per-metric bar charts for these would repeat a table column without adding a reading:
# the gaps are |metric − retrain|, drawn as the reference line of each metric's own chart.
NOT_CHARTED_PREFIXES = ("gap_",)


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    caption: str
    png: Path
    pdf: Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "figure.dpi": 100, "pdf.fonttype": 42})
    return plt


def _save(figure, folder: Path, name: str, title: str, caption: str) -> Figure:
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    figure.savefig(png, dpi=130, bbox_inches="tight")
    figure.savefig(pdf, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return Figure(name, title, caption, png, pdf)


def charted_metrics(results: Results) -> list[str]:
    metrics = list(dict.fromkeys(results.values["metric"]))
    return [m for m in metrics if not m.startswith(NOT_CHARTED_PREFIXES)]


def metric_bars(results: Results, metric: str, options: ReportOptions, folder: Path) -> Figure:
    """Methods on x, one hatched gray bar per dataset, one panel per scenario; error bars are
    the std over seeds; a dashed line per dataset marks the retrained model's mean."""
    plt = _pyplot()
    data = results.values[results.values["metric"] == metric].copy()
    data["dataset_model"] = data["dataset"] + " (" + data["model"] + ")"
    scenarios = list(dict.fromkeys(results.cells["scenario"]))
    datasets = list(dict.fromkeys(results.cells["dataset"] + " (" + results.cells["model"] + ")"))
    methods = method_order(results, options, include_variants=True)
    log = metric.endswith("_s") or metric == "speedup"
    figure, axes = plt.subplots(1, len(scenarios), figsize=(max(4.0, 0.42 * len(methods) * len(datasets) ** 0.5) * len(scenarios), 3.2),
                                squeeze=False, sharey=True)
    width = 0.8 / len(datasets)
    for ax, scenario in zip(axes[0], scenarios):
        part = data[data["scenario"] == scenario]
        for d, dataset in enumerate(datasets):
            mine = part[part["dataset_model"] == dataset]
            stats = mine.groupby("method")["value"].agg(["mean", "std"]).reindex(methods)
            x = np.arange(len(methods)) + (d - (len(datasets) - 1) / 2) * width
            ax.bar(x, stats["mean"], width, yerr=stats["std"].fillna(0), color=GRAYS[d % len(GRAYS)], edgecolor="black",
                   linewidth=0.6, hatch=HATCHES[d % len(HATCHES)], label=dataset, capsize=2, error_kw={"linewidth": 0.8})
            level = stats["mean"].get(RETRAIN, np.nan)
            if np.isfinite(level):
                ax.axhline(level, color="black", linestyle=LINESTYLES[(d + 1) % len(LINESTYLES)], linewidth=0.9,
                           label=f"retrain, {dataset}")
        ax.set_title(scenario)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=40, ha="right")
        if log:
            ax.set_yscale("log")
    axes[0][0].set_ylabel(metric)
    axes[0][-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    direction = "higher is better" if metric in HIGHER_IS_BETTER else "see docs/metrics.md for its direction"
    return _save(figure, folder, f"bars__{metric}", f"{metric} per method",
                 f"Mean over seeds, error bars ± std; dashed lines: the retrained model ({direction}).")


def _histograms(results: Results, group: tuple) -> dict[str, dict[str, np.ndarray]]:
    """Forget-set prediction histograms per method, averaged over seeds: the method's own,
    the retrained model's and the original's. Records written before the original's
    histogram was recorded fall back to the ``original`` cell of the same seed."""
    per_method: dict[str, dict[str, list]] = {}
    original_cells = {
        r["seed"]: r["prediction_histograms"]["model"] for r in results.records
        if (r["dataset"], r["model"], r["scenario"]) == group and r["method"] == "original" and r["status"] == "ok"
        and r.get("prediction_histograms")
    }
    for record in results.records:
        if (record["dataset"], record["model"], record["scenario"]) != group or record["status"] != "ok":
            continue
        histograms = record.get("prediction_histograms") or {}
        if "model" not in histograms:
            continue
        entry = per_method.setdefault(record["method"], {"model": [], "retrain": [], "original": []})
        entry["model"].append(histograms["model"])
        if "retrain" in histograms:
            entry["retrain"].append(histograms["retrain"])
        original = histograms.get("original", original_cells.get(record["seed"]))
        if original is not None:
            entry["original"].append(original)
    return {m: {k: np.mean(v, axis=0) for k, v in h.items() if v} for m, h in per_method.items()}


def prediction_distributions(results: Results, group: tuple, options: ReportOptions, folder: Path) -> Figure | None:
    """One panel per method: the share of forget samples predicted as each class by the
    method, by the retrained model and by the original model (means over seeds)."""
    histograms = _histograms(results, group)
    methods = [m for m in method_order(results, options, include_variants=True) if m in histograms and m not in (RETRAIN, "original")]
    if not methods:
        return None
    plt = _pyplot()
    columns = min(4, len(methods))
    rows = -(-len(methods) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.0 * rows), squeeze=False, sharey=True)
    series = (("model", "method", GRAYS[0], ""), ("retrain", "retrain", GRAYS[2], "//"), ("original", "original", "white", ".."))
    for ax, method in zip(axes.flat, methods):
        for i, (key, label, color, hatch) in enumerate(series):
            values = histograms[method].get(key)
            if values is None:
                continue
            x = np.arange(len(values)) + (i - 1) * 0.27
            ax.bar(x, values, 0.27, color=color, edgecolor="black", linewidth=0.5, hatch=hatch, label=label)
        ax.set_title(method)
        ax.set_xticks(np.arange(len(histograms[method]["model"])))
        ax.tick_params(axis="x", labelsize=6)
    for ax in axes.flat[len(methods):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("share of forget set")
    axes.flat[0].legend(fontsize=6, frameon=False)
    figure.suptitle(f"Predicted classes on the forget set: {group_title(group)}", fontsize=9)
    figure.tight_layout()
    return _save(figure, folder, f"pred_dist__{group_slug(group)}", f"Prediction distribution on the forget set: {group_title(group)}",
                 "Share of forget samples predicted as each class: the method (dark), the retrained model (hatched gray), "
                 "the original model (dotted white); means over seeds.")


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The points no other point beats on both ``x`` and ``y`` (lower is better on both),
    sorted by ``x``."""
    ordered = points.dropna(subset=[x, y]).sort_values([x, y])
    front, best = [], np.inf
    for index, row in ordered.iterrows():
        if row[y] < best:
            front.append(index)
            best = row[y]
    return ordered.loc[front]


def _means(results: Results, metrics: list[str]) -> pd.DataFrame:
    """Mean over seeds per (dataset, model, scenario, method) of ``metrics`` (wide)."""
    matrix = results.matrix
    present = [m for m in metrics if m in matrix.columns]
    means = matrix[present].groupby(level=[*GROUP, "method"], sort=False).mean().reset_index()
    for metric in metrics:
        if metric not in means:
            means[metric] = np.nan
    return means


def _scatter_figure(results: Results, x: str, y: str):
    """One panel per scenario, and for each panel and dataset the means over seeds of
    ``x`` and ``y`` per method: ``(figure, axes, [(ax, dataset index, label, points)])``."""
    plt = _pyplot()
    scenarios = list(dict.fromkeys(results.cells["scenario"]))
    figure, axes = plt.subplots(1, len(scenarios), figsize=(4.6 * len(scenarios), 3.6), squeeze=False)
    means = _means(results, [x, y])
    datasets = list(dict.fromkeys(zip(results.cells["dataset"], results.cells["model"])))
    panels = []
    for ax, scenario in zip(axes[0], scenarios):
        ax.set_title(scenario)
        for d, (dataset, model) in enumerate(datasets):
            points = means[(means["scenario"] == scenario) & (means["dataset"] == dataset) & (means["model"] == model)]
            panels.append((ax, d, f"{dataset} ({model})", points.dropna(subset=[x, y])))
    return figure, axes[0], panels


def _labelled_points(ax, points: pd.DataFrame, x: str, y: str, d: int, label: str) -> None:
    """Open markers (the dataset's shape), each named by its method."""
    ax.scatter(points[x], points[y], marker=MARKERS[d % len(MARKERS)], facecolor="white", edgecolor="black", s=30,
               label=label, zorder=3)
    for method, px, py in zip(points["method"], points[x], points[y]):
        ax.annotate(method, (px, py), fontsize=6, xytext=(3, 3), textcoords="offset points")


def cost_vs_quality(results: Results, options: ReportOptions, folder: Path) -> Figure | None:
    """Wall time (log) against ``avg_gap``, one point per method and dataset, each dataset's
    Pareto front (no method both faster and closer to retrain) drawn as a step line."""
    if "avg_gap" not in set(results.values["metric"]):
        return None
    figure, axes, panels = _scatter_figure(results, "time_s", "avg_gap")
    for ax, d, label, points in panels:
        points = points[points["time_s"] > 0]
        if points.empty:
            continue
        _labelled_points(ax, points, "time_s", "avg_gap", d, label)
        front = pareto_front(points, "time_s", "avg_gap")
        ax.scatter(front["time_s"], front["avg_gap"], marker=MARKERS[d % len(MARKERS)], color="black", s=30, zorder=4)
        ax.step(front["time_s"], front["avg_gap"], where="post", color="black", linestyle=LINESTYLES[d % 4], linewidth=0.8,
                label=f"Pareto front, {label}")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("time (s, log scale)")
        ax.set_ylabel("avg_gap (lower is better)")
    axes[-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(figure, folder, "cost_vs_quality", "Cost against quality",
                 "Mean wall time against mean avg_gap over seeds; filled markers and the step line: the Pareto front "
                 "(no other method is both faster and closer to retrain).")


def mia_vs_forget(results: Results, options: ReportOptions, folder: Path) -> Figure | None:
    """Forget accuracy against ``mia_entropy``; the retrained model is the target, a star."""
    if "mia_entropy" not in set(results.values["metric"]):
        return None
    figure, axes, panels = _scatter_figure(results, "forget_acc", "mia_entropy")
    for ax, d, label, points in panels:
        _labelled_points(ax, points[points["method"] != RETRAIN], "forget_acc", "mia_entropy", d, label)
        target = points[points["method"] == RETRAIN]
        if not target.empty:
            ax.scatter(target["forget_acc"], target["mia_entropy"], marker="*", color="black", s=140, zorder=4,
                       label=f"retrain, {label}")
    for ax in axes:
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("forget accuracy")
        ax.set_ylabel("mia_entropy")
    axes[-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(figure, folder, "mia_vs_forget", "Membership inference against forget accuracy",
                 "Means over seeds; the star is the retrained model, the target of every method.")


CURVES = ("forget_loss", "retain_loss", "forget_weight", "retain_weight")


def balance_curves(results: Results, group: tuple, options: ReportOptions, folder: Path) -> Figure | None:
    """Per round (per epoch in records older than the step budget), the proposed method's
    (and its variants') forget and retain losses and the balancer's weights, from the run
    records' ``method_log``; mean over seeds, band = min–max."""
    runs: dict[str, list[pd.DataFrame]] = {}
    for record in results.records:
        if (record["dataset"], record["model"], record["scenario"]) != group or record["status"] != "ok":
            continue
        rounds = balance_log(record)
        if not rounds or "forget_weight" not in rounds[0]:
            continue
        frame = pd.DataFrame(rounds).reindex(columns=list(CURVES)).astype(float)
        frame["round"] = np.arange(1, len(frame) + 1)
        runs.setdefault(record["method"], []).append(frame)
    if not runs:
        return None
    order = [m for m in method_order(results, options, include_variants=True) if m in runs]
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(CURVES), figsize=(3.0 * len(CURVES), 2.6), squeeze=False)
    for i, method in enumerate(order):
        stacked = pd.concat(runs[method]).groupby("round")
        mean, low, high = stacked.mean(), stacked.min(), stacked.max()
        for ax, curve in zip(axes[0], CURVES):
            if mean[curve].notna().any():
                ax.plot(mean.index, mean[curve], color="black", linestyle=LINESTYLES[i % 4], linewidth=1.0,
                        marker=MARKERS[i % len(MARKERS)], markevery=max(1, len(mean) // 8), markersize=3, label=method)
                ax.fill_between(mean.index, low[curve], high[curve], color=GRAYS[(i + 1) % len(GRAYS)], alpha=0.4, linewidth=0)
    for ax, curve in zip(axes[0], CURVES):
        ax.set_title(curve.replace("_", " "))
        ax.set_xlabel("round")
        if curve.endswith("loss"):
            ax.set_yscale("log")
    handles, labels = axes[0][0].get_legend_handles_labels()  # every variant has a forget loss
    axes[0][-1].legend(handles, labels, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(f"{options.proposed or 'balanced methods'}: losses and balance weights per round, {group_title(group)}", fontsize=9)
    figure.tight_layout()
    return _save(figure, folder, f"balance__{group_slug(group)}", f"Losses and balance weights: {group_title(group)}",
                 "Per round of the step budget, mean over seeds (band: min–max); from the run records' method_log.")


def tuning_figures(results, folder: Path) -> list[Figure]:
    """Per (dataset, scenario): each study's objective by trial (points) and the best so far (line)."""
    figures = []
    for (dataset, scenario), entries in tuned_groups(results.tuned).items():
        studies = [(f, e) for f, e in entries if e.history]
        if not studies:
            continue
        plt = _pyplot()
        figure, ax = plt.subplots(figsize=(6.0, 3.2))
        for index, (_file, entry) in enumerate(studies):
            values = np.array([np.nan if v is None else v for v in entry.history], dtype=float)
            trials = np.arange(len(values))
            best = np.fmin.accumulate(np.where(np.isnan(values), np.inf, values))
            best[np.isinf(best)] = np.nan
            style = dict(color=f"{0.1 + 0.6 * (index % 4) / 3:.2f}", marker=MARKERS[index % len(MARKERS)])
            ax.plot(trials, values, linestyle="none", markersize=3, alpha=0.6, **style)
            ax.plot(trials, best, linestyle=LINESTYLES[index % len(LINESTYLES)], label=entry.method, **style, markersize=0)
        budget = max(f.budget for f, _ in studies)
        ax.set_xlabel("trial")
        ax.set_ylabel(f"validation {studies[0][0].objective}")
        ax.set_xlim(-0.5, budget - 0.5)
        ax.legend(fontsize=6, ncol=2, frameon=False)
        ax.set_title(f"Tuning studies: {dataset}, {scenario}")
        figure.tight_layout()
        figures.append(_save(
            figure, folder, f"tuning__{tuned_slug(dataset, scenario)}", f"Tuning studies: {dataset}, {scenario}",
            f"Validation objective of every trial (points) and the best so far (lines), {budget} trials per method; "
            "a line still falling at the last trial says the budget was short.",
        ))
    return figures


def all_figures(results: Results, options: ReportOptions, folder: Path) -> list[Figure]:
    """Every figure of the report, in reading order."""
    figures: list[Figure | None] = []
    groups = list(results.cells.groupby(GROUP, sort=False).groups)
    figures.append(cost_vs_quality(results, options, folder))
    figures.append(mia_vs_forget(results, options, folder))
    for group in groups:
        figures.append(prediction_distributions(results, group, options, folder))
        figures.append(balance_curves(results, group, options, folder))
    figures.extend(metric_bars(results, metric, options, folder) for metric in charted_metrics(results))
    figures.extend(tuning_figures(results, folder))
    return [f for f in figures if f is not None]
