"""The tuner: the same hyper-parameter budget for every method, selected on validation data.

    python -m bench.tune --config configs/quick.yaml [--methods a,b] [--trials N] [--out DIR]
                         [--backend local|ray] [--address ADDR] [--tuned PATH] [--set key=value ...]

For every (dataset, scenario, method entry) of the sweep config, an Optuna study (TPE,
seeded) searches the method's declared space with the same number of trials. Trials run as
sweep cells on the tuner's view of each dataset (a held-out validation share of the
training set takes the test set's place; the test set is never read) and on the tuning
seeds, which the sweep never reports. Studies live in ``<out>/studies.db`` (their trials'
run records in ``<out>/studies/<study>/runs/``): running the command again continues them,
and a kill loses only the trials that were running. The
result, ``<out>/tuned.yaml`` (or ``--tuned``), is what a sweep config's ``tuned:`` reads.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from bench.running.cells import code_commit, local_session
from bench.running.cli import BACKENDS, add_run_options, check_run_options
from bench.config.sweep import SweepConfig, dataset_hash, load_config
from bench.data.datasets import cache_root
from bench.core.errors import UserError, cli_main
from bench.running.grid import PreparedData
from bench.core.store import atomic_write_text, stable_hash
from bench.training.loop import resolve_device
from bench.config.tuning import TunedFile
from bench.tuning.local import prepare_tuning_data, tuning_view
from bench.tuning.studies import StudyDriver, plan_studies
from bench.tuning.trials import run_trial

@dataclass
class TuneSummary:
    out_dir: Path
    tuned_file: Path
    ran: int
    studies: int


def run_tune(
    config: SweepConfig, out_dir: Path, tuned_path: Path | None = None, cache_dir: Path | None = None,
    progress: bool = True, backend: str = "local", address: str | None = None, command: str = "",
    only: list[str] | None = None,
) -> TuneSummary:
    """Run every study of ``config`` to its budget (``config.tuning.trials``), or only those of
    the method entries named in ``only``; write tuned.yaml with every study of the config
    (those not run this time as their storage has them)."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "ray":
        from bench.running.ray_backend import require_ray

        require_ray()
    check_storage(out_dir)
    config = tuning_view(config)
    commit = code_commit()  # the code the trials run, whatever is committed while they do
    device = resolve_device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {config.device!r} asked for, but CUDA is not available; use device: auto or cpu")
    datasets = prepare_tuning_data(config, device)  # data errors stop here, before any write
    specs = plan_studies(config, datasets)
    cache = (cache_dir or cache_root()) / "models"
    if backend == "ray":
        from bench.running.ray_backend import ray_session

        session = ray_session(address)
    else:
        session = contextlib.nullcontext()
    with session:
        out_dir.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(out_dir / 'studies.db').resolve()}"
        drivers = [StudyDriver(spec, storage, config.tuning, config.tuning.trials) for spec in specs]
        for driver in drivers:
            driver.stopped = only is not None and driver.spec.entry.name not in only
        ended_before = sum(len(d.counted()) for d in drivers)
        if backend == "ray":
            from bench.tuning.ray import tune_on_ray

            tune_on_ray(config, drivers, out_dir.resolve(), cache.resolve(), progress)
        else:
            tune_locally(config, drivers, datasets, out_dir, cache, device, progress)
        tuned_path = tuned_path or out_dir / "tuned.yaml"
        write_tuned_file(tuned_path, config, drivers, command, commit)
        ran = sum(len(d.counted()) for d in drivers) - ended_before  # trials that ended in this run
    return TuneSummary(out_dir, tuned_path, ran, len(drivers))


def check_storage(out_dir: Path) -> None:
    """An ``--out`` that is not a folder, or a ``studies.db`` there that is not an SQLite
    database (damaged, or another file of that name), is one line before any work, rather
    than a traceback mid-run."""
    path = out_dir / "studies.db"
    allowed = "allowed: a folder holding the studies.db a run of python -m bench.tune wrote, or none"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {str(out_dir)!r} is not a folder; {allowed}")
    if path.exists() and not path.is_file():
        raise UserError(f"{str(path)!r} is not a file; {allowed}")
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise UserError(f"{str(path)!r} is not an SQLite database (move it aside to start the studies anew); {allowed}")


def tune_locally(
    config: SweepConfig, drivers: list[StudyDriver], datasets: dict[str, PreparedData], out_dir: Path, cache: Path,
    device: torch.device, progress: bool,
) -> None:
    """The local backend: the studies one after the other, one trial at a time, in this process."""
    total = sum(d.remaining() for d in drivers)
    with local_session(config, out_dir, cache, device, progress, warm=total > 0) as (models, env):
        bar = tqdm(total=total, desc=f"tune {config.sweep}", unit="trial", disable=not progress)
        for driver in drivers:
            prepared = datasets[driver.spec.dataset.name]
            while driver.remaining():
                number, params, race = driver.ask()
                bar.set_postfix_str(f"{driver.spec.entry.name} {driver.spec.scenario.spec} #{number}", refresh=True)
                try:
                    outcome = run_trial(driver.spec, params, number, race, prepared, models, out_dir, config, env)
                except Exception as error:  # outside the method (a training that raised): retried next run
                    driver.abandon(number, f"{type(error).__name__}: {error}")
                    tqdm.write(f"trial {driver.spec.name} #{number} died ({type(error).__name__}: {error}); "
                               "the study goes on in the next run", file=sys.stderr)
                    continue
                driver.tell(number, outcome)
                if outcome.state == "failed":
                    tqdm.write(f"trial {driver.spec.name} #{number} failed: {outcome.reason}", file=sys.stderr)
                bar.update(1)
        bar.close()


