"""Measure the noise of candidate tuning objectives at fixed hyper-parameters.

The tuner scores a trial by a gap to the retrained model on its validation view (10% of the
training set held out in the test set's place, see ``bench.tuning.local.prepare_tuning_data``).
This script asks how noisy each candidate objective is when nothing about the method
changes, so that the least noisy objective that still rewards forgetting can be chosen.

Candidates (lower is better; every term is ``|x(unlearned) - x(retrained)|`` against the
retrained model of the same seed, on the validation view):

* ``avg_gap_entropy``: mean of the forget, retain and test accuracy gaps and the
  ``mia_entropy`` gap (the tuner's ``avg_gap`` before issue 25);
* ``avg_gap``: the three accuracy gaps and the ``mia_conf_svc`` gap (SalUn's Avg. Gap);
* ``avg_gap_auc``: the three accuracy gaps and the ``mia_auc`` gap;
* ``avg_gap_loss_cv``: the three accuracy gaps and the ``mia_loss_cv`` gap;
* ``acc_gap``: the mean of the three accuracy gaps.

Two noise sources, each at the method's defaults (the config's entry parameters):

* ``resample``: one unlearned model (stream 0) and the fixed retrained model; the
  validation (``test``) rows are bootstrap-resampled B times (the same rows for both
  models; in a class scenario the loss attacks' class-matched rows come along), and every
  candidate is computed again: the sd over resamples.
* ``stream``: the method run K times from the same original model and split, each with a
  generator of its own (``generator_for(seed, "noise-stream", k)``), evaluated on the
  full validation set: the sd over the K runs.

Every term is computed with the project's metric functions: accuracies with
``bench.evaluation.evaluate.split_metrics`` and the attacks with ``bench.evaluation.evaluate.mia_metrics`` (only the
attacks the candidates use). sd is the sample sd (ddof = 1).

Output: a tidy CSV (dataset, scenario, method, source, objective, mean, sd, n; the
``objective`` column holds the candidates and, as ``gap_*``, each term), a raw CSV of every
value (``<out stem>_raw.csv``, rewritten after each method, so a run cut short can be
summarised with ``--from-raw``) and Markdown summary tables on stdout (and ``--markdown``).

    PYTHONPATH=. python scripts/objective_noise.py --config configs/quick.yaml --dataset digits \\
        --out /tmp/noise/quick.csv --markdown /tmp/noise/quick.md
    PYTHONPATH=. python scripts/objective_noise.py --config configs/cpu.yaml --dataset mnist --streams 4 \\
        --methods fcalb,ssd,finetune --out /tmp/noise/mnist.csv
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one thread everywhere (before numpy and torch load)

import argparse
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.running.cells import make_task, run_method
from bench.config.sweep import DatasetConfig, MethodEntry, SweepConfig, load_config
from bench.data.datasets import cache_root
from bench.evaluation.evaluate import evaluate, mia_metrics, split_metrics
from bench.running.grid import Cell, PreparedData, config_numerics, evaluation_splits, generator_for, prepare_data
from bench.running.model_store import ModelStore
from bench.registry import NotApplicable, get_method
from bench.data.splits import Scenario, Split, make_split, parse_scenario
from bench.training.loop import use_numerics

ACCURACIES = ("forget_acc", "retain_acc", "test_acc")
ATTACKS = ("mia_entropy", "mia_conf_svc", "mia_auc", "mia_loss_cv")
TERMS = tuple(f"gap_{name}" for name in ACCURACIES + ATTACKS)
CANDIDATES: dict[str, tuple[str, ...]] = {
    "avg_gap_entropy": ("gap_forget_acc", "gap_retain_acc", "gap_test_acc", "gap_mia_entropy"),
    "avg_gap": ("gap_forget_acc", "gap_retain_acc", "gap_test_acc", "gap_mia_conf_svc"),
    "avg_gap_auc": ("gap_forget_acc", "gap_retain_acc", "gap_test_acc", "gap_mia_auc"),
    "avg_gap_loss_cv": ("gap_forget_acc", "gap_retain_acc", "gap_test_acc", "gap_mia_loss_cv"),
    "acc_gap": ("gap_forget_acc", "gap_retain_acc", "gap_test_acc"),
}
Logits = dict[str, np.ndarray]


@dataclass(frozen=True)
class Setting:
    """What every measurement of one run shares."""

    config: SweepConfig
    dataset: DatasetConfig
    prepared: PreparedData
    models: ModelStore
    seed: int
    svc_max_samples: int | None
    batch_size: int


# --- metrics -------------------------------------------------------------------------


def scores(logits: Logits, labels: Logits, scenario: Scenario, setting: Setting) -> dict[str, float]:
    """Every quantity a term needs: the three accuracies and the four attacks, computed by the
    project's own ``split_metrics`` and ``mia_metrics`` (only the attacks the candidates read)."""
    accuracies = split_metrics(logits, labels, scenario)
    attacks = mia_metrics(logits, labels, scenario, setting.seed, setting.svc_max_samples, frozenset(ATTACKS))
    return {**{name: accuracies[name] for name in ACCURACIES}, **{name: attacks[name] for name in ATTACKS}}


