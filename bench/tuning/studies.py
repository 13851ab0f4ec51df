"""Optuna studies of the tuner: one per (dataset, scenario, method entry), stored in SQLite.

Only the driver process touches the storage (ask and tell); trials run wherever the backend
puts them, through the sweep's cell runner. A study's name carries the hash of everything
that decides its trials, so a changed setting starts a new study and a rerun continues the
same one. Every trial that ran to an end (complete, failed or rejected) counts toward the
budget; a trial left running by a killed driver is marked failed and does not count.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from bench.config import DatasetConfig, EvaluationConfig, MethodEntry, SweepConfig
from bench.grid import METRICS_VERSION, TRAINING_VERSION, PreparedData, config_numerics, dataset_slug, derive_seed
from bench.registry import get_method
from bench.tuning.space import SearchSpace, describe_space, suggest
from bench.splits import Scenario, parse_scenario
from bench.store import stable_hash
from bench.tuning.config import TunedEntry, TuningConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass(frozen=True)
class StudySpec:
    """One study: a method entry of the sweep on one dataset and scenario, and its space."""

    dataset: DatasetConfig
    scenario: Scenario
    entry: MethodEntry
    key: str

    @property
    def space(self) -> SearchSpace:
        return get_method(self.entry.method).search_space

    @property
    def name(self) -> str:
        return f"{dataset_slug(self.dataset.name)}__{self.scenario.slug}__{self.entry.name}__{self.key[:12]}"

    def trial_entry(self, params: dict[str, Any], number: int) -> MethodEntry:
        """The method entry a trial runs: the sweep entry's params, the trial's on top."""
        return MethodEntry(name=f"{self.entry.name}.t{number}", method=self.entry.method, params={**self.entry.params, **params})

    def own_values(self) -> dict[str, Any]:
        """The entry's own values (its defaults, or an ablation's) of the space's parameters."""
        resolved = get_method(self.entry.method).setting_params(
            self.entry.resolved_params(), self.scenario, self.dataset.recipe.epochs
        )
        return {name: resolved[name] for name in self.space}

    def defaults(self) -> dict[str, Any] | None:
        """:meth:`own_values`, or None where one lies outside the space (not tried then)."""
        values = self.own_values()
        return values if all(param.contains(values[name]) for name, param in self.space.items()) else None


def study_key(
    dataset: DatasetConfig, fingerprint: str, spec: str, entry: MethodEntry, tuning: TuningConfig,
    evaluation: EvaluationConfig, numerics: dict[str, Any],
) -> str:
    """Hash of everything that decides a study's trials, the method's defaults included (a
    changed default starts a new study); the budget is not in it (a larger budget continues
    the study)."""
    space = get_method(entry.method).search_space
    return stable_hash({
        "dataset": dataset.model_dump(), "fingerprint": fingerprint, "scenario": spec, "method": entry.method,
        "params": entry.resolved_params(), "space": {n: [p.describe(), p.source] for n, p in space.items()},
        "tuning": tuning.model_dump(exclude={"trials", "parallel"}), "evaluation": evaluation.model_dump(exclude={"batch_size"}),
        "numerics": numerics, "versions": [TRAINING_VERSION, METRICS_VERSION],
    }, length=64)


