"""List the registered unlearning methods (the built-ins and any third party's, all through
the ``unlearn_bench.methods`` entry points, each with the package that declared it) with
their hyper-parameters, defaults and search spaces.

    python -m bench.methods
"""

from __future__ import annotations

import sys

from bench.core.errors import cli_main
from bench.registry import get_method, method_names, method_source


def describe(name: str) -> str:
    method = get_method(name)
    doc = (method.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    source = method_source(name)
    origin = f"{method.__module__}.{method.__qualname__}" + (f", from {source}" if source else "")
    lines = [f"{name}  ({origin})", f"    {' '.join(doc.split())}"]
    if method.needs:
        lines.append(f"    needs: {', '.join(sorted(method.needs))}")
    fields = method.Config.model_fields
    if not fields:
        lines.append("    (no hyper-parameters)")
    for field_name, field in fields.items():
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        lines.append(f"    {field_name}: {annotation} = {field.default!r}")
        if field_name in method.scaled:
            count, training = method.scaled[field_name]
            lines.append(f"      None: the authors' {count} epochs after {training} of training, as the same share of this original's (bench.training.budget)")
    if not method.search_space:
        lines.append("    search space: none (tuned over nothing: the tuner keeps its defaults)")
    else:
        lines.append("    search space:")
    for field_name, param in method.search_space.items():
        lines.append(f"      {field_name}: {param.describe()}  [{param.source}]")
    return "\n".join(lines)


@cli_main
def main() -> int:
    print("\n\n".join(describe(name) for name in method_names()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
