"""Run records (one JSON file per cell) and the tidy table rebuilt from them.

A record is written atomically when its cell finishes, so the folder ``runs/`` is
always a set of complete records; ``results.csv`` is derived from it and can be
rebuilt at any time.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import UserError, read_user_text
from bench.core.store import atomic_write_json, atomic_write_text

# Metrics that measure the machine as much as the method: they differ between two runs of
# the same cell, unlike every other metric, which is bit-for-bit reproducible on one machine.
COST_METRICS = ("time_s", "speedup", "peak_mem_mib", "mem_delta_mib", "eval_s", "request_time_s")
COLUMNS = ["sweep", "dataset", "model", "scenario", "seed", "request", "method", "status", "metric", "value"]
# A sequential scenario's rows are one set per request (1, 2, ...); every other cell's are request 1.
CELL_COLUMNS = ("sweep", "dataset", "model", "scenario", "seed", "method", "status")
STATUSES = ("ok", "failed", "not_applicable")
REQUIRED = ("sweep", "dataset", "model", "scenario", "seed", "method", "status", "metrics")


def runs_dir(out_dir: Path) -> Path:
    return out_dir / "runs"


def record_path(out_dir: Path, cell_id: str) -> Path:
    return runs_dir(out_dir) / f"{cell_id}.json"


def write_record(out_dir: Path, cell_id: str, record: dict[str, Any]) -> None:
    atomic_write_json(record_path(out_dir, cell_id), record)


def read_record(path: Path) -> dict[str, Any]:
    """One run record; a malformed one is a :class:`UserError` naming the file."""
    text = read_user_text(path, "run record", "a record python -m bench.sweep wrote")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"run record {str(path)!r} is unreadable: {error}") from None
    if not isinstance(record, dict):
        raise UserError(f"run record {str(path)!r} is not a JSON object")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise UserError(f"run record {str(path)!r} lacks {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise UserError(f"run record {str(path)!r} has status {record['status']!r}; allowed: {', '.join(STATUSES)}")
    return record


def read_results_table(path: Path) -> pd.DataFrame:
    """A ``results.csv`` as :func:`rebuild_results_csv` writes it; a file that is not one
    (not UTF-8, not CSV, other columns) is one :class:`UserError` line naming it. A table
    written before sequences existed (no ``request`` column) reads as request 1 throughout."""
    allowed = "the results.csv python -m bench.sweep wrote"
    text = read_user_text(path, "results table", allowed)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"results table {str(path)!r} is not CSV ({str(error).splitlines()[0]}); allowed: {allowed}") from None
    missing = [column for column in COLUMNS if column not in frame.columns and column != "request"]
    if missing:
        raise UserError(f"results table {str(path)!r} lacks the columns {', '.join(missing)}; allowed: {allowed}")
    if "request" not in frame.columns:
        frame.insert(COLUMNS.index("request"), "request", 1)
    return frame


def seed_matrix(frame: pd.DataFrame, seeds: list[int] | None = None) -> pd.DataFrame:
    """The ok cells of a results table, one row per (dataset, scenario, method, seed) and one
    column per metric (a sequence's last request); ``seeds`` keeps only those (``None``: all).
    What the docs' table scripts average over seeds."""
    frame = last_requests(frame[frame["status"] == "ok"])
    if seeds is not None:
        frame = frame[frame["seed"].isin(seeds)]
    return frame.pivot_table(index=["dataset", "scenario", "method", "seed"], columns="metric", values="value")


def last_requests(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each cell's last request (every row of a one-request cell)."""
    last = frame.groupby(["sweep", "dataset", "scenario", "seed", "method"])["request"].transform("max")
    return frame[frame["request"] == last]


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    """Every record under ``out_dir/runs``, in file-name order."""
    return [read_record(path) for path in sorted(runs_dir(out_dir).glob("*.json"))]


def tidy_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The long-table rows of one record: one per metric (and per request of a sequence); a
    cell that did not run (failed, not applicable) still gets one row, ``metric="status"``
    with no value, so the table holds every cell of the grid."""
    base = {key: record[key] for key in CELL_COLUMNS}
    if record["status"] != "ok" or not record["metrics"]:
        return [{**base, "request": 1, "metric": "status", "value": math.nan}]
    requests = [r["metrics"] for r in record.get("requests") or []] or [record["metrics"]]
    return [
        {**base, "request": number, "metric": name, "value": value}
        for number, metrics in enumerate(requests, start=1) for name, value in metrics.items()
    ]


def tidy_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [row for record in records for row in tidy_rows(record)]
    return pd.DataFrame(rows, columns=COLUMNS)


def rebuild_results_csv(out_dir: Path) -> Path:
    """Rebuild ``results.csv`` from the records (atomically) and return its path."""
    table = tidy_table(read_records(out_dir))
    path = out_dir / "results.csv"
    atomic_write_text(path, table.to_csv(index=False))
    return path
