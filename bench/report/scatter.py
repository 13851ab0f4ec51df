"""The report's scatter figures: cost against quality (with each dataset's Pareto front) and
membership inference against forget accuracy; every point in its method's colour and named
by a label that overlaps no other (:mod:`bench.report.labels`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report.drawing import MARKERS, METHOD_GID, Figure, pyplot, save
from bench.report.labels import place_labels
from bench.report.load import GROUP, Results
from bench.report.tables import RETRAIN, ReportOptions, objective_of
from bench.report.tuning import is_tuned

MARKER_AREA, STAR_AREA = 30, 110  # pt², a method's marker and retrain's star
PANEL_IN = (4.6, 3.6)  # a panel's width and height at a dozen points or fewer
ROW_GAP_IN = 0.9  # between rows of panels: tick labels, the x label and the next title
Panel = tuple[Any, int, str, pd.DataFrame]  # axes, dataset index, dataset label, the points


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


def scatter_panels(results: Results, x: str, y: str) -> tuple[Any, np.ndarray, list[Panel]]:
    """One panel per dataset (rows) and scenario (columns), each with the means over seeds of
    ``x`` and ``y`` per method: ``(figure, grid of axes, [(ax, dataset index, label, points)])``.
    A panel holds one point per method, and panels grow with the number of methods, so that
    every label finds room near its point."""
    plt = pyplot()
    scenarios = list(dict.fromkeys(results.cells["scenario"]))
    datasets = list(dict.fromkeys(zip(results.cells["dataset"], results.cells["model"])))
    scale = max(1.0, (len(results.methods) / 12) ** 0.5)
    width, height = PANEL_IN[0] * scale, PANEL_IN[1] * scale
    # hspace is a share of an axes' height, about 3/4 of its panel's: the same gap in inches at any scale
    figure, grid = plt.subplots(len(datasets), len(scenarios), figsize=(width * len(scenarios), height * len(datasets)),
                                squeeze=False, gridspec_kw={"hspace": max(0.2, ROW_GAP_IN / (0.75 * height))})
    means = _means(results, [x, y])
    panels = []
    for d, (dataset, model) in enumerate(datasets):
        for ax, scenario in zip(grid[d], scenarios):
            label = f"{dataset} ({model})"
            ax.set_title(f"{label}, {scenario}")
            points = means[(means["scenario"] == scenario) & (means["dataset"] == dataset) & (means["model"] == model)]
            points = points.dropna(subset=[x, y])
            if points.empty:
                ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="0.5")
            panels.append((ax, d, label, points))
    return figure, grid, panels


def _method_points(ax, points: pd.DataFrame, x: str, y: str, d: int, colours: dict[str, str]) -> None:
    """One marker per method in its colour, the dataset's shape (retrain: a star); a tuned
    variant's is open."""
    for method, px, py in zip(points["method"], points[x], points[y]):
        colour = colours[method]
        shape, size = ("*", STAR_AREA) if method == RETRAIN else (MARKERS[d % len(MARKERS)], MARKER_AREA)
        marker = ax.scatter([px], [py], marker=shape, facecolor="white" if is_tuned(method) else colour,
                            edgecolor=colour, linewidth=1.0, s=size, zorder=3)
        marker.set_gid(METHOD_GID + method)


def _label_panels(panels: list[Panel], x: str, y: str, colours: dict[str, str]) -> None:
    """Name every point of each panel (after its scales are set), labels apart."""
    placed: list = []  # every label of the figure, so that panels' labels keep apart too
    for ax, _d, _label, points in panels:
        dpi = ax.figure.dpi / 72  # pixels per point
        halves = [(math.sqrt(STAR_AREA if m == RETRAIN else MARKER_AREA) / 2 + 1) * dpi for m in points["method"]]
        place_labels(ax, list(points["method"]), points[x].to_numpy(float), points[y].to_numpy(float),
                     [colours[m] for m in points["method"]], half_sizes=halves, placed=placed)


def _legend(grid: np.ndarray, panels: list[Panel]) -> None:
    """The legend, right of the top-right panel: its entries so far and the datasets' marker
    shapes (gray: no method's colour), the same shapes as in every panel of that dataset."""
    ax = grid[0, -1]
    for d, label in dict.fromkeys((d, label) for _ax, d, label, _points in panels):
        ax.scatter([], [], marker=MARKERS[d % len(MARKERS)], facecolor="0.7", edgecolor="black", s=30, label=label)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def cost_vs_quality(results: Results, options: ReportOptions, folder: Path, colours: dict[str, str]) -> Figure | None:
    """Wall time (log) against the sweep's objective (the summary's, :func:`objective_of`), a
    panel per dataset and scenario, each panel's Pareto front (no method both faster and
    closer to retrain) drawn as a step line."""
    gap = objective_of(results)
    if gap not in set(results.values["metric"]):
        return None
    figure, grid, panels = scatter_panels(results, "time_s", gap)
    panels = [(ax, d, label, points[points["time_s"] > 0]) for ax, d, label, points in panels]
    for ax, d, _label, points in panels:
        if points.empty:
            continue
        _method_points(ax, points, "time_s", gap, d, colours)
        front = pareto_front(points, "time_s", gap)
        ax.scatter(front["time_s"], front[gap], marker="o", facecolor="none", edgecolor="0.5", s=90, linewidth=0.8,
                   zorder=2)
        ax.step(front["time_s"], front[gap], where="post", color="0.5", linewidth=0.8)
    for ax in grid.flat:
        ax.set_xscale("log")
        ax.set_xlabel("time (s, log scale)")
        ax.set_ylabel(f"{gap} (lower is better)")
    _label_panels(panels, "time_s", gap, colours)
    grid[0, -1].plot([], [], color="0.5", linewidth=0.8, label="Pareto front")  # the legend's panel may have no front
    _legend(grid, panels)
    return save(figure, folder, "cost_vs_quality", "Cost against quality",
                 f"Mean wall time against mean {gap} over seeds, one panel per dataset and scenario, one colour per method "
                 "(open markers: tuned); ringed points and the step line: the Pareto front (no other method is both faster "
                 "and closer to retrain).")


def mia_vs_forget(results: Results, options: ReportOptions, folder: Path, colours: dict[str, str]) -> Figure | None:
    """Forget accuracy against ``mia_entropy``; the retrained model is the target, a star."""
    if "mia_entropy" not in set(results.values["metric"]):
        return None
    figure, grid, panels = scatter_panels(results, "forget_acc", "mia_entropy")
    for ax, d, _label, points in panels:
        _method_points(ax, points, "forget_acc", "mia_entropy", d, colours)
    for ax in grid.flat:
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("forget accuracy")
        ax.set_ylabel("mia_entropy")
    _label_panels(panels, "forget_acc", "mia_entropy", colours)
    _legend(grid, panels)
    return save(figure, folder, "mia_vs_forget", "Membership inference against forget accuracy",
                 "Means over seeds, one panel per dataset and scenario, one colour per method (open markers: tuned); the "
                 "stars are the retrained model, the target of every method.")
