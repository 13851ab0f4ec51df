"""Retraining from scratch on the retain set: exact unlearning, the gold reference."""

from torch import nn

from bench.registry import UnlearnTask, UnlearningMethod, register


@register("retrain")
class Retrain(UnlearningMethod):
    """A fresh initialisation of every layer (the same seed as the original model, so
    weight distances between the two are meaningful) trained with the original recipe
    on the retain set only. It is the very model the evaluation compares against,
    trained once and cached; its time is the time that training took.

    | aspect | the literature's retrain baseline (SalUn's ``retrain``, SSD's ``retrain``) | here |
    | --- | --- | --- |
    | initialisation | fresh | fresh, the original's seed (a weight distance to it means something) |
    | recipe | the original's, on the retain set | the same |
    """

    family = "reference"

    needs = frozenset({"retrain_reference"})

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        reference = task.retrain_reference()
        task.charged_seconds = reference.train_seconds
        task.charged_memory_mib = (reference.peak_mib, reference.delta_mib)
        task.log["from_cache"] = reference.from_cache
        return reference.model
