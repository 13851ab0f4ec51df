"""User-facing errors: one clear line, exit status 2, before any work."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., int | None])


class UserError(Exception):
    """Bad input from the user (config, data location, scenario spec).

    The message is one line that names what is wrong and what is allowed.
    Command-line entry points turn it into that line on stderr and exit status 2.
    """


def cli_main(main: F) -> F:
    """Wrap a command-line ``main`` so a :class:`UserError` exits 2 with its one line."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]
