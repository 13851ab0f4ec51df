"""The tuner's view of the data (validation in the test set's place, no test set) and of the
sweep config. The local backend (:mod:`bench.tuning.command`) and ``--replay``
(:mod:`bench.tuning.replay`) run trials on it in a :func:`bench.running.cells.local_session`; the Ray
backend builds the same view in its workers."""

from __future__ import annotations

import torch

from bench.config.sweep import SweepConfig
from bench.running.grid import PreparedData, prepare_data


def tuning_view(config: SweepConfig) -> SweepConfig:
    """The config the tuner's cells run under: no tuned file (the tuner tunes the entries as
    written). Its cells take their seeds from ``tuning.seeds``, never from ``seeds``."""
    return config.model_copy(update={"tuned": None})


def prepare_tuning_data(config: SweepConfig, device: torch.device) -> dict[str, PreparedData]:
    """Every dataset's tuner view: the validation share held out, no test set."""
    return {d.name: prepare_data(d, device, validation=config.tuning.validation_size) for d in config.datasets}
