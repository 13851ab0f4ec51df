"""The models a cell is measured against: the original and the retrained model of each
(dataset, seed) and (dataset, scenario, seed), trained once and cached by content, and the
retrained model's reference evaluation, saved beside the records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.sweep import EvaluationConfig
from bench.evaluation.costly import map_runs, relearn_steps, retain_relearn_accuracy, run_outcome
from bench.evaluation.evaluate import evaluate, mia_metrics, predict_logits
from bench.running.grid import (
    TRAINING_VERSION, Cell, PreparedData, dataset_slug, derive_seed, evaluation_splits, evaluation_versions, generator_for,
    record_name, forgotten_test_mask,
)
from bench.evaluation.metrics.accuracy import accuracy
from bench.data.models import build_model
from bench.core.resources import OperationCounter
from bench.evaluation.reference import Reference, load_reference, save_reference
from bench.data.splits import Split
from bench.core.store import file_lock, stable_hash
from bench.training.loop import CachedModel, TrainLog, cached_training, train
from bench.training.update_record import UpdateRecorder

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
        self._shared: dict[tuple[str, str], dict[str, Any]] = {}
        self._flops_per_image: dict[str, float] = {}

    def shared_work(self, original: CachedModel, split: Split) -> dict[str, Any]:
        """The store of work that methods keep across runs on one original model and split
        (:meth:`bench.registry.UnlearnTask.reuse`), for the last few such pairs."""
        key = (original.key, split.forget_sha256)
        if key not in self._shared and len(self._shared) >= 4:
            self._shared.clear()
        return self._shared.setdefault(key, {})

    def retraining_flops(self, prepared: PreparedData, split: Split) -> float:
        """The floating-point operations retraining on ``split``'s retain set takes: one
        training step's per image (forward and backward, counted once per dataset on a fresh
        model) × epochs × retained images; what a method's count is a share of."""
        name = prepared.config.name
        if name not in self._flops_per_image:
            model = self.new_model(prepared, 0).train()
            images, labels = prepared.data.train_x[:2], prepared.data.train_y[:2]
            with OperationCounter(display=False) as counter:
                F.cross_entropy(model(prepared.preprocess(images)), labels).backward()
            self._flops_per_image[name] = counter.get_total_flops() / len(labels)
        return self._flops_per_image[name] * prepared.config.recipe.epochs * len(split.retain)

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
        self, prepared: PreparedData, cell: "Cell", split: Split, original: CachedModel, evaluation: EvaluationConfig,
        request: int | None = None,
    ) -> "Reference":
        """The retrained model's evaluation (one pass per split) and MIA scores, a random
        model's forget-set logits and the original's forget logits and accuracy, once per (dataset,
        scenario, seed) and, in a sequence, per ``request``; with the costly tier, the retrained
        model's relearn steps, retain-only relearning and the K retrained replicas' outcomes too."""
        memo_key = ("reference", prepared.config.name, cell.seed, split.forget_sha256)
        if memo_key not in self._memo:
            retrained = self.retrained(prepared, cell.seed, split)
            versions = evaluation_versions(evaluation)
            evaluation_fields = {**evaluation.key_fields(), "batch_size": evaluation.batch_size}
            key = stable_hash([retrained.key, original.key, evaluation_fields, *versions.values()], length=64)
            if self.reference_dir is None:
                self._memo[memo_key] = self._compute_reference(prepared, cell, split, original, retrained, evaluation)
            else:
                suffix = f"__r{request}" if request is not None else ""
                name = f"{dataset_slug(prepared.config.name)}__{cell.scenario.slug}__s{cell.seed}{suffix}.npz"
                path = self.reference_dir / name
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
        batch_size = evaluation.inference_batch(self.device)
        splits = evaluation_splits(prepared, split)
        group = forgotten_test_mask(split)
        result = evaluate(retrained.model, splits, cell.scenario, prepared.preprocess, batch_size, group)
        mia = mia_metrics(
            result.logits, result.labels, cell.scenario, cell.seed, evaluation.svc_max_samples, test_group=group,
        )
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
        retain_relearn = None
        if evaluation.retain_relearn is not None:
            retain_relearn = retain_relearn_accuracy(
                retrained.model, splits, evaluation.retain_relearn, prepared.preprocess,
                generator_for(cell.seed, "retain-relearn"), batch_size,
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
            relearn, outcomes, retain_relearn,
        )

