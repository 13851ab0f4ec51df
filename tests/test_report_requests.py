"""The report's sequential-request, subpopulation and relearning views on hand-made records
whose answers are worked out by hand: the drift table's means and sds, the per-request
figure's lines, the subpopulation and relearning tables, their absence when the records
hold no such scenario, and the page's section."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from bench.report import build_report
from bench.report.drawing import report_colours
from bench.report.load import load_results
from bench.report.render import to_markdown
from bench.report.requests import (
    SECTION_ID, SECTION_TITLE, drift_table, relearn_table, request_curves, request_figures, subpopulation_table,
)
from bench.report.tables import ReportOptions
from conftest import hand_record, require_tool, write_records

SEQ = "seq:3:random:0.1"
# method -> seed -> metric -> its value at requests 1, 2, 3 (time_s and speedup cumulative, as the runner writes them)
REQUESTS = {
    "retrain": {
        0: {"forget_acc": [0.0, 0.0, 0.0], "retain_acc": [0.90, 0.90, 0.89], "test_acc": [0.85, 0.85, 0.84],
            "avg_gap": [0.0, 0.0, 0.0], "time_s": [10.0, 20.0, 30.0], "speedup": [1.0, 1.0, 1.0]},
        1: {"forget_acc": [0.0, 0.0, 0.0], "retain_acc": [0.92, 0.91, 0.91], "test_acc": [0.86, 0.86, 0.85],
            "avg_gap": [0.0, 0.0, 0.0], "time_s": [11.0, 22.0, 33.0], "speedup": [1.0, 1.0, 1.0]},
    },
    "finetune": {
        # forget drift 0.30 − 0.10 = 0.20 and 0.30 − 0.20 = 0.10: mean 0.15, sd √((0.05² + 0.05²)/1) = 0.0707
        0: {"forget_acc": [0.10, 0.15, 0.30], "retain_acc": [0.95, 0.93, 0.90], "test_acc": [0.90, 0.88, 0.84],
            "avg_gap": [0.05, 0.10, 0.20], "time_s": [1.0, 3.0, 6.0], "speedup": [10.0, 6.67, 5.0]},
        # retain drift −0.05 and −0.02: mean −0.035, sd 0.0212; test drift −0.06 (seed 0) and −0.02: mean −0.04, sd 0.0283;
        # gap drift 0.15 on both seeds: sd 0
        1: {"forget_acc": [0.20, 0.20, 0.30], "retain_acc": [0.94, 0.93, 0.92], "test_acc": [0.88, 0.88, 0.86],
            "avg_gap": [0.10, 0.10, 0.25], "time_s": [1.0, 2.5, 5.5], "speedup": [11.0, 8.8, 6.0]},
    },
}


def seq_record(method: str, seed: int, per_request: dict[str, list[float]], scenario: str = SEQ) -> dict:
    """A sequential record as the runner writes it: top-level metrics = the last request's,
    ``requests`` = every request's, in order."""
    count = len(next(iter(per_request.values())))
    requests = [
        {"forget_size": 10 * (i + 1), "request_size": 10, "timings": {},
         "metrics": {m: v[i] for m, v in per_request.items()} | {"request_forget_acc": 0.5}}
        for i in range(count)
    ]
    record = hand_record(method, seed, requests[-1]["metrics"], scenario=scenario)
    record["requests"] = requests
    return record


def seq_records() -> list[dict]:
    return [seq_record(method, seed, values) for method, seeds in REQUESTS.items() for seed, values in seeds.items()]


def plain_records(scenario: str = "class:3") -> list[dict]:
    """Ordinary one-request records (no requests list), as every sweep before had."""
    return [hand_record(method, seed, {"forget_acc": f, "retain_acc": 0.9, "test_acc": 0.85, "avg_gap": g, "time_s": t,
                                        "speedup": s}, scenario=scenario)
            for seed in (0, 1) for method, (f, g, t, s) in {"retrain": (0.0, 0.0, 10.0, 1.0),
                                                          "finetune": (0.9, 0.4, 1.0, 10.0)}.items()]


