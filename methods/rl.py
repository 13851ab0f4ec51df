"""Random labels (RL) and saliency unlearning (SalUn, Fan et al., ICLR 2024), as
OPTML-Group/Unlearn-Saliency runs them: SalUn is RL whose updates touch only the weights
a saliency mask selects."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from bench.training.gradients import summed_gradients
from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.registry.space import IntRange, LogUniform, Uniform
from bench.training.loop import Recipe, batch_indices, block_batches, fit, make_optimizer
from methods.amnesiac import random_wrong_labels

Mask = dict[str, torch.Tensor]


class RandomLabelConfig(MethodConfig):
    lr: float = Field(0.01, gt=0)
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    order: Literal["forget_first", "mixed"] = "forget_first"
    labels: Literal["any", "other"] = "any"
    augment: bool = True


def random_labels(labels: torch.Tensor, num_classes: int, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Fresh labels for the forget samples: uniform over all classes (``any``, the code's:
    the true class with probability 1/K) or over the other classes (``other``, the paper's y' ≠ y)."""
    if kind == "other":
        return random_wrong_labels(labels, num_classes, generator)
    return torch.randint(0, num_classes, labels.shape, generator=generator).to(labels.device)


def train_on_random_labels(model: nn.Module, task: UnlearnTask, c: RandomLabelConfig, hook=None) -> list[float]:
    """Epochs over the forget set, relabelled at random afresh each epoch, and the retain
    set: forget batches first, then retain batches (``forget_first``), or both shuffled
    together (``mixed``). Returns the mean loss per epoch."""
    device = next(model.parameters()).device
    images = torch.cat([task.forget_x, task.retain_x]).to(device)
    labels = torch.cat([task.forget_y, task.retain_y]).to(device)
    n_forget, n_retain = len(task.forget_y), len(task.retain_y)
    recipe = Recipe(lr=c.lr, momentum=c.momentum, nesterov=False, weight_decay=c.weight_decay, epochs=c.epochs,
                    batch_size=c.batch_size, schedule="constant", augment=c.augment)
    generator = task.generator

    def relabel(_epoch: int) -> None:
        labels[:n_forget] = random_labels(task.forget_y, task.num_classes, c.labels, generator).to(device)

    def plan(_epoch: int):
        if c.order == "mixed":
            return batch_indices(n_forget + n_retain, c.batch_size, generator)
        return block_batches([n_forget, n_retain], [c.batch_size, c.batch_size], generator)

    def step_loss(forward: nn.Module, cpu_index: torch.Tensor, _epoch: int):
        index = cpu_index.to(device)
        x = task.preprocess(images[index], generator if c.augment else None)
        return torch.nn.functional.cross_entropy(forward(x), labels[index]), len(index)

    optimizer = make_optimizer(model.parameters(), recipe)
    return fit(model, c.epochs, plan, step_loss, optimizer, hook=hook, on_epoch=relabel).epoch_loss


@register("rl")
class RandomLabels(UnlearningMethod):
    """Fine-tune on the forget set with random labels together with the retain set (Golatkar
    et al. 2020's baseline as SalUn's authors run it). Defaults: OPTML-Group/Unlearn-Saliency
    (a6e89fd) ``Classification/unlearn/RL.py::RL`` with ``arg_parser.py``'s values (no README
    command exists for plain RL) and the optimiser of ``unlearn/impl.py``.

    | aspect | authors' code | here |
    | --- | --- | --- |
    | epoch | CIFAR-10 since f31f82e: a pass over the forget set, then one over the retain set; before it (the paper's runs) and for CIFAR-100: both shuffled together | forget first (``order="forget_first"``); ``"mixed"``: the paper-era order |
    | random labels | uniform over all K classes, true class included, drawn per batch (per epoch in the mixed order) | uniform over K, drawn per epoch (each forget sample is seen once an epoch, so the same draw); ``labels="other"``: y' ≠ y as the paper writes |
    | optimiser | SGD lr 0.01, momentum 0.9 (no Nesterov), weight decay 5e-4 on every parameter, constant (the 91/136 milestones never come) | the same |
    | epochs | 10, after 182 of training | the same share of this original's training, at least one (``epochs=None``, :mod:`bench.training.budget`; 1 on the cpu profile, 2 on quick); ``epochs=10`` the literal count |
    | batch, mode, augmentation | 256, train mode, the training crop and flip | the same (``augment``) |
    """

    family = "recent_baselines"

    Config = RandomLabelConfig
    scaled = {"epochs": (10, 182)}

    search_space = {
        "lr": LogUniform(1e-4, 1e-1, "RL's lr in [1e-4, 1e-1] at 10 epochs: the grid of SalUn's authors (Unlearn-WorstCase App. B1, quoted in OPTML-Group/Unlearn-WorstCase issue #1)"),
        "epochs": IntRange(1, 5, "chosen here: one epoch up to half the code's 10 (arg_parser.py unlearn_epochs), at most about a retraining's cost on the cpu profile"),
    }

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        task.log["epoch_loss"] = train_on_random_labels(model, task, self.settings(task))
        return model


def saliency_mask(model: nn.Module, task: UnlearnTask, ratio: float, batch_size: int, augment: bool) -> Mask:
    """SalUn's mask: |Σ over forget batches of the mean-loss gradient| per weight, ranked over
    all parameters at once; the top ``ratio`` share is trainable (True). Eval mode, the
    training augmentation, the true labels (``generate_mask.py::save_gradient_ratio``; the
    code negates the loss, which the absolute value undoes)."""
    preprocess = task.preprocess if augment else dataclasses.replace(task.preprocess, augment=None)
    sums, _ = summed_gradients(model, task.forget_x, task.forget_y, preprocess, batch_size, generator=task.generator)
    magnitude = torch.cat([g.abs().flatten() for g in sums.values()])
    order = torch.argsort(magnitude, descending=True, stable=True)
    chosen = torch.zeros_like(magnitude, dtype=torch.bool)
    chosen[order[: int(len(magnitude) * ratio)]] = True
    mask, start = {}, 0
    for name, g in sums.items():
        mask[name] = chosen[start:start + g.numel()].view_as(g)
        start += g.numel()
    return mask


class MaskedUpdates:
    """A step hook that keeps the weights outside the mask where they began: gradients are
    masked during backward; with ``restore`` (the code since #33), they are also set back
    after every step, so weight decay and momentum cannot move them (issue #32)."""

    def __init__(self, model: nn.Module, mask: Mask, restore: bool):
        self.mask, self.restore = mask, restore
        self.params = {name: p for name, p in model.named_parameters() if name in mask}
        self.frozen = {name: p.detach().clone() for name, p in self.params.items()}
        self.handles = [p.register_hook(lambda grad, m=mask[name]: grad * m) for name, p in self.params.items()]

    def before_batch(self, model: nn.Module, item) -> None:
        pass

    @torch.no_grad()
    def after_batch(self, model: nn.Module, item) -> None:
        if self.restore:
            for name, p in self.params.items():
                p.copy_(torch.where(self.mask[name], p, self.frozen[name]))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class SalUnConfig(RandomLabelConfig):
    lr: float = Field(0.013, gt=0)
    mask_ratio: float = Field(0.5, gt=0, le=1)
    mask_batch_size: int = Field(256, ge=1)
    frozen_weights: Literal["restored", "decayed"] = "restored"


@register("salun")
class SalUn(UnlearningMethod):
    """Saliency unlearning: rank every weight by the magnitude of the forget loss's
    gradient, then run RL (see ``rl``) updating only the top ``mask_ratio`` of them. Defaults:
    OPTML-Group/Unlearn-Saliency (a6e89fd) ``Classification/generate_mask.py`` and
    ``unlearn/RL.py`` with the README's CIFAR-10 command (lr 0.013, ``with_0.5.pt``, 10 epochs after 182 of
    training, scaled to this training).

    | aspect | authors' code | here |
    | --- | --- | --- |
    | mask | eval mode, −CE on forget batches of 256 with augmentation, the magnitude of the summed batch gradients, one global ranking over every parameter (batch-norm affine included), top r trainable | the same (``mask_ratio`` r = 0.5, ``mask_batch_size``) |
    | masked weights | since #33 (a6e89fd): gradients masked and the weights set back after each step; before (every published number): gradients masked only, so weight decay and momentum moved them (issue #32) | restored: bit for bit the original's (``frozen_weights="restored"``); ``"decayed"``: the published behaviour |
    | training | RL: forget then retain each epoch, SGD 0.013, momentum 0.9, wd 5e-4, batch 256, 10 epochs after 182 of training, train mode (running statistics not masked) | the same, epochs scaled as RL's, with RL's ``order`` and ``labels`` options |
    """

    family = "recent_baselines"

    Config = SalUnConfig
    scaled = {"epochs": (10, 182)}

    search_space = {
        "lr": LogUniform(1e-4, 1e-1, "the [1e-4, 1e-1] lr grid SalUn's authors use for RL-type methods (OPTML-Group/Unlearn-WorstCase issue #1); the README's 0.013 inside"),
        "epochs": IntRange(1, 5, "chosen here: one epoch up to half the README's 10, at most about a retraining's cost on the cpu profile"),
        "mask_ratio": Uniform(0.1, 0.9, "the ratios generate_mask.py writes, with_0.1 to with_0.9 (with_1.0 is RL)"),
    }

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.settings(task)
        mask = saliency_mask(model, task, c.mask_ratio, c.mask_batch_size, c.augment)
        task.log["trainable_share"] = float(sum(m.sum() for m in mask.values()) / sum(m.numel() for m in mask.values()))
        hook = MaskedUpdates(model, mask, restore=c.frozen_weights == "restored")
        try:
            task.log["epoch_loss"] = train_on_random_labels(model, task, c, hook=hook)
        finally:
            hook.remove()
        return model
