"""``python -m bench.report.pagecheck <report.html>``: open a report page in a real browser
(headless Chromium through Playwright, the dev extra) and check what issue 28 asks of it: it
opens on the summary and the claims check, the summary is on the first screen, nothing is
wider than a 1280-pixel window (folded or unfolded; wide tables scroll inside their own box),
the configuration and environment are folded at the end, and the page loads without a console
error or a failed request. The report's browser test and any real results folder use the
same check; prints the faults, one a line, and exits 1 where there are any."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.core.errors import UserError, cli_main

WIDTH, HEIGHT = 1280, 900
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
FOLDED = [["config-section", False, True, False], ["environment-section", False, False, True]]
_LAYOUT = """() => ({
    scrollWidth: document.documentElement.scrollWidth,
    wide: Array.from(document.querySelectorAll('body *'))
        .filter(e => !e.parentElement.closest('.scroll') && !e.closest('details:not([open])'))
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map(e => e.tagName + '#' + e.id),
    first: Array.from(document.querySelectorAll('h2, h3')).slice(0, 2).map(h => h.id),
    summaryTop: document.getElementById('summary') ? document.getElementById('summary').getBoundingClientRect().top : null,
    folded: Array.from(document.querySelectorAll('details[id]')).map(d => [d.id, d.open, !!d.querySelector('#config'),
                                                                          !!d.querySelector('#environment')]),
    headings: Array.from(document.querySelectorAll('h3')).map(h => h.id),
    images: Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
})"""


@dataclass
class PageFacts:
    """What the browser saw: load problems, layout folded and unfolded, headings and images."""

    problems: list[str] = field(default_factory=list)
    folded_layout: dict = field(default_factory=dict)
    opened_layout: dict = field(default_factory=dict)

    @property
    def headings(self) -> list[str]:
        return self.folded_layout.get("headings", [])

    @property
    def images(self) -> list[list]:
        return self.folded_layout.get("images", [])


def find_chromium() -> str | None:
    """The system Chromium (Debian's, installed by scripts/setup_system.sh), if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def inspect_page(html: Path, screenshots: Path | None = None) -> PageFacts:
    """Open ``html`` at 1280 × 900, read its layout, unfold every ``<details>`` and read it
    again; with ``screenshots``, save ``top.png`` and ``figure.png`` (the cost-quality figure)."""
    chromium = find_chromium()
    if chromium is None or importlib.util.find_spec("playwright") is None:
        raise UserError("the page check needs chromium and playwright (scripts/setup_system.sh, pip install -e '.[dev]')")
    from playwright import sync_api

    facts = PageFacts()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.on("console", lambda m: facts.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: facts.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: facts.problems.append(f"request failed: {r.url[:100]}"))
        page.goto(html.resolve().as_uri(), wait_until="load")
        facts.folded_layout = page.evaluate(_LAYOUT)
        if screenshots is not None:
            page.screenshot(path=str(screenshots / "top.png"))
            if page.locator("#cost_vs_quality").count():
                page.locator("#cost_vs_quality").scroll_into_view_if_needed()
            page.screenshot(path=str(screenshots / "figure.png"))
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        facts.opened_layout = page.evaluate(_LAYOUT)
        browser.close()
    return facts


def page_faults(facts: PageFacts) -> list[str]:
    """Each way the page misses issue 28's layout, one line each; empty when it holds."""
    folded, opened = facts.folded_layout, facts.opened_layout
    faults = list(facts.problems)
    if folded["first"] != ["summary", "claims"]:
        faults.append(f"opens on {folded['first']}, not on ['summary', 'claims']")
    if folded["summaryTop"] is None or folded["summaryTop"] >= HEIGHT:
        faults.append(f"the summary is not on the first {HEIGHT}-pixel screen (top {folded['summaryTop']})")
    for name, layout in (("folded", folded), ("unfolded", opened)):
        if layout["scrollWidth"] > WIDTH or layout["wide"]:
            faults.append(f"{name}: page {layout['scrollWidth']} px wide; wider than {WIDTH} px: {layout['wide'][:10]}")
    if folded["folded"] != FOLDED:
        faults.append(f"the configuration and environment are not folded sections at the end: {folded['folded']}")
    if not all(complete and width > 0 and height > 0 for complete, width, height in facts.images):
        faults.append("a figure does not decode")
    return faults


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report.pagecheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("html", help="a report page, e.g. results/quick/report.html")
    args = parser.parse_args(argv)
    html = Path(args.html)
    if not html.is_file() or html.suffix != ".html":
        raise UserError(f"{html}: not a report page; pass the report.html that python -m bench.report wrote")
    facts = inspect_page(html)
    faults = page_faults(facts)
    for fault in faults:
        print(fault)
    if not faults:
        print(f"ok: {html} opens on the summary and the claims check, nothing wider than {WIDTH} px "
              f"(folded or unfolded), the configuration folded at the end; {len(facts.images)} figures, "
              f"{len(facts.headings)} tables")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
