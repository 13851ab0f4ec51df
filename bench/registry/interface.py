"""The interface every unlearning method implements: a class with a typed ``Config`` of
its hyper-parameters (defaults = the published values, cited in its docstring) and one
entry point, ``unlearn(model, task) -> model``, given an :class:`UnlearnTask` that holds
everything a method may use and nothing else."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from bench.training.budget import scaled_epochs
from bench.registry.space import SearchSpace
from bench.core.resources import OperationCounter
from bench.data.splits import Scenario
from bench.training.loop import CachedModel, Preprocess, Recipe
from bench.training.update_record import TrainingRecord

T = TypeVar("T")

# What a method may declare in ``needs``; the harness provides it or marks the cell not applicable.
KNOWN_NEEDS = {
    "retrain_reference": "the cached model retrained from scratch on the retain set (only the retrain method may use it)",
    "training_record": "the summed updates of the original training's batches that held a forget sample (amnesiac_undo)",
}


class NotApplicable(Exception):
    """Raised by a method that cannot run on this cell (the reason says why): the cell is
    recorded as not applicable instead of failed."""


class MethodConfig(BaseModel):
    """Base of every method's hyper-parameters: typed, validated, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class SharedWork:
    """A result of :meth:`UnlearnTask.reuse` with what computing it cost."""

    value: Any
    seconds: float
    flops: int


@dataclass
class UnlearnTask:
    """Everything a method may use, and nothing else.

    Images are uint8 ``(N, C, H, W)`` tensors on ``device``; ``preprocess`` turns a
    batch into normalised floats (and augments it when given a generator);
    ``recipe`` is the original model's training recipe; ``new_model(seed)`` builds a
    fresh, untrained model of the same architecture on ``device``.
    """

    forget_x: torch.Tensor
    forget_y: torch.Tensor
    retain_x: torch.Tensor
    retain_y: torch.Tensor
    num_classes: int
    scenario: Scenario
    new_model: Callable[[int], nn.Module]
    device: torch.device
    generator: torch.Generator
    preprocess: Preprocess
    recipe: Recipe
    seed: int
    retrain_reference: Callable[[], CachedModel] | None = None
    training_record: TrainingRecord | None = None
    log: dict[str, Any] = field(default_factory=dict)
    charged_seconds: float | None = None
    """Set by a method whose work was done earlier and cached (retrain): the time it cost then."""
    charged_memory_mib: tuple[float, float] | None = None
    """Set with ``charged_seconds``: the (peak, added) memory in MiB that work took then."""
    shared: dict[str, SharedWork] = field(default_factory=dict)
    """Work kept across runs on the same original model and split (see :meth:`reuse`)."""
    count_flops: bool = False
    """Set by the harness when it counts the method's operations (a tuning trial's cost cap)."""
    reused_seconds: float = 0.0
    reused_flops: int = 0

    def reuse(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, or its result from an earlier run on the same original model and
        split (a tuning study's trials; a method's defaults and its tuned variant). Only for
        work that reads no hyper-parameter ``name`` leaves out and draws nothing from
        ``generator``. The time and operations it took are charged to every run that reuses
        it, so costs and cost caps are as if it ran each time."""
        kept = self.shared.get(name)
        if kept is not None:
            self.reused_seconds += kept.seconds
            self.reused_flops += kept.flops
            return kept.value
        counter = OperationCounter(display=False) if self.count_flops else None
        start = time.perf_counter()
        with counter or contextlib.nullcontext():
            value = compute()
        flops = counter.get_total_flops() if counter is not None else 0
        self.shared[name] = SharedWork(value, time.perf_counter() - start, flops)
        return value


class UnlearningMethod:
    """Subclass, give a ``Config``, implement :meth:`unlearn`, and decorate with ``@register(name)``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    needs: ClassVar[frozenset[str]] = frozenset()
    family: ClassVar[str] = "other"
    """Which methods it is drawn and listed with (``bench.report.palette.FAMILIES``)."""
    search_space: ClassVar[SearchSpace] = {}
    """What the tuner searches (see :mod:`bench.registry.space`); empty: tuned over nothing."""
    scaled: ClassVar[dict[str, tuple[int, int]]] = {}
    """Epoch counts the ``Config`` leaves ``None``: name → (the authors' count, the epochs their
    original trained), filled in as the same share of this original's training
    (:func:`bench.training.budget.scaled_epochs`)."""

    def __init__(self, config: MethodConfig | None = None):
        self.config = config if config is not None else self.Config()

    @classmethod
    def setting_params(cls, params: dict[str, Any], scenario: Scenario, training_epochs: int) -> dict[str, Any]:
        """``params`` with every value the method leaves to the setting filled in: the epoch
        counts of ``scaled`` for an original trained ``training_epochs`` epochs (a method whose
        authors use different settings for class and random forgetting also fills those in).
        The tuner tries the result as a study's default point."""
        return {
            name: scaled_epochs(*cls.scaled[name], training_epochs) if value is None and name in cls.scaled else value
            for name, value in params.items()
        }

    def settings(self, task: UnlearnTask) -> MethodConfig:
        """This instance's ``Config`` with :meth:`setting_params` applied for ``task``."""
        params = self.setting_params(self.config.model_dump(), task.scenario, task.recipe.epochs)
        return self.config.model_copy(update=params)

    def unlearn(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        """Return the unlearned model (``model`` is the caller's copy of the original; edit it freely)."""
        raise NotImplementedError
