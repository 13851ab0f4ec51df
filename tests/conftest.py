"""Shared test set-up: an isolated cache, no downloads, helpers for the real data, the CLIs and
the methods' tests."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from bench.data.datasets import load_dataset
from bench.data.models import build_model
from bench.registry import UnlearnTask, get_method
from bench.data.splits import make_split, parse_scenario
from bench.training.loop import Preprocess, Recipe, train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Every test writes its caches under one temporary folder; nothing is downloaded."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["UNLEARN_CACHE"] = str(cache)
    os.environ["UNLEARN_DOWNLOAD"] = "0"
    return cache


def real_data_root() -> Path | None:
    value = os.environ.get("UNLEARN_DATA")
    return Path(value) if value else None


def require_data(relative: str) -> Path:
    """The path of a real dataset under ``$UNLEARN_DATA``, or skip the test saying why."""
    root = real_data_root()
    if root is None:
        pytest.skip("UNLEARN_DATA is not set: real datasets are not available here")
    path = root / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this dataset is not available here")
    return path


def write_config(path: Path, **overrides) -> Path:
    """A tiny digits sweep (seconds on a CPU), with ``overrides`` replacing top-level keys."""
    config = {
        "sweep": "tiny",
        "datasets": [{"name": "digits", "model": "cnn", "recipe": {"epochs": 3, "batch_size": 64, "lr": 0.05}}],
        "scenarios": ["class:3", "random:0.1"],
        "seeds": [0],
        "methods": ["original", "retrain", {"name": "finetune", "params": {"epochs": 1}}],
    }
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


def run_module(module: str, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600
    )


def hand_record(
    method: str, seed: int, metrics: dict[str, float] | None = None, *, scenario: str = "class:3", dataset: str = "digits",
    status: str = "ok", sweep: str = "hand", method_class: str | None = None, params: dict | None = None,
    histograms: dict[str, list[float]] | None = None, rounds: list[dict] | None = None, error: str | None = None,
) -> dict:
    """A run record made by hand, with the fields the report reads, for tests whose answers are known."""
    record = {
        "sweep": sweep, "cell": f"{dataset}__{scenario.replace(':', '')}__s{seed}__{method}", "dataset": dataset,
        "model": "cnn", "scenario": scenario, "seed": seed, "method": method, "method_class": method_class or method,
        "params": params or {}, "dataset_config": {"name": dataset, "model": "cnn"}, "evaluation_config": {"batch_size": 1024},
        "env": {"device": "cpu", "device_name": "test-cpu", "python": "3"}, "status": status,
        "metrics": metrics if status == "ok" else {}, "timings": {}, "error": error,
        "memory_kind": "process_anon_rss_sampled" if status == "ok" else None,
    }
    if histograms is not None:
        record["prediction_histograms"] = histograms
    if rounds is not None:
        record["method_log"] = {"rounds": rounds}
    if status == "not_applicable":
        record["reason"] = error
    return record


def write_records(folder: Path, records: list[dict]) -> Path:
    """``folder/runs/<cell>.json`` for each record; returns ``folder``."""
    import json

    (folder / "runs").mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / "runs" / f"{record['cell']}.json").write_text(json.dumps(record))
    return folder


def require_tool(available: bool, what: str) -> None:
    """Skip a test whose outside tool is missing here, saying which; under ``.ci/run``
    (``UNLEARN_REQUIRE_TOOLS=1``, after ``scripts/setup_system.sh``) fail instead."""
    if available:
        return
    message = f"{what} is not installed (scripts/setup_system.sh installs it)"
    if os.environ.get("UNLEARN_REQUIRE_TOOLS"):
        pytest.fail(message)
    pytest.skip(message)


# Methods on digits with a small trained model (tests of methods' properties).
RECIPE = Recipe(epochs=10, batch_size=64, lr=0.05)


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    pre = Preprocess(*data.channel_stats(), None)
    model = build_model("cnn", 1, 10, 8, seed=0)
    train(model, data.train_x, data.train_y, RECIPE, pre, torch.Generator().manual_seed(0))
    return data, pre, model


def make_task(digits, spec="class:3", seed=0) -> UnlearnTask:
    data, pre, _ = digits
    split = make_split(parse_scenario(spec, 10), data.train_y, seed)
    return UnlearnTask(
        forget_x=data.train_x[split.forget], forget_y=data.train_y[split.forget],
        retain_x=data.train_x[split.retain], retain_y=data.train_y[split.retain],
        num_classes=10, scenario=parse_scenario(spec, 10), new_model=lambda s: build_model("cnn", 1, 10, 8, s),
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed), preprocess=pre, recipe=RECIPE, seed=seed,
    )


def run(name, digits, task=None, **params):
    method_class = get_method(name)
    method = method_class(method_class.Config(**params))
    task = task or make_task(digits)
    model = method.unlearn(copy.deepcopy(digits[2]), task)
    return method, model, task