SUB = "subclass:3:0"
# method -> per-seed (forget_acc, test_forget_sub_acc, test_rest_of_class_acc, avg_gap)
SUBPOP = {"retrain": [(0.60, 0.55, 0.95, 0.0), (0.70, 0.65, 0.93, 0.0)],
          "finetune": [(0.98, 0.90, 0.96, 0.20), (0.96, 0.86, 0.94, 0.24)]}
# method -> per-seed (forget_acc, after relearning, the retrained model after relearning); gap = after − retrained after
RELEARN = {"finetune": [(0.10, 0.60, 0.30), (0.20, 0.80, 0.50)], "rl": [(0.05, 0.40, 0.35), (0.15, 0.45, 0.45)]}


def subpopulation_records() -> list[dict]:
    names = ("forget_acc", "test_forget_sub_acc", "test_rest_of_class_acc", "avg_gap")
    return [hand_record(method, seed, dict(zip(names, values)) | {"retain_acc": 0.9, "test_acc": 0.85, "time_s": 1.0},
                        scenario=SUB)
            for method, seeds in SUBPOP.items() for seed, values in enumerate(seeds)]


def relearn_records() -> list[dict]:
    records = [hand_record("original", seed, {"forget_acc": 1.0, "avg_gap": 0.5}, scenario="random:0.1") for seed in (0, 1)]
    for method, seeds in RELEARN.items():
        for seed, (forget, after, retrained) in enumerate(seeds):
            records.append(hand_record(method, seed, {
                "forget_acc": forget, "avg_gap": 0.1, "retain_relearn_forget_acc": after,
                "retain_relearn_forget_acc_retrain": retrained, "retain_relearn_gap": after - retrained,
                "retain_relearn_rise": after - forget}, scenario="random:0.1"))
    return records


def md_row(text: str, method: str, scenario: str | None = None) -> list[str]:
    lines = [line for line in text.splitlines() if line.startswith(f"| {method} |") and (scenario is None or f"| {scenario} |" in line)]
    assert len(lines) == 1, lines
    return [cell.strip() for cell in lines[0].strip("|").split("|")]


def results_of(tmp_path, records: list[dict]):
    return load_results([write_records(tmp_path / "runs", records)])


def test_drift_table_by_hand(tmp_path):
    table = drift_table(results_of(tmp_path, seq_records() + plain_records()))
    text = to_markdown(table)
    # method, dataset, scenario, then (last, drift) for forget, retain, test, avg gap; cumulative speed-up; seeds
    assert md_row(text, "finetune") == [
        "finetune", "digits (cnn)", SEQ, "0.300", "+0.150 ± 0.071", "0.910", "-0.035 ± 0.021", "0.850", "-0.040 ± 0.028",
        "0.225", "+0.150 ± 0.000", "5.5 ± 0.707×", "2"]
    assert md_row(text, "retrain")[3:5] == ["0.000", "+0.000 ± 0.000"] and md_row(text, "retrain")[11] == "1 ± 0×"
    assert "| class:3 |" not in text  # one-request scenarios have no drift
    assert "mean over 2 seeds" in table.caption and "mean ± sd over seeds" in table.caption
    frame = table.data.set_index(["method", "metric"])
    entry = frame.loc[("finetune", "forget_acc")]
    assert entry["drift_mean"] == pytest.approx(0.15) and entry["drift_std"] == pytest.approx(np.std([0.2, 0.1], ddof=1))
    assert entry["last_mean"] == pytest.approx(0.30) and entry["n"] == 2 and entry["requests"] == 3
    assert frame.loc[("finetune", "retain_acc"), "drift_mean"] == pytest.approx(-0.035)
    assert frame.loc[("finetune", "speedup"), "last_mean"] == pytest.approx(5.5)
    assert frame.loc[("finetune", "speedup"), "drift_mean"] == pytest.approx(((5.0 - 10.0) + (6.0 - 11.0)) / 2)


