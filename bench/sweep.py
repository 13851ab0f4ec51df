"""The sweep runner: config → grid of cells → run records and ``results.csv``.

    python -m bench.sweep --config configs/quick.yaml [--out DIR] [--seeds 0,1,2]
                          [--methods a,b] [--set key=value ...]

For each (dataset, seed) the original model is trained once; for each
(dataset, scenario, seed) the split is drawn and persisted and the model retrained
on the retain set once; both are cached by content hash, across sweeps. Each cell
runs its method on a copy of the original, evaluates the result with one pass per
split, and writes one record atomically. A cell whose record is finished and was
made from the same inputs is skipped, so running a command again resumes it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from bench.config import DatasetConfig, EvaluationConfig, MethodEntry, SweepConfig, load_config, parse_int_list
from bench.costly import (
    RunOutcome, forget_quality_metrics, map_runs, relearn_metrics, relearn_steps, run_outcome,
)
from bench.data import ImageData, cache_root, load_dataset, subsample
from bench.errors import UserError, cli_main
from bench.evaluate import (
    SplitData, evaluate, gap_metrics, mia_metrics, predict_logits, reference_metrics, save_logits, weight_distance,
)
from bench.metrics.accuracy import accuracy
from bench.metrics.divergence import prediction_histogram
from bench.models import build_model
from bench.reference import Reference, load_reference, save_reference
from bench.registry import NotApplicable, UnlearnTask, get_method
from bench.resources import PeakMemory
from bench.results import read_record, rebuild_results_csv, record_path, write_record
from bench.splits import Scenario, Split, load_split, make_split, parse_scenario, save_split
from bench.store import file_lock, stable_hash
from bench.train import (
    CachedModel, Preprocess, TrainLog, cached_training, numerics_fields, resolve_device, synchronize, train, use_numerics,
    warm_up,
)
from bench.update_record import TrainingRecord, UpdateRecorder

# Bump when a change to training makes cached models obsolete.
TRAINING_VERSION = 2
# Bump when the metrics of a run record change, so finished cells are evaluated again.
METRICS_VERSION = 3


def derive_seed(seed: int, *parts: Any) -> int:
    """A seed for one purpose (init, training order, a method) derived from the cell's seed."""
    return int(stable_hash([seed, *parts], length=15), 16)


def generator_for(seed: int, *parts: Any) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, *parts))


def dataset_slug(name: str) -> str:
    if name.startswith("imagefolder:"):
        return f"imagefolder-{stable_hash(name, 8)}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a method on one dataset, scenario and seed."""

    dataset: DatasetConfig
    scenario: Scenario
    seed: int
    method: MethodEntry

    @property
    def cell_id(self) -> str:
        return f"{dataset_slug(self.dataset.name)}__{self.scenario.slug}__s{self.seed}__{self.method.name}"


def plan_cells(config: SweepConfig, datasets: dict[str, "PreparedData"]) -> list[Cell]:
    """The grid in run order: dataset, seed, scenario, method (so models are reused while in memory)."""
    return [
        Cell(dataset, parse_scenario(spec, datasets[dataset.name].data.num_classes), seed, method)
        for dataset in config.datasets
        for seed in config.seeds
        for spec in config.scenarios
        for method in config.methods
    ]


@dataclass(frozen=True)
class PreparedData:
    """A dataset as the sweep uses it: subsampled, on the device, with its fingerprint."""

    config: DatasetConfig
    data: ImageData
    fingerprint: str
    preprocess: Preprocess


def prepare_data(config: DatasetConfig, device: torch.device) -> PreparedData:
    data = subsample(load_dataset(config.name), config.train_size, config.test_size)
    fingerprint = data.fingerprint()
    mean, std = data.channel_stats()
    preprocess = Preprocess(mean, std, data.augment)
    return PreparedData(config, data.to(device), fingerprint, preprocess)


