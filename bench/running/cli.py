"""Command-line options shared by the commands that run cells (``bench.sweep``, ``bench.tune``),
and the command line of the scripts that print a table from a sweep's results."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from bench.core.errors import UserError

BACKENDS = ("local", "ray")


def add_run_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """``--cache``, ``--set``, ``--backend``, ``--address``, ``--no-progress``; ``unit`` names
    what the local backend runs one after the other (cells, trials)."""
    parser.add_argument("--cache", help="model cache folder (default: $UNLEARN_CACHE or ~/.cache/unlearn-bench)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config entry (dotted path), repeatable")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help=f"local: {unit} one after the other here; ray: Ray tasks (pip install -e '.[ray]')")
    parser.add_argument("--address", help="with --backend ray: the cluster to join (default: start a local Ray instance)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def check_run_options(args: argparse.Namespace) -> None:
    if args.address and args.backend != "ray":
        raise UserError("--address is for --backend ray; allowed: --backend ray --address ADDR, or neither")


def results_table_command(doc: str, needs: str, table: Callable[[Path, list[int] | None], str], argv: list[str] | None) -> int:
    """``SCRIPT RESULTS [--seeds 0,1]``: check that the sweep folder ``RESULTS`` holds ``needs``
    (``results.csv``, ``runs``), then print ``table(RESULTS, seeds)`` (``None``: every seed)."""
    from bench.config.selection import parse_int_list

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("results", type=Path, help=f"a sweep's results folder (with {needs})")
    parser.add_argument("--seeds", help="comma-separated seeds to average (default: all present)")
    args = parser.parse_args(argv)
    if not (args.results / needs).exists():
        raise UserError(f"{args.results / needs} not found; allowed: a folder python -m bench.sweep wrote")
    print(table(args.results, parse_int_list(args.seeds, "--seeds") if args.seeds else None))
    return 0
