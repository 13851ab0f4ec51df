"""Gradient ascent on the forget set (GA), as Jia et al. (NeurIPS 2023) run it."""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.registry.space import IntRange, LogUniform
from bench.training.loop import Recipe, train


def negative_cross_entropy(logits, labels):
    """The batch-mean cross-entropy, negated: descending it ascends the forget loss."""
    return -F.cross_entropy(logits, labels)


@register("ga")
class GradientAscent(UnlearningMethod):
    """Raise the loss on the forget set: SGD steps on the negated cross-entropy of forget
    batches alone, with no retain term, no clipping and no stopping rule. Defaults: the
    authors' code, OPTML-Group/Unlearn-Sparse (80ba55d) ``unlearn/GA.py::GA`` with the
    optimiser of ``unlearn/impl.py`` and the README's CIFAR-10 command.

    | aspect | authors' code | here |
    | --- | --- | --- |
    | data, loss | forget set only, −CE (batch mean) | the same |
    | optimiser | SGD, momentum 0.9 (no Nesterov), weight decay 5e-4 on every parameter, constant lr (the 91/136 milestones never come) | the same |
    | lr, epochs | README: 1e-4, 5 epochs after 182 of training (``arg_parser.py``: 0.01, 10) | 1e-4; 5 epochs as the same share of this original's training, at least one (``epochs=None``, :mod:`bench.training.budget`; 1 on the cpu profile); ``epochs=5`` the literal count |
    | batch | 256 (``arg_parser.py``; the paper's table says 128) | 256 (``batch_size``) |
    | mode, augmentation | train mode (batch norm re-estimated on forget batches), the training set's crop and flip | the same (``augment``: the dataset's) |
    """

    family = "recent_baselines"

    class Config(MethodConfig):
        lr: float = Field(1e-4, gt=0)
        epochs: int | None = Field(None, ge=1)
        batch_size: int = Field(256, ge=1)
        momentum: float = Field(0.9, ge=0, lt=1)
        weight_decay: float = Field(5e-4, ge=0)
        augment: bool = True

    scaled = {"epochs": (5, 182)}

    search_space = {
        "lr": LogUniform(1e-5, 1e-1, "the authors' grid search over [1e-5, 0.1] (OPTML-Group/Unlearn-Sparse issue #5: 1e-4 is the CIFAR-10 class-wise value)"),
        "epochs": IntRange(1, 10, "chosen here: from one epoch up to the code's default 10 (arg_parser.py unlearn_epochs)"),
    }

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.settings(task)
        recipe = Recipe(optimizer="sgd", lr=c.lr, momentum=c.momentum, nesterov=False, weight_decay=c.weight_decay,
                        epochs=c.epochs, batch_size=c.batch_size, schedule="constant", augment=c.augment)
        log = train(model, task.forget_x, task.forget_y, recipe, task.preprocess, task.generator, loss_fn=negative_cross_entropy)
        task.log["epoch_loss"] = log.epoch_loss  # the negated forget loss: falls as the forget loss rises
        return model
