"""SCRUB (Kurmanji et al., NeurIPS 2023, "Towards Unbounded Machine Unlearning"): a student,
started from the original model, moves away from it (the teacher) on the forget set and
stays close to it on the retain set."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.training.budget import scaled_epochs
from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.registry.space import IntRange, LogUniform
from bench.data.splits import Scenario
from bench.training.loop import Recipe, batch_indices, fit, make_optimizer

# The two CIFAR-10 settings of the authors' notebooks (meghdadk/SCRUB 98ffb11): whole-class
# forgetting (large_scale_unlearning.ipynb) and a random subset (MIA_experiments.ipynb). Both
# notebooks' originals trained for 25 epochs (``training_epochs``): the epoch counts are scaled
# to this original's training (bench.training.budget).
AUTHORS_TRAINING_EPOCHS = 25
PRESETS = {
    "class": {"epochs": 3, "max_epochs": 2, "gamma": 0.99, "alpha": 0.001, "retain_batch_size": 256, "forget_batch_size": 512},
    "random": {"epochs": 5, "max_epochs": 3, "gamma": 1.0, "alpha": 0.5, "retain_batch_size": 32, "forget_batch_size": 16},
}


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) of the softened outputs, summed, × T², ÷ batch
    (``distiller_zoo/KD.py::DistillKL``)."""
    log_student = F.log_softmax(student / temperature, dim=1)
    target = F.softmax(teacher / temperature, dim=1)
    return F.kl_div(log_student, target, reduction="sum") * temperature**2 / len(student)


def decayed_lr(lr: float, epoch: int, decay_epochs: tuple[int, ...], rate: float) -> float:
    """The rate of epoch ``epoch`` (from 0): ``lr`` × rate per listed epoch already passed, as
    ``util.py::adjust_learning_rate`` counts them (epochs from 1, decay after epoch d)."""
    return lr * rate ** sum(epoch + 1 > d for d in decay_epochs)


