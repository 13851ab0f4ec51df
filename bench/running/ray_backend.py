"""The Ray backend: a sweep as a graph of Ray tasks (the tuner's trials run as Ray tasks
through the same worker state: :mod:`bench.tuning.ray`).

    python -m bench.sweep --config configs/cpu.yaml --backend ray [--address ray://head:10001]

Without an address a local Ray instance is started (and stopped at the end); with one
the sweep joins that cluster. The graph: one task per original model (dataset, seed),
one per retrained model (dataset, scenario, seed), and one per pending cell, which runs
the method and its evaluation once the two models it needs exist; cells are submitted in
grid order, a few ahead of the running ones (:func:`submission_window`). Every task asks for
``resources.cpus`` CPUs (its intra-op thread count, the same as the local backend's, so
both give the same results) and, on a cluster with GPUs, ``resources.gpus`` GPUs.

Tasks pass only names, paths and short summaries; models, splits and run records go
through the file system, which every worker must reach (a shared path on a cluster):
the driver writes the splits before any task runs; a model is trained under a lock file
by the first task that needs it (the others wait, then load it); each record is written
atomically by its cell's task alone. Ray serialises the task functions and arguments
between the processes it starts; nothing read from disk is ever unpickled.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.config.sweep import SweepConfig
from bench.core.errors import UserError
from bench.running.results import write_record
from bench.data.splits import parse_scenario
from bench.core.store import stable_hash
from bench.running.cells import environment, run_cell
from bench.running.grid import (
    Cell, PreparedData, config_numerics, needs_update_record, plan_cells, planned_splits, prepare_data, scenario_splits,
    sweep_hold_out, task_threads,
)
from bench.running.model_store import ModelStore
from bench.training.loop import resolve_device, use_numerics, warm_up


def require_ray():
    """The ``ray`` module, or a :class:`UserError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray, which is not installed; allowed: pip install -e '.[ray]', or --backend local") from None
    return ray


@dataclass
class WorkerState:
    """What a worker process keeps between tasks of one sweep: the data on its device and
    the model store (whose in-memory models and reference evaluations tasks share)."""

    config: SweepConfig
    datasets: dict[str, PreparedData]
    models: ModelStore
    env: dict[str, Any]


_STATES: dict[str, WorkerState] = {}


def worker_state(config_json: str, cache: str, threads: int, out_dir: str, tuning: bool = False) -> WorkerState:
    """The worker's state for one sweep (or, with ``tuning``, one tuner run: the datasets'
    validation views, see :func:`bench.tuning.local.prepare_tuning_data`)."""
    torch.set_num_threads(threads)
    key = stable_hash([config_json, cache, out_dir, tuning])
    if key not in _STATES:
        _STATES.clear()  # a worker serves one sweep at a time; drop another's data
        gc.unfreeze()  # and give what warm_up froze for it back to the collector
        config = SweepConfig.model_validate_json(config_json)
        device = resolve_device(config.device)
        validation = config.tuning.validation_size if tuning else None
        datasets = {d.name: prepare_data(d, device, validation, hold_out=sweep_hold_out(config)) for d in config.datasets}
        models = ModelStore(
            Path(cache), device, progress=False, record_updates=needs_update_record(config),
            reference_dir=Path(out_dir) / "references", numerics=config_numerics(config),
        )
        warm_up(device)
        node = require_ray().get_runtime_context().get_node_id()  # which of the cluster's machines ran the cell
        _STATES[key] = WorkerState(config, datasets, models, {**environment(device), "ray_node": node})
    use_numerics(_STATES[key].config.compile, _STATES[key].config.precision)
    return _STATES[key]


def train_original(config_json: str, cache: str, threads: int, out_dir: str, dataset: str, seed: int) -> str:
    state = worker_state(config_json, cache, threads, out_dir)
    prepared = state.datasets[dataset]
    return state.models.original(prepared, seed, planned_splits(Path(out_dir), prepared, state.config, seed)).key


def train_retrained(config_json: str, cache: str, threads: int, out_dir: str, dataset: str, scenario: str, seed: int) -> str:
    state = worker_state(config_json, cache, threads, out_dir)
    prepared = state.datasets[dataset]
    splits = scenario_splits(Path(out_dir), prepared, parse_scenario(scenario, prepared.data.num_classes), seed)
    return ",".join(state.models.retrained(prepared, seed, split).key for split, _ in splits)


def run_cell_task(config_json: str, cache: str, threads: int, out_dir: str, cell_id: str, *models: str) -> dict[str, Any]:
    """Run one cell (``models``: the keys of the trainings it waited for); return its summary."""
    state = worker_state(config_json, cache, threads, out_dir)
    cell = next(c for c in plan_cells(state.config, state.datasets) if c.cell_id == cell_id)
    record = run_cell(cell, state.datasets[cell.dataset.name], state.models, Path(out_dir), state.config, state.env)
    return summary(record)


def summary(record: dict[str, Any]) -> dict[str, Any]:
    return {"cell": record["cell"], "status": record["status"], "error": record.get("error")}


def failed_record(config: SweepConfig, cell: Cell, error: BaseException) -> dict[str, Any]:
    """The record of a cell whose task, or a training it waited for, did not finish."""
    return {
        "sweep": config.sweep, "cell": cell.cell_id, "dataset": cell.dataset.name, "model": cell.dataset.model,
        "scenario": cell.scenario.spec, "seed": cell.seed, "method": cell.method.name, "method_class": cell.method.method,
        "params": cell.method.resolved_params(), "status": "failed", "metrics": {}, "timings": {},
        "error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
        "traceback": "".join(traceback.format_exception(error)), "finished_at": datetime.now(timezone.utc).isoformat(),
    }


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise ``ConnectionError`` when nothing listens at a ``host:port`` or ``ray://host:port``
    address. Ray itself retries an absent head for ever (a warning every 40 s), so a
    mistyped address would hang the sweep instead of stopping it. ``auto`` is left to Ray."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {host}:{port}: {error.strerror or error}") from None


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Join the cluster at ``address``, or start a local instance, for the block; a cluster
    that cannot be joined is a :class:`UserError`, before the sweep writes anything."""
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                check_reachable(address)
            # "local" starts a new instance even where another one runs (a test's, a user's)
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(
                f"--address {address!r}: cannot join a Ray cluster there ({reason}); allowed: the address of a running "
                "cluster's head (ray start --head), or no --address for a local instance"
            ) from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def task_options(ray, config: SweepConfig) -> dict[str, Any]:
    """What every task asks of the cluster: ``resources.cpus`` CPUs (its thread count) and,
    where GPUs are used, ``resources.gpus``; no retry (a failure is recorded instead)."""
    wants_gpu = config.device.startswith("cuda") or (config.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)
    return {"num_cpus": task_threads(config), "num_gpus": config.resources.gpus if wants_gpu else 0, "max_retries": 0}


def run_on_ray(config: SweepConfig, pending: list[Cell], out_dir: Path, cache: Path, progress: bool) -> list[dict[str, Any]]:
    """Submit the graph for ``pending`` cells to the Ray session this process holds, wait for
    every cell; return their summaries."""
    return _run_graph(require_ray(), config, pending, out_dir.resolve(), cache.resolve(), progress)


def submission_window(ray, options: dict[str, Any]) -> int:
    """How many cells are submitted ahead: twice the tasks the cluster runs at once, so the
    cells run in grid order (dataset, seed, scenario, method) as the local backend's do and a
    sweep cut short leaves whole groups finished, while a slot that frees finds a cell queued."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1) // max(options["num_cpus"], 1)
    if options["num_gpus"]:
        slots = min(slots, resources.get("GPU", 0) // options["num_gpus"])
    return max(2, 2 * int(slots))


def _run_graph(ray, config: SweepConfig, pending: list[Cell], out_dir: Path, cache: Path, progress: bool) -> list[dict[str, Any]]:
    options = task_options(ray, config)
    common = (config.model_dump_json(), str(cache), task_threads(config), str(out_dir))
    original, retrained, cells = {}, {}, {}

    def submit(cell: Cell) -> None:
        name, seed, spec = cell.dataset.name, cell.seed, cell.scenario.spec
        if (name, seed) not in original:
            original[name, seed] = ray.remote(train_original).options(**options).remote(*common, name, seed)
        if (name, spec, seed) not in retrained:
            retrained[name, spec, seed] = ray.remote(train_retrained).options(**options).remote(*common, name, spec, seed)
        ref = ray.remote(run_cell_task).options(**options).remote(
            *common, cell.cell_id, original[name, seed], retrained[name, spec, seed]
        )
        cells[ref] = cell

    queue = list(reversed(pending))
    window = submission_window(ray, options)
    while queue and len(cells) < window:
        submit(queue.pop())
    summaries = []
    bar = tqdm(total=len(pending), desc=f"sweep {config.sweep} (ray)", unit="cell", disable=not progress)
    while cells:
        done, _ = ray.wait(list(cells), num_returns=1)
        cell = cells.pop(done[0])
        if queue:
            submit(queue.pop())
        try:
            result = ray.get(done[0])
        except Exception as error:  # the task or a training it needed died: record it, go on
            record = failed_record(config, cell, error)
            write_record(out_dir, cell.cell_id, record)
            result = summary(record)
        if result["status"] == "failed":
            tqdm.write(f"cell {result['cell']} failed: {result['error']}", file=sys.stderr)
        summaries.append(result)
        bar.update(1)
    bar.close()
    return summaries
