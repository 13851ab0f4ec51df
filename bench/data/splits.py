"""Forgetting scenarios → index sets of the training data.

``class:<k>`` forgets every training sample of class k; ``random:<fraction>`` forgets a
seeded uniform sample of that share of the training set; ``subclass:<k>:<j>`` forgets the
j-th of n pixel-space clusters of class k (:mod:`bench.data.clusters`; n = 4, or
``subclass:<k>:<j>:<n>``); ``seq:<n>:<base>`` is n disjoint requests one after another,
each drawn by ``base`` (``class``: a seeded class per request; ``random:<fraction>``: that
share per request). A split is persisted as a safetensors file and identified by the
SHA-256 of its indices.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.errors import UserError
from bench.core.store import load_verified, save_tensors

SCENARIO_KINDS = ("class", "random", "subclass", "seq")
DEFAULT_CLUSTERS = 4
ALLOWED = "class:<k>, random:<fraction>, subclass:<k>:<j>[:<clusters>], seq:<requests>:<class|random:<fraction>>"


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario spec. ``kind``: class, random, subclass or seq; ``base``: a seq
    scenario's rule for one request (``class`` with no class: one drawn per request)."""

    kind: str
    forget_class: int | None = None
    fraction: float | None = None
    cluster: int | None = None
    clusters: int | None = None
    requests: int | None = None
    base: "Scenario | None" = None

    @property
    def spec(self) -> str:
        if self.kind == "seq":
            return f"seq:{self.requests}:{self.base.spec}"
        if self.kind == "subclass":
            extra = "" if self.clusters == DEFAULT_CLUSTERS else f":{self.clusters}"
            return f"subclass:{self.forget_class}:{self.cluster}{extra}"
        if self.kind == "class":
            return "class" if self.forget_class is None else f"class:{self.forget_class}"
        return f"random:{self.fraction:g}"

    @property
    def slug(self) -> str:
        """The spec as a file-name-safe word (``class3``, ``random0.1``, ``seq4-random0.025``,
        ``subclass3-0``)."""
        if self.kind == "seq":
            return f"seq{self.requests}-{self.base.slug}"
        if self.kind == "subclass":
            return "subclass" + "-".join(self.spec.split(":")[1:])
        return re.sub(r"[^A-Za-z0-9.]+", "", self.spec)

    @property
    def request_kind(self) -> str:
        """``class`` where every forget sample of a request shares one label (class, subclass,
        seq of classes), else ``random``: what a method with per-scenario settings reads."""
        if self.kind == "seq":
            return self.base.request_kind
        return "class" if self.kind in ("class", "subclass") else "random"

    @property
    def sequential(self) -> bool:
        return self.kind == "seq"