@register("scrub")
class Scrub(UnlearningMethod):
    """Each epoch: while ``epoch < max_epochs``, a "max" pass over the forget set ascending
    KL(teacher ‖ student); then a "min" pass over the retain set descending γ·CE + α·KL, one
    optimiser for both. Defaults: meghdadk/SCRUB (98ffb11) ``thirdparty/repdistiller/helper/
    loops.py::train_distill`` and the notebooks' outer loop; the settings left at ``None``
    come from the notebook for the cell's scenario (``PRESETS``), its epoch counts as the same
    share of this original's training as of the notebooks' 25 (:mod:`bench.training.budget`).

    | aspect | authors' code | here |
    | --- | --- | --- |
    | class scenario | ``large_scale_unlearning.ipynb``: 3 epochs, 2 max, γ 0.99, α 0.001, batches 256 retain / 512 forget | the same |
    | random scenario | ``MIA_experiments.ipynb``: 5 epochs, 3 max, γ 1, α 0.5, batches 32 / 16 | the same |
    | epochs, max epochs | 3 / 2 (class), 5 / 3 (random), after 25 of training | the same share of this original's training, at least one (1 / 1 on the cpu profile's digits; 4 / 2 and 6 / 4 on quick); set them to run the literal counts |
    | optimiser | SGD 5e-4, momentum 0.9, wd 5e-4, × 0.1 after epochs 3, 5, 9 (counted from 1) | the same (the decay epochs not scaled: with the scaled counts of the cpu profile no decay comes) |
    | KL | T = 4, teacher eval mode, student train mode in both passes | the same |
    | smoothing | before 812dd5d (the published runs): + 0.5 × Σ‖θ − θ_orig‖ in both losses for the random setting, 0 for class; removed since | 0 (``smoothing`` restores it) |
    | rewind (SCRUB+R) | notebooks only, needs a validation split of the forget classes | not offered |
    | augmentation | none (``augment=False`` loaders) | none |
    """

    family = "recent_baselines"

    class Config(MethodConfig):
        lr: float = Field(5e-4, gt=0)
        momentum: float = Field(0.9, ge=0, lt=1)
        weight_decay: float = Field(5e-4, ge=0)
        temperature: float = Field(4.0, gt=0)
        epochs: int | None = Field(None, ge=1)
        max_epochs: int | None = Field(None, ge=0)
        gamma: float | None = Field(None, ge=0)
        alpha: float | None = Field(None, ge=0)
        retain_batch_size: int | None = Field(None, ge=1)
        forget_batch_size: int | None = Field(None, ge=1)
        lr_decay_epochs: tuple[int, ...] = (3, 5, 9)
        lr_decay_rate: float = Field(0.1, gt=0, le=1)
        smoothing: float = Field(0.0, ge=0)

    search_space = {
        "lr": LogUniform(5e-5, 5e-3, "chosen here: a decade either side of the notebooks' 5e-4"),
        "epochs": IntRange(1, 6, "the notebooks run 3, 5 or 10 epochs after 25 of training; here up to 6, the random default on the quick profile's 30 training epochs"),
        "max_epochs": IntRange(1, 4, "the notebooks' msteps: 2, 3 or 5; here up to 4 (as epochs)"),
        "alpha": LogUniform(1e-3, 1.0, "the notebooks' α: 0.001, 0.01, 0.5"),
    }

    @classmethod
    def setting_params(cls, params: dict, scenario: Scenario, training_epochs: int) -> dict:
        """``params`` with every ``None`` filled in from the scenario's notebook (``PRESETS``),
        its epoch counts scaled to an original trained ``training_epochs`` epochs."""
        preset = dict(PRESETS[scenario.request_kind])
        for name in ("epochs", "max_epochs"):
            preset[name] = scaled_epochs(preset[name], AUTHORS_TRAINING_EPOCHS, training_epochs)
        return {name: (preset[name] if value is None and name in preset else value) for name, value in params.items()}

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        s = self.setting_params(self.config.model_dump(), task.scenario, task.recipe.epochs)
        device = next(model.parameters()).device
        forget_x, forget_y = task.forget_x.to(device), task.forget_y.to(device)
        retain_x, retain_y = task.retain_x.to(device), task.retain_y.to(device)
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        original = [p.detach().clone() for p in model.parameters()]
        recipe = Recipe(lr=s["lr"], momentum=s["momentum"], nesterov=False, weight_decay=s["weight_decay"], schedule="constant")
        optimizer = make_optimizer(model.parameters(), recipe)
        passes: list[list] = []

        def on_epoch(epoch: int) -> None:
            for group in optimizer.param_groups:
                group["lr"] = decayed_lr(s["lr"], epoch, s["lr_decay_epochs"], s["lr_decay_rate"])

        def plan(epoch: int):
            blocks = [("max", forget_y, s["forget_batch_size"])] if epoch < s["max_epochs"] else []
            for kind, labels, batch_size in [*blocks, ("min", retain_y, s["retain_batch_size"])]:
                passes.append([kind, 0])
                for index in batch_indices(len(labels), batch_size, task.generator):
                    passes[-1][1] += 1
                    yield kind, index

        def step_loss(forward: nn.Module, item, _epoch: int):
            kind, cpu_index = item
            index = cpu_index.to(device)
            if kind == "max":
                x = task.preprocess(forget_x[index])
                loss = -distill_kl(forward(x), teacher(x), s["temperature"])
            else:
                x = task.preprocess(retain_x[index])
                logits = forward(x)
                loss = s["gamma"] * F.cross_entropy(logits, retain_y[index]) + s["alpha"] * distill_kl(logits, teacher(x), s["temperature"])
            if s["smoothing"]:
                loss = loss + s["smoothing"] * sum(torch.linalg.vector_norm(p - p0) for p, p0 in zip(model.parameters(), original))
            return loss, len(index)

        log = fit(model, s["epochs"], plan, step_loss, optimizer, on_epoch=on_epoch)
        task.log.update(epoch_loss=log.epoch_loss, passes=passes, settings={k: s[k] for k in PRESETS["class"]})
        return model
