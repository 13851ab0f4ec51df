"""The report: tables whose numbers are the records' means and stds, plots, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.config import load_config
from bench.report import build_report
from bench.sweep import run_sweep
from conftest import run_module, write_config


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    config = load_config(write_config(tmp / "c.yaml", seeds=[0, 1]))
    run_sweep(config, tmp / "out", tmp / "cache", progress=False)
    return tmp / "out"


def test_tables_hold_mean_and_std_over_seeds(finished_sweep, tmp_path):
    tables, plots = build_report(finished_sweep, tmp_path / "plots")
    text = (tables / "digits__class-3.md").read_text()
    records = [json.loads((finished_sweep / "runs" / f"digits__class3__s{s}__finetune.json").read_text()) for s in (0, 1)]
    values = np.array([r["metrics"]["retain_acc"] for r in records])
    expected = f"{values.mean():.4f} ± {values.std(ddof=1):.4f} (n=2)"
    row = next(line for line in text.splitlines() if line.startswith("| finetune |"))
    assert row.split(" | ")[2] == expected
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == ["| retrain", "| original", "| finetune"]
    assert "(none)" in (tables / "failures.md").read_text()
    for metric in ("forget_acc", "retain_acc", "test_acc", "test_rest_acc", "time_s"):
        png = plots / f"{metric}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_report_cli_and_its_errors(finished_sweep, tmp_path):
    result = run_module("bench.report", "--results", str(finished_sweep), "--plots", str(tmp_path / "p"))
    assert result.returncode == 0 and "tables:" in result.stdout
    missing = run_module("bench.report", "--results", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "has no runs/ folder" in missing.stderr
    broken = tmp_path / "broken"
    (broken / "runs").mkdir(parents=True)
    (broken / "runs" / "x.json").write_text("{not json")
    result = run_module("bench.report", "--results", str(broken))
    assert result.returncode == 2 and "x.json" in result.stderr and "unreadable" in result.stderr
    (broken / "runs" / "x.json").write_text(json.dumps({"sweep": "s", "status": "ok"}))
    result = run_module("bench.report", "--results", str(broken))
    assert result.returncode == 2 and "lacks dataset, model, scenario, seed, method, metrics" in result.stderr
