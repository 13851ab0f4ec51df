"""What every figure of the report shares: the styles, the saved-figure record, saving, and
the report's colours (one per method, :mod:`bench.report.palette`), read back from the
drawn artists so tests can check them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.report.labels import Box, label_boxes
from bench.report.load import Results
from bench.report.palette import method_colours, method_family
from bench.report.tables import ReportOptions, method_families, method_order
from bench.report.tuning import tuned_groups

HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
METHOD_GID = "method:"  # the gid of every artist drawn in a method's colour


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    caption: str
    png: Path
    pdf: Path
    colours: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per method, the colours its artists were drawn in (read back from the figure)."""
    labels: tuple[tuple[str, Box], ...] = ()
    """The point labels' boxes in display pixels (read back from the figure)."""
    legend: tuple[str, ...] = ()
    """The entries of the figure's legends (read back from the figure)."""


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "figure.dpi": 100, "pdf.fonttype": 42})
    return plt


def drawn_colours(figure) -> dict[str, tuple[str, ...]]:
    """Per method, the colours of the artists tagged with its gid: a line's colour, a marker's
    edge, a bar's face."""
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D

    found: dict[str, set[str]] = {}
    for artist in figure.findobj(lambda a: (a.get_gid() or "").startswith(METHOD_GID)):
        if isinstance(artist, Line2D):
            colour = artist.get_color()
        elif isinstance(artist, PathCollection):
            colour = artist.get_edgecolor()[0]
        else:
            colour = artist.get_facecolor()
        found.setdefault(artist.get_gid().removeprefix(METHOD_GID), set()).add(to_hex(colour))
    return {method: tuple(sorted(colours)) for method, colours in found.items()}


def legend_entries(figure) -> tuple[str, ...]:
    """The texts of every legend of the figure, its axes' and its own."""
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes)]
    return tuple(text.get_text() for legend in legends if legend is not None for text in legend.get_texts())


def save(figure, folder: Path, name: str, title: str, caption: str) -> Figure:
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    colours, labels, legend = drawn_colours(figure), tuple(label_boxes(figure)), legend_entries(figure)
    # The tight box once for both files: "tight" in savefig draws the figure an extra time per file.
    box = figure.get_tightbbox(figure.canvas.get_renderer()).padded(0.1)
    figure.savefig(png, dpi=130, bbox_inches=box)
    figure.savefig(pdf, bbox_inches=box)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return Figure(name, title, caption, png, pdf, colours, labels, legend)


def report_colours(results: Results, options: ReportOptions) -> dict[str, str]:
    """The report's colour of every method of the results and of its tuned file."""
    families = method_families(results)
    methods = method_order(results, options, include_variants=True)
    for _group, entries in tuned_groups(results.tuned).items():
        for _file, entry in entries:
            families.setdefault(entry.method, method_family(entry.method_class))
            methods += [entry.method] if entry.method not in methods else []
    return method_colours(methods, families)


