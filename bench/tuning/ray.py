"""The tuner's trials as Ray tasks, in the sweep's Ray workers (:mod:`bench.running.ray_backend`).

    python -m bench.tune --config configs/cpu.yaml --backend ray [--address ray://head:10001]

The tuner keeps its Optuna studies in the driver (ask and tell against one SQLite file,
which only the driver opens: SQLite over a shared file system is unsafe for many writers)
and runs each trial as a task; see :func:`tune_on_ray`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench.config.sweep import SweepConfig
from bench.running.grid import task_threads
from bench.running.ray_backend import require_ray, task_options, worker_state
from bench.tuning.studies import Race, StudyDriver, StudySpec, TrialOutcome
from bench.tuning.trials import run_trial


def run_trial_task(
    config_json: str, cache: str, threads: int, out_dir: str, study: StudySpec, params: dict[str, Any], number: int,
    race: Race,
) -> TrialOutcome:
    """Run one trial of the tuner (its cells, seed after seed, in its race) in a worker."""
    state = worker_state(config_json, cache, threads, out_dir, tuning=True)
    prepared = state.datasets[study.dataset.name]
    return run_trial(study, params, number, race, prepared, state.models, Path(out_dir), state.config, state.env)


def tune_on_ray(config: SweepConfig, drivers: list[StudyDriver], out_dir: Path, cache: Path, progress: bool) -> None:
    """Every study at once, each with up to ``tuning.parallel`` trials in flight as Ray tasks;
    the driver alone asks and tells (the studies' storage is the driver's). With one trial
    in flight per study, each study's sequence is the local backend's."""
    ray = require_ray()
    options = task_options(ray, config)
    common = (config.model_dump_json(), str(cache), task_threads(config), str(out_dir))
    remote = ray.remote(run_trial_task).options(**options)
    in_flight: dict[Any, tuple[StudyDriver, int]] = {}

    def submit(driver: StudyDriver) -> None:
        while driver.remaining() and len(driver.in_flight) < config.tuning.parallel:
            number, params, race = driver.ask()
            in_flight[remote.remote(*common, driver.spec, params, number, race)] = (driver, number)

    bar = tqdm(total=sum(d.remaining() for d in drivers), desc=f"tune {config.sweep} (ray)", unit="trial", disable=not progress)
    for driver in drivers:
        submit(driver)
    while in_flight:
        done, _ = ray.wait(list(in_flight), num_returns=1)
        driver, number = in_flight.pop(done[0])
        try:
            outcome = ray.get(done[0])
        except Exception as error:  # the task died (a lost worker, a training that raised): retried next run
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            driver.abandon(number, reason)
            tqdm.write(f"trial {driver.spec.name} #{number} died ({reason}); the study goes on in the next run", file=sys.stderr)
            bar.update(1)
            continue
        driver.tell(number, outcome)
        if outcome.state == "failed":
            tqdm.write(f"trial {driver.spec.name} #{number} failed: {outcome.reason}", file=sys.stderr)
        bar.update(1)
        submit(driver)
    bar.close()
