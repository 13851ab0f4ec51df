"""One colour per method, the same in every figure of a report, a family's methods in
neighbouring hues; and the order families are listed in.

A method's family is its class's ``family`` (``bench.registry``): the references, the FC+ALB
paper's baselines, the baselines recent benchmarks run, FC+ALB with its ablations, and any
plugin's. The proposed method's family is listed last. A tuned variant is the same method:
it takes its default's colour (figures tell them apart by hatch or an open marker).
"""

from __future__ import annotations

import colorsys

from bench.core.errors import UserError
from bench.registry import get_method
from bench.report.tuning import TUNED_SUFFIX

# family: (what it holds, first and last hue on the colour circle; None: grays)
FAMILIES = {
    "reference": ("retrain and the untouched original", None),
    "seed_baselines": ("the FC+ALB paper's baselines", (0.50, 0.70)),
    "recent_baselines": ("the baselines recent benchmarks run (issue 15)", (0.07, 0.40)),
    "other": ("plugins and anything unregistered", (0.74, 0.88)),
    "fcalb": ("FC+ALB and its ablations", (0.93, 1.01)),
}
REFERENCE_COLOURS = {"retrain": "#000000", "original": "#8c8c8c"}
LIGHTNESS = (0.36, 0.52)  # alternated along a family, so neighbours differ in lightness as well as hue


def base_method(method: str) -> str:
    """The method a tuned variant belongs to (``finetune+tuned`` → ``finetune``)."""
    return method.removesuffix(TUNED_SUFFIX)


def method_family(method_class: str) -> str:
    """The registered class's family; ``other`` for a class not registered here or a family
    name this module does not know."""
    try:
        family = get_method(method_class).family
    except UserError:
        return "other"
    return family if family in FAMILIES else "other"


def family_order(families: dict[str, str], proposed: str | None) -> list[str]:
    """Families in listing order: references, the known baselines, plugins, FC+ALB; the
    proposed method's family (when given) moves to the end."""
    order = [f for f in FAMILIES if f in set(families.values())]
    last = families.get(proposed) if proposed else None
    if last in order:
        order.remove(last)
        order.append(last)
    return order


def _hex(hue: float, lightness: float, saturation: float = 0.8) -> str:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


def method_colours(methods: list[str], families: dict[str, str]) -> dict[str, str]:
    """``{method: '#rrggbb'}`` for ``methods`` (in the report's order; tuned variants take
    their default's colour). ``families`` maps each base method to its family. Members of a
    family spread evenly over its hue range; no two base methods share a colour."""
    bases = list(dict.fromkeys(base_method(m) for m in methods))
    families = {**{base_method(m): f for m, f in families.items()}, **families}  # a tuned variant alone names its family
    colours: dict[str, str] = {}
    for family, (_, hues) in FAMILIES.items():
        members = [m for m in bases if families.get(m, "other") == family]
        for i, method in enumerate(members):
            if hues is None:
                colours[method] = REFERENCE_COLOURS.get(method, _hex(0.0, 0.25 + 0.5 * i / max(1, len(members)), 0.0))
                continue
            first, last = hues
            hue = first + (last - first) * (i / (len(members) - 1) if len(members) > 1 else 0.5)
            colours[method] = _hex(hue, LIGHTNESS[i % len(LIGHTNESS)])
    return {m: colours[base_method(m)] for m in methods}
