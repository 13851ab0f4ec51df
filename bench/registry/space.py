"""Search spaces: the typed ranges a method declares beside its ``Config`` for the tuner.

Each range says where it comes from (``source``): the authors' code or paper, a published
grid (SalUn's, Jia et al.'s), or "chosen here" with the reason. A method declares
``search_space = {field: LogUniform(...), ...}`` on its class; the names must be fields of
its ``Config`` and both ends must pass its validation (checked at registration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from [low, high]."""

    low: float
    high: float
    source: str

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def ends(self) -> list[Any]:
        return [self.low, self.high]


@dataclass(frozen=True)
class LogUniform(Uniform):
    """A float drawn log-uniformly from [low, high] (learning rates, weights)."""

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntRange:
    """An integer in [low, high] (epochs, steps), log-spaced if ``log``."""

    low: int
    high: int
    source: str
    log: bool = False

    def describe(self) -> str:
        return f"integer [{self.low}, {self.high}]{' (log)' if self.log else ''}"

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def ends(self) -> list[Any]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Choice:
    """One of a few values (a loss, a balancer)."""

    choices: tuple[Any, ...]
    source: str

    def describe(self) -> str:
        return "one of " + ", ".join(str(c) for c in self.choices)

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def ends(self) -> list[Any]:
        return list(self.choices)


Param = Union[LogUniform, Uniform, IntRange, Choice]
SearchSpace = dict[str, Param]


def suggest(trial: Any, name: str, param: Param) -> Any:
    """The value of ``name`` for an Optuna trial."""
    if isinstance(param, Uniform):  # LogUniform too
        return trial.suggest_float(name, param.low, param.high, log=isinstance(param, LogUniform))
    if isinstance(param, IntRange):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    return trial.suggest_categorical(name, list(param.choices))


def describe_space(space: SearchSpace) -> dict[str, str]:
    """``{name: "log-uniform [a, b]"}``: the space as written into tuned files and reports."""
    return {name: param.describe() for name, param in space.items()}


def check_space(method_name: str, space: SearchSpace, config_class: type) -> None:
    """Raise ``TypeError`` when a range names no field of the method's ``Config``, is empty,
    or has an end the ``Config`` rejects (a space the method could not run)."""
    for name, param in space.items():
        if name not in config_class.model_fields:
            raise TypeError(f"method {method_name!r}: search space names {name!r}, not a field of its Config")
        if not isinstance(param, (Uniform, IntRange, Choice)):
            raise TypeError(f"method {method_name!r}: search space entry {name!r} is not a LogUniform, Uniform, IntRange or Choice")
        if not param.source.strip():
            raise TypeError(f"method {method_name!r}: search space entry {name!r} has no source")
        if isinstance(param, (Uniform, IntRange)) and not param.low < param.high:
            raise TypeError(f"method {method_name!r}: search space entry {name!r} is empty (low must be below high)")
        if isinstance(param, LogUniform) and param.low <= 0:
            raise TypeError(f"method {method_name!r}: log-uniform entry {name!r} needs low > 0")
        for value in param.ends():
            config_class.model_validate({name: value})
