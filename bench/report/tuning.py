"""What tuning changed: per (dataset, scenario), each method's search space, budget, chosen
parameters against its defaults and validation objective (its study figure is drawn by
:func:`bench.report.figures.tuning_figures`); and whether it held: the same objective on the
reported seeds, defaults against tuned, paired by seed (:func:`tuning_held_table`). Read from
the ``tuned.yaml`` a sweep copies beside its records and from the records; a sweep run
without one has none of these."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from bench.report.render import Cell, Table
from bench.config.tuning import TunedEntry, TunedFile

TUNED_SUFFIX = "+tuned"
TUNED_MARK = "§"


def is_tuned(method: str) -> bool:
    return method.endswith(TUNED_SUFFIX)


def _budget_text(tuned: TunedFile) -> str:
    budgets = tuned.budgets()
    return f"{budgets[0]} trials" if len(budgets) == 1 else f"{budgets[0]}-{budgets[-1]} trials (one budget per dataset)"


def tuned_note(tuned: list[TunedFile]) -> str:
    """The note under a table holding tuned rows: budget, seeds, race, objective and cost cap."""
    parts = [
        f"{_budget_text(t)} per method on tuning seeds {', '.join(map(str, t.tuning_seeds))}"
        + (f" (raced, z = {t.race_z:g})" if t.race_z is not None and len(t.tuning_seeds) > 1 else "")
        + (f", the defaults kept unless beaten by more than {t.keep_defaults_z:g} standard errors"
           if t.keep_defaults_z is not None and len(t.tuning_seeds) > 1 else "")
        + f", {t.objective} on {t.validation_size:g} of the training set held out as validation"
        + (f", trials over {t.max_cost_ratio:g}× retraining's operations rejected" if t.max_cost_ratio is not None else "")
        for t in tuned
    ]
    return f"{TUNED_MARK} {TUNED_SUFFIX}: parameters chosen by python -m bench.tune ({'; '.join(parts) or 'see the tuning table'})."


def _value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _params(values: dict) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in values.items()) or "–"


def _objective(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def tuned_groups(tuned: list[TunedFile]) -> dict[tuple[str, str], list[tuple[TunedFile, TunedEntry]]]:
    groups: dict[tuple[str, str], list[tuple[TunedFile, TunedEntry]]] = {}
    for file in tuned:
        for entry in file.entries:
            groups.setdefault((entry.dataset, entry.scenario), []).append((file, entry))
    return groups


def tuned_slug(dataset: str, scenario: str) -> str:
    return f"{dataset}__{scenario}".replace(":", "-").replace("/", "-")


def tuning_tables(results) -> list[Table]:
    """One table per (dataset, scenario) of the tuned files: method, space, trials of the
    budget (failed, rejected), defaults, chosen parameters, validation objective of each."""
    tables = []
    for (dataset, scenario), entries in tuned_groups(results.tuned).items():
        rows, data = [], []
        for file, entry in entries:
            if not entry.space:
                space, trials = "none: tuned over nothing, defaults kept", "–"
            else:
                space = "; ".join(f"{k}: {v}" for k, v in entry.space.items())
                trials = f"{entry.trials} of {file.budget_of(entry)}" + (f" ({entry.failed} failed, {entry.rejected} rejected)" if entry.failed or entry.rejected else "")
            better = entry.objective is not None and entry.default_objective is not None and entry.objective < entry.default_objective
            rows.append([
                Cell(entry.method), Cell(space), Cell(trials), Cell(_params(entry.defaults)), Cell(_params(entry.params)),
                Cell(_objective(entry.default_objective)), Cell(_objective(entry.objective), bold=better),
            ])
            if entry.defaults_kept:
                found = best_trial(entry.history)
                searched = _objective(None if found is None else entry.history[found])
                kept = f"defaults kept: the best trial, {searched}, was better by less than the noise"
                rows[-1][4] = Cell(f"{_params(entry.params)} ({kept})")
            data.append({
                "dataset": dataset, "scenario": scenario, "method": entry.method, "method_class": entry.method_class,
                "space": space, "trials": entry.trials, "budget": file.budget_of(entry), "failed": entry.failed, "rejected": entry.rejected,
                "defaults": _params(entry.defaults), "params": _params(entry.params), "objective": file.objective,
                "default_value": entry.default_objective, "tuned_value": entry.objective, "defaults_kept": entry.defaults_kept,
            })
        budgets = sorted({file.budget_of(entry) for file, entry in entries})
        late = late_best_note(entries)
        tables.append(Table(
            f"tuning__{tuned_slug(dataset, scenario)}", f"Tuning: {dataset}, {scenario}",
            f"Each method's search on validation data, the same budget for every method ({', '.join(map(str, budgets))} trials).",
            ["Method", "Search space", "Trials", "Defaults", "Tuned", "Val. objective (defaults)", "Val. objective (tuned)"],
            rows, pd.DataFrame(data),
            notes=[tuned_note(sorted({id(f): f for f, _ in entries}.values(), key=lambda f: f.budget)),
                   "Bold: tuning lowered the validation objective below the defaults' (trial 0 runs the defaults where they lie in the space).",
                   *([late] if late else [])],
        ))
    return tables


# --- Convergence: where each study found its best ---------------------------------------

LATE_SHARE = Fraction(4, 5)  # "late": a best at trial index >= 0.8 x budget, the last fifth (in exact arithmetic)


def first_late_trial(budget: int) -> int:
    """The first trial index in the last fifth of ``budget``: 8 of 10, 11 of 13 (10.4 rounded up)."""
    return math.ceil(LATE_SHARE * budget)


def best_so_far(history: Iterable[float | None]) -> list[float | None]:
    """The running minimum of a study's objective by counted trial; failed, rejected and
    pruned trials (None) keep the best before them, and there is none before the first value."""
    best, curve = None, []
    for value in history:
        if value is not None and math.isfinite(value) and (best is None or value < best):
            best = value
        curve.append(best)
    return curve


def best_trial(history: Iterable[float | None]) -> int | None:
    """The index of the trial the best-so-far curve reaches its end at (the first of equal
    bests), or None when no trial has a value."""
    curve = best_so_far(history)
    if not curve or curve[-1] is None:
        return None
    return curve.index(curve[-1])


def late_best_share(entries: Iterable[TunedEntry], budget: int) -> tuple[int, int]:
    """(studies whose best came at trial index >= 0.8 x ``budget``, studies with a best):
    entries without a history, or whose trials all failed, have no best and are not counted."""
    bests = [best_trial(entry.history) for entry in entries]
    found = [b for b in bests if b is not None]
    return sum(b >= first_late_trial(budget) for b in found), len(found)


def late_best_counts(pairs: Iterable[tuple[TunedFile, TunedEntry]]) -> tuple[int, int]:
    """:func:`late_best_share` summed over studies of several files, each against its own budget."""
    late = counted = 0
    for file, entry in pairs:
        k, n = late_best_share([entry], file.budget_of(entry))
        late, counted = late + k, counted + n
    return late, counted


def late_best_note(pairs: Iterable[tuple[TunedFile, TunedEntry]]) -> str:
    """"Best in the last fifth of the budget: k of n studies."; empty when no study has a best."""
    late, counted = late_best_counts(pairs)
    return f"Best in the last fifth of the budget: {late} of {counted} studies." if counted else ""


# --- Did tuning hold: the objective on the reported seeds, defaults against tuned ---------


@dataclass(frozen=True)
class MeanSE:
    """Mean and standard error (sd/√n, NaN below 2 values) of n values."""

    mean: float
    se: float
    n: int


def mean_se(values: Iterable[float]) -> MeanSE:
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return MeanSE(math.nan, math.nan, 0)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
    return MeanSE(float(x.mean()), se, len(x))


@dataclass(frozen=True)
class PairedCheck:
    """Tuned − defaults over the seeds both have: ``n`` pairs, the mean difference and its
    standard error (sd of the per-seed differences / √n; NaN below 2 pairs); ``worse``: the
    mean difference exceeds 2 SE (never below 2 pairs). The objectives are minimised, so a
    positive difference is tuned doing worse."""

    n: int
    mean: float
    se: float
    worse: bool


def paired_check(defaults: dict[Any, float], tuned: dict[Any, float]) -> PairedCheck:
    """Pair ``defaults`` and ``tuned`` (each seed → value) by seed and judge the difference."""
    keys = [k for k in defaults if k in tuned and _finite(defaults[k]) and _finite(tuned[k])]
    differences = [tuned[k] - defaults[k] for k in keys]
    stats = mean_se(differences)
    worse = stats.n >= 2 and stats.mean > 2 * stats.se
    return PairedCheck(stats.n, stats.mean, stats.se, bool(worse))


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def objective_by_seed(records: Iterable[dict], dataset: str, scenario: str, method: str, metric: str) -> dict[tuple, float]:
    """``{(model, seed): metrics[metric]}`` of the ok records of one method on one (dataset, scenario)."""
    out = {}
    for record in records:
        if (record["dataset"], record["scenario"], record["method"], record["status"]) != (dataset, scenario, method, "ok"):
            continue
        value = record["metrics"].get(metric)
        if _finite(value):
            out[(record["model"], record["seed"])] = float(value)
    return out


@dataclass(frozen=True)
class StudyCheck:
    """One study's validation values (from the tuned file) and the same objective on the
    reported seeds for ``x`` and ``x+tuned``. ``same_as_defaults``: the tuned parameters
    equal the defaults, or every paired ``x+tuned`` value equals ``x``'s (one computation)."""

    dataset: str
    scenario: str
    method: str
    objective: str
    validation_defaults: float | None
    validation_tuned: float | None
    defaults: MeanSE
    tuned: MeanSE
    paired: PairedCheck
    same_as_defaults: bool
    untuned: bool = False  # no trial completed (every one failed or over the cost cap): no x+tuned

    @property
    def worse(self) -> bool:
        return self.paired.worse and not self.same_as_defaults

    @property
    def compared(self) -> bool:
        return self.paired.n >= 2 and not self.same_as_defaults


