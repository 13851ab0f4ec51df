"""The method registry: every method comes through the entry-point group
``unlearn_bench.methods``, the built-ins (the top-level ``methods`` package, declared in
this project's ``pyproject.toml``) exactly as a third party's: the entry point names a
module that calls :func:`register`, or the method class itself, registered under the entry
point's name. ``bench`` never imports ``methods`` by name."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

from bench.core.errors import UserError
from bench.registry.interface import KNOWN_NEEDS, UnlearningMethod
from bench.registry.space import check_space

ENTRY_POINT_GROUP = "unlearn_bench.methods"
M = TypeVar("M", bound=type[UnlearningMethod])
_METHODS: dict[str, type[UnlearningMethod]] = {}
_SOURCES: dict[str, str] = {}  # method name -> the distribution whose entry point registered it
_loading: list[str] = []  # the distribution whose entry point is loading now
_loaded = False


class DuplicateMethod(UserError):
    """Two plugins (built-in or third-party) claim one method name."""


def register(name: str) -> Callable[[M], M]:
    """Class decorator: register an :class:`UnlearningMethod` under ``name``."""

    def decorator(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, UnlearningMethod)):
            raise TypeError(f"@register({name!r}) needs an UnlearningMethod subclass, got {cls!r}")
        unknown = set(cls.needs) - set(KNOWN_NEEDS)
        if unknown:
            raise TypeError(f"method {name!r} needs {sorted(unknown)}; known needs: {sorted(KNOWN_NEEDS)}")
        check_space(name, cls.search_space, cls.Config)
        source = _loading[-1] if _loading else None
        taken = _METHODS.get(name)
        if taken is not None and qualified(taken) != qualified(cls):
            raise DuplicateMethod(
                f"method name {name!r} is claimed twice: by {describe_source(taken, _SOURCES.get(name))} and by "
                f"{describe_source(cls, source)}; allowed: one method a name (rename one, or uninstall one package)"
            )
        cls.name = name
        _METHODS[name] = cls
        if source is not None:
            _SOURCES[name] = source
        return cls

    return decorator


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_source(cls: type, source: str | None) -> str:
    return qualified(cls) + (f" (package {source})" if source else "")


def method_source(name: str) -> str | None:
    """The distribution whose ``unlearn_bench.methods`` entry point registered ``name``
    (``unlearn-bench`` for the built-ins), or None for a class registered in code."""
    load_plugins()
    return _SOURCES.get(name)


def load_plugins() -> None:
    """Load every entry point of ``unlearn_bench.methods`` (once): the built-ins, declared by
    this project's own ``pyproject.toml``, and any third party's, the same way. An entry
    point names a module that registers its methods, or a method class, registered under the
    entry point's name. A plugin that fails to import is skipped with a warning; two that
    claim one name stop the command (exit 2)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name)):
        _loading.append(entry.dist.name if entry.dist else entry.value)
        try:
            loaded = entry.load()
            if isinstance(loaded, type) and issubclass(loaded, UnlearningMethod):
                register(entry.name)(loaded)
        except DuplicateMethod:
            _loaded = False
            raise
        except Exception as error:  # a broken plugin must not break the harness
            print(f"warning: method plugin {entry.name!r} ({entry.value}) failed to load: {error}", file=sys.stderr)
        finally:
            _loading.pop()
    if not _METHODS:
        raise UserError(
            "no unlearning method is registered: the entry points of group unlearn_bench.methods are missing; "
            "allowed: run from an installed checkout (pip install -e ., or ./run_all.sh, which installs it)"
        )


def method_names() -> list[str]:
    load_plugins()
    return sorted(_METHODS)


def get_method(name: str) -> type[UnlearningMethod]:
    load_plugins()
    if name not in _METHODS:
        raise UserError(f"unknown method {name!r}; allowed: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]