def cell_key(cell: Cell, prepared: PreparedData, evaluation: EvaluationConfig, numerics: dict[str, Any] | None = None) -> str:
    """Hash of everything that determines a cell's result: a record with another key is stale."""
    return stable_hash(
        {
            **(numerics or {}),  # compiled kernels and bf16 round differently: see numerics_fields
            "dataset": cell.dataset.model_dump(),
            "fingerprint": prepared.fingerprint,
            "scenario": cell.scenario.spec,
            "seed": cell.seed,
            "method": cell.method.method,
            "params": cell.method.resolved_params(),
            "training_version": TRAINING_VERSION,
            "metrics_version": METRICS_VERSION,
            "evaluation": evaluation.model_dump(exclude={"batch_size"}),
        },
        length=64,
    )


def is_finished(out_dir: Path, cell: Cell, key: str) -> bool:
    """Finished = a record made from the same inputs that ran (ok) or cannot run (not applicable).
    Failed cells run again, so a fixed method needs no manual clean-up."""
    path = record_path(out_dir, cell.cell_id)
    if not path.is_file():
        return False
    try:
        record = read_record(path)
    except UserError:
        return False
    return record.get("cell_key") == key and record["status"] in ("ok", "not_applicable")


def environment(device: torch.device) -> dict[str, Any]:
    """Where a record was produced: enough to tell two machines' numbers apart."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "hostname": platform.node(),
        "git_commit": commit,
    }


class ModelStore:
    """Original and retrained models of the (dataset, seed) being swept, trained once, cached.

    With ``record_updates``, the original training records the updates of the batches
    that hold samples of each planned forget set (for ``amnesiac_undo``); the cache key
    says so, since the record is cached with the model.
    """

    def __init__(
        self, cache_dir: Path, device: torch.device, progress: bool, record_updates: bool = False,
        reference_dir: Path | None = None, numerics: dict[str, Any] | None = None,
    ):
        self.cache_dir = cache_dir
        self.numerics = numerics or {}
        self.reference_dir = reference_dir
        self.device = device
        self.progress = progress
        self.record_updates = record_updates
        self._memo: dict[tuple, CachedModel] = {}

    def _key_fields(self, prepared: PreparedData, seed: int, kind: str, **extra: Any) -> dict[str, Any]:
        config = prepared.config
        return {
            "kind": kind,
            "dataset": config.name,
            "train_size": config.train_size,
            "fingerprint": prepared.fingerprint,
            "model": config.model,
            "recipe": config.recipe.model_dump(),
            "seed": seed,
            "device_type": self.device.type,
            "training_version": TRAINING_VERSION,
            **self.numerics,  # compiled kernels and bf16 round differently: see numerics_fields
            **extra,
        }

    def new_model(self, prepared: PreparedData, seed: int) -> nn.Module:
        data = prepared.data
        return build_model(prepared.config.model, data.channels, data.num_classes, data.image_size, seed).to(self.device)

    def _trained(
        self, prepared: PreparedData, seed: int, kind: str, indices: torch.Tensor | None,
        recorder: UpdateRecorder | None = None, replica: int = 0, **extra: Any,
    ) -> CachedModel:
        """Train (or load) one model. ``replica`` k > 0 is the k-th independent copy: its own
        initialisation and data order, cached apart and not kept in memory."""
        memo_key = (prepared.config.name, seed, kind, replica, tuple(sorted(extra.items())))
        if memo_key in self._memo:
            return self._memo[memo_key]
        data = prepared.data
        images = data.train_x if indices is None else data.train_x[indices.to(data.train_x.device)]
        labels = data.train_y if indices is None else data.train_y[indices.to(data.train_y.device)]
        label = f"{kind} {prepared.config.name} s{seed}" if self.progress and not replica else None
        copy_parts = ("replica", replica) if replica else ()

        def fit(model: nn.Module) -> TrainLog:
            log = train(
                model, images, labels, prepared.config.recipe, prepared.preprocess,
                generator_for(seed, "train", *copy_parts), progress=label, hook=recorder,
            )
            log.extra = recorder.tensors() if recorder is not None else {}
            return log

        key_fields = self._key_fields(prepared, seed, kind, **extra, **({"replica": replica} if replica else {}))
        trained = cached_training(
            self.cache_dir, key_fields, build=lambda: self.new_model(prepared, derive_seed(seed, "init", *copy_parts)), fit=fit
        )
        if not replica:
            if len(self._memo) > 8:
                self._memo.clear()
            self._memo[memo_key] = trained
        return trained

    def original(self, prepared: PreparedData, seed: int, planned: list[Split]) -> CachedModel:
        """The original model; ``planned`` are the forget sets whose updates are recorded, if recording."""
        if not self.record_updates:
            return self._trained(prepared, seed, "original", None)
        forget_sets = {record_name(split): split.forget for split in planned}
        recorder = UpdateRecorder(forget_sets, len(prepared.data.train_y))
        return self._trained(prepared, seed, "original", None, recorder, record_for=tuple(sorted(forget_sets)))

    def retrained(self, prepared: PreparedData, seed: int, split: Split, replica: int = 0) -> CachedModel:
        """Trained from the original's initialisation, with the original recipe, on the retain
        set; replica k > 0 from an initialisation and data order of its own."""
        return self._trained(prepared, seed, "retrain", split.retain, replica=replica, forget_sha256=split.forget_sha256)

    def reference(
        self, prepared: PreparedData, cell: "Cell", split: Split, original: CachedModel, evaluation: EvaluationConfig
    ) -> "Reference":
        """The retrained model's evaluation (one pass per split) and MIA scores, a random
        model's forget-set logits and the original's forget logits and accuracy, once per (dataset,
        scenario, seed); with the costly tier, the retrained model's relearn steps and the
        outcomes of the K retrained replicas too."""
        memo_key = ("reference", prepared.config.name, cell.seed, split.forget_sha256)
        if memo_key not in self._memo:
            retrained = self.retrained(prepared, cell.seed, split)
            key = stable_hash([retrained.key, original.key, evaluation.model_dump(), METRICS_VERSION], length=64)
            if self.reference_dir is None:
                self._memo[memo_key] = self._compute_reference(prepared, cell, split, original, retrained, evaluation)
            else:
                path = self.reference_dir / f"{dataset_slug(prepared.config.name)}__{cell.scenario.slug}__s{cell.seed}.npz"
                with file_lock(path.with_suffix(".lock")):  # cells of one group on two workers: one computes it
                    reference = load_reference(path, key, retrained)
                    if reference is None:
                        reference = self._compute_reference(prepared, cell, split, original, retrained, evaluation)
                        save_reference(path, key, reference)
                self._memo[memo_key] = reference
        return self._memo[memo_key]

    def _compute_reference(
        self, prepared: PreparedData, cell: "Cell", split: Split, original: CachedModel, retrained: CachedModel,
        evaluation: EvaluationConfig,
    ) -> Reference:
        batch_size = evaluation.batch_size
        splits = evaluation_splits(prepared, split)
        result = evaluate(retrained.model, splits, cell.scenario, prepared.preprocess, batch_size)
        mia = mia_metrics(result.logits, result.labels, cell.scenario, cell.seed, evaluation.svc_max_samples)
        random_model = self.new_model(prepared, derive_seed(cell.seed, "random-reference"))
        random_forget = predict_logits(random_model, splits["forget"].images, prepared.preprocess, batch_size)
        original_forget = predict_logits(original.model, splits["forget"].images, prepared.preprocess, batch_size)
        original_forget_acc = accuracy(original_forget, splits["forget"].labels)
        relearn = None
        if evaluation.relearn is not None:
            target = (1 - evaluation.relearn.alpha) * original_forget_acc
            relearn = relearn_steps(
                retrained.model, splits["forget"], target, evaluation.relearn, prepared.preprocess,
                generator_for(cell.seed, "relearn"), batch_size,
            )
        outcomes = []
        if evaluation.forget_quality is not None:
            outcomes = map_runs(
                lambda k: run_outcome(
                    self.retrained(prepared, cell.seed, split, replica=k).model, splits, prepared.preprocess, batch_size
                ),
                range(1, evaluation.forget_quality.runs + 1), self.device, evaluation.forget_quality.workers,
            )
        return Reference(
            retrained, result, {**result.metrics, **mia}, random_forget, original_forget, original_forget_acc,
            relearn, outcomes,
        )


def record_name(split: Split) -> str:
    """The name of a forget set in the original training's update record."""
    return split.forget_sha256[:16]