def study_check(records: list[dict], file: TunedFile, entry: TunedEntry) -> StudyCheck:
    """The check of one study against the records of the sweep (a pure function of both)."""
    metric = file.objective
    defaults = objective_by_seed(records, entry.dataset, entry.scenario, entry.method, metric)
    tuned = objective_by_seed(records, entry.dataset, entry.scenario, entry.method + TUNED_SUFFIX, metric)
    paired = paired_check(defaults, tuned)
    common = [k for k in defaults if k in tuned]
    identical = bool(common) and all(tuned[k] == defaults[k] for k in common)
    same = (bool(entry.params) and entry.params == entry.defaults) or identical
    return StudyCheck(entry.dataset, entry.scenario, entry.method, metric, entry.default_objective, entry.objective,
                      mean_se(defaults.values()), mean_se(tuned.values()), paired, same, untuned=not entry.params)


def study_checks(records: list[dict], tuned: list[TunedFile]) -> list[StudyCheck]:
    """Every study with a search space, by (dataset, scenario) and in the files' order; an
    entry repeated in several merged sweeps' files is checked once."""
    checks, seen = [], []
    for _group, pairs in tuned_groups(tuned).items():
        for file, entry in pairs:
            if not entry.space or (file.objective, entry) in seen:
                continue
            seen.append((file.objective, entry))
            checks.append(study_check(records, file, entry))
    return checks


