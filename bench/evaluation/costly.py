"""The costly tier of the evaluation, off by default: relearn time with the anamnesis index,
the NeurIPS 2023 unlearning challenge's forget quality from K runs per method, and the
forget accuracy after retain-only fine-tuning.

The procedures that need a model live here; the scores themselves are pure functions of
arrays (:mod:`bench.evaluation.metrics.forget_quality`, :func:`relearn_metrics`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.evaluation.config import RelearnConfig, RetainRelearnConfig
from bench.evaluation.evaluate import SplitData, predict_logits
from bench.evaluation.metrics import accuracy
from bench.evaluation.metrics.forget_quality import forget_quality, logit_scaled_confidence
from bench.training.loop import Preprocess, Recipe, autocast, batch_indices, train


T = TypeVar("T")
R = TypeVar("R")


def map_runs(function: Callable[[T], R], items: Sequence[T], device: torch.device, workers: int | None = None) -> list[R]:
    """``[function(item) for item in items]``; on the CPU, in ``workers`` threads (default: one
    per core) with one intra-op thread each. Small models do not keep two cores busy within one
    run, so two runs at once train about 1.4x faster on 2 cores (measured on the digits ``cnn``).
    Every random choice comes from each run's own generator, so the result does not depend on
    the order the threads finish in. On a GPU the runs go one after the other."""
    workers = workers or os.cpu_count() or 1
    if device.type != "cpu" or workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    threads = torch.get_num_threads()

    def one_thread(item: T) -> R:
        torch.set_num_threads(1)
        return function(item)

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run") as pool:
            return list(pool.map(one_thread, items))
    finally:
        torch.set_num_threads(threads)


def forget_accuracy(model: nn.Module, forget: SplitData, preprocess: Preprocess, batch_size: int) -> float:
    return accuracy(predict_logits(model, forget.images, preprocess, batch_size), forget.labels)


def relearn_steps(
    model: nn.Module, forget: SplitData, target: float, config: RelearnConfig, preprocess: Preprocess,
    generator: torch.Generator, batch_size: int = 1024,
) -> tuple[int, bool]:
    """Steps of fine-tuning a copy of ``model`` on ``config.samples`` forget samples (a seeded
    choice, no augmentation) until its accuracy on the whole forget set reaches ``target``.

    Returns ``(steps, censored)``: 0 when the model already meets the target; ``censored``
    when ``config.max_steps`` steps did not reach it (``steps`` is then the cap).
    """
    if forget_accuracy(model, forget, preprocess, batch_size) >= target:
        return 0, False
    model = copy.deepcopy(model)
    device = next(model.parameters()).device
    chosen = torch.randperm(len(forget.labels), generator=generator)[: config.samples]
    images = forget.images[chosen.to(forget.images.device)].to(device)
    labels = torch.as_tensor(forget.labels, device=device)[chosen.to(device)]
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    steps = 0
    model.train()
    for _epoch in range(math.ceil(config.max_steps * config.batch_size / len(chosen)) + 1):
        for batch in batch_indices(len(chosen), config.batch_size, generator):
            batch = batch.to(device)
            with autocast(device):
                loss = F.cross_entropy(model(preprocess(images[batch])), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if forget_accuracy(model, forget, preprocess, batch_size) >= target:
                return steps, False
            if steps >= config.max_steps:
                return steps, True
    return steps, True


def relearn_metrics(steps: int, censored: bool, retrained_steps: int, retrained_censored: bool) -> dict[str, float]:
    """``relearn_steps`` (and whether the cap cut it short) and the anamnesis index
    ``ain`` = relearn steps of the unlearned model / of the retrained model (Chundawat et
    al. 2023; about 1 is ideal, below 1 means the knowledge comes back faster than if it had
    never been learnt). NaN when the retrained model needs no step, as in most random
    scenarios, where a never-trained model already classifies the forget set as well as
    (1 − α) of the original."""
    ain = steps / retrained_steps if retrained_steps > 0 else float("nan")
    return {
        "relearn_steps": float(steps),
        "relearn_censored": float(censored),
        "relearn_steps_retrain": float(retrained_steps),
        "ain": ain,
        "ain_censored": float(censored or retrained_censored),
    }


def retain_finetune(
    model: nn.Module, retain: SplitData, config: RetainRelearnConfig, preprocess: Preprocess, generator: torch.Generator,
) -> nn.Module:
    """A copy of ``model`` fine-tuned on retain data only, by the harness's one training loop
    (:func:`bench.training.loop.train`): ``config.samples`` of them (a seeded choice),
    ``config.epochs`` shuffled passes, plain SGD with momentum 0.9 at a constant ``lr``, no
    weight decay, no augmentation. It is given nothing of the forget set."""
    model = copy.deepcopy(model)
    chosen = torch.randperm(len(retain.labels), generator=generator)[: config.samples]
    images = retain.images[chosen.to(retain.images.device)]
    labels = torch.as_tensor(retain.labels, device=images.device)[chosen.to(images.device)]
    recipe = Recipe(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, momentum=0.9, nesterov=False, weight_decay=0.0,
        schedule="constant", augment=False,
    )
    train(model, images, labels, recipe, preprocess, generator)
    return model.eval()


def retain_relearn_accuracy(
    model: nn.Module, splits: dict[str, SplitData], config: RetainRelearnConfig, preprocess: Preprocess,
    generator: torch.Generator, batch_size: int = 1024,
) -> float:
    """The forget accuracy of ``model`` after :func:`retain_finetune` on ``splits["retain"]``."""
    tuned = retain_finetune(model, splits["retain"], config, preprocess, generator)
    return forget_accuracy(tuned, splits["forget"], preprocess, batch_size)


def retain_relearn_metrics(after: float, retrained_after: float, before: float) -> dict[str, float]:
    """Forget accuracy after retain-only fine-tuning for the model (``retain_relearn_forget_acc``)
    and the retrained one (``..._retrain``), their difference (``retain_relearn_gap``: above 0,
    fine-tuning brings back more than a never-trained-on-it model would hold), and the rise over
    the model's own forget accuracy before it (``retain_relearn_rise``)."""
    return {
        "retain_relearn_forget_acc": after,
        "retain_relearn_forget_acc_retrain": retrained_after,
        "retain_relearn_gap": after - retrained_after,
        "retain_relearn_rise": after - before,
    }


@dataclass(frozen=True)
class RunOutcome:
    """What the forget-quality score needs of one model: the logit-scaled confidence of every
    forget sample and the accuracy on the retain and test sets."""

    forget_confidence: np.ndarray
    retain_acc: float
    test_acc: float


def run_outcome(model: nn.Module, splits: dict[str, SplitData], preprocess: Preprocess, batch_size: int = 1024) -> RunOutcome:
    logits = {name: predict_logits(model, split.images, preprocess, batch_size) for name, split in splits.items()}
    return RunOutcome(
        forget_confidence=logit_scaled_confidence(logits["forget"], splits["forget"].labels),
        retain_acc=accuracy(logits["retain"], splits["retain"].labels),
        test_acc=accuracy(logits["test"], splits["test"].labels),
    )


def forget_quality_metrics(unlearned: list[RunOutcome], retrained: list[RunOutcome], delta: float) -> dict[str, float]:
    """The challenge's score of K unlearned runs against K retrained models."""
    return forget_quality(
        np.stack([o.forget_confidence for o in unlearned]), np.stack([o.forget_confidence for o in retrained]),
        np.array([o.retain_acc for o in unlearned]), np.array([o.retain_acc for o in retrained]),
        np.array([o.test_acc for o in unlearned]), np.array([o.test_acc for o in retrained]),
        delta=delta,
    )
