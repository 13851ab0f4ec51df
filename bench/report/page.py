"""``report.html``: one static page holding the whole report.

No server, no script, no external asset: the figures are embedded as ``data:`` URIs and
the style is inline, so the file opens from disk, from a mail attachment or an archive.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from bench.report.figures import Figure
from bench.report.load import Results
from bench.report.render import Table, to_html
from bench.report.requests import SECTION_ID, SECTION_TITLE, in_section

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1200px; box-sizing: border-box; color: #111; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #999; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: .82em; margin: .4em 0; }
th, td { border-top: 1px solid #ccc; border-bottom: 1px solid #ccc; padding: .25em .6em; text-align: right; white-space: nowrap; }
thead th { border-bottom: 2px solid #333; } thead th:first-child, tbody th { text-align: left; } tbody th { font-weight: normal; }
.caption, .note { font-size: .85em; color: #333; margin: .2em 0; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #333; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; font-size: .8em; }
nav ul, details.contents ul { columns: 2; font-size: .9em; }
.scroll { max-width: 100%; overflow-x: auto; }
table.kv td { white-space: normal; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
details > summary { cursor: pointer; font-weight: bold; margin: 1em 0 .4em; }
"""


def _json(value: Any) -> str:
    return html.escape(json.dumps(value, indent=1, sort_keys=True, default=str))


def _key_value_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows)
    return f"<div class='scroll'><table class='kv'><tbody>{body}</tbody></table></div>"


def config_section(results: Results) -> str:
    """The sweep's configuration as the records tell it (each record carries its own)."""
    records = results.records
    datasets = {r["dataset"]: r.get("dataset_config") for r in records}
    methods = {r["method"]: (r.get("method_class", r["method"]), r.get("params")) for r in records}
    evaluations = list({json.dumps(r.get("evaluation_config"), sort_keys=True): r.get("evaluation_config") for r in records}.values())
    rows = [
        ("sweeps", html.escape(", ".join(dict.fromkeys(str(r["sweep"]) for r in records)))),
        ("results folders", html.escape(", ".join(str(f) for f in results.folders))),
        ("scenarios", html.escape(", ".join(dict.fromkeys(r["scenario"] for r in records)))),
        ("seeds", html.escape(", ".join(str(s) for s in sorted({r["seed"] for r in records})))),
        ("cells", html.escape(", ".join(f"{n} {status}" for status, n in Counter(r["status"] for r in records).items()))),
    ]
    parts = ["<h2 id='config'>Configuration</h2>", _key_value_table(rows), "<h3>Datasets</h3>"]
    parts += [f"<p><b>{html.escape(name)}</b></p><pre>{_json(config)}</pre>" for name, config in datasets.items()]
    parts.append("<h3>Methods</h3>")
    method_rows = [(name, f"<code>{html.escape(cls)}</code> <pre>{_json(params)}</pre>") for name, (cls, params) in methods.items()]
    parts.append(_key_value_table(method_rows))
    parts.append("<h3>Evaluation</h3>")
    parts += [f"<pre>{_json(e)}</pre>" for e in evaluations]
    return "\n".join(parts)


def environment_section(results: Results) -> str:
    """Every distinct environment the records were produced in, with how many cells each."""
    counts: Counter[str] = Counter(json.dumps(r.get("env") or {}, sort_keys=True) for r in results.records)
    parts = ["<h2 id='environment'>Environment</h2>"]
    for env, n in counts.most_common():
        parts.append(f"<p>{n} cell(s):</p><pre>{html.escape(json.dumps(json.loads(env), indent=1, sort_keys=True))}</pre>")
    return "\n".join(parts)


def figure_html(figure: Figure) -> str:
    data = base64.b64encode(figure.png.read_bytes()).decode("ascii")
    return (
        f"<figure id='{html.escape(figure.name)}'><img alt='{html.escape(figure.title)}' src='data:image/png;base64,{data}'>"
        f"<figcaption><b>{html.escape(figure.title)}.</b> {html.escape(figure.caption)} "
        f"(PDF: <code>{html.escape(str(figure.pdf))}</code>)</figcaption></figure>"
    )


def section_html(tables: list[Table], figures: list[Figure]) -> list[str]:
    """The section of :mod:`bench.report.requests`'s tables and figures; nothing when the
    results hold no sequential, subpopulation or relearning records."""
    if not tables and not figures:
        return []
    return [f"<h2 id='{SECTION_ID}'>{html.escape(SECTION_TITLE)}</h2>", *(to_html(t) for t in tables),
            *(figure_html(f) for f in figures)]


FIRST_TABLES = ("summary", "claims")
FIRST_FIGURES = ("cost_vs_quality",)


def build_page(results: Results, tables: list[Table], figures: list[Figure], failures: Table) -> str:
    """The whole page, the answer first: the summary, the claims check and the cost-quality
    picture; then every other table; the sequential requests, subpopulations and relearning
    (only when the results hold them); every other figure; the failures; then the
    configuration and environment, folded."""
    first = [t for t in tables if t.name in FIRST_TABLES]
    first_figures = [f for f in figures if f.name in FIRST_FIGURES]
    section = [t for t in tables if in_section(t.name)]
    section_figures = [f for f in figures if in_section(f.name)]
    rest = [t for t in tables if t.name not in FIRST_TABLES and t.name != failures.name and not in_section(t.name)]
    rest_figures = [f for f in figures if f.name not in FIRST_FIGURES and not in_section(f.name)]
    contents = "".join(f"<li><a href='#{html.escape(t.name)}'>{html.escape(t.title)}</a></li>" for t in [*first, *rest, *section])
    contents += "".join(f"<li><a href='#{html.escape(f.name)}'>{html.escape(f.title)}</a></li>" for f in section_figures)
    contents += "".join(f"<li><a href='#{html.escape(f.name)}'>{html.escape(f.title)}</a></li>" for f in [*first_figures, *rest_figures])
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>unlearn-bench report: {html.escape(results.name)}</h1>",
        f"<p class='note'>Generated {generated} from {len(results.records)} run records; rebuild with "
        f"<code>python -m bench.report --results {html.escape(' '.join(str(f) for f in results.folders))}</code>.</p>",
        "<section id='answer'>",
        *(to_html(t) for t in first),
        *(figure_html(f) for f in first_figures),
        "</section>",
        "<details class='contents'><summary>Contents</summary><ul>"
        f"{contents}<li><a href='#failures-section'>Failures</a></li><li><a href='#config'>Configuration</a></li>"
        "<li><a href='#environment'>Environment</a></li></ul></details>",
        "<h2 id='tables'>Tables</h2>",
        *(to_html(t) for t in rest),
        *section_html(section, section_figures),
        "<h2 id='figures'>Figures</h2>",
        *(figure_html(f) for f in rest_figures),
        "<h2 id='failures-section'>Failures</h2>",
        to_html(failures),
        f"<details id='config-section'><summary>Configuration</summary>{config_section(results)}</details>",
        f"<details id='environment-section'><summary>Environment</summary>{environment_section(results)}</details>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<link rel='icon' href='data:,'>\n"
        f"<title>unlearn-bench report: {html.escape(results.name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )
