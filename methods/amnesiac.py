"""Amnesiac Machine Learning (Graves, Nagisetty & Ganesh, AAAI 2021): relabelling and batch undo."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from bench.registry import MethodConfig, NotApplicable, UnlearnTask, UnlearningMethod, register
from bench.registry.space import IntRange, LogUniform
from bench.training.loop import Recipe, train


def random_wrong_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label, a uniformly drawn different class (seeded)."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator).to(labels.device)
    return (labels + shift) % num_classes


@register("amnesiac")
class Amnesiac(UnlearningMethod):
    """Amnesiac unlearning by relabelling (Graves et al.'s "unlearning"): every forget
    sample gets a random label other than its own, then the model trains on the retain set
    plus the relabelled forget samples. Defaults: SSD's ``amnesiac`` baseline (Foster et
    al., AAAI 2024, if-loops/selective-synaptic-dampening ``src/forget_*_strategies.py``),
    which the literature reuses: 3 epochs, Adam lr 1e-4 (``src/unlearn.py::
    fit_one_unlearning_cycle``), batches of 128, no augmentation.

    | aspect | authors' code | here |
    | --- | --- | --- |
    | data, labels | Graves (lmgraves/AmnesiacML, ``Unlearning Tester - CIFAR100.ipynb``): the whole training set, forget labels redrawn once from the other classes; SSD the same | the same |
    | optimiser, epochs | SSD: fresh Adam 1e-4, 3 epochs; Graves: Adam 1e-3 carrying the training's state, 10 epochs, batch 64 | SSD's; Graves' as a config entry (docs/methods.md) |
    | batch, augmentation | SSD: 128, none (``transform_unlearning``) | the same (``batch_size``, ``augment``) |
    """

    family = "seed_baselines"

    class Config(MethodConfig):
        epochs: int = Field(3, ge=1)
        lr: float = Field(1e-4, gt=0)
        batch_size: int = Field(128, ge=1)
        augment: bool = False

    search_space = {
        "lr": LogUniform(1e-5, 1e-2, "chosen here: DeepUnlearn's lower end (1e-5, munl/settings.py), SSD's Adam 1e-4 inside; Adam steps over 1e-2 wreck a trained model"),
        "epochs": IntRange(1, 5, "chosen here: SSD's 3 inside; at most the digit profiles' 5 training epochs, since each epoch is a pass over the whole training set"),
    }

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.config
        wrong = random_wrong_labels(task.forget_y, task.num_classes, task.generator)
        images = torch.cat([task.retain_x, task.forget_x])
        labels = torch.cat([task.retain_y, wrong])
        recipe = Recipe(optimizer="adam", lr=c.lr, weight_decay=0.0, epochs=c.epochs, batch_size=c.batch_size,
                        schedule="constant", augment=c.augment)
        log = train(model, images, labels, recipe, task.preprocess, task.generator)
        task.log["epoch_loss"] = log.epoch_loss
        return model


@register("amnesiac_undo")
class AmnesiacUndo(UnlearningMethod):
    """Amnesiac batch undo (Graves et al.'s "amnesiac unlearning"): the original training
    recorded the update of every batch that held a sample of a planned forget set;
    unlearning subtracts them. The published scheme stores one update per such batch; when
    that storage would exceed ``memory_budget_gib`` (2 GiB by default, chosen here) the cell
    is not applicable, with the estimate as its reason. The harness keeps only their
    float64 sum (Graves' CIFAR-100 notebook keeps a float32 running sum).

    | aspect | Graves' code (lmgraves/AmnesiacML, ``Unlearning Tester - CIFAR100.ipynb``, ``Amnesiac Unlearning - MNIST.ipynb``) | here |
    | --- | --- | --- |
    | what is undone | entries named weight or bias (batch-norm running statistics kept) | every entry, running statistics too: the exact state before those batches (``undo_buffers=True``); ``False``: parameters only |
    | after the undo | 5-10 epochs of Adam 1e-3 on the retain data, batch 64 | none (``repair_epochs=0``: the paper's point just after the undo); ``repair_epochs``, ``repair_lr``, ``repair_batch_size`` give Graves' repair |

    Where almost every batch holds a forget sample (a class of ten, or 10% at random, in
    batches of 128) the undo returns the model near its initialisation.
    """

    family = "seed_baselines"

    needs = frozenset({"training_record"})

    class Config(MethodConfig):
        memory_budget_gib: float = Field(2.0, gt=0)
        undo_buffers: bool = True
        repair_epochs: int = Field(0, ge=0)
        repair_lr: float = Field(1e-3, gt=0)
        repair_batch_size: int = Field(64, ge=1)

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.config
        record = task.training_record
        estimate = record.per_batch_bytes / 2**30
        task.log.update(recorded_batches=record.batches, per_batch_storage_gib=estimate)
        if estimate > c.memory_budget_gib:
            raise NotApplicable(
                f"the recorded updates of {record.batches} batches need {estimate:.2f} GiB, "
                f"over the budget of {c.memory_budget_gib:g} GiB (memory_budget_gib)"
            )
        undone = set(record.update_sum) if c.undo_buffers else {name for name, _ in model.named_parameters()}
        state = model.state_dict()
        restored = {}
        for name, tensor in state.items():
            delta = record.update_sum.get(name)
            if delta is None or name not in undone:
                restored[name] = tensor
                continue
            wide = tensor.double() if tensor.is_floating_point() else tensor.long()
            restored[name] = (wide - delta.to(tensor.device)).to(tensor.dtype)
        model.load_state_dict(restored)
        if c.repair_epochs:
            recipe = Recipe(optimizer="adam", lr=c.repair_lr, weight_decay=0.0, epochs=c.repair_epochs,
                            batch_size=c.repair_batch_size, schedule="constant", augment=False)
            task.log["repair_loss"] = train(model, task.retain_x, task.retain_y, recipe, task.preprocess,
                                            task.generator).epoch_loss
        return model