def write_tuned_file(path: Path, config: SweepConfig, drivers: list[StudyDriver], command: str = "", commit: str = "") -> TunedFile:
    """``tuned.yaml``: the budget and rules, and each study's choice (atomic write)."""
    by_name = {d.name: d for d in config.datasets}
    tuned = TunedFile(
        sweep=config.sweep, budget=config.tuning.trials, tuning_seeds=list(config.tuning.seeds),
        validation_size=config.tuning.validation_size, objective=config.tuning.objective, race_z=config.tuning.race_z,
        keep_defaults_z=config.tuning.keep_defaults_z, startup_trials=config.tuning.startup_trials(),
        max_cost_ratio=config.tuning.max_cost_ratio, max_time_ratio=config.tuning.max_time_ratio,
        config_hash=stable_hash(config.model_dump(exclude={"seeds", "tuned", "sweep", "methods"}), length=64),
        code_commit=commit, command=command,
        entries=[d.result(dataset_hash(by_name[d.spec.dataset.name])) for d in drivers],
    )
    header = (
        f"# Written by python -m bench.tune on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {tuned.budget} trials per "
        f"method (the same budget for every method; {tuned.startup_trials} drawn at random first), each on tuning seeds "
        f"{tuned.tuning_seeds} one after the other (raced: z = {tuned.race_z}), objective {tuned.objective} on "
        f"{tuned.validation_size:g} of each training set held out as validation, cost cap {tuned.max_cost_ratio} of "
        f"retraining's operations; {_choice_text(tuned.keep_defaults_z)}.\n"
    )
    body = yaml.safe_dump(tuned.model_dump(mode="json"), sort_keys=False, width=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, header + body)
    return tuned


def _choice_text(keep_defaults_z: float | None) -> str:
    if keep_defaults_z is None:
        return "each study's best trial chosen, however small its gain over the defaults"
    return f"the defaults kept unless beaten by more than {keep_defaults_z:g} standard errors"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="sweep profile, e.g. configs/quick.yaml")
    parser.add_argument("--methods", help="comma-separated method entries to tune (default: the config's)")
    parser.add_argument("--trials", type=int, help="the budget: trials per study, the same for every method (default: tuning.trials)")
    parser.add_argument("--out", help="tuning folder (default: results/<sweep>/tuning)")
    parser.add_argument("--tuned", help="where to write the tuned file (default: <out>/tuned.yaml)")
    parser.add_argument("--replay", metavar="STUDY#NUMBER", help="run a stored trial again and compare it with its stored values")
    add_run_options(parser, "trials")
    return parser


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.trials is not None and args.trials < 1:
        raise UserError(f"--trials {args.trials}: must be a positive integer")
    check_run_options(args)
    overrides = [*args.set, *([f"tuning.trials={args.trials}"] if args.trials else [])]
    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    config = load_config(args.config, overrides, read_tuned=False)
    entries = [e.name for e in config.methods]
    unknown = [m for m in methods or [] if m not in entries]
    if unknown:  # the tuned file keeps every entry of the config, so --methods picks among them
        raise UserError(f"--methods: unknown method entry {unknown[0]!r}; allowed: {', '.join(entries)}")
    out_dir = Path(args.out) if args.out else Path("results") / config.sweep / "tuning"
    if args.replay:
        return replay(config, out_dir, args.replay, Path(args.cache) if args.cache else None)
    command = "python -m bench.tune " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    summary = run_tune(
        config, out_dir, Path(args.tuned) if args.tuned else None, Path(args.cache) if args.cache else None,
        progress=not args.no_progress, backend=args.backend, address=args.address, command=command, only=methods,
    )
    print(f"tune {config.sweep}: {summary.ran} trials run in {summary.studies} studies; tuned file: {summary.tuned_file}")
    return 0


def replay(config: SweepConfig, out_dir: Path, trial: str, cache_dir: Path | None) -> int:
    """``--replay``: print the trial's stored and re-run values; exit 0 if identical, 1 if not."""
    from bench.tuning.replay import parse_trial, replay_trial

    study, number = parse_trial(trial)
    result = replay_trial(config, out_dir, study, number, (cache_dir or cache_root()) / "models")
    for seed, stored, again in zip(config.tuning.seeds, result.stored, result.again):
        print(f"seed {seed}: stored {stored!r}, again {again!r}{'' if stored == again else '  DIFFERS'}")
    print(f"trial {study}#{number}: {'identical' if result.identical else 'differs'}")
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