def test_drift_table_counts_a_missing_seed_and_orders_references_first(tmp_path):
    records = [r for r in seq_records() if not (r["method"] == "finetune" and r["seed"] == 1)]
    records.append(hand_record("finetune", 1, status="failed", error="RuntimeError: boom", scenario=SEQ))
    table = drift_table(results_of(tmp_path, records))
    assert [row[0].text for row in table.rows] == ["retrain", "finetune"]
    row = md_row(to_markdown(table), "finetune")
    # one seed: the drift is seed 0's own (0.30 − 0.10), no sd; the Seeds column says which share
    assert row[3:5] == ["0.300", "+0.200"] and row[-1] == "1 of 2"
    assert "over 1 to 2 seeds" in table.caption


def test_no_sequential_record_no_requests_table_or_figure(tmp_path):
    results = results_of(tmp_path, plain_records() + plain_records("random:0.1"))
    assert results.requests.empty
    assert drift_table(results) is None and subpopulation_table(results) is None and relearn_table(results) is None
    assert request_figures(results, None, tmp_path / "plots") == [] and not (tmp_path / "plots").exists()
    report = build_report(results.folders[0], tmp_path / "plots", figures=False)
    names = {t.name for t in report.tables}
    assert not names & {"requests", "subpopulation", "relearn"}
    assert not list(report.tables_dir.glob("requests.*")) and not list(report.tables_dir.glob("subpopulation.*"))
    html = report.html.read_text()
    assert SECTION_ID not in html and SECTION_TITLE not in html


def test_subpopulation_table_by_hand(tmp_path):
    table = subpopulation_table(results_of(tmp_path, subpopulation_records() + plain_records()))
    text = to_markdown(table)
    # retrain (the reference) first; mean ± sd over the two seeds, worked out by hand
    assert [row[0].text for row in table.rows] == ["retrain", "finetune"]
    assert md_row(text, "retrain") == ["retrain", "digits (cnn)", SUB, "0.650 ± 0.071", "0.600 ± 0.071", "0.940 ± 0.014",
                                       "0.000 ± 0.000", "2"]
    assert md_row(text, "finetune") == ["finetune", "digits (cnn)", SUB, "0.970 ± 0.014", "0.880 ± 0.028", "0.950 ± 0.014",
                                        "0.220 ± 0.028", "2"]
    assert "| class:3 |" not in text and "reference" in " ".join(table.notes)
    frame = table.data.set_index(["method", "metric"])
    assert frame.loc[("finetune", "test_forget_sub_acc"), "mean"] == pytest.approx(0.88)
    assert frame.loc[("finetune", "test_forget_sub_acc"), "std"] == pytest.approx(np.std([0.90, 0.86], ddof=1))
    assert frame.loc[("retrain", "test_rest_of_class_acc"), "n"] == 2


def test_relearn_table_by_hand(tmp_path):
    table = relearn_table(results_of(tmp_path, relearn_records()))
    text = to_markdown(table)
    # gaps: finetune 0.30, 0.30 (sd 0); rl 0.05, 0.00; original has no relearning: no row
    assert md_row(text, "finetune") == ["finetune", "digits (cnn)", "random:0.1", "0.150 ± 0.071", "0.700 ± 0.141",
                                        "0.400 ± 0.141", "0.300 ± 0.000", "2"]
    assert md_row(text, "rl")[3:] == ["0.100 ± 0.071", "0.425 ± 0.035", "0.400 ± 0.071", "0.025 ± 0.035", "2"]
    assert "| original |" not in text
    frame = table.data.set_index(["method", "metric"])
    assert frame.loc[("rl", "retain_relearn_gap"), "mean"] == pytest.approx(0.025)
    assert frame.loc[("rl", "retain_relearn_gap"), "std"] == pytest.approx(np.std([0.05, 0.0], ddof=1))


