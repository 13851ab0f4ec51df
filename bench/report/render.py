"""One table, three renderings: Markdown, LaTeX (booktabs) and HTML, plus its numbers as CSV.

A :class:`Table` holds formatted cells; the numbers behind them travel with it as a
tidy frame, so the CSV is machine-readable rather than a copy of the formatted text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.core.store import atomic_write_text

MARK_LATEX = {"†": r"$^{\dagger}$", "‡": r"$^{\ddagger}$", "§": r"$^{\S}$"}
# The characters the report writes that pdflatex's default input encoding does not know.
UNICODE_LATEX = {
    "±": r"$\pm$", "×": r"$\times$", "–": "--", "−": "$-$", "≥": r"$\geq$", "≤": r"$\leq$", "α": r"$\alpha$",
    "∞": r"$\infty$", "|": r"$|$", **MARK_LATEX,
}
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False
    marks: str = ""


@dataclass
class Table:
    """``name`` is the file stem; ``columns`` the header; ``rows`` the cells, the first
    column being the row's label; ``data`` the numbers behind them (written as CSV)."""

    name: str
    title: str
    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    data: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch) or UNICODE_LATEX.get(ch, ch) for ch in text)


def _markdown_cell(cell: Cell) -> str:
    text = cell.text.replace("|", "\\|").replace("\n", " ")
    return (f"**{text}**" if cell.bold and text else text) + cell.marks


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", "", table.caption, ""]
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in table.columns) + " |")
    lines.append("|---" * len(table.columns) + "|")
    lines.extend("| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows)
    lines.extend(["", *table.notes] if table.notes else [])
    return "\n".join(lines) + "\n"


def _latex_cell(cell: Cell) -> str:
    text = latex_escape(cell.text)
    text = rf"\textbf{{{text}}}" if cell.bold and text else text
    return text + latex_escape(cell.marks)


def latex_label(name: str) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9:-]+", "-", name)


def to_latex(table: Table) -> str:
    """A ``table`` environment with a booktabs ``tabular``: a snippet to ``\\input`` in a
    document that loads ``booktabs``."""
    spec = "l" + "r" * (len(table.columns) - 1)
    caption = latex_escape(table.title + ". " + table.caption + (" " + " ".join(table.notes) if table.notes else ""))
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\footnotesize",
        r"\setlength{\tabcolsep}{3pt}",
        rf"\caption{{{caption}}}",
        rf"\label{{{latex_label(table.name)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in table.columns) + r" \\",
        r"\midrule",
        *(" & ".join(_latex_cell(c) for c in row) + r" \\" for row in table.rows),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _html_cell(cell: Cell, tag: str) -> str:
    text = html.escape(cell.text)
    text = f"<b>{text}</b>" if cell.bold and text else text
    return f"<{tag}>{text}{html.escape(cell.marks)}</{tag}>"


def to_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "\n".join("<tr>" + _html_cell(row[0], "th") + "".join(_html_cell(c, "td") for c in row[1:]) + "</tr>" for row in table.rows)
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in table.notes)
    return (
        f"<h3 id='{html.escape(table.name)}'>{html.escape(table.title)}</h3>\n<p class='caption'>{html.escape(table.caption)}</p>\n"
        f"<div class='scroll'><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table></div>\n{notes}\n"
    )


def write_table(table: Table, folder: Path) -> list[Path]:
    """``<name>.md``, ``<name>.tex`` and ``<name>.csv`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {".md": to_markdown(table), ".tex": to_latex(table), ".csv": table.data.to_csv(index=False)}
    paths = []
    for suffix, text in outputs.items():
        path = folder / f"{table.name}{suffix}"
        atomic_write_text(path, text)
        paths.append(path)
    return paths
