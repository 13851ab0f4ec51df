"""Re-running a stored trial: the same trial on the same machine gives the value stored.

    python -m bench.tune --config configs/quick.yaml --replay STUDY#NUMBER [--out DIR]

The trial's parameters come from the study's storage; its cells run again through the
same code as the trial did (the cell runner, the tuner's view of the data, the config's
thread count and numerics), into a scratch folder, so the study and its records are left
as they were. Whatever changes a result is in the keys of the models and cells it uses,
so a model cache built on another machine or thread count is not reused by mistake.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna

from bench.config.sweep import SweepConfig
from bench.core.errors import UserError
from bench.running.grid import Cell
from bench.running.cells import local_session, run_cell
from bench.training.loop import resolve_device
from bench.tuning.local import prepare_tuning_data, tuning_view
from bench.tuning.studies import StudySpec, plan_studies
from bench.tuning.trials import judge, trial_measure


@dataclass(frozen=True)
class Replay:
    """A trial's objective on each tuning seed it ran: as stored, and as run again."""

    study: str
    number: int
    stored: list[float]
    again: list[float]

    @property
    def identical(self) -> bool:
        return self.stored == self.again


def parse_trial(text: str) -> tuple[str, int]:
    """``STUDY#NUMBER`` → (study name, trial number)."""
    study, sep, number = text.rpartition("#")
    if not sep or not study or not number.isdigit():
        raise UserError(f"--replay {text!r}: expected STUDY#NUMBER, e.g. digits__class3__finetune__0123456789ab#4")
    return study, int(number)


def replay_trial(config: SweepConfig, out_dir: Path, study: str, number: int, cache: Path) -> Replay:
    """Run trial ``number`` of ``study`` (stored under ``out_dir``) again on the seeds it ran."""
    config = tuning_view(config)
    device = resolve_device(config.device)
    datasets = prepare_tuning_data(config, device)
    specs = {spec.name: spec for spec in plan_studies(config, datasets)}
    if study not in specs:
        raise UserError(f"--replay: no study {study!r} in this config; allowed: {', '.join(sorted(specs)) or 'none'}")
    trial = stored_trial(out_dir, study, number)
    stored = [float(v) for v in trial.user_attrs.get("seed_values", [])]
    spec: StudySpec = specs[study]
    seeds = config.tuning.seeds[: len(stored)]
    with tempfile.TemporaryDirectory() as scratch, local_session(config, Path(scratch), cache, device, False, warm=True) as (models, env):
        records = [
            run_cell(Cell(spec.dataset, spec.scenario, seed, spec.trial_entry(dict(trial.params), number)),
                     datasets[spec.dataset.name], models, Path(scratch), config, env, trial_measure(config.tuning, index == 0))
            for index, seed in enumerate(seeds)
        ]
    again = list(judge(records, config.tuning).seed_values)
    return Replay(study, number, stored, again)


def stored_trial(out_dir: Path, study: str, number: int) -> optuna.trial.FrozenTrial:
    """A trial as the studies' storage under ``out_dir`` holds it; a missing one is one line."""
    path = out_dir / "studies.db"
    if not path.is_file():
        raise UserError(f"--replay: no {str(path)!r}; allowed: the --out folder of a run of python -m bench.tune")
    try:
        trials = optuna.load_study(study_name=study, storage=f"sqlite:///{path.resolve()}").get_trials(deepcopy=False)
    except KeyError:
        raise UserError(f"--replay: {str(path)!r} holds no study {study!r}") from None
    found = [t for t in trials if t.number == number and "seed_values" in t.user_attrs]
    if not found:
        raise UserError(f"--replay: study {study!r} has no trial {number} that ran; allowed: 0 to {len(trials) - 1}")
    return found[0]