def split_for(out_dir: Path, prepared: PreparedData, scenario: Scenario, seed: int) -> tuple[Split, Path]:
    """Draw the split and persist it with the sweep (kept if already there and identical)."""
    split = make_split(scenario, prepared.data.train_y.cpu(), seed)
    path = out_dir / "splits" / f"{dataset_slug(prepared.config.name)}__{scenario.slug}__s{seed}.safetensors"
    if load_split(path, split.forget_sha256) is None:
        save_split(path, split)
    return split, path


def planned_splits(out_dir: Path, prepared: PreparedData, config: SweepConfig, seed: int) -> list[Split]:
    """The forget sets of every scenario of the sweep for one (dataset, seed): those whose
    updates the original training records, when a method needs them."""
    return [split_for(out_dir, prepared, parse_scenario(spec, prepared.data.num_classes), seed)[0] for spec in config.scenarios]


def evaluation_splits(prepared: PreparedData, split: Split) -> dict[str, SplitData]:
    data = prepared.data
    forget, retain = split.forget.to(data.train_x.device), split.retain.to(data.train_x.device)
    return {
        "forget": SplitData(data.train_x[forget], data.train_y[forget].cpu().numpy()),
        "retain": SplitData(data.train_x[retain], data.train_y[retain].cpu().numpy()),
        "test": SplitData(data.test_x, data.test_y.cpu().numpy()),
    }


