"""The grid of a sweep: cells, their keys, the prepared data and the persisted splits.

A cell is one method on one (dataset, scenario, seed). Everything that decides a cell's
result goes into its key, so a finished record made from other inputs is stale. The
sweep, the Ray backend and the tuner plan and key their cells here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.config.sweep import DatasetConfig, EvaluationConfig, MethodEntry, SweepConfig
from bench.data.datasets import ImageData, holdout_validation, load_dataset, subsample, without_validation
from bench.core.errors import UserError
from bench.evaluation.evaluate import SplitData
from bench.registry import get_method
from bench.running.results import read_record, record_path
from bench.data.clusters import cached_class_clusters
from bench.data.splits import (
    Scenario, Split, load_split, make_split, parse_scenario, partition, save_split, sequence_splits,
)
from bench.core.store import stable_hash
from bench.training.loop import Preprocess, numerics_fields

# Bump when a change to training makes cached models obsolete.
TRAINING_VERSION = 2
# Bump when the metrics of a run record change, so finished cells are evaluated again
# (4: avg_gap is SalUn's, with MIA-efficacy; the entropy version is avg_gap_entropy).
METRICS_VERSION = 4
# Bump when the forget-quality score changes: only cells and references that compute it are
# redone (2: the official challenge scorer's tests, bins and confidence).
FORGET_QUALITY_VERSION = 2
# Bump when retain-only relearning changes (2: it runs through the one training loop).
RETAIN_RELEARN_VERSION = 2


def evaluation_versions(evaluation: EvaluationConfig) -> dict[str, int]:
    """The versions of the metrics ``evaluation`` computes, for cell and reference keys."""
    versions = {"metrics_version": METRICS_VERSION}
    if evaluation.forget_quality is not None:
        versions["forget_quality_version"] = FORGET_QUALITY_VERSION
    if evaluation.retain_relearn is not None:
        versions["retain_relearn_version"] = RETAIN_RELEARN_VERSION
    return versions


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
    """The grid in run order: dataset, seed, scenario, method (so models are reused while in
    memory); each method's tuned variant, where the config's tuned file has one, follows the
    defaults of its (dataset, scenario, seed)."""
    cells = []
    for dataset in config.datasets:
        for seed in config.seeds:
            for spec in config.scenarios:
                scenario = parse_scenario(spec, datasets[dataset.name].data.num_classes)
                cells += [Cell(dataset, scenario, seed, method) for method in config.methods]
                variants = [config.tuned_variant(dataset.name, spec, method) for method in config.methods]
                cells += [Cell(dataset, scenario, seed, variant) for variant in variants if variant is not None]
    return cells


@dataclass(frozen=True)
class PreparedData:
    """A dataset as the sweep uses it: subsampled, on the device, with its fingerprint."""

    config: DatasetConfig
    data: ImageData
    fingerprint: str
    preprocess: Preprocess


def prepare_data(
    config: DatasetConfig, device: torch.device, validation: float | int | None = None, *, hold_out: float | int | None = None
) -> PreparedData:
    """The dataset as a sweep uses it: with ``hold_out``, the training set less the tuner's
    validation part (see :func:`bench.data.datasets.without_validation`). With ``validation``, the
    tuner's view instead: that share (or count) of the training set held out as the evaluation
    set, and no test set (see :func:`bench.data.datasets.holdout_validation`)."""
    data = subsample(load_dataset(config.name), config.train_size, None if validation else config.test_size)
    if validation:
        data = holdout_validation(data, validation)
    elif hold_out:
        data = without_validation(data, hold_out)
    fingerprint = data.fingerprint()
    mean, std = data.channel_stats()
    preprocess = Preprocess(mean, std, data.augment)
    return PreparedData(config, data.to(device), fingerprint, preprocess)


def sweep_hold_out(config: SweepConfig) -> float | None:
    """What the sweep keeps out of its training sets: the tuner's validation share, unless
    ``tuning.sweep_holds_out`` is false."""
    return config.tuning.validation_size if config.tuning.sweep_holds_out else None


def setting_params(cell: Cell) -> dict[str, Any]:
    """Every hyper-parameter the cell's method runs with, as it runs them: defaults filled in
    and the counts it resolves for the setting (``epochs: None`` → the scaled count), so that
    two entries that compute the same thing have the same parameters whatever their names."""
    method = get_method(cell.method.method)
    resolved = method.setting_params(cell.method.resolved_params(), cell.scenario, cell.dataset.recipe.epochs)
    return json.loads(json.dumps(resolved))  # as stored in records and tuned files: tuples are lists


def method_identity(cell: Cell, prepared: PreparedData) -> dict[str, Any]:
    """What a cell's method computes from: the method class, its resolved parameters, the
    data (its content, model and recipe), the split (scenario and seed) and the training
    code; never the entry's name, nor the dataset's (two names for one content are one data)."""
    return {
        "method": cell.method.method,
        "params": setting_params(cell),
        "dataset": cell.dataset.model_dump(exclude={"name"}),
        "fingerprint": prepared.fingerprint,
        "scenario": cell.scenario.spec,
        "seed": cell.seed,
        "training_version": TRAINING_VERSION,
    }


def method_generator(cell: Cell, prepared: PreparedData, *parts: Any) -> torch.Generator:
    """The method's random stream: from its identity, so ``x`` and ``x+tuned`` (or a trial)
    with equal resolved parameters draw the same numbers; ``parts`` pick a further stream
    (the costly tier's k-th run)."""
    return generator_for(cell.seed, "method", stable_hash(method_identity(cell, prepared), length=64), *parts)


def cell_key(cell: Cell, prepared: PreparedData, evaluation: EvaluationConfig, numerics: dict[str, Any] | None = None) -> str:
    """Hash of everything that determines a cell's result: a record with another key is
    stale, and two cells of one key are one computation (see :func:`alias_sources`)."""
    return stable_hash(
        {
            **(numerics or {}),  # threads, compiled kernels and bf16 round differently: see config_numerics
            **method_identity(cell, prepared),
            **evaluation_versions(evaluation),
            "evaluation": evaluation.key_fields(),
        },
        length=64,
    )


def alias_sources(cells: list[Cell], keys: list[str]) -> dict[str, Cell]:
    """For each cell that computes what an earlier cell of the grid computes (``x+tuned``
    whose tuned parameters resolve to ``x``'s), that earlier cell, by the alias's cell id:
    it is not run again, its record is the source's under its own name."""
    first: dict[str, Cell] = {}
    sources = {}
    for cell, key in zip(cells, keys):
        if key in first:
            sources[cell.cell_id] = first[key]
        else:
            first[key] = cell
    return sources


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


def record_name(split: Split) -> str:
    """The name of a forget set in the original training's update record."""
    return split.forget_sha256[:16]


def split_for(out_dir: Path, prepared: PreparedData, scenario: Scenario, seed: int) -> tuple[Split, Path]:
    """Draw the split and persist it with the sweep (kept if already there and identical);
    for a sequence, the split its last request leaves (see :func:`scenario_splits`)."""
    return scenario_splits(out_dir, prepared, scenario, seed)[-1]


def scenario_splits(out_dir: Path, prepared: PreparedData, scenario: Scenario, seed: int) -> list[tuple[Split, Path]]:
    """The splits a scenario leaves, each persisted: one, or one after each request of a
    sequence (``__r<i>`` in the file name)."""
    data = prepared.data
    stem = out_dir / "splits" / f"{dataset_slug(prepared.config.name)}__{scenario.slug}__s{seed}"
    if scenario.sequential:
        splits = sequence_splits(scenario, data.train_y.cpu(), data.num_classes, seed, data.test_y.cpu())
        paths = [stem.with_name(f"{stem.name}__r{i}.safetensors") for i in range(1, len(splits) + 1)]
    elif scenario.kind == "subclass":
        splits, paths = [subclass_split(out_dir, prepared, scenario)], [stem.with_name(f"{stem.name}.safetensors")]
    else:
        splits = [make_split(scenario, data.train_y.cpu(), seed, data.test_y.cpu())]
        paths = [stem.with_name(f"{stem.name}.safetensors")]
    for split, path in zip(splits, paths):
        if load_split(path, split.forget_sha256) is None:
            save_split(path, split)
    return list(zip(splits, paths))


def subclass_split(out_dir: Path, prepared: PreparedData, scenario: Scenario) -> Split:
    """Forget one pixel-space cluster of a class (:mod:`bench.data.clusters`, cached in the
    sweep's ``clusters/``); its ``test_group`` is the class's test samples nearest that cluster."""
    data, c = prepared.data, scenario.forget_class
    path = out_dir / "clusters" / f"{dataset_slug(prepared.config.name)}__class{c}__n{scenario.clusters}.safetensors"
    found = cached_class_clusters(path, prepared.fingerprint, data.train_x, data.train_y, c, scenario.clusters)
    forget = found.train_members[found.train_assignment == scenario.cluster]
    if len(forget) == 0:
        raise UserError(f"scenario {scenario.spec!r}: cluster {scenario.cluster} of class {c} has no training sample")
    is_forget = torch.zeros(len(data.train_y), dtype=torch.bool)
    is_forget[forget] = True
    test_labels = data.test_y.cpu()
    in_class = torch.nonzero(test_labels == c).flatten()
    group = torch.zeros(len(test_labels), dtype=torch.bool)
    group[in_class] = found.assign(data.test_x[in_class.to(data.test_x.device)]) == scenario.cluster
    return partition(is_forget, test_group=group)


def planned_splits(out_dir: Path, prepared: PreparedData, config: SweepConfig, seed: int) -> list[Split]:
    """The forget sets of every one-request scenario of the sweep for one (dataset, seed):
    those whose updates the original training records, when a method needs them (a
    sequence's later requests edit a model the original training's updates no longer
    describe, so those methods do not take sequences)."""
    scenarios = [parse_scenario(spec, prepared.data.num_classes) for spec in config.scenarios]
    return [split_for(out_dir, prepared, scenario, seed)[0] for scenario in scenarios if not scenario.sequential]


def forgotten_test_mask(split: Split) -> np.ndarray | None:
    """The split's forgotten group in the test set as a numpy mask (see :class:`Split`)."""
    return None if split.test_group is None else split.test_group.cpu().numpy()


def evaluation_splits(prepared: PreparedData, split: Split) -> dict[str, SplitData]:
    data = prepared.data
    forget, retain = split.forget.to(data.train_x.device), split.retain.to(data.train_x.device)
    return {
        "forget": SplitData(data.train_x[forget], data.train_y[forget].cpu().numpy()),
        "retain": SplitData(data.train_x[retain], data.train_y[retain].cpu().numpy()),
        "test": SplitData(data.test_x, data.test_y.cpu().numpy()),
    }


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
                scenario_splits(out_dir, prepared, parse_scenario(spec, prepared.data.num_classes), seed)


def config_numerics(config: SweepConfig) -> dict[str, Any]:
    """What changes results besides the inputs, for model and cell keys: the intra-op thread
    count (float sums split another way round differently; training amplifies it) and the
    numerics switches (:func:`bench.training.loop.numerics_fields`)."""
    return {"threads": task_threads(config), **numerics_fields(config.compile, config.precision)}


def needs_update_record(config: SweepConfig) -> bool:
    return any("training_record" in get_method(m.method).needs for m in config.methods)