def objectives(model: dict[str, float], retrained: dict[str, float]) -> dict[str, float]:
    """Each term (``gap_<x>`` = |x − retrained's x|) and each candidate (the mean of its terms)."""
    terms = {f"gap_{name}": abs(model[name] - retrained[name]) for name in ACCURACIES + ATTACKS}
    return {**terms, **{name: float(np.mean([terms[t] for t in parts])) for name, parts in CANDIDATES.items()}}


def resampled(logits: Logits, labels: Logits, rows: np.ndarray) -> tuple[Logits, Logits]:
    """The same logits and labels with the ``test`` split replaced by its rows ``rows``."""
    return {**logits, "test": logits["test"][rows]}, {**labels, "test": labels["test"][rows]}


def bootstrap_rows(n: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` bootstrap samples (with replacement) of ``n`` row indices, seeded."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, size=n) for _ in range(count)]


# --- models --------------------------------------------------------------------------


def predictions(model: torch.nn.Module, setting: Setting, split: Split, scenario: Scenario) -> tuple[Logits, Logits]:
    """Logits and labels of ``model`` on the forget, retain and validation (``test``) sets."""
    result = evaluate(model, evaluation_splits(setting.prepared, split), scenario, setting.prepared.preprocess, setting.batch_size)
    return result.logits, result.labels


def stream_models(setting: Setting, cell: Cell, split: Split, streams: int) -> Iterable[tuple[int, torch.nn.Module, float]]:
    """The method run ``streams`` times on the same original and split, each with a generator
    of its own; yields (stream, unlearned model, seconds)."""
    original = setting.models.original(setting.prepared, setting.seed, [split])
    for k in range(streams):
        generator = generator_for(setting.seed, "noise-stream", k)
        task = make_task(cell, setting.prepared, setting.models, split, original, generator)
        run = run_method(cell, task, original, measure_memory=False)
        yield k, run.model, run.seconds


# --- measurement ---------------------------------------------------------------------


@dataclass
class Reference:
    """The retrained model's scores on the full validation set and on each resample."""

    full: dict[str, float]
    per_resample: list[dict[str, float]]
    rows: list[np.ndarray]


def reference_scores(setting: Setting, scenario: Scenario, split: Split, resamples: int) -> Reference:
    retrained = setting.models.retrained(setting.prepared, setting.seed, split).model
    logits, labels = predictions(retrained, setting, split, scenario)
    full = scores(logits, labels, scenario, setting)
    rows = bootstrap_rows(len(labels["test"]), resamples, seed=setting.seed)
    per_resample = [scores(*resampled(logits, labels, r), scenario, setting) for r in rows]
    return Reference(full, per_resample, rows)


def measure_method(
    setting: Setting, scenario: Scenario, split: Split, entry: MethodEntry, reference: Reference, streams: int,
) -> list[dict[str, object]]:
    """Raw values of every term and candidate for one method: one per stream, and one per
    resample of stream 0's model."""
    cell = Cell(setting.dataset, scenario, setting.seed, entry)
    raw: list[dict[str, object]] = []
    for k, model, seconds in stream_models(setting, cell, split, streams):
        logits, labels = predictions(model, setting, split, scenario)
        full = scores(logits, labels, scenario, setting)
        raw += rows_of(entry.name, scenario, "stream", k, objectives(full, reference.full))
        start = time.perf_counter()
        if k == 0:
            for b, (rows, retrained) in enumerate(zip(reference.rows, reference.per_resample)):
                values = scores(*resampled(logits, labels, rows), scenario, setting)
                raw += rows_of(entry.name, scenario, "resample", b, objectives(values, retrained))
        print(f"  {entry.name} {scenario.spec} stream {k}: method {seconds:.1f} s"
              + (f", {len(reference.rows)} resamples {time.perf_counter() - start:.1f} s" if k == 0 else ""),
              file=sys.stderr, flush=True)
    return raw


def rows_of(method: str, scenario: Scenario, source: str, index: int, values: dict[str, float]) -> list[dict[str, object]]:
    return [{"scenario": scenario.spec, "method": method, "source": source, "index": index, "objective": name, "value": value}
            for name, value in values.items()]


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """mean, sd (ddof 1) and n of each (dataset, scenario, method, source, objective)."""
    keys = ["dataset", "scenario", "method", "source", "objective"]
    tidy = raw.groupby(keys, sort=False)["value"].agg(mean="mean", sd=lambda v: v.std(ddof=1), n="count").reset_index()
    return tidy


# --- tables --------------------------------------------------------------------------


def summary_table(tidy: pd.DataFrame, names: Iterable[str]) -> str:
    """Per (dataset, scenario, objective): the median, mean and largest sd over methods, per source."""
    lines = [
        "| dataset | scenario | objective | resample: median sd | mean sd | max sd (method) "
        "| stream: median sd | mean sd | max sd (method) | mean value |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = list(names)
    chosen = tidy[tidy["objective"].isin(names)]
    for (dataset, scenario), group in chosen.groupby(["dataset", "scenario"], sort=False):
        for name in names:
            cells = []
            for source in ("resample", "stream"):
                part = group[(group["objective"] == name) & (group["source"] == source)]
                if part.empty:
                    cells.append("– | – | –")
                    continue
                top = part.loc[part["sd"].idxmax()]
                cells.append(f"{part['sd'].median():.4f} | {part['sd'].mean():.4f} | {top['sd']:.4f} ({top['method']})")
            mean = group[(group["objective"] == name) & (group["source"] == "stream")]["mean"].mean()
            lines.append(f"| {dataset} | {scenario} | {name} | {' | '.join(cells)} | {mean:.4f} |")
    return "\n".join(lines)


def method_table(tidy: pd.DataFrame, source: str, names: Iterable[str]) -> str:
    """Per (scenario, method): mean ± sd of each named objective or term for one source."""
    names = list(names)
    lines = [f"| scenario | method | {' | '.join(names)} |", "| --- | --- |" + " --- |" * len(names)]
    part = tidy[tidy["source"] == source].set_index(["scenario", "method", "objective"])
    scenarios = dict.fromkeys(part.index.get_level_values(0))
    methods = dict.fromkeys(part.index.get_level_values(1))
    present = set(zip(part.index.get_level_values(0), part.index.get_level_values(1)))
    for scenario, method in [(s, m) for s in scenarios for m in methods if (s, m) in present]:
        cells = [f"{part.loc[(scenario, method, n), 'mean']:.3f} ± {part.loc[(scenario, method, n), 'sd']:.3f}" for n in names]
        lines.append(f"| {scenario} | {method} | {' | '.join(cells)} |")
    return "\n".join(lines)


def markdown(tidy: pd.DataFrame, streams: int, resamples: int) -> str:
    return "\n\n".join([
        f"### Candidates: sd over methods (resample: B = {resamples} bootstraps of the validation rows; "
        f"stream: K = {streams} method runs)",
        summary_table(tidy, CANDIDATES),
        "### Terms: sd over methods",
        summary_table(tidy, TERMS),
        f"### Per method, stream source (mean ± sd over K = {streams} runs): candidates",
        method_table(tidy, "stream", CANDIDATES),
        f"### Per method, stream source (mean ± sd over K = {streams} runs): terms",
        method_table(tidy, "stream", TERMS),
        f"### Per method, resample source (mean ± sd over B = {resamples}): candidates",
        method_table(tidy, "resample", CANDIDATES),
    ])


# --- command -------------------------------------------------------------------------


def chosen_entries(config: SweepConfig, wanted: list[str] | None) -> list[MethodEntry]:
    """The config's method entries with a search space (the tuned ones), or those named."""
    tunable = [e for e in config.methods if get_method(e.method).search_space]
    if wanted is None:
        return tunable
    by_name = {e.name: e for e in config.methods}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise SystemExit(f"--methods: unknown entries {unknown}; allowed: {', '.join(e.name for e in tunable)}")
    return [by_name[w] for w in wanted]


def build_setting(config: SweepConfig, dataset_name: str, seed: int) -> Setting:
    matches = [d for d in config.datasets if d.name == dataset_name]
    if not matches:
        raise SystemExit(f"--dataset {dataset_name!r} not in the config: {', '.join(d.name for d in config.datasets)}")
    device = torch.device("cpu")
    use_numerics(config.compile, config.precision)
    prepared = prepare_data(matches[0], device, validation=config.tuning.validation_size)
    models = ModelStore(cache_root() / "models", device, progress=False, numerics=config_numerics(config))
    return Setting(config, matches[0], prepared, models, seed, config.evaluation.svc_max_samples,
                   config.evaluation.inference_batch(device))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/quick.yaml", help="sweep profile (recipe, evaluation, tuning view)")
    parser.add_argument("--dataset", default="digits", help="a dataset of the config")
    parser.add_argument("--scenarios", default="class:3,random:0.1", help="comma-separated scenario specs")
    parser.add_argument("--methods", help="comma-separated method entries (default: every entry with a search space)")
    parser.add_argument("--streams", type=int, default=5, help="K: method runs per method (stream source)")
    parser.add_argument("--resamples", type=int, default=40, help="B: bootstrap resamples of the validation set")
    parser.add_argument("--seed", type=int, default=100, help="the tuning seed (model, split, attacks)")
    parser.add_argument("--out", required=True, help="tidy CSV; the raw values go to <out stem>_raw.csv")
    parser.add_argument("--markdown", help="also write the tables here")
    parser.add_argument("--from-raw", help="measure nothing: the tables (and --out) from a raw CSV an earlier run wrote")
    return parser


def run(args: argparse.Namespace) -> pd.DataFrame:
    """Measure every chosen method on every scenario; the method loop is the outer one, so a
    run cut short holds whole methods. The raw and tidy CSVs are rewritten after each method."""
    torch.set_num_threads(1)
    config = load_config(args.config, read_tuned=False)
    setting = build_setting(config, args.dataset, args.seed)
    entries = chosen_entries(config, [m for m in args.methods.split(",") if m] if args.methods else None)
    print(f"{args.dataset}: {len(entries)} methods: {', '.join(e.name for e in entries)}", file=sys.stderr, flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cases = []
    for spec in [s for s in args.scenarios.split(",") if s]:
        scenario = parse_scenario(spec, setting.prepared.data.num_classes)
        split = make_split(scenario, setting.prepared.data.train_y.cpu(), args.seed)
        start = time.perf_counter()
        cases.append((scenario, split, reference_scores(setting, scenario, split, args.resamples)))
        print(f"{spec}: original, retrained and {args.resamples} reference resamples in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
    raw: list[dict[str, object]] = []
    for entry in entries:
        for scenario, split, reference in cases:
            try:
                raw += measure_method(setting, scenario, split, entry, reference, args.streams)
            except NotApplicable as reason:
                print(f"  {entry.name} {scenario.spec}: not applicable ({reason})", file=sys.stderr, flush=True)
        frame = pd.DataFrame(raw).assign(dataset=args.dataset)
        frame.to_csv(raw_path(out), index=False)
        summarise(frame).to_csv(out, index=False)
    return pd.DataFrame(raw).assign(dataset=args.dataset)


def raw_path(out: Path) -> Path:
    return out.with_name(out.stem + "_raw.csv")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.streams < 2 or args.resamples < 2:
        raise SystemExit("--streams and --resamples must be at least 2 (an sd needs two values)")
    raw = pd.read_csv(args.from_raw) if args.from_raw else run(args)
    tidy = summarise(raw)
    tidy.to_csv(args.out, index=False)
    text = markdown(tidy, int(raw[raw["source"] == "stream"]["index"].max()) + 1,
                    int(raw[raw["source"] == "resample"]["index"].max()) + 1)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