def _integer(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_scenario(spec: str, num_classes: int) -> Scenario:
    """Parse and check a scenario spec against the dataset's number of classes."""
    kind, _, value = str(spec).partition(":")
    if kind == "class":
        if _integer(value) is None or int(value) >= num_classes:
            raise UserError(f"scenario {spec!r}: class must be an integer in 0..{num_classes - 1}")
        return Scenario("class", forget_class=int(value))
    if kind == "random":
        return Scenario("random", fraction=_fraction(spec, value))
    if kind == "subclass":
        return _parse_subclass(spec, value, num_classes)
    if kind == "seq":
        return _parse_sequence(spec, value, num_classes)
    raise UserError(f"scenario {spec!r}: unknown kind {kind!r}; allowed: {ALLOWED}")


def _fraction(spec: str, value: str) -> float:
    try:
        fraction = float(value)
    except ValueError:
        fraction = float("nan")
    if not 0.0 < fraction < 1.0:
        raise UserError(f"scenario {spec!r}: fraction must be a number in (0, 1), e.g. random:0.1")
    return fraction


def _parse_subclass(spec: str, value: str, num_classes: int) -> Scenario:
    parts = value.split(":")
    if len(parts) not in (2, 3) or any(_integer(p) is None for p in parts):
        raise UserError(f"scenario {spec!r}: expected subclass:<class>:<cluster>[:<clusters>] with integers, e.g. subclass:3:0")
    forget_class, cluster = int(parts[0]), int(parts[1])
    clusters = int(parts[2]) if len(parts) == 3 else DEFAULT_CLUSTERS
    if forget_class >= num_classes:
        raise UserError(f"scenario {spec!r}: class must be an integer in 0..{num_classes - 1}")
    if clusters < 2:
        raise UserError(f"scenario {spec!r}: clusters must be at least 2")
    if cluster >= clusters:
        raise UserError(f"scenario {spec!r}: cluster must be an integer in 0..{clusters - 1}")
    return Scenario("subclass", forget_class=forget_class, cluster=cluster, clusters=clusters)


def _parse_sequence(spec: str, value: str, num_classes: int) -> Scenario:
    count, _, base_spec = value.partition(":")
    requests = _integer(count)
    if requests is None or requests < 1:
        raise UserError(f"scenario {spec!r}: requests must be an integer of at least 1, e.g. seq:4:random:0.025")
    if base_spec == "class":
        if requests > num_classes - 1:
            raise UserError(f"scenario {spec!r}: at most {num_classes - 1} class requests (one class must remain)")
        return Scenario("seq", requests=requests, base=Scenario("class"))
    kind, _, fraction = base_spec.partition(":")
    if kind != "random":
        raise UserError(f"scenario {spec!r}: base {base_spec!r} unknown; allowed: class, random:<fraction>")
    base = Scenario("random", fraction=_fraction(spec, fraction))
    if requests * base.fraction >= 1:
        raise UserError(f"scenario {spec!r}: {requests} disjoint requests of {base.fraction:g} each need requests x fraction < 1")
    return Scenario("seq", requests=requests, base=base)


@dataclass(frozen=True)
class Split:
    """Forget and retain indices into the training set (sorted, disjoint, covering it).
    ``request``: the newest request's indices where the forget set is several requests' union
    (a sequence); ``test_group``: the test samples of the forgotten group (its class or
    classes, or its subpopulation) as a boolean mask, None for a uniform random forget set."""

    forget: torch.Tensor
    retain: torch.Tensor
    request: torch.Tensor | None = None
    test_group: torch.Tensor | None = None

    @property
    def forget_sha256(self) -> str:
        return index_sha256(self.forget)

    @property
    def retain_sha256(self) -> str:
        return index_sha256(self.retain)

    @property
    def newest(self) -> torch.Tensor:
        """What the method is asked to forget now: the newest request, or the whole forget set."""
        return self.forget if self.request is None else self.request


def index_sha256(indices: torch.Tensor) -> str:
    """SHA-256 of int64 little-endian index bytes: stable across runs and machines."""
    return hashlib.sha256(indices.to(torch.int64).numpy().astype("<i8").tobytes()).hexdigest()


def partition(is_forget: torch.Tensor, **fields: torch.Tensor | None) -> Split:
    return Split(forget=torch.nonzero(is_forget).flatten(), retain=torch.nonzero(~is_forget).flatten(), **fields)


def make_split(scenario: Scenario, train_labels: torch.Tensor, seed: int, test_labels: torch.Tensor | None = None) -> Split:
    """Draw the forget set of a class or random scenario; every random choice comes from
    ``seed``. With ``test_labels``, a class scenario's ``test_group`` is filled in."""
    n = len(train_labels)
    if scenario.kind == "class":
        is_forget = train_labels == scenario.forget_class
        if not bool(is_forget.any()):
            raise UserError(f"scenario {scenario.spec!r}: the training set has no sample of that class")
        group = test_labels == scenario.forget_class if test_labels is not None else None
        return partition(is_forget, test_group=group)
    if scenario.kind != "random":
        raise ValueError(f"make_split draws class and random scenarios, not {scenario.kind}")
    count = max(1, round(scenario.fraction * n))
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count]
    is_forget = torch.zeros(n, dtype=torch.bool)
    is_forget[chosen] = True
    return partition(is_forget)


def request_sets(scenario: Scenario, train_labels: torch.Tensor, num_classes: int, seed: int) -> list[torch.Tensor]:
    """A seq scenario's requests in order, disjoint sorted index sets drawn from ``seed``:
    random ones are consecutive blocks of one seeded permutation (the first is the forget
    set of ``random:<fraction>`` at that seed), class ones the classes of a seeded order."""
    n, base = len(train_labels), scenario.base
    if base.kind == "random":
        count = max(1, round(base.fraction * n))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        return [order[i * count:(i + 1) * count].sort().values for i in range(scenario.requests)]
    classes = request_classes(scenario, num_classes, seed)
    requests = [torch.nonzero(train_labels == c).flatten() for c in classes]
    empty = [c for c, r in zip(classes, requests) if len(r) == 0]
    if empty:
        raise UserError(f"scenario {scenario.spec!r}: the training set has no sample of class {empty[0]}")
    return requests


def request_classes(scenario: Scenario, num_classes: int, seed: int) -> list[int]:
    """The class of each request of a seq scenario of classes (the order :func:`request_sets` draws)."""
    return torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed))[: scenario.requests].tolist()


def sequence_splits(
    scenario: Scenario, train_labels: torch.Tensor, num_classes: int, seed: int, test_labels: torch.Tensor | None = None,
) -> list[Split]:
    """After each request of a seq scenario, the split it leaves: forget = every request so
    far, retain = the rest, ``request`` = the newest; a class sequence's ``test_group`` holds
    every class forgotten so far."""
    requests = request_sets(scenario, train_labels, num_classes, seed)
    classes = request_classes(scenario, num_classes, seed) if scenario.base.kind == "class" else []
    splits, is_forget = [], torch.zeros(len(train_labels), dtype=torch.bool)
    for i, request in enumerate(requests):
        is_forget = is_forget.clone()
        is_forget[request] = True
        group = None
        if classes and test_labels is not None:
            group = torch.isin(test_labels, torch.tensor(classes[: i + 1]))
        splits.append(partition(is_forget, request=request, test_group=group))
    return splits


def save_split(path: Path, split: Split) -> None:
    tensors = {"forget": split.forget, "retain": split.retain}
    if split.request is not None:
        tensors["request"] = split.request
    save_tensors(path, tensors, {"key": split.forget_sha256})


def load_split(path: Path, forget_sha256: str) -> Split | None:
    """The persisted split, or None when it is missing or does not match the hash."""
    loaded = load_verified(path, forget_sha256)
    if loaded is None:
        return None
    tensors, _ = loaded
    return Split(forget=tensors["forget"], retain=tensors["retain"], request=tensors.get("request"))


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
