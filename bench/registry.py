"""The method registry and the interface every unlearning method implements.

A method is a class registered under a name with a typed ``Config`` of its
hyper-parameters (defaults = the published values, cited in its docstring) and one
entry point, ``unlearn(model, task) -> model``. Every method comes through the
entry-point group ``unlearn_bench.methods``: the built-ins (the top-level ``methods``
package, declared in this project's ``pyproject.toml``) exactly as a third party's (the
entry point names a module that calls :func:`register`, or the method class itself,
registered under the entry point's name). ``bench`` never imports ``methods`` by name.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from bench.budget import scaled_epochs
from bench.errors import UserError
from bench.tuning.space import SearchSpace, check_space
from bench.resources import OperationCounter
from bench.splits import Scenario
from bench.train import CachedModel, Preprocess, Recipe
from bench.update_record import TrainingRecord

ENTRY_POINT_GROUP = "unlearn_bench.methods"
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
    """What the tuner searches (see :mod:`bench.tuning.space`); empty: tuned over nothing."""
    scaled: ClassVar[dict[str, tuple[int, int]]] = {}
    """Epoch counts the ``Config`` leaves ``None``: name → (the authors' count, the epochs their
    original trained), filled in as the same share of this original's training
    (:func:`bench.budget.scaled_epochs`)."""

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


M = TypeVar("M", bound=type[UnlearningMethod])
_METHODS: dict[str, type[UnlearningMethod]] = {}
_SOURCES: dict[str, str] = {}  # method name -> the distribution whose entry point registered it
_loading: list[str] = []  # the distribution whose entry point is loading now
_loaded = False


class DuplicateMethod(UserError):
    """Two plugins (built-in or third-party) claim one method name."""


def register(name: str) -> Callable[[M], M]:
    """Class decorator: register an :class:`UnlearningMethod` under ``name``."""

    def decorator(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, UnlearningMethod)):
            raise TypeError(f"@register({name!r}) needs an UnlearningMethod subclass, got {cls!r}")
        unknown = set(cls.needs) - set(KNOWN_NEEDS)
        if unknown:
            raise TypeError(f"method {name!r} needs {sorted(unknown)}; known needs: {sorted(KNOWN_NEEDS)}")
        check_space(name, cls.search_space, cls.Config)
        source = _loading[-1] if _loading else None
        taken = _METHODS.get(name)
        if taken is not None and qualified(taken) != qualified(cls):
            raise DuplicateMethod(
                f"method name {name!r} is claimed twice: by {describe_source(taken, _SOURCES.get(name))} and by "
                f"{describe_source(cls, source)}; allowed: one method a name (rename one, or uninstall one package)"
            )
        cls.name = name
        _METHODS[name] = cls
        if source is not None:
            _SOURCES[name] = source
        return cls

    return decorator


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_source(cls: type, source: str | None) -> str:
    return qualified(cls) + (f" (package {source})" if source else "")


def method_source(name: str) -> str | None:
    """The distribution whose ``unlearn_bench.methods`` entry point registered ``name``
    (``unlearn-bench`` for the built-ins), or None for a class registered in code."""
    load_plugins()
    return _SOURCES.get(name)


def load_plugins() -> None:
    """Load every entry point of ``unlearn_bench.methods`` (once): the built-ins, declared by
    this project's own ``pyproject.toml``, and any third party's, the same way. An entry
    point names a module that registers its methods, or a method class, registered under the
    entry point's name. A plugin that fails to import is skipped with a warning; two that
    claim one name stop the command (exit 2)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name)):
        _loading.append(entry.dist.name if entry.dist else entry.value)
        try:
            loaded = entry.load()
            if isinstance(loaded, type) and issubclass(loaded, UnlearningMethod):
                register(entry.name)(loaded)
        except DuplicateMethod:
            _loaded = False
            raise
        except Exception as error:  # a broken plugin must not break the harness
            print(f"warning: method plugin {entry.name!r} ({entry.value}) failed to load: {error}", file=sys.stderr)
        finally:
            _loading.pop()
    if not _METHODS:
        raise UserError(
            "no unlearning method is registered: the entry points of group unlearn_bench.methods are missing; "
            "allowed: run from an installed checkout (pip install -e ., or ./run_all.sh, which installs it)"
        )


def method_names() -> list[str]:
    load_plugins()
    return sorted(_METHODS)


def get_method(name: str) -> type[UnlearningMethod]:
    load_plugins()
    if name not in _METHODS:
        raise UserError(f"unknown method {name!r}; allowed: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]
