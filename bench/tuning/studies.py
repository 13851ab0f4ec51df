"""Optuna studies of the tuner: one per (dataset, scenario, method entry), stored in SQLite.

Only the driver process touches the storage (ask and tell); trials run wherever the backend
puts them, through the sweep's cell runner. A study's name carries the hash of everything
that decides its trials, so a changed setting starts a new study and a rerun continues the
same one. Every trial that ran to an end (complete, pruned by the race, failed or rejected)
counts toward the budget; a trial left running by a killed driver is marked failed and does
not count. The race (:class:`Race`) is fixed when a trial is asked for.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import Trial, TrialState

from bench.config.sweep import DatasetConfig, EvaluationConfig, MethodEntry, SweepConfig
from bench.running.grid import METRICS_VERSION, TRAINING_VERSION, PreparedData, config_numerics, dataset_slug, derive_seed
from bench.registry import get_method
from bench.registry.space import SearchSpace, describe_space, suggest
from bench.data.splits import Scenario, parse_scenario
from bench.core.store import stable_hash
from bench.config.tuning import TunedEntry, TuningConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass(frozen=True)
class StudySpec:
    """One study: a method entry of the sweep on one dataset and scenario, and its space."""

    dataset: DatasetConfig
    scenario: Scenario
    entry: MethodEntry
    key: str
    content_key: str = ""  # the key without names: what seeds the sampler

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
    the study; what the sweep trains on is not either)."""
    space = get_method(entry.method).search_space
    return stable_hash({
        "dataset": dataset.model_dump(), "fingerprint": fingerprint, "scenario": spec, "method": entry.method,
        "params": entry.resolved_params(), "space": {n: [p.describe(), p.source] for n, p in space.items()},
        "tuning": tuning.model_dump(exclude={"trials", "parallel", "sweep_holds_out", "keep_defaults_z"}),
        "evaluation": evaluation.key_fields(),
        "numerics": numerics, "versions": [TRAINING_VERSION, METRICS_VERSION],
    }, length=64)


