"""Boundary unlearning: shrink and expand (Chen, Gao, Zhou, Chen & Zhou, CVPR 2023)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.search_space import LogUniform
from bench.train import Recipe, train


class BoundaryConfig(MethodConfig):
    """Fine-tuning on the forget set only: SGD lr 1e-5, momentum 0.9, 10 epochs (the
    publication's code: ``unlearn_lr``, ``poison_epoch``); batches of 64 (chosen here)."""

    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-5, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(64, ge=1)

    def recipe(self) -> Recipe:
        return Recipe(lr=self.lr, momentum=self.momentum, nesterov=False, weight_decay=0.0, epochs=self.epochs,
                      batch_size=self.batch_size, schedule="constant", augment=False)


BOUNDARY_SPACE = {
    "lr": LogUniform(1e-6, 1e-2, "chosen here: spans the authors' code (1e-5, boundary_unlearning.py) and SalUn's shared unlearn_lr "
                     "(1e-2, Unlearn-Saliency arg_parser.py); epochs stay 10 as in both and in Unlearn-WorstCase App. B1"),
}


@register("boundary_shrink")
class BoundaryShrink(UnlearningMethod):
    """Boundary shrink: find each forget sample's nearest wrong class with a one-step FGSM
    attack (ε = 0.1 in the normalised input space, as the publication's ``bound``) on a
    frozen copy of the original model, relabel the sample with it, and fine-tune on the
    relabelled forget samples. The nearest wrong class is the adversarial logits' arg-max
    over the classes other than the true one; the publication's code takes the plain
    arg-max, which keeps the true label where one FGSM step does not cross the boundary."""

    class Config(BoundaryConfig):
        bound: float = Field(0.1, gt=0)

    search_space = BOUNDARY_SPACE

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        neighbours = self.nearest_wrong_labels(copy.deepcopy(model).eval(), task)
        task.log["moved_to"] = torch.bincount(neighbours.cpu(), minlength=task.num_classes).tolist()
        log = train(model, task.forget_x, neighbours, self.config.recipe(), task.preprocess, task.generator)
        task.log["epoch_loss"] = log.epoch_loss
        return model

    def nearest_wrong_labels(self, frozen: nn.Module, task: UnlearnTask, chunk: int = 512) -> torch.Tensor:
        frozen.requires_grad_(False)
        labels = []
        for start in range(0, len(task.forget_y), chunk):
            x = task.preprocess(task.forget_x[start : start + chunk]).requires_grad_(True)
            y = task.forget_y[start : start + chunk]
            (grad,) = torch.autograd.grad(F.cross_entropy(frozen(x), y), x)
            with torch.no_grad():
                logits = frozen(x + self.config.bound * grad.sign())
                logits[torch.arange(len(y)), y] = float("-inf")
                labels.append(logits.argmax(dim=1))
        return torch.cat(labels)


@register("boundary_expand")
class BoundaryExpand(UnlearningMethod):
    """Boundary expanding: widen the head with one shadow class (a freshly initialised
    row), fine-tune on the forget samples labelled with the shadow class, then prune the
    shadow output so the model has the original number of outputs again."""

    Config = BoundaryConfig
    search_space = BOUNDARY_SPACE

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        head: nn.Linear = model.head
        k = head.out_features
        wide = nn.Linear(head.in_features, k + 1).to(head.weight.device)
        with torch.no_grad():
            bound = 1 / head.in_features**0.5  # PyTorch's default Linear initialisation, drawn from the task's generator
            wide.weight[k].copy_((torch.rand(head.in_features, generator=task.generator) * 2 - 1) * bound)
            wide.bias[k].copy_((torch.rand((), generator=task.generator) * 2 - 1) * bound)
            wide.weight[:k].copy_(head.weight)
            wide.bias[:k].copy_(head.bias)
        model.head = wide
        shadow = torch.full_like(task.forget_y, k)
        log = train(model, task.forget_x, shadow, self.config.recipe(), task.preprocess, task.generator)
        pruned = nn.Linear(head.in_features, k).to(head.weight.device)
        with torch.no_grad():
            pruned.weight.copy_(wide.weight[:k])
            pruned.bias.copy_(wide.bias[:k])
        model.head = pruned
        task.log["epoch_loss"] = log.epoch_loss
        return model
