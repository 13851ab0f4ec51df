"""Fine-tuning on the retain set ("catastrophic forgetting" baseline)."""

from typing import Literal

from pydantic import Field
from torch import nn

from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.registry.space import IntRange, LogUniform
from bench.training.loop import Recipe, train


@register("finetune")
class Finetune(UnlearningMethod):
    """Continue training the original model on the retain set alone, so that the
    forget set's influence fades (Golatkar et al. 2020, "Eternal Sunshine", the fine-tune
    baseline). Defaults: SSD's ``finetune`` (Foster et al., AAAI 2024,
    if-loops/selective-synaptic-dampening ``src/forget_*_strategies.py::finetune`` and
    ``src/utils.py::fit_one_cycle``): 5 epochs, SGD lr 0.02, momentum 0.9 without Nesterov,
    weight decay 5e-4, a constant rate, no augmentation.

    | aspect | SSD's code | here |
    | --- | --- | --- |
    | epochs, optimiser, schedule | 5, SGD 0.02, momentum 0.9, wd 5e-4, constant | the same |
    | augmentation | none (``transform_unlearning``) | the same (``augment``) |
    | batch size | 64 for class forgetting (``-b``), 128 for random (hard-coded) | the original recipe's (``batch_size`` sets it) |
    """

    family = "seed_baselines"

    class Config(MethodConfig):
        epochs: int = Field(5, ge=1)
        lr: float = Field(0.02, gt=0)
        momentum: float = Field(0.9, ge=0, lt=1)
        weight_decay: float = Field(5e-4, ge=0)
        schedule: Literal["constant", "cosine", "onecycle"] = "constant"
        batch_size: int | None = Field(None, ge=1)
        augment: bool = False

    search_space = {
        "lr": LogUniform(1e-4, 1e-1, "FT's lr in [1e-4, 1e-1], 10 epochs: the grid of SalUn's authors (Unlearn-WorstCase App. B1, quoted in OPTML-Group/Unlearn-WorstCase issue #1)"),
        "epochs": IntRange(1, 10, "up to the 10 epochs of SalUn's and Jia et al.'s FT (arg_parser.py unlearn_epochs); DeepUnlearn searches [1, 10] on MNIST (munl/hpsearch/suggestor.py)"),
    }

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.config
        recipe = Recipe(
            epochs=c.epochs,
            batch_size=c.batch_size or task.recipe.batch_size,
            lr=c.lr,
            momentum=c.momentum,
            nesterov=False,
            weight_decay=c.weight_decay,
            schedule=c.schedule,
            augment=c.augment,
        )
        log = train(model, task.retain_x, task.retain_y, recipe, task.preprocess, task.generator)
        task.log["epoch_loss"] = log.epoch_loss
        return model
