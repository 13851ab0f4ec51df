"""Reading one or more results folders into the frames the report is built from.

Only the run records are read (``results.csv`` is derived from them), so a report can
be rebuilt, and several sweeps merged, without running anything. Every check happens
here, before anything is written: a missing folder, a malformed record or a cell that
two merged folders both hold is a :class:`UserError` naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import UserError
from bench.running.results import read_record, runs_dir
from bench.config.tuning import TunedFile, read_tuned_file

CELL = ["dataset", "model", "scenario", "seed", "method"]
GROUP = ["dataset", "model", "scenario"]


@dataclass(frozen=True)
class Results:
    """Every record of the folders read, and two tidy views of them.

    ``cells``: one row per record (``CELL`` + ``method_class``, ``status``, ``reason``,
    ``device``, ``memory_kind``, ``path``). ``values``: one row per metric of the ok
    records (``CELL`` + ``method_class``, ``metric``, ``value``). ``matrix``: the same
    values wide, indexed by (dataset, model, scenario, method, seed), one column per metric."""

    folders: list[Path]
    records: list[dict[str, Any]]
    cells: pd.DataFrame
    values: pd.DataFrame
    matrix: pd.DataFrame
    tuned: list[TunedFile] = field(default_factory=list)
    """The tuned files the sweeps ran with (``tuned.yaml`` beside the records), for the tuning table."""
    requests: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*CELL, "method_class", "request", "metric", "value"]))
    """Sequential scenarios' records, every request: ``CELL`` + ``method_class``, ``request``
    (1, 2, ...), ``metric``, ``value``. The other views hold a sequence's last request."""

    @property
    def name(self) -> str:
        """The sweep names, joined with ``+`` when several sweeps are merged."""
        return "+".join(dict.fromkeys(str(r["sweep"]) for r in self.records))

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.cells["method"]))


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_record(record: dict[str, Any], path: Path) -> None:
    """What the report relies on beyond :func:`bench.running.results.read_record`'s checks."""
    where = f"run record {str(path)!r}"
    if not isinstance(record["seed"], int) or isinstance(record["seed"], bool):
        raise UserError(f"{where} has seed {record['seed']!r}; a seed is an integer")
    for key in ("sweep", *GROUP, "method"):
        if not isinstance(record[key], str) or not record[key]:
            raise UserError(f"{where} has {key} {record[key]!r}; it must be a non-empty string")
    metrics = record["metrics"]
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in metrics.items()):
        raise UserError(f"{where} has malformed metrics; they must map names to numbers")
    if record["status"] == "ok" and not metrics:
        raise UserError(f"{where} has status ok but no metrics")
    requests = record.get("requests", [])
    if not isinstance(requests, list) or not all(
        isinstance(r, dict) and isinstance(r.get("metrics"), dict) and all(_is_number(v) for v in r["metrics"].values())
        for r in requests
    ):
        raise UserError(f"{where} has malformed requests; each must hold metrics mapping names to numbers")
    histograms = record.get("prediction_histograms") or {}
    if not isinstance(histograms, dict) or not all(
        isinstance(h, list) and all(_is_number(x) for x in h) for h in histograms.values()
    ):
        raise UserError(f"{where} has malformed prediction_histograms; they must map names to lists of numbers")


BALANCE_LOG_KEYS = ("rounds", "epochs")  # FC+ALB's log per round; "epochs" in records before its step budget


def balance_log(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The losses and balance weights a record's method logged per round (or per epoch): a
    list of objects; anything else a method logs under those names is not a balance log."""
    log = record.get("method_log") or {}
    for key in BALANCE_LOG_KEYS:
        value = log.get(key)
        if isinstance(value, list) and value and all(isinstance(entry, dict) for entry in value):
            return value
    return []


def read_folder(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    if not runs_dir(folder).is_dir():
        raise UserError(f"results folder {str(folder)!r} has no runs/ folder; run python -m bench.sweep first")
    paths = sorted(runs_dir(folder).glob("*.json"))
    if not paths:
        raise UserError(f"results folder {str(runs_dir(folder))!r} holds no run records")
    records = []
    for path in paths:
        record = read_record(path)
        check_record(record, path)
        records.append((path, record))
    return records


def _value(value: Any) -> float:
    return math.nan if value is None else float(value)


def load_results(folders: list[Path]) -> Results:
    """Read and merge the records of ``folders``; each cell may appear in only one of them."""
    seen: dict[tuple, Path] = {}
    records, cell_rows, value_rows, request_rows = [], [], [], []
    for folder in folders:
        for path, record in read_folder(folder):
            key = tuple(record[k] for k in CELL)
            if key in seen:
                raise UserError(
                    f"cell {'/'.join(map(str, key))} is in both {str(seen[key])!r} and {str(path)!r}; "
                    "merged results must hold each cell once"
                )
            seen[key] = path
            records.append(record)
            base = {k: record[k] for k in CELL} | {"method_class": record.get("method_class", record["method"])}
            env = record.get("env") or {}
            cell_rows.append(base | {
                "status": record["status"],
                "reason": str(record.get("error") or record.get("reason") or ""),
                "device": str(env.get("device_name") or env.get("device") or "unknown"),
                "memory_kind": str(record.get("memory_kind") or ""),
                "path": str(path),
            })
            if record["status"] == "ok":
                value_rows.extend(base | {"metric": m, "value": _value(v)} for m, v in record["metrics"].items())
                for number, request in enumerate(record.get("requests") or [], start=1):
                    request_rows.extend(
                        base | {"request": number, "metric": m, "value": _value(v)} for m, v in request["metrics"].items()
                    )
    cells = pd.DataFrame(cell_rows, columns=[*CELL, "method_class", "status", "reason", "device", "memory_kind", "path"])
    values = pd.DataFrame(value_rows, columns=[*CELL, "method_class", "metric", "value"])
    matrix = values.set_index([*GROUP, "method", "seed", "metric"])["value"].unstack("metric")
    tuned = [TunedFile.model_validate(read_tuned_file(f / "tuned.yaml")) for f in folders if (f / "tuned.yaml").is_file()]
    requests = pd.DataFrame(request_rows, columns=[*CELL, "method_class", "request", "metric", "value"])
    return Results(list(folders), records, cells, values, matrix, tuned, requests)
