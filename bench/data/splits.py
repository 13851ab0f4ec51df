"""Forgetting scenarios → index sets of the training data.

``class:<k>`` forgets every training sample of class k; ``random:<fraction>``
forgets a seeded uniform sample of that share of the training set. A split is
persisted as a safetensors file and identified by the SHA-256 of its indices.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.errors import UserError
from bench.core.store import load_verified, save_tensors

SCENARIO_KINDS = ("class", "random")


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario spec: ``kind`` is ``class`` or ``random``."""

    kind: str
    forget_class: int | None = None
    fraction: float | None = None

    @property
    def spec(self) -> str:
        return f"class:{self.forget_class}" if self.kind == "class" else f"random:{self.fraction:g}"

    @property
    def slug(self) -> str:
        """The spec as a file-name-safe word (``class3``, ``random0.1``)."""
        return re.sub(r"[^A-Za-z0-9.]+", "", self.spec)


def parse_scenario(spec: str, num_classes: int) -> Scenario:
    """Parse and check a scenario spec against the dataset's number of classes."""
    kind, _, value = str(spec).partition(":")
    if kind == "class":
        if not value.isdigit() or int(value) >= num_classes:
            raise UserError(f"scenario {spec!r}: class must be an integer in 0..{num_classes - 1}")
        return Scenario("class", forget_class=int(value))
    if kind == "random":
        try:
            fraction = float(value)
        except ValueError:
            fraction = float("nan")
        if not 0.0 < fraction < 1.0:
            raise UserError(f"scenario {spec!r}: fraction must be a number in (0, 1), e.g. random:0.1")
        return Scenario("random", fraction=fraction)
    raise UserError(f"scenario {spec!r}: unknown kind {kind!r}; allowed: class:<k>, random:<fraction>")


@dataclass(frozen=True)
class Split:
    """Forget and retain indices into the training set (sorted, disjoint, covering it)."""

    forget: torch.Tensor
    retain: torch.Tensor

    @property
    def forget_sha256(self) -> str:
        return index_sha256(self.forget)

    @property
    def retain_sha256(self) -> str:
        return index_sha256(self.retain)


def index_sha256(indices: torch.Tensor) -> str:
    """SHA-256 of int64 little-endian index bytes: stable across runs and machines."""
    return hashlib.sha256(indices.to(torch.int64).numpy().astype("<i8").tobytes()).hexdigest()


def make_split(scenario: Scenario, train_labels: torch.Tensor, seed: int) -> Split:
    """Draw the forget set; every random choice comes from ``seed``."""
    n = len(train_labels)
    if scenario.kind == "class":
        is_forget = train_labels == scenario.forget_class
        if not bool(is_forget.any()):
            raise UserError(f"scenario {scenario.spec!r}: the training set has no sample of that class")
    else:
        count = max(1, round(scenario.fraction * n))
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(n, generator=generator)[:count]
        is_forget = torch.zeros(n, dtype=torch.bool)
        is_forget[chosen] = True
    return Split(forget=torch.nonzero(is_forget).flatten(), retain=torch.nonzero(~is_forget).flatten())


def save_split(path: Path, split: Split) -> None:
    save_tensors(path, {"forget": split.forget, "retain": split.retain}, {"key": split.forget_sha256})


def load_split(path: Path, forget_sha256: str) -> Split | None:
    """The persisted split, or None when it is missing or does not match the hash."""
    loaded = load_verified(path, forget_sha256)
    if loaded is None:
        return None
    tensors, _ = loaded
    return Split(forget=tensors["forget"], retain=tensors["retain"])


def per_class_subset(labels: torch.Tensor, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded subset with ``per_class`` samples of every class present (all of a class
    that has fewer), as sorted positions into ``labels``."""
    labels = labels.cpu()
    chosen = []
    for label in labels.unique().tolist():
        members = torch.nonzero(labels == label).flatten()
        order = torch.randperm(len(members), generator=generator)[:per_class]
        chosen.append(members[order])
    return torch.cat(chosen).sort().values