def test_request_curves_draw_the_means_and_bands(tmp_path, monkeypatch):
    import bench.report.requests as module

    results = results_of(tmp_path, seq_records() + plain_records())
    colours = report_colours(results, ReportOptions())
    drawn = []
    real_save = module.save

    def keep(figure, *args, **kwargs):
        drawn.append(figure)
        return real_save(figure, *args, **kwargs)

    monkeypatch.setattr(module, "save", keep)
    group = ("digits", "cnn", SEQ)
    figure = request_curves(results, group, None, tmp_path / "plots", colours)
    assert figure.name == "requests__digits__cnn__seq-3-random-0.1" and figure.png.read_bytes()[:4] == b"\x89PNG"
    assert "mean over 2 seeds" in figure.caption and "min–max" in figure.caption
    assert figure.colours == {m: (colours[m],) for m in ("retrain", "finetune")}
    axes = drawn[0].axes
    assert [ax.get_title() for ax in axes[:5]] == ["Forget acc.", "Retain acc.", "Test acc.", "Avg. gap", "Speed-up (cumulative, log)"]
    assert [ax.get_yscale() for ax in axes[:5]] == ["linear"] * 4 + ["log"]
    assert all(list(ax.get_xticks()) == [1, 2, 3] for ax in axes[:5])
    lines = {line.get_gid(): line for line in axes[0].get_lines()}
    assert list(lines["method:finetune"].get_xdata()) == [1, 2, 3]
    assert lines["method:finetune"].get_ydata() == pytest.approx([0.15, 0.175, 0.30])
    speed = {line.get_gid(): line for line in axes[4].get_lines()}
    assert speed["method:finetune"].get_ydata() == pytest.approx([10.5, (6.67 + 8.8) / 2, 5.5])
    band = axes[0].collections[1].get_paths()[0].vertices  # finetune's min–max band on forget accuracy
    assert band[:, 1].min() == pytest.approx(0.10) and band[:, 1].max() == pytest.approx(0.30)
    assert request_curves(results, ("digits", "cnn", "class:3"), None, tmp_path / "plots", colours) is None
    assert [f.name for f in request_figures(results, None, tmp_path / "plots2", workers=1)] == [figure.name]


def test_whole_report_has_the_section_and_files(tmp_path):
    folder = write_records(tmp_path / "all", seq_records() + plain_records() + subpopulation_records() + relearn_records())
    report = build_report(folder, tmp_path / "plots", figures=False)
    for name in ("requests", "subpopulation", "relearn"):
        assert {p.suffix for p in report.tables_dir.glob(f"{name}.*")} == {".md", ".tex", ".csv"}
    assert pd.read_csv(report.tables_dir / "requests.csv").set_index(["method", "metric"]).loc[
        ("finetune", "forget_acc"), "drift_mean"] == pytest.approx(0.15)
    html = report.html.read_text()
    section = html.index(f"<h2 id='{SECTION_ID}'>{SECTION_TITLE}</h2>")
    # after the summary and the other tables, before the figures; its tables inside it
    assert html.index("id='summary'") < html.index("<h2 id='tables'>") < section < html.index("<h2 id='figures'>")
    assert all(section < html.index(f"<h3 id='{name}'>") < html.index("<h2 id='figures'>")
               for name in ("requests", "subpopulation", "relearn"))
    assert "href='#requests'" in html


def test_whole_report_with_figures(tmp_path):
    folder = write_records(tmp_path / "seq", seq_records())
    report = build_report(folder, tmp_path / "plots")
    names = [f.name for f in report.figures]
    assert "requests__digits__cnn__seq-3-random-0.1" in names
    figure = next(f for f in report.figures if f.name.startswith("requests__"))
    assert figure.pdf.read_bytes()[:5] == b"%PDF-"
    html = report.html.read_text()
    section, figures = html.index(f"id='{SECTION_ID}'"), html.index("<h2 id='figures'>")
    assert section < html.index(f"<figure id='{figure.name}'>") < figures
    assert html.count(f"<figure id='{figure.name}'>") == 1


def test_new_tables_latex_compiles(tmp_path):
    require_tool(shutil.which("pdflatex") is not None, "pdflatex (with booktabs)")
    folder = write_records(tmp_path / "all", seq_records() + subpopulation_records() + relearn_records())
    report = build_report(folder, tmp_path / "plots", figures=False)
    inputs = "\n".join(rf"\input{{{report.tables_dir / name}.tex}}" for name in ("requests", "subpopulation", "relearn"))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + inputs + "\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert r"+0.150 $\pm$ 0.071" in (report.tables_dir / "requests.tex").read_text()
