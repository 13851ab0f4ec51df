"""The sweep config: typed, validated, with one-line errors.

A sweep is ``datasets × scenarios × seeds × methods``. Every error names the field
(as a dotted path) and what is allowed, and is raised before any work starts.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.data.datasets import dataset_num_classes
from bench.core.errors import UserError, read_user_text
from bench.evaluation.config import EvaluationConfig
from bench.data.models import model_names
from bench.registry import get_method, method_names
from bench.data.splits import parse_scenario
from bench.registry.space import describe_space
from bench.core.store import stable_hash
from bench.training.loop import Precision, Recipe
from bench.config.selection import select_datasets, select_methods
from bench.config.tuning import TunedFile, TuningConfig, read_tuned_files


class DatasetConfig(BaseModel):
    """One dataset of the sweep, the model trained on it and the original training recipe.

    ``train_size`` / ``test_size`` take a fixed (seed 0), class-stratified subset,
    the same for every sweep seed, to size a sweep for the CPU.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str = "cnn"
    train_size: int | None = Field(None, ge=10)
    test_size: int | None = Field(None, ge=10)
    recipe: Recipe = Recipe()

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        try:
            dataset_num_classes(name)
        except UserError as error:
            raise ValueError(str(error)) from None
        return name

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        if model not in model_names():
            raise ValueError(f"unknown model {model!r}; allowed: {', '.join(model_names())}")
        return model


class MethodEntry(BaseModel):
    """A method of the sweep: ``name`` labels its results, ``method`` is the registered
    method, ``params`` its hyper-parameters (unset ones keep their defaults). One method
    may appear several times under different names (ablations)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    method: str
    params: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value, "method": value}
        if isinstance(value, dict) and "method" not in value and "name" in value:
            return {**value, "method": value["name"]}
        return value

    @model_validator(mode="after")
    def _valid_params(self) -> "MethodEntry":
        if self.method not in method_names():
            raise ValueError(f"unknown method {self.method!r}; allowed: {', '.join(method_names())}")
        config_class = get_method(self.method).Config
        try:
            config_class.model_validate(self.params)
        except ValidationError as error:
            raise ValueError(f"params of {self.method!r}: {_first_error(error, config_class)}") from None
        return self

    def resolved_params(self) -> dict[str, Any]:
        """Every hyper-parameter, defaults included, as the method will see them."""
        return get_method(self.method).Config.model_validate(self.params).model_dump()


class ResourcesConfig(BaseModel):
    """What one task of the sweep (a training, or a cell with its evaluation) asks for.

    ``cpus``: CPU cores per task, which is also the number of PyTorch intra-op threads it
    runs with; ``null`` means the default thread count of the process that starts the sweep
    (all physical cores). Both backends use the same count, because results depend on it:
    float sums split over another number of threads round differently, and training
    amplifies that (measured: a tiny digits sweep on 1 and on 2 threads differs in 147 of
    230 metrics). ``gpus``: GPUs per task on a GPU cluster (a fraction packs several tasks
    on one GPU); ignored on the CPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: int | None = Field(None, ge=1)
    gpus: float = Field(1.0, gt=0)


