"""The sweep runner: config → grid of cells → run records and ``results.csv``.

    python -m bench.sweep --config configs/quick.yaml [--out DIR] [--seeds 0,1,2]
                          [--methods a,b] [--set key=value ...]

For each (dataset, seed) the original model is trained once; for each
(dataset, scenario, seed) the split is drawn and persisted and the model retrained
on the retain set once; both are cached by content hash, across sweeps. Each cell
runs its method on a copy of the original, evaluates the result with one pass per
split, and writes one record atomically. A cell whose record is finished and was
made from the same inputs is skipped, so running a command again resumes it.

With ``tuned: <file>`` in the config (written by ``python -m bench.tune``), each method the
file tuned also runs as ``<name>+tuned`` with the chosen parameters, beside its defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from bench.running.cells import alias_record, local_session, run_cell
from bench.running.cli import BACKENDS, add_run_options, check_run_options
from bench.config.selection import parse_int_list
from bench.config.sweep import SweepConfig, load_config
from bench.data.datasets import cache_root
from bench.core.errors import UserError, cli_main
from bench.running.grid import (
    Cell, PreparedData, alias_sources, cell_key, config_numerics, is_finished, plan_cells, prepare_data, sweep_hold_out,
    write_splits,
)
from bench.running.results import read_record, rebuild_results_csv, record_path, write_record
from bench.core.store import atomic_write_text
from bench.training.loop import resolve_device


@dataclass
class SweepSummary:
    out_dir: Path
    results_csv: Path
    ran: int
    skipped: int
    failed: list[str]
    same: int = 0  # cells whose record is another cell's (equal keys), written without running



def run_sweep(
    config: SweepConfig, out_dir: Path, cache_dir: Path | None = None, progress: bool = True,
    backend: str = "local", address: str | None = None,
) -> SweepSummary:
    """Run every unfinished cell of the grid; rebuild ``results.csv`` even when interrupted.

    ``backend="ray"`` runs the trainings and cells as Ray tasks (see :mod:`bench.running.ray_backend`)
    on a local instance, or on the cluster at ``address``; every artifact goes to ``out_dir``
    and the model cache, which every worker must reach."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "ray":
        from bench.running.ray_backend import require_ray

        require_ray()  # a missing extra stops here, before any work
    device = resolve_device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {config.device!r} asked for, but CUDA is not available; use device: auto or cpu")
    datasets = {d.name: prepare_data(d, device, hold_out=sweep_hold_out(config)) for d in config.datasets}  # data errors stop here
    cells = plan_cells(config, datasets)
    keys = [cell_key(c, datasets[c.dataset.name], config.evaluation, config_numerics(config)) for c in cells]
    sources = alias_sources(cells, keys)
    unfinished = [c for c, key in zip(cells, keys) if not is_finished(out_dir, c, key)]
    pending = [c for c in unfinished if c.cell_id not in sources]
    aliases = [c for c in unfinished if c.cell_id in sources]
    cache = (cache_dir or cache_root()) / "models"
    failed: list[str] = []
    if backend == "ray":
        from bench.running.ray_backend import ray_session, run_on_ray

        session = ray_session(address)  # joined or started before anything is written
    else:
        session = contextlib.nullcontext()
    with session:
        out_dir.mkdir(parents=True, exist_ok=True)
        if config.tuned is not None:  # the report's tuning table reads it beside the records
            atomic_write_text(out_dir / "tuned.yaml", yaml.safe_dump(config.tuned.model_dump(mode="json"), sort_keys=False))
        try:
            write_splits(config, datasets, out_dir)
            if backend == "ray":
                records = run_on_ray(config, pending, out_dir, cache, progress)
            else:
                records = run_locally(config, pending, datasets, out_dir, cache, device, progress)
            records += write_aliases(config, aliases, sources, out_dir)
            failed = [r["cell"] for r in records if r["status"] == "failed"]
        finally:
            results_csv = rebuild_results_csv(out_dir)
    return SweepSummary(out_dir, results_csv, len(pending), len(cells) - len(unfinished), failed, len(aliases))


def write_aliases(config: SweepConfig, aliases: list[Cell], sources: dict[str, Cell], out_dir: Path) -> list[dict[str, Any]]:
    """The records of cells that compute what another cell of the grid computes, from that
    cell's record (written by now, whichever backend ran it); a source that failed leaves
    its aliases failed too, and both run again next time."""
    records = []
    for cell in aliases:
        record = alias_record(cell, read_record(record_path(out_dir, sources[cell.cell_id].cell_id)), config)
        write_record(out_dir, cell.cell_id, record)
        records.append(record)
    return records



def run_locally(
    config: SweepConfig, pending: list[Cell], datasets: dict[str, PreparedData], out_dir: Path, cache: Path,
    device: torch.device, progress: bool,
) -> list[dict[str, Any]]:
    """The local backend: the cells one after the other in this process, in grid order, so
    that the models of a (dataset, seed) stay in memory while they are needed."""
    records = []
    with local_session(config, out_dir, cache, device, progress, warm=bool(pending)) as (models, env):
        bar = tqdm(pending, desc=f"sweep {config.sweep}", unit="cell", disable=not progress)
        for cell in bar:
            bar.set_postfix_str(cell.cell_id, refresh=True)
            record = run_cell(cell, datasets[cell.dataset.name], models, out_dir, config, env)
            if record["status"] == "failed":
                tqdm.write(f"cell {cell.cell_id} failed: {record['error']}", file=sys.stderr)
            records.append(record)
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="sweep profile, e.g. configs/quick.yaml")
    parser.add_argument("--out", help="results folder (default: results/<sweep>)")
    parser.add_argument("--seeds", help="comma-separated seeds, replacing the config's")
    parser.add_argument("--methods", help="comma-separated method names, replacing the config's")
    parser.add_argument("--datasets", help="comma-separated dataset names of the config, to run only those (a long profile in parts)")
    add_run_options(parser, "cells")
    return parser


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_run_options(args)
    seeds = parse_int_list(args.seeds, "--seeds") if args.seeds else None
    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    datasets = [d for d in args.datasets.split(",") if d] if args.datasets else None
    config = load_config(args.config, args.set, seeds, methods, datasets=datasets)
    out_dir = Path(args.out) if args.out else Path("results") / config.sweep
    summary = run_sweep(
        config, out_dir, Path(args.cache) if args.cache else None, progress=not args.no_progress,
        backend=args.backend, address=args.address,
    )
    print(
        f"sweep {config.sweep}: {summary.ran} cells run, {summary.skipped} already finished, "
        + (f"{summary.same} the same computation as another cell (its record shared), " if summary.same else "")
        + f"{len(summary.failed)} failed; results: {summary.results_csv}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
