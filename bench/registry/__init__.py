"""What a method is and how the harness finds one: the public face for method authors.

``interface`` holds what a method implements and receives (:class:`UnlearningMethod`,
its :class:`MethodConfig`, the :class:`UnlearnTask`); ``plugins`` the registry, filled from
the ``unlearn_bench.methods`` entry points (the built-ins' and any third party's alike);
``space`` the search-space types a method declares its tuning ranges with. Imports the
training and data layers only (docs/architecture.md).
"""

from bench.registry.interface import KNOWN_NEEDS, MethodConfig, NotApplicable, SharedWork, UnlearningMethod, UnlearnTask
from bench.registry.plugins import (
    ENTRY_POINT_GROUP, DuplicateMethod, get_method, load_plugins, method_names, method_source, register,
)

__all__ = [
    "ENTRY_POINT_GROUP", "KNOWN_NEEDS", "DuplicateMethod", "MethodConfig", "NotApplicable", "SharedWork", "UnlearnTask",
    "UnlearningMethod", "get_method", "load_plugins", "method_names", "method_source", "register",
]
