"""Boundary unlearning: shrink and expand (Chen, Gao, Zhou, Chen & Zhou, CVPR 2023)."""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.registry.space import LogUniform
from bench.training.loop import Recipe, train, train_mode


class BoundaryConfig(MethodConfig):
    """Fine-tuning on the forget set only: SGD lr 1e-5, momentum 0.9, 10 epochs, batches of
    64, no weight decay, constant lr, no augmentation, batch norm in train mode (the authors'
    ``boundary_unlearning.py``: ``lr=0.00001``, ``poison_epoch=10``; ``main.py --batch_size``
    64). ``batchnorm="frozen"`` keeps batch norm in eval mode during the fine-tune (an
    ablation: see the docstring of :class:`BoundaryShrink`)."""

    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-5, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(64, ge=1)
    batchnorm: Literal["train", "frozen"] = "train"

    def recipe(self) -> Recipe:
        return Recipe(lr=self.lr, momentum=self.momentum, nesterov=False, weight_decay=0.0, epochs=self.epochs,
                      batch_size=self.batch_size, schedule="constant", augment=False)

    def fine_tune(self, model: nn.Module, task: UnlearnTask, labels: torch.Tensor, first_batch_eval: bool = False) -> None:
        frozen = self.batchnorm == "frozen"
        hook = FirstBatchInEvalMode(frozen) if first_batch_eval else None
        log = train(model, task.forget_x, labels, self.recipe(), task.preprocess, task.generator, hook=hook,
                    frozen_batchnorm=frozen)
        task.log["epoch_loss"] = log.epoch_loss


class FirstBatchInEvalMode:
    """A step hook: the first step's forward pass in eval mode (batch norm normalises with the
    running statistics and leaves them as they were), every later one in the loop's mode; as
    the authors' expand loop runs, which calls ``widen_model.train()`` only after the first
    batch's forward, on a model ``main.py``'s ``test()`` left in eval mode."""

    def __init__(self, frozen_batchnorm: bool):
        self.frozen_batchnorm, self.first = frozen_batchnorm, True

    def before_batch(self, model: nn.Module, _indices: torch.Tensor) -> None:
        if self.first:
            model.eval()

    def after_batch(self, model: nn.Module, _indices: torch.Tensor) -> None:
        if self.first:
            self.first = False
            train_mode(model, self.frozen_batchnorm)


BOUNDARY_SPACE = {
    "lr": LogUniform(1e-6, 1e-2, "chosen here: spans the authors' code (1e-5, boundary_unlearning.py) and SalUn's shared unlearn_lr "
                     "(1e-2, Unlearn-Saliency arg_parser.py); epochs stay 10 as in both and in Unlearn-WorstCase App. B1"),
}


# adv_generator.py's AttackBase: the statistics its inverse normalisation assumes, whatever the loader's.
ATTACK_STATS = ((0.4914, 0.4822, 0.2265), (0.2023, 0.1994, 0.2010))


@register("boundary_shrink")
class BoundaryShrink(UnlearningMethod):
    """Boundary shrink: attack each forget sample with one FGSM step on a frozen copy of the
    original model (ε = 0.1 in [0, 1] pixel space, the image clamped to [0, 1] and rounded
    to 1/255), relabel it with the attacked logits' arg-max, and fine-tune on the relabelled
    forget samples. Where one step does not cross the boundary the sample keeps its label,
    as in the code; the share that moved is logged as ``attack_success``.

    | aspect | authors' code (``boundary_unlearning.py``, ``adv_generator.py``) | here |
    | --- | --- | --- |
    | FGSM bound | 0.1 added after undoing the normalisation with its own constants (mean 0.4914, 0.4822, 0.2265, std about 0.2; not its loader's 0.5, 0.5), clamped to [0, 1] and rounded to 1/255 in that space: in the loader's pixel space a step of about 0.25, not clamped to [0, 1] there (SalUn's ``boundary_sh.py``: exactly 0.1 in pixel space) | 0.1 in pixel space, clamped and rounded (``bound_space="pixel"``, SalUn's); ``"authors"``: the code's arithmetic; ``"normalised"``: 0.1 added to the normalised input, neither clamped nor rounded |
    | new label | plain arg-max of the attacked logits (SalUn the same) | the same (``label_rule="argmax"``); ``"nearest_wrong"``: the arg-max over the other classes |
    | fine-tune | SGD 1e-5, momentum 0.9, 10 epochs, batch 64, train mode | the same |
    | batch norm | train mode: running statistics re-estimated on forget-only batches | the same (``batchnorm="train"``); ``"frozen"``: eval mode, statistics untouched |
    | attack | recomputed every batch on the same images (the same labels) | computed once |

    Code: the authors' as mirrored in TY-LEE-KR/Boundary-Unlearning-Code. Batch norm matters
    more than the attack: at lr 1e-5 the weights barely move (about 0.2% on MNIST 10k,
    class:3), and what shrink forgets and damages comes from the running statistics
    re-estimated on forget-only batches (docs/methods.md has the measurements).
    """

    family = "seed_baselines"

    class Config(BoundaryConfig):
        bound: float = Field(0.1, gt=0)
        bound_space: Literal["pixel", "normalised", "authors"] = "pixel"
        label_rule: Literal["argmax", "nearest_wrong"] = "argmax"

    search_space = BOUNDARY_SPACE

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        neighbours = self.attacked_labels(copy.deepcopy(model).eval(), task)
        task.log["moved_to"] = torch.bincount(neighbours.cpu(), minlength=task.num_classes).tolist()
        task.log["attack_success"] = float((neighbours != task.forget_y).float().mean())
        self.config.fine_tune(model, task, neighbours)
        return model

    def attacked_labels(self, frozen: nn.Module, task: UnlearnTask, chunk: int = 512) -> torch.Tensor:
        """The new label of every forget sample: the frozen model's prediction on its FGSM image."""
        frozen.requires_grad_(False)
        labels = []
        for start in range(0, len(task.forget_y), chunk):
            images = task.forget_x[start : start + chunk]
            y = task.forget_y[start : start + chunk]
            x = task.preprocess(images).requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(frozen(x), y), x)
            with torch.no_grad():
                logits = frozen(self.adversarial(images, x, grad.sign(), task))
                if self.config.label_rule == "nearest_wrong":
                    logits[torch.arange(len(y)), y] = float("-inf")
                labels.append(logits.argmax(dim=1))
        return torch.cat(labels)

    def adversarial(self, images: torch.Tensor, x: torch.Tensor, sign: torch.Tensor, task: UnlearnTask) -> torch.Tensor:
        """The attacked, normalised batch. In pixel space the step is taken on the uint8
        images scaled to [0, 1] (the sign of the gradient is the same there, the
        normalisation's std being positive), clamped, and rounded back to uint8. ``authors``:
        ``adv_generator.py``'s arithmetic on the normalised input, undone and redone with its
        own constants (for one channel, the first), clamped and rounded in that space."""
        bound = self.config.bound
        if self.config.bound_space == "normalised":
            return x + bound * sign
        if self.config.bound_space == "authors":
            channels = x.shape[1]
            mean, std = (torch.tensor(v[:channels], dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in ATTACK_STATS)
            attacked = (x * std + mean + bound * sign).clamp_(0, 1)
            return (torch.round(attacked * 255) / 255 - mean) / std
        pixels = (images.float() / 255 + bound * sign).clamp_(0, 1)
        return task.preprocess(torch.round(pixels * 255).to(torch.uint8))


@register("boundary_expand")
class BoundaryExpand(UnlearningMethod):
    """Boundary expanding: widen the head with one shadow class, fine-tune on the forget
    samples labelled with the shadow class, then prune the shadow output so the model has
    the original number of outputs again.

    | aspect | authors' code (``boundary_unlearning.py::boundary_expanding``, ``models.py::init_params``) | here |
    | --- | --- | --- |
    | shadow row | xavier-normal weights over the widened (k+1)×d matrix, zero bias | the same (``shadow_init="xavier_normal"``); ``"uniform"``: PyTorch's Linear default, as SalUn's ``boundary_ex.py`` |
    | pruning | the shadow row is dropped after the fine-tune | the same (``prune=True``); ``False`` keeps k+1 outputs, as SalUn's copy (predicting the shadow class counts as wrong; the retrained model's missing output has probability e^-100 in the distances) |
    | fine-tune | SGD 1e-5, momentum 0.9, 10 epochs, batch 64 | the same (``batchnorm`` as for shrink) |
    | first batch | its forward runs before ``widen_model.train()``, on the model ``test()`` left in eval mode: normalised with the running statistics, which it does not update; train mode from the second | the same (``first_batch="eval"``); ``"train"``: every batch in train mode |
    """

    family = "seed_baselines"

    class Config(BoundaryConfig):
        shadow_init: Literal["xavier_normal", "uniform"] = "xavier_normal"
        prune: bool = True
        first_batch: Literal["eval", "train"] = "eval"

    search_space = BOUNDARY_SPACE

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        head: nn.Linear = model.head
        k, d = head.out_features, head.in_features
        wide = nn.Linear(d, k + 1).to(head.weight.device)
        with torch.no_grad():
            weight, bias = self.shadow_row(d, k, task.generator)
            wide.weight[k].copy_(weight)
            wide.bias[k].copy_(bias)
            wide.weight[:k].copy_(head.weight)
            wide.bias[:k].copy_(head.bias)
        model.head = wide
        self.config.fine_tune(model, task, torch.full_like(task.forget_y, k), first_batch_eval=self.config.first_batch == "eval")
        if self.config.prune:
            pruned = nn.Linear(d, k).to(head.weight.device)
            with torch.no_grad():
                pruned.weight.copy_(wide.weight[:k])
                pruned.bias.copy_(wide.bias[:k])
            model.head = pruned
        return model

    def shadow_row(self, d: int, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The new row's weights and bias, drawn from the task's generator."""
        if self.config.shadow_init == "xavier_normal":
            std = math.sqrt(2.0 / (d + k + 1))  # xavier_normal_ of a (k+1)×d matrix
            return torch.randn(d, generator=generator) * std, torch.zeros(())
        bound = 1 / math.sqrt(d)  # nn.Linear's default initialisation
        return (torch.rand(d, generator=generator) * 2 - 1) * bound, (torch.rand((), generator=generator) * 2 - 1) * bound
