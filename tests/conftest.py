"""Shared test set-up: an isolated cache, no downloads, helpers for the real data and the CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