def _mean_se_text(stats: MeanSE, pairs: int) -> str:
    if stats.n == 0:
        return "–"
    text = f"{stats.mean:.3f}" + (f" ± {stats.se:.3f}" if math.isfinite(stats.se) else "")
    return text + (f" (n={stats.n})" if stats.n != pairs else "")


def _difference_cell(check: StudyCheck) -> Cell:
    if check.same_as_defaults:
        return Cell("same as defaults")
    if check.untuned:
        return Cell("no tuned variant")
    if check.paired.n < 2:
        return Cell("n/a")
    text = f"{check.paired.mean:+.3f} ± {check.paired.se:.3f}"
    return Cell(text, bold=True, marks=" worse") if check.worse else Cell(text)


def held_summary(checks: list[StudyCheck]) -> str:
    """"k of N studies: tuned worse than defaults by more than 2 SE", N the studies compared
    (2 or more paired seeds, tuned not the same as the defaults), with what the rest were."""
    compared = [c for c in checks if c.compared]
    same = sum(c.same_as_defaults for c in checks)
    untuned = sum(c.untuned and not c.same_as_defaults for c in checks)
    too_few = len(checks) - len(compared) - same - untuned
    return (f"{sum(c.worse for c in compared)} of {len(compared)} studies: tuned worse than defaults by more than 2 SE "
            f"(of {len(checks)} studies: {len(compared)} compared on 2 or more paired seeds, {same} same as defaults, "
            + (f"{untuned} with no tuned variant (no trial completed), " if untuned else "")
            + f"{too_few} with fewer than 2 paired seeds).")


