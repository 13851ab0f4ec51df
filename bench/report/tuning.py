"""What tuning changed: per (dataset, scenario), each method's search space, budget, chosen
parameters against its defaults and validation objective (its study figure is drawn by
:func:`bench.report.figures.tuning_figures`). Read from the ``tuned.yaml`` a sweep copies
beside its records; a sweep run without one has neither."""

from __future__ import annotations

import pandas as pd

from bench.report.render import Cell, Table
from bench.tuning.config import TunedEntry, TunedFile

TUNED_SUFFIX = "+tuned"
TUNED_MARK = "§"


def is_tuned(method: str) -> bool:
    return method.endswith(TUNED_SUFFIX)


def tuned_note(tuned: list[TunedFile]) -> str:
    """The note under a table holding tuned rows: budget, seeds and objective."""
    parts = [
        f"{t.budget} trials per method on tuning seeds {', '.join(map(str, t.tuning_seeds))}, {t.objective} on "
        f"{t.validation_size:g} of the training set held out as validation" for t in tuned
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
                trials = f"{entry.trials} of {file.budget}" + (f" ({entry.failed} failed, {entry.rejected} rejected)" if entry.failed or entry.rejected else "")
            better = entry.objective is not None and entry.default_objective is not None and entry.objective < entry.default_objective
            rows.append([
                Cell(entry.method), Cell(space), Cell(trials), Cell(_params(entry.defaults)), Cell(_params(entry.params)),
                Cell(_objective(entry.default_objective)), Cell(_objective(entry.objective), bold=better),
            ])
            data.append({
                "dataset": dataset, "scenario": scenario, "method": entry.method, "method_class": entry.method_class,
                "space": space, "trials": entry.trials, "budget": file.budget, "failed": entry.failed, "rejected": entry.rejected,
                "defaults": _params(entry.defaults), "params": _params(entry.params), "objective": file.objective,
                "default_value": entry.default_objective, "tuned_value": entry.objective,
            })
        budgets = sorted({file.budget for file, _ in entries})
        tables.append(Table(
            f"tuning__{tuned_slug(dataset, scenario)}", f"Tuning: {dataset}, {scenario}",
            f"Each method's search on validation data, the same budget for every method ({', '.join(map(str, budgets))} trials).",
            ["Method", "Search space", "Trials", "Defaults", "Tuned", "Val. objective (defaults)", "Val. objective (tuned)"],
            rows, pd.DataFrame(data),
            notes=[tuned_note(sorted({id(f): f for f, _ in entries}.values(), key=lambda f: f.budget)),
                   "Bold: tuning lowered the validation objective below the defaults' (trial 0 runs the defaults where they lie in the space)."],
        ))
    return tables
