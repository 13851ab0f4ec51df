"""Racing options measured on a real tuning: run the seeds a raced study's pruned trials
never reached, then replay each rule on the same sequence of trials and report what it saves
(cells run) and what it costs (the chosen trial's full mean above the best full mean).

    python scripts/race_options.py --config configs/quick.yaml --out results/quick/tuning [--fill]

``--fill`` runs the missing seeds (cells of the same trials, in a scratch folder, kept in
``<out>/race_fill.json`` so a second run reads them); without it only trials already complete
are used. The rules: none (every trial on every seed); the race of ``bench.tuning.studies``
at z = 1, 2, 3; successive halving over seeds (a trial goes on to the next seed only when its
running mean is in the best third of the trials that reached that seed); Optuna's
``WilcoxonPruner`` needs no simulation: on at most 3 seeds its p-value never falls below 0.25.
The sequence of trials is the raced run's, held fixed (a run under another rule would let TPE
propose other points); rejected trials cost one cell under every rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import optuna

from bench.running.cells import local_session, run_cell
from bench.config.sweep import load_config
from bench.data.datasets import cache_root
from bench.core.errors import cli_main
from bench.running.grid import Cell
from bench.training.loop import resolve_device
from bench.tuning.local import prepare_tuning_data, tuning_view
from bench.tuning.studies import plan_studies, race_for
from bench.tuning.trials import judge, trial_measure

Matrix = dict[str, list[tuple[int, str, list[float]]]]  # study → (number, outcome, value per seed)


def stored(out: Path, studies: list[str]) -> Matrix:
    """Each study's counted trials: number, outcome and the values of the seeds it ran."""
    storage = f"sqlite:///{(out / 'studies.db').resolve()}"
    matrix: Matrix = {}
    for name in studies:
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        matrix[name] = [(t.number, t.user_attrs.get("outcome", ""), list(t.user_attrs.get("seed_values", [])))
                        for t in sorted(trials, key=lambda t: t.number) if t.user_attrs.get("outcome") in ("complete", "pruned", "rejected")]
    return matrix


def fill(config, out: Path, matrix: Matrix) -> Matrix:
    """The pruned trials' missing seeds, run as the trial would have run them."""
    cache_file = out / "race_fill.json"
    done = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    config = tuning_view(config)
    device = resolve_device(config.device)
    datasets = prepare_tuning_data(config, device)
    specs = {spec.name: spec for spec in plan_studies(config, datasets)}
    storage = f"sqlite:///{(out / 'studies.db').resolve()}"
    scratch = out / "race_fill"
    with local_session(config, scratch, cache_root() / "models", device, False, warm=True) as (models, env):
        for name, trials in matrix.items():
            spec = specs[name]
            params = {t.number: t.params for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)}
            for number, outcome, values in trials:
                key = f"{name}#{number}"
                if outcome != "pruned" or key in done:
                    continue
                records = []
                for seed in config.tuning.seeds[len(values):]:
                    cell = Cell(spec.dataset, spec.scenario, seed, spec.trial_entry(dict(params[number]), number))
                    records.append(run_cell(cell, datasets[spec.dataset.name], models, scratch, config, env,
                                            trial_measure(config.tuning, first_seed=False)))
                done[key] = list(judge(records, config.tuning).seed_values)
                cache_file.write_text(json.dumps(done))
    return {name: [(n, o, v + done.get(f"{name}#{n}", [])) for n, o, v in trials] for name, trials in matrix.items()}


def simulate(trials: list[tuple[int, str, list[float]]], seeds: int, rule: str, z: float | None = None) -> tuple[int, float | None]:
    """Cells a rule runs on the study's sequence, and the full mean of the trial it chooses."""
    finished: list[tuple[float, ...]] = []
    reached: list[list[float]] = [[] for _ in range(seeds)]  # running means of trials at each seed
    cells, chosen = 0, None
    for _number, outcome, values in trials:
        if outcome == "rejected" or len(values) < seeds:
            cells += 1 if outcome == "rejected" else 0
            continue
        race = race_for(finished, z) if rule == "race" else None
        stopped = False
        for i in range(1, seeds + 1):
            cells += 1
            mean = float(np.mean(values[:i]))
            reached[i - 1].append(mean)
            if i == seeds:
                break
            if rule == "race" and race.stops(values[:i]):
                stopped = True
                break
            if rule == "halving" and mean > np.quantile(reached[i - 1], 1 / 3):
                stopped = True
                break
        if not stopped:
            finished.append(tuple(values))
            full = float(np.mean(values))
            chosen = full if chosen is None else min(chosen, full)
    return cells, chosen


def table(matrix: Matrix, seeds: int) -> str:
    rules = [("none", "none", None), ("race z=1", "race", 1.0), ("race z=2", "race", 2.0), ("race z=3", "race", 3.0),
             ("halving (best third)", "halving", None)]
    usable = {name: trials for name, trials in matrix.items()
              if trials and all(o == "rejected" or len(v) == seeds for _n, o, v in trials)}
    lines = ["| rule | cells run | of every seed's | studies whose choice got worse | mean loss of the choice | largest |",
             "| --- | --- | --- | --- | --- | --- |"]
    base = {name: simulate(trials, seeds, "none") for name, trials in usable.items()}
    for label, rule, z in rules:
        results = {name: simulate(trials, seeds, rule, z) for name, trials in usable.items()}
        cells = sum(c for c, _ in results.values())
        losses = [(results[n][1] or np.inf) - base[n][1] for n in usable if base[n][1] is not None]
        worse = sum(loss > 1e-12 for loss in losses)
        lines.append(f"| {label} | {cells} | {cells / sum(c for c, _ in base.values()):.2f} | {worse} of {len(losses)} | "
                     f"{np.mean(losses):.4f} | {max(losses):.4f} |")
    return "\n".join(lines)


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True, type=Path, help="the tuning folder (with studies.db)")
    parser.add_argument("--fill", action="store_true", help="run the seeds the pruned trials never reached")
    args = parser.parse_args(argv)
    config = load_config(args.config, read_tuned=False)
    names = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{(args.out / 'studies.db').resolve()}")]
    matrix = stored(args.out, names)
    if args.fill:
        matrix = fill(config, args.out, matrix)
    print(table(matrix, len(config.tuning.seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
