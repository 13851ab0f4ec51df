"""The original model, untouched: the "no unlearning" reference row of every table."""

from torch import nn

from bench.registry import UnlearnTask, UnlearningMethod, register


@register("original")
class Original(UnlearningMethod):
    """Returns the original model as it is, so it is evaluated like every method. No code to
    be faithful to: its fidelity table is empty."""

    family = "reference"

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        return model
