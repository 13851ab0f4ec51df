"""The paper's tables and figures, and one page holding them, from a sweep's run records.

    python -m bench.report --results results/quick [results/more ...] [--out DIR] [--plots DIR]
        [--proposed fcalb] [--order retrain,original,...] [--ci t|bootstrap] [--alpha 0.05] [--no-figures]

Writes ``<out>/tables/*.{md,tex,csv}`` (main, gap-to-retrain and ablation tables per
dataset and scenario, the cost table, the failures; with sequential, subpopulation or
relearning records, :mod:`bench.report.requests`'s tables) and ``significance.csv``,
``plots/<sweep>/*.{png,pdf}`` and ``<out>/report.html``. Built from the run records
alone, so a report can be rebuilt, or several sweeps merged, without running anything;
every input is checked before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import UserError
from bench.report.figures import Figure, all_figures
from bench.report.load import Results, load_results
from bench.report.page import build_page
from bench.report.render import Table, write_table
from bench.report.overview import all_tables
from bench.report.requests import request_figures, request_tables
from bench.report.tables import ReportOptions
from bench.core.store import atomic_write_text

DEFAULT_PROPOSED = "fcalb"
INTERVALS = ("t", "bootstrap")

__all__ = ["Report", "ReportOptions", "build_report", "resolve_options"]


@dataclass(frozen=True)
class Report:
    out_dir: Path
    tables_dir: Path
    plots_dir: Path
    html: Path
    tables: list[Table]
    figures: list[Figure]


def resolve_options(
    results: Results, proposed: str | None = DEFAULT_PROPOSED, order: list[str] | None = None, interval: str = "t",
    confidence: float = 0.95, alpha: float = 0.05,
) -> ReportOptions:
    """Check the options against the results; the default proposed method is dropped
    silently when the sweep does not have it, a named one that is missing is an error."""
    methods = results.methods
    if proposed is not None and proposed not in methods:
        if proposed != DEFAULT_PROPOSED:
            raise UserError(f"--proposed {proposed!r} is not a method of these results; allowed: {', '.join(methods)}")
        proposed = None
    unknown = [m for m in order or [] if m not in methods]
    if unknown:
        raise UserError(f"--order names {', '.join(unknown)}, not methods of these results; allowed: {', '.join(methods)}")
    if interval not in INTERVALS:
        raise UserError(f"--ci {interval!r} is not an interval; allowed: {', '.join(INTERVALS)}")
    for name, value in (("--confidence", confidence), ("--alpha", alpha)):
        if not 0 < value < 1:
            raise UserError(f"{name} {value} is out of range; allowed: a number strictly between 0 and 1")
    return ReportOptions(proposed, tuple(order or ()), interval, confidence, alpha)


def default_out_dir(folders: list[Path], results: Results) -> Path:
    """The results folder itself, or ``<parent of the first>/<sweep>+<sweep>`` when merging."""
    return folders[0] if len(folders) == 1 else folders[0].parent / results.name


def build_report(
    folders: Path | list[Path], plots_dir: Path | None = None, out_dir: Path | None = None,
    options: ReportOptions | None = None, figures: bool = True, **option_values,
) -> Report:
    """Read ``folders``, check everything, then write every table, figure and the page.
    Without ``figures`` the tables and the page come in seconds (the figures take about a
    second each, most of it saving the PNG and the PDF)."""
    folders = [folders] if isinstance(folders, Path) else list(folders)
    results = load_results(folders)
    options = options or resolve_options(results, **option_values)
    out_dir = out_dir or default_out_dir(folders, results)
    plots_dir = plots_dir or Path("plots") / results.name
    tables_dir = out_dir / "tables"
    tables, significance = all_tables(results, options)
    tables += request_tables(results, options)  # sequential requests, subpopulations, relearning: only when present
    for table in tables:
        write_table(table, tables_dir)
    atomic_write_text(tables_dir / "significance.csv", significance.to_csv(index=False))
    drawn = [*all_figures(results, options, plots_dir), *request_figures(results, options, plots_dir)] if figures else []
    failures = next(t for t in tables if t.name == "failures")
    page = out_dir / "report.html"
    atomic_write_text(page, build_page(results, tables, drawn, failures))
    return Report(out_dir, tables_dir, plots_dir, page, tables, drawn)
