"""Command-line options shared by the commands that run cells (``bench.sweep``, ``bench.tune``)."""

from __future__ import annotations

import argparse

from bench.errors import UserError

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