def plan_studies(config: SweepConfig, datasets: dict[str, PreparedData]) -> list[StudySpec]:
    """Every (dataset, tuned scenario, method entry) of the sweep, in the sweep's order
    (sequences and subpopulations take a tuned scenario's parameters: ``tuned_from``)."""
    return [
        StudySpec(dataset, parse_scenario(spec, datasets[dataset.name].data.num_classes), entry, study_key(
            dataset, datasets[dataset.name].fingerprint, spec, entry, config.tuning, config.evaluation, config_numerics(config),
        ), study_key(
            dataset.model_copy(update={"name": ""}), datasets[dataset.name].fingerprint, spec, entry, config.tuning,
            config.evaluation, config_numerics(config),
        ))
        for dataset in config.datasets
        for spec in config.tuned_scenarios()
        for entry in config.methods
    ]


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended: ``complete`` with a value (run on every tuning seed), ``pruned``
    (stopped early by the race), ``failed`` (a cell failed or was not applicable) or
    ``rejected`` (over a cost cap). ``seed_values``: the objective on each seed it ran."""

    state: str
    value: float | None = None
    reason: str = ""
    time_ratio: float | None = None
    cost_ratio: float | None = None
    seed_values: tuple[float, ...] = ()


@dataclass(frozen=True)
class Race:
    """The race a trial runs in, fixed when it is asked for (so a trial's fate depends on the
    study's history only, whichever backend runs it): the best finished trial's objective
    on each tuning seed, and the objective's spread over seeds at fixed parameters (the
    pooled standard deviation of the finished trials' per-seed values)."""

    incumbent: tuple[float, ...] = ()
    sigma: float | None = None
    z: float | None = None

    def stops(self, values: list[float]) -> bool:
        """After the first ``len(values)`` seeds: is the trial's mean above the incumbent's on
        the same seeds by more than ``z`` standard errors of a difference, σ·√(2/i)?"""
        i = len(values)
        if self.z is None or self.sigma is None or not self.incumbent or i >= len(self.incumbent):
            return False
        gap = float(np.mean(values)) - float(np.mean(self.incumbent[:i]))
        return gap > self.z * self.sigma * math.sqrt(2 / i)


def pooled_spread(finished: list[tuple[float, ...]]) -> float | None:
    """The objective's spread over seeds at fixed parameters: the pooled standard deviation
    of ``finished`` trials' per-seed values; None without a trial run on two seeds."""
    spreads = [float(np.var(values, ddof=1)) for values in finished if len(values) > 1]
    return math.sqrt(float(np.mean(spreads))) if spreads else None


def race_for(finished: list[tuple[float, ...]], z: float | None) -> Race:
    """The race against ``finished`` trials' per-seed values (each run on every seed)."""
    finished = [values for values in finished if values]
    if z is None or not finished:
        return Race(z=z)
    incumbent = min(finished, key=lambda values: float(np.mean(values)))
    return Race(tuple(incumbent), pooled_spread(finished), z)


def defaults_stand(best: tuple[float, ...], defaults: tuple[float, ...], sigma: float | None, z: float | None) -> bool:
    """Is the best trial's gain over the defaults (per-seed values on the same seeds) within
    ``z`` standard errors of a difference, σ·√(2/n)? Then the defaults are chosen: a gain
    the objective's noise can explain is no finding. ``z`` None, or no measured spread (one
    tuning seed): the best is chosen."""
    if z is None or sigma is None or not best or len(best) != len(defaults):
        return False
    gain = float(np.mean(defaults)) - float(np.mean(best))
    return gain <= z * sigma * math.sqrt(2 / len(best))


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
        """The trials that ran to an end, in order of number: complete, raced out or rejected
        (both Optuna's PRUNED; ``outcome`` tells them apart), or failed by the method
        (``outcome: failed``). A trial left running by a killed driver,
        or whose task died of something else, is failed without that mark and not counted."""
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED))
        ended = (t for t in trials if t.state != TrialState.FAIL or t.user_attrs.get("outcome") == "failed")
        return sorted(ended, key=lambda t: t.number)

    def remaining(self) -> int:
        """Trials still to ask for: the budget less those counted and those in flight."""
        if not self.spec.space or self.stopped:
            return 0
        return max(0, self.budget - len(self.counted()) - len(self.in_flight))

    def ask(self) -> tuple[int, dict[str, Any], Race]:
        """A new trial's number, parameters and race. The sampler is seeded from the study
        (its data, scenario, method and settings: ``spec.content_key``) and the number of trials
        finished, so the sequence depends on the history only, not on when a driver was
        started or killed, and no two studies share their random draws."""
        spec = self.spec
        history = (len(self.counted()),) + ((len(self.in_flight),) if self.in_flight else ())  # asked at once: differ
        self.study.sampler = optuna.samplers.TPESampler(
            seed=derive_seed(self.tuning.sampler_seed, spec.content_key, *history) % 2**32,
            n_startup_trials=self.tuning.startup_trials(), constant_liar=self.tuning.parallel > 1,
        )
        trial = self.study.ask()
        params = {name: suggest(trial, name, param) for name, param in self.spec.space.items()}
        self.in_flight[trial.number] = trial
        finished = [_seed_values(t) for t in self.counted() if t.state == TrialState.COMPLETE]
        return trial.number, params, race_for(finished, self.tuning.race_z)

    def tell(self, number: int, outcome: TrialOutcome) -> None:
        """Record how a trial ended; it counts toward the budget from then on."""
        trial = self.in_flight.pop(number)
        trial.set_user_attr("outcome", outcome.state)
        trial.set_user_attr("seed_values", list(outcome.seed_values))
        if outcome.reason:
            trial.set_user_attr("reason", outcome.reason[:500])
        for name in ("time_ratio", "cost_ratio"):
            if getattr(outcome, name) is not None:
                trial.set_user_attr(name, getattr(outcome, name))
        for step, _ in enumerate(outcome.seed_values):  # TPE ranks a pruned trial by its last running mean
            trial.report(float(np.mean(outcome.seed_values[: step + 1])), step)
        if outcome.state == "complete":
            self.study.tell(trial, outcome.value)
        else:
            self.study.tell(trial, state=TrialState.PRUNED if outcome.state in ("rejected", "pruned") else TrialState.FAIL)

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
        """The study's entry of ``tuned.yaml``: the best of its first ``budget`` counted trials,
        or the defaults where that best beats them by no more than the objective's noise
        (``tuning.keep_defaults_z``)."""
        trials = self.counted()[: self.budget]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
        default = next((t for t in complete if t.user_attrs.get("default")), None)
        kept = best is not None and default is not None and best.number != default.number and defaults_stand(
            _seed_values(best), _seed_values(default), pooled_spread([_seed_values(t) for t in complete]),
            self.tuning.keep_defaults_z)
        chosen = default if kept else best
        outcomes = [t.user_attrs.get("outcome") for t in trials]
        spec = self.spec
        return TunedEntry(
            dataset=spec.dataset.name, scenario=spec.scenario.spec, method=spec.entry.name, method_class=spec.entry.method,
            base_params=spec.entry.params, method_params=json.loads(json.dumps(spec.entry.resolved_params())), dataset_hash=dataset_hash,
            space=describe_space(spec.space),
            defaults=spec.own_values(), params=dict(chosen.params) if chosen else {}, objective=chosen.value if chosen else None,
            default_objective=default.value if default else None, trials=len(trials),
            failed=outcomes.count("failed"), rejected=outcomes.count("rejected"), pruned=outcomes.count("pruned"),
            seed_runs=sum(len(t.user_attrs.get("seed_values", [])) for t in trials),
            best_trial=chosen.number if chosen else None, defaults_kept=kept,
            seed_values=chosen.user_attrs.get("seed_values", []) if chosen else [],
            default_seed_values=default.user_attrs.get("seed_values", []) if default else [],
            history=[t.value if t.state == TrialState.COMPLETE else None for t in trials],
        )


def _seed_values(trial: optuna.trial.FrozenTrial) -> tuple[float, ...]:
    """The trial's objective on each tuning seed it ran."""
    return tuple(trial.user_attrs.get("seed_values", ()))
