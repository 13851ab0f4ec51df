"""Bad Teacher (Chundawat et al., AAAI 2023, "Can Bad Teaching Induce Forgetting?"):
distil the original model on retain samples and a random one on forget samples."""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.registry.space import IntRange, LogUniform, Uniform
from bench.training.loop import Recipe, batch_indices, fit, make_optimizer

INCOMPETENT_SEED_OFFSET = 104729  # the random teacher's seed: the cell's plus this, never the original's init


def teacher_mixture(good: torch.Tensor, bad: torch.Tensor, is_forget: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per sample, the bad teacher's softened outputs where it is a forget sample, the good
    teacher's elsewhere (``unlearn.py::UnlearnerLoss``)."""
    flag = is_forget.float().unsqueeze(1)
    return flag * F.softmax(bad / temperature, dim=1) + (1 - flag) * F.softmax(good / temperature, dim=1)


@register("bad_teacher")
class BadTeacher(UnlearningMethod):
    """The student (the original model) learns, on forget samples, the outputs of an
    incompetent teacher (the same architecture, randomly initialised, never trained) and, on
    a share of the retain set, those of the competent one (the original), by KL divergence
    alone. Defaults: vikram2000b/bad-teaching-unlearning (f1aa988) ``unlearn.py::
    blindspot_unlearner`` as its notebook calls it, identical in SSD's copy
    (if-loops/selective-synaptic-dampening ``src/unlearn.py``, strategy ``blindspot``).

    | aspect | authors' code | here |
    | --- | --- | --- |
    | data | all of the forget set and a uniform 30% of the retain set drawn once, shuffled together, labels unused | the same (``retain_share``) |
    | loss | ``F.kl_div`` of the student's log-softmax and the teachers' mixture, T = 1, reduction ``mean`` (÷ batch × classes), no CE term | the same (``temperature``; ``reduction="batchmean"``: ÷ batch, the per-sample KL) |
    | optimiser | Adam 1e-4, no weight decay, 1 epoch, batch 256 (the function's defaults, 0.01 and 10 epochs, are not what runs) | the same |
    | modes | teachers eval; the student's never set, so train mode | the same |
    | augmentation | none in SSD's copy (``transform_unlearning``) | none |
    """

    family = "recent_baselines"

    class Config(MethodConfig):
        lr: float = Field(1e-4, gt=0)
        epochs: int = Field(1, ge=1)
        batch_size: int = Field(256, ge=1)
        retain_share: float = Field(0.3, gt=0, le=1)
        temperature: float = Field(1.0, gt=0)
        reduction: Literal["mean", "batchmean"] = "mean"

    search_space = {
        "lr": LogUniform(1e-5, 1e-3, "chosen here: a decade either side of the notebook's Adam 1e-4"),
        "epochs": IntRange(1, 5, "chosen here: the notebook's 1 up to 5 (the function's own default is 10)"),
        "retain_share": Uniform(0.1, 1.0, "chosen here around the notebook's 30%"),
    }

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.config
        device = next(model.parameters()).device
        kept = torch.randperm(len(task.retain_y), generator=task.generator)[: int(c.retain_share * len(task.retain_y))]
        images = torch.cat([task.forget_x, task.retain_x[kept]]).to(device)
        is_forget = (torch.arange(len(images)) < len(task.forget_y)).to(device)
        good = copy.deepcopy(model).eval().requires_grad_(False)
        bad_seed = task.seed + INCOMPETENT_SEED_OFFSET
        bad = task.new_model(bad_seed).eval().requires_grad_(False)
        recipe = Recipe(optimizer="adam", lr=c.lr, weight_decay=0.0, schedule="constant")

        def step_loss(forward: nn.Module, cpu_index: torch.Tensor, _epoch: int):
            index = cpu_index.to(device)
            x = task.preprocess(images[index])
            with torch.no_grad():
                target = teacher_mixture(good(x), bad(x), is_forget[index], c.temperature)
            log_student = F.log_softmax(forward(x) / c.temperature, dim=1)
            divergence = F.kl_div(log_student, target, reduction="sum")
            return divergence / (target.numel() if c.reduction == "mean" else len(target)), len(index)

        log = fit(model, c.epochs, lambda _e: batch_indices(len(images), c.batch_size, task.generator), step_loss,
                  make_optimizer(model.parameters(), recipe))
        task.log.update(epoch_loss=log.epoch_loss, incompetent_teacher_seed=bad_seed, retain_used=len(kept))
        return model
