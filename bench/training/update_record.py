"""A record of the original training's updates, for Amnesiac Machine Learning's batch undo.

Graves et al. (2021, "Amnesiac Machine Learning", AAAI) store the parameter update of
every batch and unlearn by subtracting the updates of the batches that held a sample to
forget. The harness knows the planned forget sets before training, so it keeps, per forget
set, the *sum* of the updates of the batches that touched it (in float64, so subtracting
it restores the earlier state exactly) and the number of such batches, from which the
storage the published per-batch scheme would need is estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach() for name, t in model.state_dict().items()}


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64) if t.is_floating_point() else t.to(torch.int64)


class UpdateRecorder:
    """A step hook for :func:`bench.training.loop.train` that sums the updates of the batches
    holding any sample of each forget set (``forget_sets``: name → training indices)."""

    def __init__(self, forget_sets: dict[str, torch.Tensor], num_samples: int):
        self.masks = {}
        for name, indices in forget_sets.items():
            mask = torch.zeros(num_samples, dtype=torch.bool)
            mask[indices] = True
            self.masks[name] = mask
        self.sums: dict[str, dict[str, torch.Tensor]] = {name: {} for name in forget_sets}
        self.batches = {name: 0 for name in forget_sets}
        self._touched: list[str] = []
        self._before: dict[str, torch.Tensor] = {}

    def before_batch(self, model: nn.Module, indices: torch.Tensor) -> None:
        self._touched = [name for name, mask in self.masks.items() if bool(mask[indices].any())]
        if self._touched:
            self._before = {name: _wide(t).clone() for name, t in _state(model).items()}

    def after_batch(self, model: nn.Module, indices: torch.Tensor) -> None:
        if not self._touched:
            return
        for name, tensor in _state(model).items():
            delta = _wide(tensor) - self._before[name]
            for forget_set in self._touched:
                sums = self.sums[forget_set]
                sums[name] = sums[name] + delta if name in sums else delta.clone()
        for forget_set in self._touched:
            self.batches[forget_set] += 1
        self._before = {}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Flat name → tensor mapping, to be cached with the model."""
        flat = {f"{fs}/batches": torch.tensor(count) for fs, count in self.batches.items()}
        for forget_set, sums in self.sums.items():
            flat.update({f"{forget_set}/{name}": t.cpu() for name, t in sums.items()})
        return flat


@dataclass(frozen=True)
class TrainingRecord:
    """The summed updates of the batches that held a sample of one forget set."""

    update_sum: dict[str, torch.Tensor]
    batches: int
    bytes_per_update: int

    @property
    def per_batch_bytes(self) -> int:
        """Storage of the published scheme: one parameter update per recorded batch."""
        return self.batches * self.bytes_per_update

    @classmethod
    def from_tensors(cls, flat: dict[str, torch.Tensor], forget_set: str, model: nn.Module) -> "TrainingRecord":
        prefix = f"{forget_set}/"
        if f"{prefix}batches" not in flat:
            raise KeyError(f"no training record for forget set {forget_set}")
        sums = {k.removeprefix(prefix): v for k, v in flat.items() if k.startswith(prefix) and k != f"{prefix}batches"}
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        return cls(update_sum=sums, batches=int(flat[f"{prefix}batches"]), bytes_per_update=size)
