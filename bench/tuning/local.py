"""Where the tuner's trials run in this process: its view of the data (validation in the
test set's place, no test set) and the model store, threads and numerics of a local run.
The local backend (:mod:`bench.tuning.command`) and ``--replay`` (:mod:`bench.tuning.replay`)
run trials through it; the Ray backend builds the same view in its workers."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from bench.cells import environment
from bench.config import SweepConfig
from bench.grid import PreparedData, config_numerics, needs_update_record, prepare_data, task_threads
from bench.model_store import ModelStore
from bench.train import use_numerics, warm_up


def tuning_view(config: SweepConfig) -> SweepConfig:
    """The config the tuner's cells run under: no tuned file (the tuner tunes the entries as
    written). Its cells take their seeds from ``tuning.seeds``, never from ``seeds``."""
    return config.model_copy(update={"tuned": None})


def prepare_tuning_data(config: SweepConfig, device: torch.device) -> dict[str, PreparedData]:
    """Every dataset's tuner view: the validation share held out, no test set."""
    return {d.name: prepare_data(d, device, validation=config.tuning.validation_size) for d in config.datasets}


@contextlib.contextmanager
def local_session(
    config: SweepConfig, out_dir: Path, cache: Path, device: torch.device, progress: bool, warm: bool,
) -> Iterator[tuple[ModelStore, dict[str, Any]]]:
    """The model store and environment of trials run in this process, with the sweep's
    thread count and numerics for the block (and garbage collection as :func:`warm_up` leaves it)."""
    models = ModelStore(
        cache, device, progress, needs_update_record(config), reference_dir=out_dir / "references",
        numerics=config_numerics(config),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(task_threads(config))
    use_numerics(config.compile, config.precision)
    if warm:
        warm_up(device)
    try:
        yield models, environment(device)
    finally:
        torch.set_num_threads(threads)
        use_numerics()
        if warm:
            gc.unfreeze()