def non_finite_tensors(model: nn.Module) -> list[str]:
    state = model.state_dict()
    return [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def make_task(
    cell: Cell, prepared: PreparedData, models: ModelStore, split: Split, original: CachedModel,
    generator: torch.Generator, retrain_replica: int = 0,
) -> UnlearnTask:
    """What the cell's method is given; ``retrain_replica`` picks which retrained model a
    method that needs one gets (0: the reference; others: the costly tier's extra runs)."""
    data = prepared.data
    forget, retain = split.forget.to(data.train_x.device), split.retain.to(data.train_x.device)
    task = UnlearnTask(
        forget_x=data.train_x[forget],
        forget_y=data.train_y[forget],
        retain_x=data.train_x[retain],
        retain_y=data.train_y[retain],
        num_classes=data.num_classes,
        scenario=cell.scenario,
        new_model=lambda seed: models.new_model(prepared, seed),
        device=models.device,
        generator=generator,
        preprocess=prepared.preprocess,
        recipe=prepared.config.recipe,
        seed=cell.seed,
    )
    method_class = get_method(cell.method.method)
    if "retrain_reference" in method_class.needs:
        task.retrain_reference = lambda: models.retrained(prepared, cell.seed, split, replica=retrain_replica)
    if "training_record" in method_class.needs:
        task.training_record = TrainingRecord.from_tensors(original.extra, record_name(split), original.model)
    return task


@dataclass
class MethodRun:
    """One run of a method: the unlearned model, its wall time (device synchronised) and its peak memory."""

    model: nn.Module
    seconds: float
    memory: PeakMemory | None


def run_method(cell: Cell, task: UnlearnTask, original: CachedModel, measure_memory: bool = True) -> MethodRun:
    """Run the cell's method on a copy of the original; raise if it returns no usable model."""
    method_class = get_method(cell.method.method)
    method = method_class(method_class.Config.model_validate(cell.method.params))
    model = copy.deepcopy(original.model)
    synchronize(task.device)
    memory = PeakMemory(task.device) if measure_memory else None
    with memory or contextlib.nullcontext():
        start = time.perf_counter()
        unlearned = method.unlearn(model, task)
        synchronize(task.device)
        seconds = time.perf_counter() - start
    if not isinstance(unlearned, nn.Module):
        raise TypeError(f"unlearn() returned {type(unlearned).__name__}, not a torch.nn.Module")
    bad = non_finite_tensors(unlearned)
    if bad:
        raise FloatingPointError(f"non-finite weights after unlearning in {', '.join(bad[:3])}")
    return MethodRun(unlearned, seconds, memory)


def costly_metrics(
    cell: Cell, prepared: PreparedData, models: ModelStore, split: Split, original: CachedModel,
    unlearned: nn.Module, reference: Reference, evaluation: EvaluationConfig,
) -> dict[str, float]:
    """The costly tier: relearn steps and anamnesis index against the retrained model, and
    the challenge's forget quality from K more runs of the method (each with a generator of
    its own, from the same original) against the K retrained replicas."""
    metrics: dict[str, float] = {}
    splits = evaluation_splits(prepared, split)
    if evaluation.relearn is not None and reference.relearn is not None:
        target = (1 - evaluation.relearn.alpha) * reference.original_forget_acc
        steps, censored = relearn_steps(
            unlearned, splits["forget"], target, evaluation.relearn, prepared.preprocess,
            generator_for(cell.seed, "relearn"), evaluation.batch_size,
        )
        metrics.update(relearn_metrics(steps, censored, *reference.relearn))
    if evaluation.forget_quality is not None:
        runs = evaluation.forget_quality.runs

        def one_run(k: int) -> RunOutcome:
            generator = generator_for(cell.seed, "method", cell.method.name, "run", k)
            task = make_task(cell, prepared, models, split, original, generator, retrain_replica=runs + k)
            unlearned = run_method(cell, task, original, measure_memory=False).model
            return run_outcome(unlearned, splits, prepared.preprocess, evaluation.batch_size)

        outcomes = map_runs(one_run, range(1, runs + 1), models.device, evaluation.forget_quality.workers)
        metrics.update(forget_quality_metrics(outcomes, reference.replica_outcomes, evaluation.forget_quality.delta))
    return metrics


def run_cell(
    cell: Cell, prepared: PreparedData, models: ModelStore, out_dir: Path, config: SweepConfig, env: dict[str, Any]
) -> dict[str, Any]:
    """Run one method on one (dataset, scenario, seed), evaluate it, write its record, return it."""
    split, split_file = split_for(out_dir, prepared, cell.scenario, cell.seed)
    original = models.original(prepared, cell.seed, planned_splits(out_dir, prepared, config, cell.seed))
    task = make_task(cell, prepared, models, split, original, generator_for(cell.seed, "method", cell.method.name))
    record: dict[str, Any] = {
        "sweep": config.sweep,
        "cell": cell.cell_id,
        "cell_key": cell_key(cell, prepared, config.evaluation, config_numerics(config)),
        "dataset": cell.dataset.name,
        "model": cell.dataset.model,
        "scenario": cell.scenario.spec,
        "seed": cell.seed,
        "method": cell.method.name,
        "method_class": cell.method.method,
        "params": cell.method.resolved_params(),
        "dataset_config": cell.dataset.model_dump(),
        "evaluation_config": config.evaluation.model_dump(),
        "split": {
            "file": str(split_file.relative_to(out_dir)),
            "forget_size": len(split.forget),
            "retain_size": len(split.retain),
            "forget_sha256": split.forget_sha256,
            "retain_sha256": split.retain_sha256,
        },
        "models": {"original_key": original.key, "original_train_s": original.train_seconds},
        "env": env,
        "metrics": {},
        "timings": {},
        "error": None,
    }
    batch_size = config.evaluation.batch_size
    try:
        run = run_method(cell, task, original)
        reference = models.reference(prepared, cell, split, original, config.evaluation)
        start = time.perf_counter()
        evaluation = evaluate(run.model, evaluation_splits(prepared, split), cell.scenario, prepared.preprocess, batch_size)
        mia = mia_metrics(evaluation.logits, evaluation.labels, cell.scenario, cell.seed, config.evaluation.svc_max_samples)
        distances, histograms = reference_metrics(
            evaluation.logits, reference.evaluation.logits, reference.random_forget_logits, prepared.data.num_classes
        )
        gaps = gap_metrics({**evaluation.metrics, **mia}, reference.metrics)
        weights = weight_distance(run.model, reference.retrained.model)
        eval_seconds = time.perf_counter() - start
        start = time.perf_counter()
        costly = costly_metrics(cell, prepared, models, split, original, run.model, reference, config.evaluation)
        costly_seconds = time.perf_counter() - start
    except NotApplicable as reason:
        record.update(status="not_applicable", reason=str(reason), method_log=task.log)
    except Exception as error:  # a failing method never stops the sweep
        record.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    else:
        method_seconds = task.charged_seconds if task.charged_seconds is not None else run.seconds
        assert run.memory is not None
        peak_mib, delta_mib = task.charged_memory_mib or (run.memory.peak_mib, run.memory.delta_mib)
        speedup = reference.retrained.train_seconds / method_seconds if method_seconds > 0 else float("inf")
        record["timings"] = {
            "method_s": method_seconds, "method_measured_s": run.seconds, "eval_s": eval_seconds, "costly_s": costly_seconds,
        }
        record["metrics"] = {
            **evaluation.metrics, **mia, **distances, **gaps, "weight_dist": weights,
            "time_s": method_seconds, "speedup": speedup, "peak_mem_mib": peak_mib, "mem_delta_mib": delta_mib,
            "eval_s": eval_seconds, **costly,
        }
        record["memory_kind"] = "cuda_max_allocated" if models.device.type == "cuda" else "process_anon_rss_sampled"
        original_histogram = prediction_histogram(reference.original_forget_logits, prepared.data.num_classes)
        record["prediction_histograms"] = {**histograms, "original": original_histogram.tolist()}
        record["method_log"] = task.log
        logits_file = record_path(out_dir, cell.cell_id).with_suffix(".logits.npz")
        save_logits(logits_file, evaluation)
        record.update(status="ok", logits_file=str(logits_file.relative_to(out_dir)))
    record["finished_at"] = datetime.now(timezone.utc).isoformat()
    write_record(out_dir, cell.cell_id, record)
    return record


@dataclass
class SweepSummary:
    out_dir: Path
    results_csv: Path
    ran: int
    skipped: int
    failed: list[str]


BACKENDS = ("local", "ray")


def task_threads(config: SweepConfig) -> int:
    """Intra-op threads of every task, the same in both backends (see ``ResourcesConfig``)."""
    return config.resources.cpus or torch.get_num_threads()


def write_splits(config: SweepConfig, datasets: dict[str, PreparedData], out_dir: Path) -> None:
    """Every split of the sweep, drawn and persisted by the driver before any task runs, so
    that workers only read them."""
    for dataset in config.datasets:
        prepared = datasets[dataset.name]
        for seed in config.seeds:
            for spec in config.scenarios:
                split_for(out_dir, prepared, parse_scenario(spec, prepared.data.num_classes), seed)


def run_sweep(
    config: SweepConfig, out_dir: Path, cache_dir: Path | None = None, progress: bool = True,
    backend: str = "local", address: str | None = None,
) -> SweepSummary:
    """Run every unfinished cell of the grid; rebuild ``results.csv`` even when interrupted.

    ``backend="ray"`` runs the trainings and cells as Ray tasks (see :mod:`bench.ray_backend`)
    on a local instance, or on the cluster at ``address``; every artifact goes to ``out_dir``
    and the model cache, which every worker must reach."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "ray":
        from bench.ray_backend import require_ray

        require_ray()  # a missing extra stops here, before any work
    device = resolve_device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {config.device!r} asked for, but CUDA is not available; use device: auto or cpu")
    datasets = {d.name: prepare_data(d, device) for d in config.datasets}  # data errors stop here, before any write
    cells = plan_cells(config, datasets)
    pending = [
        c for c in cells
        if not is_finished(out_dir, c, cell_key(c, datasets[c.dataset.name], config.evaluation, config_numerics(config)))
    ]
    cache = (cache_dir or cache_root()) / "models"
    failed: list[str] = []
    if backend == "ray":
        from bench.ray_backend import ray_session, run_on_ray

        session = ray_session(address)  # joined or started before anything is written
    else:
        session = contextlib.nullcontext()
    with session:
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            write_splits(config, datasets, out_dir)
            if backend == "ray":
                records = run_on_ray(config, pending, out_dir, cache, progress)
            else:
                records = run_locally(config, pending, datasets, out_dir, cache, device, progress)
            failed = [r["cell"] for r in records if r["status"] == "failed"]
        finally:
            results_csv = rebuild_results_csv(out_dir)
    return SweepSummary(out_dir, results_csv, len(pending), len(cells) - len(pending), failed)


def config_numerics(config: SweepConfig) -> dict[str, Any]:
    return numerics_fields(config.compile, config.precision)


def needs_update_record(config: SweepConfig) -> bool:
    return any("training_record" in get_method(m.method).needs for m in config.methods)


def run_locally(
    config: SweepConfig, pending: list[Cell], datasets: dict[str, PreparedData], out_dir: Path, cache: Path,
    device: torch.device, progress: bool,
) -> list[dict[str, Any]]:
    """The local backend: the cells one after the other in this process, in grid order, so
    that the models of a (dataset, seed) stay in memory while they are needed."""
    models = ModelStore(
        cache, device, progress, needs_update_record(config), reference_dir=out_dir / "references",
        numerics=config_numerics(config),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(task_threads(config))
    use_numerics(config.compile, config.precision)
    if pending:  # a finished sweep has nothing to time
        warm_up(device)
    env = environment(device)
    records = []
    try:
        bar = tqdm(pending, desc=f"sweep {config.sweep}", unit="cell", disable=not progress)
        for cell in bar:
            bar.set_postfix_str(cell.cell_id, refresh=True)
            record = run_cell(cell, datasets[cell.dataset.name], models, out_dir, config, env)
            if record["status"] == "failed":
                tqdm.write(f"cell {cell.cell_id} failed: {record['error']}", file=sys.stderr)
            records.append(record)
    finally:
        torch.set_num_threads(threads)
        use_numerics()
        if pending:
            gc.unfreeze()  # what warm_up froze: this process may go on after the sweep
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="sweep profile, e.g. configs/quick.yaml")
    parser.add_argument("--out", help="results folder (default: results/<sweep>)")
    parser.add_argument("--cache", help="model cache folder (default: $UNLEARN_CACHE or ~/.cache/unlearn-bench)")
    parser.add_argument("--seeds", help="comma-separated seeds, replacing the config's")
    parser.add_argument("--methods", help="comma-separated method names, replacing the config's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config entry (dotted path), repeatable")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local: cells one after the other here; ray: Ray tasks (pip install -e '.[ray]')")
    parser.add_argument("--address", help="with --backend ray: the cluster to join (default: start a local Ray instance)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    seeds = parse_int_list(args.seeds, "--seeds") if args.seeds else None
    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    config = load_config(args.config, args.set, seeds, methods)
    out_dir = Path(args.out) if args.out else Path("results") / config.sweep
    if args.address and args.backend != "ray":
        raise UserError("--address is for --backend ray; allowed: --backend ray --address ADDR, or neither")
    summary = run_sweep(
        config, out_dir, Path(args.cache) if args.cache else None, progress=not args.no_progress,
        backend=args.backend, address=args.address,
    )
    print(
        f"sweep {config.sweep}: {summary.ran} cells run, {summary.skipped} already finished, "
        f"{len(summary.failed)} failed; results: {summary.results_csv}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
