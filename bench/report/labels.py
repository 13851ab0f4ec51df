"""Point labels that do not overlap: each name goes to the first spot around its point, on
rings of growing radius, whose box meets no label already placed and no marker. Greedy and
deterministic; measured in display space with the figure's own renderer."""

from __future__ import annotations

import math

import numpy as np

RADII_PX = (3, 9, 16, 25, 36, 49, 64, 82)  # beyond the point's own marker
DIRECTIONS = 12
MARKER_HALF_PX = 4.0  # a marker of area 30 pt², the scatter figures' size
LABEL_GID = "label:"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def overlapping_pairs(labels: list[tuple[str, Box]]) -> list[tuple[str, str]]:
    """The names of every two labels whose boxes overlap."""
    return [(a, b) for i, (a, box_a) in enumerate(labels) for b, box_b in labels[i + 1:] if overlap(box_a, box_b)]


def _box_at(anchor: tuple[float, float], dx: float, dy: float, size: tuple[float, float]) -> Box:
    """The text's box when its nearest corner or edge sits ``(dx, dy)`` from the anchor."""
    w, h = size
    x = anchor[0] + dx - (w if dx < -1e-9 else (w / 2 if abs(dx) <= 1e-9 else 0))
    y = anchor[1] + dy - (h if dy < -1e-9 else (h / 2 if abs(dy) <= 1e-9 else 0))
    return (x, y, x + w, y + h)


def candidates(half: float = MARKER_HALF_PX):
    """Offsets (dx, dy) in pixels from a marker of half-width ``half``, nearest first; on each
    ring (measured from the marker's edge, so even a diagonal spot clears it), upper right first."""
    for radius in RADII_PX:
        for k in range(DIRECTIONS):
            angle = math.pi / 4 + 2 * math.pi * k / DIRECTIONS
            reach = radius + half * math.sqrt(2)
            yield reach * math.cos(angle), reach * math.sin(angle)


def place_labels(ax, names: list[str], xs, ys, colours: list[str], fontsize: float = 6,
                 half_sizes: list[float] | None = None, placed: list[Box] | None = None) -> None:
    """Annotate each point ``(xs[i], ys[i])`` of ``ax`` with ``names[i]``, no two labels
    overlapping each other or any marker (``half_sizes[i]``: half the marker's width in
    pixels) and none leaving the axes, where a free spot exists within the largest ring (else
    the least bad spot: over another label worst, then outside the axes, then over a marker).
    ``placed`` holds the boxes of labels already drawn (other panels of the figure) and
    receives these. A label set beyond the first ring gets a leader line.
    Call after the axes' limits and scales are final."""
    figure = ax.figure
    renderer = figure.canvas.get_renderer()
    ax.autoscale_view()
    points = ax.transData.transform(np.column_stack([xs, ys])) if len(names) else np.zeros((0, 2))
    halves = half_sizes or [MARKER_HALF_PX] * len(names)
    markers = [(x - h, y - h, x + h, y + h) for (x, y), h in zip(points, halves)]
    frame = ax.bbox
    placed = [] if placed is None else placed
    to_points = 72.0 / figure.dpi
    for name, (px, py), x, y, colour, half in zip(names, points, xs, ys, colours, halves):
        probe = figure.text(0, 0, name, fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        size = (extent.width, extent.height)
        best, best_hits = None, math.inf
        for dx, dy in candidates(half):
            box = _box_at((px, py), dx, dy, size)
            outside = box[0] < frame.x0 or box[1] < frame.y0 or box[2] > frame.x1 or box[3] > frame.y1
            hits = 100 * sum(overlap(box, other) for other in placed) + 20 * outside + sum(overlap(box, m) for m in markers)
            if hits < best_hits:
                best, best_hits = (dx, dy, box), hits
            if hits == 0:
                break
        dx, dy, box = best
        placed.append(box)
        far = math.hypot(dx, dy) > half + RADII_PX[0] + 1
        ha = "left" if dx > 1e-9 else ("right" if dx < -1e-9 else "center")
        va = "bottom" if dy > 1e-9 else ("top" if dy < -1e-9 else "center")
        text = ax.annotate(
            name, (x, y), xytext=(dx * to_points, dy * to_points), textcoords="offset points",
            fontsize=fontsize, color=colour, ha=ha, va=va, annotation_clip=False,
            arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 2} if far else None,
        )
        text.set_gid(LABEL_GID + name)


def label_boxes(figure) -> list[tuple[str, Box]]:
    """The drawn labels' text boxes (leader lines left out), in display pixels at the
    figure's dpi."""
    from matplotlib.text import Text

    renderer = figure.canvas.get_renderer()
    boxes = []
    for text in figure.findobj(lambda artist: (artist.get_gid() or "").startswith(LABEL_GID)):
        text.update_positions(renderer)  # an annotation's text sits at its offset only once positioned
        extent = Text.get_window_extent(text, renderer)
        boxes.append((text.get_gid().removeprefix(LABEL_GID), (extent.x0, extent.y0, extent.x1, extent.y1)))
    return boxes
