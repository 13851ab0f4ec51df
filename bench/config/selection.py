"""The command line's narrowing of a config: ``--seeds``, ``--methods`` and ``--datasets``.

Each replaces one list of the config before it is validated, so a profile too long for one
sitting runs in parts (``--datasets cifar10``) into the same results folder; cells are keyed by
what they compute, so a part's records are the ones the whole profile would write."""

from __future__ import annotations

from typing import Any

from bench.core.errors import UserError
from bench.registry import method_names


def parse_int_list(text: str, option: str) -> list[int]:
    """``"0,1,2"`` as ``[0, 1, 2]``; anything else is one error line naming ``option``."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected comma-separated integers, e.g. {option} 0,1,2") from None


def select_methods(listed: Any, wanted: list[str]) -> list[Any]:
    """Keep the config's entries named in ``wanted``; a registered name not in the config is added with its defaults."""
    entries = method_names() if listed == "all" else list(listed or [])
    by_name = {}
    for entry in entries:
        name = entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) else None
        by_name[name] = entry
    chosen = []
    for name in wanted:
        if name in by_name:
            chosen.append(by_name[name])
        elif name in method_names():
            chosen.append(name)
        else:
            raise UserError(f"--methods: unknown method {name!r}; allowed: {', '.join(sorted(set(by_name) | set(method_names()) - {None}))}")
    return chosen


def select_datasets(listed: Any, wanted: list[str]) -> list[Any]:
    """Keep the config's dataset entries named in ``wanted``, in the config's order; a name the
    config does not list is an error (a dataset's recipe and subset come from the config)."""
    entries = list(listed or []) if isinstance(listed, list) else []
    names = [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
    for name in wanted:
        if name not in names:
            raise UserError(f"--datasets: {name!r} is not in the config; allowed: {', '.join(str(n) for n in names)}")
    return [entry for entry, name in zip(entries, names) if name in wanted]
