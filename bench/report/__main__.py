"""``python -m bench.report``: see :mod:`bench.report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.core.errors import cli_main
from bench.report import DEFAULT_PROPOSED, INTERVALS, build_report
from bench.report.labels import overlapping_pairs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description="Paper tables, figures and report.html from run records.")
    parser.add_argument("--results", nargs="+", required=True, metavar="FOLDER",
                        help="one or more sweeps' results folders, e.g. results/quick; several are merged")
    parser.add_argument("--out", help="where tables/ and report.html go (default: the results folder; "
                        "for several, <parent>/<sweep>+<sweep>)")
    parser.add_argument("--plots", help="where the figures go (default: plots/<sweep>)")
    parser.add_argument("--proposed", default=DEFAULT_PROPOSED,
                        help=f"the proposed method: last row, tested against, its variants ablated (default: {DEFAULT_PROPOSED}; 'none' for none)")
    parser.add_argument("--order", help="comma-separated row order of methods (unlisted methods follow)")
    parser.add_argument("--ci", choices=INTERVALS, default="t", help="gap-table intervals: Student t over seeds, or a percentile bootstrap")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the intervals (default 0.95)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm's correction (default 0.05)")
    parser.add_argument("--no-figures", action="store_true", help="tables and report.html only (seconds instead of about a minute)")
    return parser


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = build_report(
        [Path(f) for f in args.results], Path(args.plots) if args.plots else None, Path(args.out) if args.out else None,
        proposed=None if args.proposed == "none" else args.proposed,
        order=[m for m in args.order.split(",") if m] if args.order else None,
        interval=args.ci, confidence=args.confidence, alpha=args.alpha, figures=not args.no_figures,
    )
    print(f"tables: {report.tables_dir} ({len(report.tables)} tables, significance.csv)")
    print(f"plots:  {report.plots_dir} ({len(report.figures)} figures, PNG and PDF)")
    labelled = [figure for figure in report.figures if figure.labels]
    if labelled:
        pairs = sum(len(overlapping_pairs(list(figure.labels))) for figure in labelled)
        print(f"labels: {sum(len(f.labels) for f in labelled)} point labels in {len(labelled)} figures, {pairs} overlapping pairs")
    print(f"report: {report.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