def tuning_held_table(results) -> Table | None:
    """One table over every study of the tuned files: the validation objective of the defaults
    and of the tuned parameters, the same objective on the reported seeds (mean ± SE) for
    ``x`` and ``x+tuned``, their paired difference, and a mark where tuned is worse than its
    defaults by more than 2 SE of it. None without a tuned file."""
    checks = study_checks(results.records, results.tuned)
    if not checks:
        return None
    rows, data = [], []
    for check in checks:
        tuned_text = "same as defaults" if check.same_as_defaults and check.tuned.n == 0 else _mean_se_text(check.tuned, check.paired.n)
        rows.append([
            Cell(check.method), Cell(check.dataset), Cell(check.scenario),
            Cell(_objective(check.validation_defaults)), Cell(_objective(check.validation_tuned)),
            Cell(_mean_se_text(check.defaults, check.paired.n)), Cell(tuned_text), _difference_cell(check),
            Cell(str(check.paired.n)),
        ])
        data.append({
            "dataset": check.dataset, "scenario": check.scenario, "method": check.method, "objective": check.objective,
            "validation_defaults": check.validation_defaults, "validation_tuned": check.validation_tuned,
            "defaults_mean": check.defaults.mean, "defaults_se": check.defaults.se, "defaults_n": check.defaults.n,
            "tuned_mean": check.tuned.mean, "tuned_se": check.tuned.se, "tuned_n": check.tuned.n,
            "n_pairs": check.paired.n, "difference_mean": check.paired.mean, "difference_se": check.paired.se,
            "same_as_defaults": check.same_as_defaults, "worse": check.worse,
        })
    objectives = ", ".join(dict.fromkeys(c.objective for c in checks))
    late = late_best_note(pair for pairs in tuned_groups(results.tuned).values() for pair in pairs if pair[1].space)
    return Table(
        "tuning_held", "Did tuning hold: defaults against tuned on the reported seeds",
        f"Each study's objective ({objectives}, lower is better): on validation (the tuned file: the defaults' trial and the "
        "chosen one) and on the reported seeds' test data, mean ± SE over seeds of x and x+tuned; the difference "
        "tuned − defaults is paired by seed, over the seeds both have.",
        ["Method", "Dataset", "Scenario", "Val. (defaults)", "Val. (tuned)", "Seeds: defaults", "Seeds: tuned",
         "Tuned − defaults", "Paired seeds"],
        rows, pd.DataFrame(data),
        notes=[held_summary(checks),
               "SE: sd/sqrt(n) over seeds; for the difference, sd of the per-seed differences/sqrt(n). Bold, worse: the mean "
               "difference exceeds 2 SE (not judged below 2 paired seeds: n/a). (n=k): a side with another count of seeds "
               "than the pairs. Same as defaults: the tuned parameters equal the defaults, or the x+tuned cells equal x's.",
               *([late] if late else [])],
    )
