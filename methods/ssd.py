"""Selective Synaptic Dampening (Foster et al., AAAI 2024): shrink the weights far more
important to the forget set than to the training data, with no training at all."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from bench.training.gradients import summed_gradients
from bench.registry import MethodConfig, UnlearnTask, UnlearningMethod, register
from bench.registry.space import LogUniform


def importances(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, preprocess, batch_size: int) -> dict[str, torch.Tensor]:
    """Per weight, the mean over batches of the squared batch-mean gradient of the
    cross-entropy, in eval mode, batches in the given order, no augmentation
    (``src/ssd.py::calc_importance``: a diagonal Fisher estimate)."""
    sums, batches = summed_gradients(model, images, labels, preprocess, batch_size, reduce=torch.square)
    return {name: total / batches for name, total in sums.items()}


@torch.no_grad()
def dampen(model: nn.Module, forget: dict[str, torch.Tensor], full: dict[str, torch.Tensor], alpha: float, dampening: float) -> int:
    """Where I_f > α·I_D (strictly), θ ← θ·min(λ·I_D / I_f, 1); elsewhere θ is left as it is
    (``src/ssd.py::modify_weight``, exponent 1, lower bound 1). Returns how many weights moved."""
    changed = 0
    for name, p in model.named_parameters():
        if name not in forget:  # a frozen parameter has no importance and is left alone
            continue
        selected = forget[name] > alpha * full[name]
        factor = (dampening * full[name] / forget[name]).clamp(max=1.0)
        p[selected] = p[selected] * factor[selected]
        changed += int(selected.sum())
    return changed


@register("ssd")
class SelectiveSynapticDampening(UnlearningMethod):
    """Compute each weight's importance to the forget set (I_f) and to the whole training set
    (I_D, forget set included), then dampen the weights with I_f > α·I_D in proportion to
    I_D/I_f. Defaults: if-loops/selective-synaptic-dampening (cdfdc0e) ``src/ssd.py``
    (``ParameterPerturber``) as ``src/forget_full_class_strategies.py::ssd_tuning`` and
    ``src/forget_random_strategies.py::ssd_tuning`` call it, with the mains' ResNet-18 values.

    | aspect | authors' code | here |
    | --- | --- | --- |
    | importance | eval mode, CE of the batch mean, Σ grad² ÷ number of batches, every parameter, no augmentation, loaders unshuffled | the same |
    | D | retain + forget concatenated; class scenarios build the lists class by class (batches nearly one class), random ones by ``random_split`` | the same: retain sorted by class (stable) for a class scenario, as given otherwise, then the forget set |
    | α, λ | 10 and 1 (ResNet-18, every scenario) | the same (``alpha``, ``dampening``) |
    | batch | 64 for class (``-b``), 128 for random (forget loader hard-coded, D from ``-b``) | the same (``batch_size`` overrides both) |
    | runs as committed | the random and sub-class strategies fail to run (a shadowed module name; a stale function name) | the full-class code's algorithm for every scenario |
    """

    family = "recent_baselines"

    class Config(MethodConfig):
        alpha: float = Field(10.0, gt=0)
        dampening: float = Field(1.0, gt=0)
        batch_size: int | None = Field(None, ge=1)

    search_space = {
        "alpha": LogUniform(1.0, 100.0, "the code's α: 5 (ViT), 10 (ResNet-18), 25 (ViT sub-class), 50 (a Pins comment in forget_full_class_main.py)"),
        "dampening": LogUniform(0.1, 5.0, "the code's λ = 1 and the Pins comment's 0.1; chosen here up to 5"),
    }

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.config
        batch_size = c.batch_size or (64 if task.scenario.request_kind == "class" else 128)
        retain_order = torch.sort(task.retain_y, stable=True).indices if task.scenario.request_kind == "class" else torch.arange(len(task.retain_y))
        full_x = torch.cat([task.retain_x[retain_order.to(task.retain_x.device)], task.forget_x])
        full_y = torch.cat([task.retain_y[retain_order.to(task.retain_y.device)], task.forget_y])
        # The original model's importances read no searched parameter: kept for the study's other trials.
        forget = task.reuse(f"ssd_forget_importances_b{batch_size}", lambda: importances(model, task.forget_x, task.forget_y, task.preprocess, batch_size))
        full = task.reuse(f"ssd_full_importances_b{batch_size}", lambda: importances(model, full_x, full_y, task.preprocess, batch_size))
        task.log["dampened_weights"] = dampen(model, forget, full, c.alpha, c.dampening)
        task.log["weights"] = sum(p.numel() for p in model.parameters())
        return model