class SweepConfig(BaseModel):
    """A whole sweep. ``methods: all`` means every registered method with its defaults; a
    list may hold ``all`` beside variants (``{name, method, params}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    datasets: list[DatasetConfig] = Field(min_length=1)
    scenarios: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    methods: list[MethodEntry] = Field(min_length=1)
    device: str = "auto"
    evaluation: EvaluationConfig = EvaluationConfig()
    resources: ResourcesConfig = ResourcesConfig()
    # torch.compile the training loop's and the inference passes' forward. Off by default:
    # each model pays a compile time (tens of seconds on a CPU) that small models never win back.
    compile: bool = False
    # Autocast: auto = bf16 on CUDA (tensor cores), float32 on the CPU; bf16 or fp32 force one.
    precision: Precision = "auto"
    # How python -m bench.tune tunes this sweep (see TuningConfig).
    tuning: TuningConfig = TuningConfig()
    # A file written by python -m bench.tune: each tuned method runs beside its default as <name>+tuned.
    # In YAML a path relative to the config file's folder, or a list of them tuned under one
    # protocol (merged, bench.config.tuning.merge_tuned_files); load_config reads it.
    tuned: TunedFile | None = None
    # Sequences and subpopulations are not tuned: they run with the tuned parameters of the
    # scenario named here (default: a sequence's base, e.g. seq:4:random:0.1 -> random:0.1;
    # a subpopulation's class, subclass:3:0 -> class:3).
    tuned_from: dict[str, str] = {}

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError(f"unknown device {device!r}; allowed: auto, cpu, cuda, cuda:<index>")
        return device

    @field_validator("methods", mode="before")
    @classmethod
    def _all_methods(cls, value: Any) -> Any:
        """``all`` (alone or as a list item) stands for every registered method with its defaults."""
        if value == "all":
            return method_names()
        if isinstance(value, list) and "all" in value:
            named = {e if isinstance(e, str) else e.get("name") for e in value if isinstance(e, (str, dict))}
            expanded = []
            for entry in value:
                expanded += [m for m in method_names() if m not in named] if entry == "all" else [entry]
            return expanded
        return value

    @model_validator(mode="after")
    def _checks(self) -> "SweepConfig":
        for dataset in self.datasets:
            for index, spec in enumerate(self.scenarios):
                try:
                    parse_scenario(spec, dataset_num_classes(dataset.name))
                except UserError as error:
                    raise ValueError(f"scenarios.{index} for dataset {dataset.name!r}: {error}") from None
        names = [m.name for m in self.methods]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"methods: names must be unique (give variants a name of their own); repeated: {', '.join(duplicates)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: must be unique")
        reserved = [n for n in names if n.endswith(TUNED_SUFFIX)]
        if reserved:
            raise ValueError(f"methods: names ending in {TUNED_SUFFIX!r} are the tuned variants' (from tuned:); rename {reserved[0]!r}")
        shared = sorted(set(self.seeds) & set(self.tuning.seeds))
        if shared:
            raise ValueError(
                f"tuning.seeds: must not overlap seeds (the tuner selects on seeds the sweep never reports); shared: "
                f"{', '.join(map(str, shared))}"
            )
        for spec, source in self.tuned_from.items():  # an entry for a scenario the sweep leaves out is unused
            try:
                kinds = [parse_scenario(s, dataset_num_classes(self.datasets[0].name)).kind for s in (spec, source)]
            except UserError as error:
                raise ValueError(f"tuned_from.{spec}: {error}") from None
            if kinds[0] in TUNED_KINDS:
                raise ValueError(f"tuned_from: {spec!r} is tuned itself; allowed keys: seq:... and subclass:... scenarios")
            if kinds[1] not in TUNED_KINDS:
                raise ValueError(f"tuned_from.{spec}: {source!r} is not a tuned scenario; allowed: class:<k>, random:<fraction>")
        if self.tuned is not None:
            self._check_tuned(self.tuned)
        return self

    def tuned_scenarios(self) -> list[str]:
        """The scenarios the tuner tunes: the one-request class and random ones."""
        num_classes = dataset_num_classes(self.datasets[0].name)
        return [spec for spec in self.scenarios if parse_scenario(spec, num_classes).kind in TUNED_KINDS]

    def tuned_scenario(self, spec: str) -> str | None:
        """The scenario whose tuned parameters ``spec`` runs with: itself where it is tuned,
        else ``tuned_from``'s, else a sequence's base or a subpopulation's class."""
        num_classes = dataset_num_classes(self.datasets[0].name)
        scenario = parse_scenario(spec, num_classes)
        named = {parse_scenario(key, num_classes).spec: source for key, source in self.tuned_from.items()}
        if scenario.spec in named:
            return parse_scenario(named[scenario.spec], num_classes).spec
        if scenario.kind in TUNED_KINDS:
            return spec
        if scenario.kind == "subclass":
            return f"class:{scenario.forget_class}"
        return scenario.base.spec if scenario.base.kind == "random" else None  # drawn classes: name one in tuned_from

    def _check_tuned(self, tuned: TunedFile) -> None:
        """The tuned file's seeds must not be reported, and every entry this sweep would run
        must come from the same dataset config, base parameters, search space and defaults
        (every parameter of the method, so a changed default refuses it), with values the
        method accepts; otherwise they were chosen for another setting."""
        shared = sorted(set(self.seeds) & set(tuned.tuning_seeds))
        if shared:
            raise ValueError(f"seeds: {', '.join(map(str, shared))} chose the tuned file's parameters (its tuning_seeds); a sweep must not report them")
        datasets = {d.name: d for d in self.datasets}
        methods = {m.name: m for m in self.methods}
        again = "run python -m bench.tune again, or drop tuned:"
        used = {self.tuned_scenario(spec) for spec in self.scenarios}
        for entry in tuned.entries:
            if entry.dataset not in datasets or entry.method not in methods or entry.scenario not in used:
                continue
            where = f"tuned: {entry.method} on {entry.dataset} {entry.scenario}"
            if entry.dataset_hash != dataset_hash(datasets[entry.dataset]):
                raise ValueError(f"{where} was tuned for another dataset config (model, sizes or recipe); {again}")
            method = methods[entry.method]
            if entry.method_class != method.method or entry.base_params != method.params:
                raise ValueError(f"{where} was tuned from other base params ({entry.base_params}); {again}")
            space = get_method(method.method).search_space
            if entry.space != describe_space(space):
                raise ValueError(f"{where} was tuned over another search space ({entry.space}); {again}")
            resolved, scenario = method.resolved_params(), parse_scenario(entry.scenario, dataset_num_classes(entry.dataset))
            own = get_method(method.method).setting_params(resolved, scenario, datasets[entry.dataset].recipe.epochs)
            if entry.defaults != {name: own[name] for name in space}:
                raise ValueError(f"{where} was tuned from other defaults ({entry.defaults}); {again}")
            plain = json.loads(json.dumps(resolved))  # as the tuned file holds them: tuples are lists
            if entry.method_params != plain:
                changed = sorted(k for k in {*entry.method_params, *plain} if entry.method_params.get(k) != plain.get(k))
                raise ValueError(f"{where} was tuned with other method parameters (differing: {', '.join(changed)}); {again}")
            try:
                get_method(method.method).Config.model_validate({**method.params, **entry.params})
            except ValidationError as error:
                raise ValueError(f"{where}: params {entry.params} are not valid for {method.method!r} ({_first_error(error, get_method(method.method).Config)}); {again}") from None

    def tuned_variant(self, dataset: str, scenario: str, method: MethodEntry) -> MethodEntry | None:
        """``<name>+tuned`` with the tuned file's parameters for (dataset, scenario) (see
        :meth:`tuned_scenario`), or None when the file has none (no entry, or a method with
        nothing to tune)."""
        source = self.tuned_scenario(scenario)
        entry = self.tuned.entry(dataset, source, method.name) if self.tuned is not None and source else None
        if entry is None or not entry.params:
            return None
        return MethodEntry(name=method.name + TUNED_SUFFIX, method=method.method, params={**method.params, **entry.params})


