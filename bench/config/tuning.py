"""How a sweep is tuned (``tuning:`` in its config) and what the tuner hands back (``tuned.yaml``).

The tuner (``python -m bench.tune``) gives every method the same number of trials, on
validation data held out of the training set, on seeds the sweep never reports; the file
it writes names, per (dataset, scenario, method), the parameters it chose and how it chose
them. A sweep config points at such a file with ``tuned: <path>``, or at several made under
one protocol (``tuned: [a.yaml, b.yaml]``, e.g. one profile's digits and another's MNIST).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from bench.core.errors import UserError, read_user_text

# What a study may minimise: run-record metrics where lower is better (bench.evaluation.evaluate:
# AVERAGE_GAPS and the gaps they average; avg_gap is SalUn's Avg. Gap, Fan et al. ICLR 2024).
Objective = Literal[
    "avg_gap_auc", "avg_gap", "avg_gap_entropy", "acc_gap", "gap_forget_acc", "gap_retain_acc", "gap_test_acc",
    "gap_mia_entropy", "gap_mia_conf_svc", "gap_mia_auc", "js_retrain", "pred_dist_js",
]


class TuningConfig(BaseModel):
    """The tuner's rules for one sweep.

    ``seeds``: the seeds a trial runs on, one after the other (its value is the mean over
    them), never a seed the sweep reports. ``race_z``: a trial stops early when, on the seeds
    it has run, its mean is above the best trial's on the same seeds by more than ``race_z``
    standard errors of a difference (the objective's spread over seeds, pooled over the
    study's finished trials); ``null`` runs every trial on every seed. Only trials run on
    every seed can be chosen. ``validation_size``: the share (< 1) or count of each
    dataset's training set held out, class-stratified with seed 0, which the tuner's models
    never train on and which takes the test set's place in its metrics; with
    ``sweep_holds_out`` (the default) the sweep's models never train on it either, so they
    train on the tuner's training set and a chosen parameter meets the kind of model it was
    chosen on (docs/tuning.md, "Did tuning hold"). ``trials``: the
    budget, the same for every method. ``startup_share``: the share of the budget drawn at
    random (the defaults first) before TPE models the history. ``max_cost_ratio``: a trial
    whose method does more floating-point operations than that multiple of retraining's is
    rejected (kept in the budget, never chosen); ``max_time_ratio`` the same by wall time
    (machine-dependent, so off by default). ``keep_defaults_z``: the defaults stand unless the
    best trial's mean is below theirs by more than that many standard errors of a difference
    (the race's σ·√(2/n)): a gain within the objective's noise is no finding, and two
    tunings that keep the defaults agree (``null``: the best is chosen, however small its
    gain). Its default 2 is the race's and the report's two standard errors (the rule is
    Breiman et al.'s one-standard-error rule, CART 1984, with the defaults as the simple
    model). It decides the choice only, not the trials, so it is not in a study's key.
    ``parallel``: trials of one study in flight at once on Ray (1 keeps each study's sequence
    equal to the local backend's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: list[int] = Field([100, 101, 102], min_length=1)
    validation_size: float = Field(0.1, gt=0)
    sweep_holds_out: bool = True
    trials: int = Field(20, ge=1)
    startup_share: float = Field(0.25, gt=0, le=1)
    race_z: float | None = Field(2.0, gt=0)
    objective: Objective = "avg_gap_auc"
    max_cost_ratio: float | None = Field(1.0, gt=0)
    max_time_ratio: float | None = Field(None, gt=0)
    keep_defaults_z: float | None = Field(2.0, gt=0)
    sampler_seed: int = 0
    parallel: int = Field(1, ge=1)

    @field_validator("seeds")
    @classmethod
    def _unique(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("must be unique")
        return seeds

    def startup_trials(self) -> int:
        """Random trials before TPE: ``startup_share`` of the budget, at least one."""
        return max(1, math.ceil(self.startup_share * self.trials))


class TunedEntry(BaseModel):
    """The outcome of one study: a method entry of the sweep on one (dataset, scenario)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    scenario: str
    method: str  # the sweep's entry name (an ablation keeps its own)
    method_class: str
    base_params: dict[str, Any] = {}
    method_params: dict[str, Any] = {}  # every parameter of the method as tuned, defaults included
    dataset_hash: str
    space: dict[str, str] = {}
    defaults: dict[str, Any] = {}  # the entry's own values of the space's parameters
    params: dict[str, Any] = {}  # the chosen values of the space's parameters
    objective: float | None = None
    default_objective: float | None = None
    trials: int = 0
    failed: int = 0
    rejected: int = 0
    pruned: int = 0  # stopped early by the race (counted, never chosen)
    seed_runs: int = 0  # cells the study's counted trials ran (trials x seeds without a race)
    best_trial: int | None = None  # the chosen trial (0, the defaults, where they were kept)
    defaults_kept: bool = False  # a better trial was found, but within keep_defaults_z SE of the defaults: they stand
    seed_values: list[float] = []  # the chosen trial's objective on each tuning seed
    default_seed_values: list[float] = []  # the defaults' (trial 0), where it ran on every seed
    history: list[float | None] = []  # the objective by counted trial, None where failed, rejected or pruned
    budget: int | None = None  # the study's own budget, set by a merge of files; None: the file's

    @model_serializer(mode="wrap")
    def _without_unset_budget(self, handler) -> dict[str, Any]:
        """A single file's entries are written as before: no ``budget: null`` in each."""
        data = handler(self)
        if self.budget is None:
            data.pop("budget", None)
        return data


class TunedFile(BaseModel):
    """What ``python -m bench.tune`` writes: the budget and rules, and one entry per study."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep: str
    budget: int
    tuning_seeds: list[int]
    validation_size: float
    objective: str
    race_z: float | None = None
    keep_defaults_z: float | None = None  # None in files written before the rule: the best was chosen
    startup_trials: int | None = None
    max_cost_ratio: float | None = None
    max_time_ratio: float | None = None
    config_hash: str
    code_commit: str = ""
    command: str = ""
    entries: list[TunedEntry] = []

    def budget_of(self, entry: TunedEntry) -> int:
        """The trials ``entry``'s study was given (its own where files of several budgets were merged)."""
        return self.budget if entry.budget is None else entry.budget

    def budgets(self) -> list[int]:
        return sorted({self.budget_of(entry) for entry in self.entries} or {self.budget})

    def entry(self, dataset: str, scenario: str, method: str) -> TunedEntry | None:
        for entry in self.entries:
            if (entry.dataset, entry.scenario, entry.method) == (dataset, scenario, method):
                return entry
        return None


def read_tuned_file(path: Path) -> dict[str, Any]:
    """The mapping of a tuned file, checked; any problem is one :class:`UserError` line."""
    if not path.is_file():
        raise UserError(f"tuned: file {str(path)!r} not found; allowed: a file written by python -m bench.tune, "
                        "its path absolute or relative to the config's folder (e.g. tuned/quick.yaml)")
    try:
        raw = yaml.safe_load(read_user_text(path, "tuned:", "a file written by python -m bench.tune"))
        TunedFile.model_validate(raw)
    except yaml.YAMLError as error:
        raise UserError(f"tuned: {str(path)!r} is not valid YAML: {str(error).splitlines()[0]}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"tuned: {str(path)!r} is not a tuned file ({where}: {first['msg']}); allowed: a file written by python -m bench.tune") from None
    return raw


# What two tuned files must share to be read as one: the rules of selection. Their budgets (and
# the random start, a share of the budget) may differ between datasets, never within one.
TUNING_RULES = ("tuning_seeds", "validation_size", "objective", "race_z", "keep_defaults_z", "max_cost_ratio", "max_time_ratio")


def merge_tuned_files(files: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One tuned mapping from several ``(name, mapping)`` files tuned under the same rules,
    with disjoint entries: a method is only comparable with another tuned alike, and one
    (dataset, scenario, method) must not have two answers. Files of different budgets may
    hold different datasets only; every merged entry carries its study's ``budget``."""
    _check_budgets(files)
    (first_name, merged), *rest = files
    merged = {**merged, "entries": [_with_budget(entry, merged) for entry in merged.get("entries", [])]}
    owner: dict[tuple[Any, Any, Any], str] = {}
    for entry in merged["entries"]:
        _claim(owner, entry, first_name)
    for name, raw in rest:
        for field in TUNING_RULES:
            if raw.get(field) != merged.get(field):
                raise UserError(
                    f"tuned: {name!r} was tuned under other rules than {first_name!r} ({field}: {raw.get(field)!r} "
                    f"against {merged.get(field)!r}); allowed: files written under one tuning protocol")
        for entry in raw.get("entries", []):
            _claim(owner, entry, name)
            merged["entries"].append(_with_budget(entry, raw))
        if raw.get("startup_trials") != merged.get("startup_trials"):
            merged["startup_trials"] = None  # per dataset then, like the budget; no one file's value stands for all
        for field in ("sweep", "config_hash", "code_commit", "command"):
            merged[field] = " + ".join(filter(None, [merged.get(field, ""), raw.get(field, "")]))
    return merged


def _entry_id(entry: dict[str, Any]) -> tuple[Any, Any, Any]:
    return entry.get("method"), entry.get("dataset"), entry.get("scenario")


def _claim(owner: dict[tuple[Any, Any, Any], str], entry: dict[str, Any], name: str) -> None:
    """Record that file ``name`` answers for ``entry``'s study; a second answer is one line."""
    key = _entry_id(entry)
    if key in owner:
        method, dataset, scenario = key
        where = f"{name!r} holds {method} on {dataset} {scenario} twice" if owner[key] == name else (
            f"{name!r} and {owner[key]!r} both hold {method} on {dataset} {scenario}")
        raise UserError(f"tuned: {where}; allowed: files whose entries differ, each study once")
    owner[key] = name


def _with_budget(entry: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    return entry if entry.get("budget") is not None else {**entry, "budget": raw.get("budget")}


def _check_budgets(files: list[tuple[str, dict[str, Any]]]) -> None:
    """Two files that give one dataset's methods different budgets (or random starts) would
    tune them unalike."""
    seen: dict[Any, tuple[tuple[Any, Any], str]] = {}
    for name, raw in files:
        for entry in raw.get("entries", []):
            rule = (entry.get("budget") if entry.get("budget") is not None else raw.get("budget"), raw.get("startup_trials"))
            first, owner = seen.setdefault(entry.get("dataset"), (rule, name))
            if first != rule:
                raise UserError(
                    f"tuned: {name!r} gives {entry.get('dataset')} {_describe(rule)} where {owner!r} gives {_describe(first)}; "
                    "allowed: one budget per dataset, so that its methods are tuned alike")


def _describe(rule: tuple[Any, Any]) -> str:
    budget, startup_trials = rule
    return f"{budget} trials" + ("" if startup_trials is None else f" ({startup_trials} at random first)")


def read_tuned_files(folder: Path, tuned: Any) -> Any:
    """``tuned:`` as written (a path or a list of paths, relative to the config's folder) →
    one tuned mapping; anything else is left for validation to name."""
    if isinstance(tuned, str):
        return read_tuned_file(folder / tuned)
    if tuned == []:
        raise UserError("tuned: an empty list names no file; allowed: a path, a list of paths, or null (no tuned variants)")
    if isinstance(tuned, list) and tuned and all(isinstance(name, str) for name in tuned):
        if len(set(tuned)) != len(tuned):
            raise UserError(f"tuned: {tuned!r} names a file twice; allowed: a path, or a list of different paths")
        return merge_tuned_files([(name, read_tuned_file(folder / name)) for name in tuned])
    if isinstance(tuned, list):
        raise UserError(f"tuned: {tuned!r} is not a list of paths; allowed: a path, or a list of paths to files written by python -m bench.tune")
    return tuned
