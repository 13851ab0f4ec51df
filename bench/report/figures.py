"""The report's figures, each saved as PNG and PDF.

Colour says which method (one colour per method in every figure, :mod:`bench.report.palette`);
hatches, marker shapes and line styles say which dataset, so a figure printed in grayscale
still reads with the help of its labels. Every figure is built from the run records alone
(means over seeds, error bars = std over seeds).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report.drawing import (
    HATCHES, LINESTYLES, MARKERS, METHOD_GID, Figure, pyplot, report_colours, save,
)
from bench.report.load import GROUP, Results, balance_log
from bench.report.scatter import cost_vs_quality, mia_vs_forget, pareto_front
from bench.report.tables import HIGHER_IS_BETTER, RETRAIN, ReportOptions, group_slug, group_title, method_order
from bench.report.tuning import best_so_far, best_trial, first_late_trial, is_tuned, late_best_counts, tuned_groups, tuned_slug

__all__ = ["Figure", "all_figures", "pareto_front"]

# Per-metric bar charts for these would repeat a table column without adding a reading:
# the gaps are |metric − retrain|, drawn as the reference line of each metric's own chart.
NOT_CHARTED_PREFIXES = ("gap_", "request_")  # gaps: in the gap table; request_: the per-request figure


def charted_metrics(results: Results) -> list[str]:
    metrics = list(dict.fromkeys(results.values["metric"]))
    return [m for m in metrics if not m.startswith(NOT_CHARTED_PREFIXES)]


def metric_bars(results: Results, metric: str, options: ReportOptions, folder: Path, colours: dict[str, str]) -> Figure:
    """Methods on x in their colours, one hatched bar per dataset, one panel per scenario;
    error bars are the std over seeds; a dashed line per dataset marks the retrained
    model's mean."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

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
            bars = ax.bar(x, stats["mean"], width, yerr=stats["std"].fillna(0), color=[colours[m] for m in methods],
                          edgecolor="black", linewidth=0.6, hatch=HATCHES[d % len(HATCHES)], label=dataset, capsize=2,
                          error_kw={"linewidth": 0.8})
            for bar, method in zip(bars.patches, methods):
                bar.set_gid(METHOD_GID + method)
                if is_tuned(method):  # the same colour, lighter: the tuned variant of the bar beside it
                    bar.set_alpha(0.55)
            level = stats["mean"].get(RETRAIN, np.nan)
            if np.isfinite(level):
                line = ax.axhline(level, color=colours.get(RETRAIN, "black"), linestyle=LINESTYLES[(d + 1) % len(LINESTYLES)],
                                  linewidth=0.9, label=f"retrain, {dataset}")
                line.set_gid(METHOD_GID + RETRAIN)
        ax.set_title(scenario)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=40, ha="right")
        if log:
            ax.set_yscale("log")
    axes[0][0].set_ylabel(metric)
    legend = axes[0][-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for handle in legend.legend_handles:  # the datasets' keys: their hatch, no method's colour
        if isinstance(handle, Rectangle):
            handle.set_facecolor("white")
    direction = "higher is better" if metric in HIGHER_IS_BETTER else "see docs/metrics.md for its direction"
    return save(figure, folder, f"bars__{metric}", f"{metric} per method",
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


def prediction_distributions(results: Results, group: tuple, options: ReportOptions, folder: Path,
                             colours: dict[str, str]) -> Figure | None:
    """One panel per method: the share of forget samples predicted as each class by the
    method, by the retrained model and by the original model (means over seeds)."""
    histograms = _histograms(results, group)
    methods = [m for m in method_order(results, options, include_variants=True) if m in histograms and m not in (RETRAIN, "original")]
    if not methods:
        return None
    plt = pyplot()
    columns = min(4, len(methods))
    rows = -(-len(methods) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.0 * rows), squeeze=False, sharey=True)
    for ax, method in zip(axes.flat, methods):
        series = (("model", method, ""), ("retrain", RETRAIN, "//"), ("original", "original", ".."))
        for i, (key, owner, hatch) in enumerate(series):
            values = histograms[method].get(key)
            if values is None:
                continue
            x = np.arange(len(values)) + (i - 1) * 0.27
            bars = ax.bar(x, values, 0.27, color=colours.get(owner, "white"), edgecolor="black", linewidth=0.5, hatch=hatch,
                          label="method" if key == "model" else key)
            for bar in bars.patches:
                bar.set_gid(METHOD_GID + owner)
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
    return save(figure, folder, f"pred_dist__{group_slug(group)}", f"Prediction distribution on the forget set: {group_title(group)}",
                 "Share of forget samples predicted as each class: the method (its colour), the retrained model (hatched), "
                 "the original model (dotted); means over seeds.")


CURVES = ("forget_loss", "retain_loss", "forget_weight", "retain_weight")


def balance_curves(results: Results, group: tuple, options: ReportOptions, folder: Path,
                   colours: dict[str, str]) -> Figure | None:
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
    plt = pyplot()
    figure, axes = plt.subplots(1, len(CURVES), figsize=(3.0 * len(CURVES), 2.6), squeeze=False)
    for i, method in enumerate(order):
        stacked = pd.concat(runs[method]).groupby("round")
        mean, low, high = stacked.mean(), stacked.min(), stacked.max()
        for ax, curve in zip(axes[0], CURVES):
            if mean[curve].notna().any():
                (line,) = ax.plot(mean.index, mean[curve], color=colours[method], linestyle=LINESTYLES[i % 4], linewidth=1.0,
                        marker=MARKERS[i % len(MARKERS)], markevery=max(1, len(mean) // 8), markersize=3, label=method)
                line.set_gid(METHOD_GID + method)
                ax.fill_between(mean.index, low[curve], high[curve], color=colours[method], alpha=0.15, linewidth=0)
    for ax, curve in zip(axes[0], CURVES):
        ax.set_title(curve.replace("_", " "))
        ax.set_xlabel("round")
        if curve.endswith("loss"):
            ax.set_yscale("log")
    handles, labels = axes[0][0].get_legend_handles_labels()  # every variant has a forget loss
    axes[0][-1].legend(handles, labels, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(f"{options.proposed or 'balanced methods'}: losses and balance weights per round, {group_title(group)}", fontsize=9)
    figure.tight_layout()
    return save(figure, folder, f"balance__{group_slug(group)}", f"Losses and balance weights: {group_title(group)}",
                 "Per round of the step budget, mean over seeds (band: min–max); from the run records' method_log.")


def tuning_figures(results, folder: Path, colours: dict[str, str]) -> list[Figure]:
    """Per (dataset, scenario): each study's best-so-far curve against trial number (a step
    line: failed, rejected and pruned trials keep the best before them), every trial's value
    as a faint point, a ringed marker on the trial the tuned values are from (the best, or
    trial 0 where the defaults were kept: ``tuning.keep_defaults_z``), and the last fifth of
    the budget shaded: a curve still stepping down in it says the budget was short. Log scale
    when every value is positive (the methods' objectives lie decades apart)."""
    figures = []
    for (dataset, scenario), entries in tuned_groups(results.tuned).items():
        studies = [(f, e) for f, e in entries if e.history]
        if not studies:
            continue
        plt = pyplot()
        figure, ax = plt.subplots(figsize=(6.4, 3.4))
        budget = max(f.budget_of(e) for f, e in studies)
        span = ax.axvspan(first_late_trial(budget) - 0.5, budget - 0.5, color="0.92", linewidth=0, label="last fifth of the budget")
        span.set_zorder(0)
        positive = True
        for index, (_file, entry) in enumerate(studies):
            values = np.array([np.nan if v is None else v for v in entry.history], dtype=float)
            best = np.array([np.nan if v is None else v for v in best_so_far(entry.history)], dtype=float)
            positive = positive and bool((values[np.isfinite(values)] > 0).all())
            trials = np.arange(len(values))
            style = dict(color=colours[entry.method], marker=MARKERS[index % len(MARKERS)])
            (points,) = ax.plot(trials, values, linestyle="none", markersize=2.5, alpha=0.35, **style)
            (line,) = ax.plot(trials, best, linestyle=LINESTYLES[index % len(LINESTYLES)], drawstyle="steps-post",
                              linewidth=1.1, label=entry.method, **style, markersize=0)
            artists = [points, line]
            found = 0 if entry.defaults_kept else best_trial(entry.history)  # the trial the tuned values are from
            if found is not None:
                (mark,) = ax.plot([found], [best[found]], linestyle="none", markersize=5.5, markeredgecolor="black",
                                  markeredgewidth=0.6, **style)
                artists.append(mark)
            for artist in artists:
                artist.set_gid(METHOD_GID + entry.method)
        if positive:
            ax.set_yscale("log")
        ax.set_xlabel("trial (0: the defaults)")
        ax.set_ylabel(f"best validation {studies[0][0].objective} so far")
        ax.set_xlim(-0.5, budget - 0.5)
        ax.legend(fontsize=6, ncol=1 if len(studies) < 12 else 2, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        late, counted = late_best_counts(studies)
        ax.set_title(f"Tuning studies: {dataset}, {scenario} (best in the last fifth of the budget: {late} of {counted} studies)",
                     fontsize=8)
        figure.tight_layout()
        figures.append(save(
            figure, folder, f"tuning__{tuned_slug(dataset, scenario)}", f"Tuning studies: {dataset}, {scenario}",
            f"Best validation objective so far by trial (lines), every trial (faint points), the trial chosen (ringed: the best, "
            f"or trial 0 where the defaults were kept, the best beating them by less than the noise), "
            f"{budget} trials per method; shaded: the last fifth of the budget, where a line still falling says the budget "
            "was short.",
        ))
    return figures


def all_figures(results: Results, options: ReportOptions, folder: Path, workers: int | None = None) -> list[Figure]:
    """Every figure of the report, in reading order, drawn by ``workers`` forked processes
    (default: one per core, at most 4; 1 draws here). Each figure is independent and most of
    the time is matplotlib saving it, so two cores draw the quick profile's 33 in about half
    the time."""
    colours = report_colours(results, options)
    groups = list(results.cells.groupby(GROUP, sort=False).groups)
    jobs: list[Callable[[], Figure | None | list[Figure]]] = [
        partial(cost_vs_quality, results, options, folder, colours),
        partial(mia_vs_forget, results, options, folder, colours),
    ]
    for group in groups:
        jobs.append(partial(prediction_distributions, results, group, options, folder, colours))
        jobs.append(partial(balance_curves, results, group, options, folder, colours))
    jobs.extend(partial(metric_bars, results, metric, options, folder, colours) for metric in charted_metrics(results))
    jobs.append(partial(tuning_figures, results, folder, colours))
    drawn: list[Figure] = []
    for outcome in run_jobs(jobs, workers):
        drawn.extend(outcome if isinstance(outcome, list) else [outcome] if outcome is not None else [])
    return drawn


_JOBS: list[Callable[[], Any]] = []


def _run_job(index: int) -> Any:
    return _JOBS[index]()


def run_jobs(jobs: list[Callable[[], Any]], workers: int | None = None) -> list[Any]:
    """Each job's result, in order. The jobs reach the forked workers as module state (no
    pickled closures or data); only their results, plain records, come back."""
    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or len(jobs) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [job() for job in jobs]
    global _JOBS
    _JOBS = jobs
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            return list(pool.map(_run_job, range(len(jobs))))
    finally:
        _JOBS = []