def plan_studies(config: SweepConfig, datasets: dict[str, PreparedData]) -> list[StudySpec]:
    """Every (dataset, scenario, method entry) of the sweep, in the sweep's order."""
    return [
        StudySpec(dataset, parse_scenario(spec, datasets[dataset.name].data.num_classes), entry, study_key(
            dataset, datasets[dataset.name].fingerprint, spec, entry, config.tuning, config.evaluation, config_numerics(config),
        ))
        for dataset in config.datasets
        for spec in config.scenarios
        for entry in config.methods
    ]


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended: ``complete`` with a value, ``failed`` (a cell failed or was not
    applicable) or ``rejected`` (over ``max_time_ratio``)."""

    state: str
    value: float | None = None
    reason: str = ""
    time_ratio: float | None = None


class StudyDriver:
    """Ask and tell for one study, with the budget and resumption rules of the tuner."""

    def __init__(self, spec: StudySpec, storage: str, tuning: TuningConfig, budget: int):
        self.spec, self.tuning, self.budget = spec, tuning, budget
        self.study = optuna.create_study(study_name=spec.name, storage=storage, direction="minimize", load_if_exists=True)
        self.in_flight: dict[int, Trial] = {}
        self.stopped = False  # a trial died of something not the method's: no more asks this run
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL)  # left running by a killed driver: not counted
        defaults = spec.defaults()
        has_default = any(t.user_attrs.get("default") for t in self.counted() + self._waiting())
        if defaults is not None and spec.space and not has_default and len(self.counted()) < budget:
            self.study.enqueue_trial(defaults, user_attrs={"default": True})

    def _waiting(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))

    def counted(self) -> list[optuna.trial.FrozenTrial]:
        """The trials that ran to an end, in order of number: complete, rejected (pruned), or
        failed by the method (``outcome: failed``). A trial left running by a killed driver,
        or whose task died of something else, is failed without that mark and not counted."""
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED))
        ended = (t for t in trials if t.state != TrialState.FAIL or t.user_attrs.get("outcome") == "failed")
        return sorted(ended, key=lambda t: t.number)

    def remaining(self) -> int:
        """Trials still to ask for: the budget less those counted and those in flight."""
        if not self.spec.space or self.stopped:
            return 0
        return max(0, self.budget - len(self.counted()) - len(self.in_flight))

    def ask(self) -> tuple[int, dict[str, Any]]:
        """A new trial's number and parameters. The sampler is seeded from the scenario, the
        method entry and the number of trials finished, so the sequence depends on the
        history only, not on when a driver was started or killed (and two datasets give a
        method the same random draws until their histories differ)."""
        spec = self.spec
        history = (len(self.counted()),) + ((len(self.in_flight),) if self.in_flight else ())  # asked at once: differ
        self.study.sampler = optuna.samplers.TPESampler(
            seed=derive_seed(self.tuning.sampler_seed, spec.scenario.spec, spec.entry.name, *history) % 2**32,
            n_startup_trials=self.tuning.startup_trials, constant_liar=self.tuning.parallel > 1,
        )
        trial = self.study.ask()
        params = {name: suggest(trial, name, param) for name, param in self.spec.space.items()}
        self.in_flight[trial.number] = trial
        return trial.number, params

    def tell(self, number: int, outcome: TrialOutcome) -> None:
        """Record how a trial ended; it counts toward the budget from then on."""
        trial = self.in_flight.pop(number)
        trial.set_user_attr("outcome", outcome.state)
        if outcome.reason:
            trial.set_user_attr("reason", outcome.reason[:500])
        if outcome.time_ratio is not None:
            trial.set_user_attr("time_ratio", outcome.time_ratio)
        if outcome.state == "complete":
            self.study.tell(trial, outcome.value)
        else:
            self.study.tell(trial, state=TrialState.PRUNED if outcome.state == "rejected" else TrialState.FAIL)

    def abandon(self, number: int, reason: str) -> None:
        """A trial whose run died of something not the method's (a lost worker, a training that
        raised): failed without counting, and no more trials of this study in this run; the
        next run of the command tries again."""
        trial = self.in_flight.pop(number)
        trial.set_user_attr("outcome", "died")
        trial.set_user_attr("reason", reason[:500])
        self.study.tell(trial, state=TrialState.FAIL)
        self.stopped = True

    def result(self, dataset_hash: str) -> TunedEntry:
        """The study's entry of ``tuned.yaml``: the best of its first ``budget`` counted trials."""
        trials = self.counted()[: self.budget]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
        default = next((t for t in trials if t.user_attrs.get("default") and t.state == TrialState.COMPLETE), None)
        spec = self.spec
        return TunedEntry(
            dataset=spec.dataset.name, scenario=spec.scenario.spec, method=spec.entry.name, method_class=spec.entry.method,
            base_params=spec.entry.params, method_params=json.loads(json.dumps(spec.entry.resolved_params())), dataset_hash=dataset_hash,
            space=describe_space(spec.space),
            defaults=spec.own_values(), params=dict(best.params) if best else {}, objective=best.value if best else None,
            default_objective=default.value if default else None, trials=len(trials),
            failed=sum(t.state == TrialState.FAIL for t in trials), rejected=sum(t.state == TrialState.PRUNED for t in trials),
            history=[t.value if t.state == TrialState.COMPLETE else None for t in trials],
        )