TUNED_SUFFIX = "+tuned"
TUNED_KINDS = ("class", "random")


def dataset_hash(dataset: DatasetConfig) -> str:
    """What a tuned entry must share with the sweep's dataset: name, model, sizes, recipe."""
    return stable_hash(dataset.model_dump())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _allowed_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model reached by walking ``loc`` through nested models and lists."""
    node: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = node.model_fields.get(part) if node is not None else None
        node = _model_in(field.annotation) if field is not None else None
        if node is None:
            return []
    return list(node.model_fields)


def _first_error(error: ValidationError, model: type[BaseModel]) -> str:
    """One line for the first validation error: ``field.path: what is wrong; allowed: ...``."""
    first = error.errors()[0]
    loc = tuple(part for part in first["loc"] if part not in ("function-after[_valid_params(), MethodEntry]",))
    path = ".".join(str(part) for part in loc)
    if first["type"] == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        return f"{path}: unknown field; allowed: {', '.join(allowed)}"
    if first["type"] == "missing":
        return f"{path}: required field is missing"
    message = re.sub(r"^(Value|Assertion) error, ", "", first["msg"])
    return f"{path}: {message}" if path else message


def apply_override(raw: dict, assignment: str) -> None:
    """Apply ``key.path=value`` (value parsed as YAML) to the raw config mapping."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise UserError(f"--set {assignment!r}: expected key=value, e.g. --set datasets.0.recipe.epochs=2")
    parts = key.split(".")
    node: Any = raw
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise UserError(f"--set {assignment!r}: {part!r} does not name an entry of the config")
    last = parts[-1]
    value = yaml.safe_load(text)
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise UserError(f"--set {assignment!r}: {last!r} does not name an entry of the config")


def load_config(
    path: str | Path,
    overrides: list[str] = (),
    seeds: list[int] | None = None,
    methods: list[str] | None = None,
    read_tuned: bool = True,
    datasets: list[str] | None = None,
) -> SweepConfig:
    """Read, override and validate a sweep config; any problem is one :class:`UserError` line.
    ``seeds``, ``methods`` and ``datasets`` narrow it (:mod:`bench.config.selection`);
    ``read_tuned=False`` leaves out its ``tuned:`` file (the tuner tunes the defaults)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} not found; profiles: configs/quick.yaml, configs/cpu.yaml, configs/paper.yaml")
    try:
        raw = yaml.safe_load(read_user_text(path, "config", "a YAML sweep config such as configs/quick.yaml"))
    except yaml.YAMLError as error:
        raise UserError(f"config {str(path)!r} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UserError(f"config {str(path)!r} must be a mapping with keys: {', '.join(SweepConfig.model_fields)}")
    for assignment in overrides:
        apply_override(raw, assignment)
    if not read_tuned:
        raw.pop("tuned", None)
    if "tuned" in raw:
        raw["tuned"] = read_tuned_files(path.parent, raw["tuned"])
    if seeds is not None:
        raw["seeds"] = seeds
    if methods is not None:
        raw["methods"] = select_methods(raw.get("methods", "all"), methods)
    if datasets is not None:
        raw["datasets"] = select_datasets(raw.get("datasets"), datasets)
    try:
        return SweepConfig.model_validate(raw)
    except ValidationError as error:
        raise UserError(f"config {str(path)!r}: {_first_error(error, SweepConfig)}") from None
