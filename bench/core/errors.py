"""User-facing errors: one clear line, exit status 2, before any work."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
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


def read_user_text(path: Path, what: str, allowed: str) -> str:
    """The UTF-8 text of a file the user named; a file that is not UTF-8 text, or cannot be
    read, is one :class:`UserError` line naming it, what is wrong and what is ``allowed``."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{what} {str(path)!r} is not UTF-8 text (byte {error.start}: {error.reason}); allowed: {allowed}") from None
    except OSError as error:
        raise UserError(f"{what} {str(path)!r} cannot be read ({error.strerror or error}); allowed: {allowed}") from None
