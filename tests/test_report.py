"""The report: tables and statistics on hand-made records whose answers are known (scipy
as the oracle), merging, clear errors, LaTeX that compiles, and one real sweep end to end."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from bench.config.sweep import load_config
from bench.report import build_report
from bench.report.figures import pareto_front
from bench.report.pagecheck import find_chromium, inspect_page, page_faults
from bench.report.stats import holm
from bench.sweep import run_sweep
from conftest import require_tool, run_module, write_config, write_records
from report_hand import ROUNDS, SEEDS, TUNED, hand_records, md_row, series


@pytest.fixture(scope="module")
def hand_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hand")
    folder = write_records(tmp / "hand", hand_records())
    (folder / "tuned.yaml").write_text(yaml.safe_dump(TUNED))  # the page shows its tuning table and study figure
    return build_report(folder, tmp / "plots")


def test_main_table_means_bold_and_order(hand_report):
    text = (hand_report.tables_dir / "main__digits__cnn__class-3.md").read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    # references first, then by family (the paper's baselines, then unregistered ones) and by name within
    # one, the proposed method last, its variant in the ablation table
    assert rows == ["retrain", "original", "amnesiac_undo", "finetune", "broken", "fcalb"]
    retain = series("fcalb", "retain_acc")
    fcalb = md_row(text, "fcalb")
    # fcalb's retain accuracy is closest to retrain's (0.910), though finetune's is higher: bold means closest
    assert fcalb[2] == f"**{retain.mean():.3f} ± {retain.std(ddof=1):.3f}**"
    assert not md_row(text, "finetune")[2].startswith("**")
    assert fcalb[-1] == "3" and md_row(text, "finetune")[-1] == "2 of 3" and md_row(text, "broken")[1] == "failed"
    assert "fcalb_fixed" in text and "ablation table" in text  # the variant is not silently dropped
    frame = pd.read_csv(hand_report.tables_dir / "main__digits__cnn__class-3.csv")
    entry = frame[(frame["method"] == "finetune") & (frame["metric"] == "time_s")].iloc[0]
    assert entry["n"] == 2 and entry["mean"] == pytest.approx(series("finetune", "time_s", (0, 1)).mean())
    # lower is better for distances and time; retrain and original are never bold
    best = frame[frame["best"]]
    assert set(best[best["metric"] == "js_retrain"]["method"]) == {"fcalb"}
    assert set(best[best["metric"] == "time_s"]["method"]) == {"finetune"}
    assert not frame[frame["method"].isin(["retrain", "original"])]["best"].any()


def test_significance_is_scipys_paired_test_with_holm(hand_report):
    sig = pd.read_csv(hand_report.tables_dir / "significance.csv")
    row = sig[(sig["method"] == "fcalb") & (sig["against"] == "retrain") & (sig["metric"] == "retain_acc")].iloc[0]
    assert row["test"] == "t" and row["n_pairs"] == 3
    assert row["p"] == pytest.approx(stats.ttest_rel(series("fcalb", "retain_acc"), series("retrain", "retain_acc")).pvalue)
    # finetune vs fcalb pairs only seeds 0 and 1 (finetune's seed 2 is missing)
    row = sig[(sig["method"] == "finetune") & (sig["against"] == "fcalb") & (sig["metric"] == "test_acc")].iloc[0]
    assert row["n_pairs"] == 2
    assert row["p"] == pytest.approx(stats.ttest_rel(series("finetune", "test_acc", (0, 1)), series("fcalb", "test_acc", (0, 1))).pvalue)
    family = sig[(sig["dataset"] == "digits") & (sig["scenario"] == "class:3")]
    assert family["p_holm"].to_numpy() == pytest.approx(holm(family["p"].to_numpy()), nan_ok=True)
    # the original's forget accuracy is 1 on every seed against retrain's 0: t = inf, p = 0, marked
    row = sig[(sig["method"] == "original") & (sig["against"] == "retrain") & (sig["metric"] == "forget_acc")].iloc[0]
    assert row["p"] == 0 and row["significant"]
    text = (hand_report.tables_dir / "main__digits__cnn__class-3.md").read_text()
    assert md_row(text, "original")[1].endswith("†‡")
    assert set(sig["against"]) == {"retrain", "fcalb"}


def test_gap_table_intervals_are_t_over_seeds(hand_report, tmp_path):
    frame = pd.read_csv(hand_report.tables_dir / "gap__digits__cnn__class-3.csv")
    gaps = np.abs(series("fcalb", "forget_acc") - series("retrain", "forget_acc"))
    entry = frame[(frame["method"] == "fcalb") & (frame["metric"] == "forget_acc")].iloc[0]
    low, high = stats.t.interval(0.95, len(gaps) - 1, loc=gaps.mean(), scale=stats.sem(gaps))
    assert (entry["mean_gap"], entry["ci_low"], entry["ci_high"]) == pytest.approx((gaps.mean(), low, high))
    text = (hand_report.tables_dir / "gap__digits__cnn__class-3.md").read_text()
    assert f"{gaps.mean():.3f} [{low:.3f}, {high:.3f}]" in text
    boot = build_report(hand_report.out_dir, tmp_path / "p", tmp_path / "boot", interval="bootstrap", figures=False)
    frame = pd.read_csv(boot.tables_dir / "gap__digits__cnn__class-3.csv")
    entry = frame[(frame["method"] == "fcalb") & (frame["metric"] == "forget_acc")].iloc[0]
    assert entry["interval"] == "bootstrap" and gaps.min() - 1e-12 <= entry["ci_low"] < entry["ci_high"] <= gaps.max() + 1e-12


def test_ablation_cost_and_failure_tables(hand_report):
    ablation = (hand_report.tables_dir / "ablation__digits__cnn__class-3.md").read_text()
    assert md_row(ablation, "fcalb_fixed")[1] == "balancer=fixed" and md_row(ablation, "fcalb")[1] == "defaults"
    cost = pd.read_csv(hand_report.tables_dir / "cost.csv")
    entry = cost[cost["method"] == "fcalb"].iloc[0]
    assert entry["time_s_mean"] == pytest.approx(series("fcalb", "time_s").mean()) and entry["device"] == "test-cpu"
    assert entry["speedup_mean"] == pytest.approx(series("fcalb", "speedup").mean())
    failures = (hand_report.tables_dir / "failures.md").read_text()
    for seed in SEEDS:
        assert f"digits/class:3/s{seed}/broken | failed | RuntimeError: boom" in failures
    assert "s0/amnesiac_undo | not_applicable | needs the original training's record" in failures
    assert "s2/finetune | missing |" in failures


def test_latex_tables_compile(hand_report, tmp_path):
    require_tool(shutil.which("pdflatex") is not None, "pdflatex (with booktabs)")
    inputs = "\n".join(rf"\input{{{path}}}" for path in sorted(hand_report.tables_dir.glob("*.tex")))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + inputs + "\n\\end{document}\n"
    )
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 10_000
    assert r"\toprule" in (hand_report.tables_dir / "main__digits__cnn__class-3.tex").read_text()


def test_merged_sweeps_equal_one_sweep(tmp_path):
    write_records(tmp_path / "a", hand_records(seeds=(0, 1), sweep="a"))
    write_records(tmp_path / "b", hand_records(seeds=(2,), sweep="b"))
    result = run_module("bench.report", "--results", str(tmp_path / "a"), str(tmp_path / "b"), "--plots", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    merged = tmp_path / "a+b"
    assert result.stdout.strip().splitlines()[-1] == f"report: {merged / 'report.html'}"
    assert re.fullmatch(r"labels: \d+ point labels in 2 figures, 0 overlapping pairs", result.stdout.strip().splitlines()[-2])
    frame = pd.read_csv(merged / "tables" / "main__digits__cnn__class-3.csv")
    entry = frame[(frame["method"] == "fcalb") & (frame["metric"] == "test_acc")].iloc[0]
    assert entry["n"] == 3 and entry["mean"] == pytest.approx(series("fcalb", "test_acc").mean())
    assert "a+b" in (merged / "report.html").read_text()


def test_report_errors_name_the_file_and_write_nothing(tmp_path):
    missing = run_module("bench.report", "--results", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "has no runs/ folder" in missing.stderr and "Traceback" not in missing.stderr
    write_records(tmp_path / "a", hand_records(seeds=(0,), sweep="a"))
    write_records(tmp_path / "b", hand_records(seeds=(0,), sweep="b"))
    twice = run_module("bench.report", "--results", str(tmp_path / "a"), str(tmp_path / "b"))
    assert twice.returncode == 2 and "is in both" in twice.stderr and f"{tmp_path / 'b' / 'runs'}/digits__class3__s0__" in twice.stderr
    broken = write_records(tmp_path / "broken", hand_records(seeds=(0,)))
    bad = next((broken / "runs").glob("*fcalb.json"))
    original = bad.read_text()
    cases = {
        "{not json": "is unreadable",
        json.dumps({"sweep": "s", "status": "ok"}): "lacks dataset, model, scenario, seed, method, metrics",
        json.dumps({**json.loads((broken / "runs" / "digits__class3__s0__retrain.json").read_text()), "metrics": {"forget_acc": "high"}}):
            "malformed metrics",
        json.dumps({**json.loads((broken / "runs" / "digits__class3__s0__retrain.json").read_text()), "seed": "zero"}):
            "seed 'zero'",
    }
    for text, message in cases.items():
        bad.write_text(text)
        result = run_module("bench.report", "--results", str(broken), "--plots", str(tmp_path / "plots"))
        assert result.returncode == 2 and bad.name in result.stderr and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    bad.write_bytes(b"{\"sweep\": \"caf\xe9\"}")  # not UTF-8
    result = run_module("bench.report", "--results", str(broken), "--plots", str(tmp_path / "plots"))
    assert result.returncode == 2 and bad.name in result.stderr and "is not UTF-8 text (byte 14: invalid continuation byte)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    bad.write_text(original)
    (broken / "tuned.yaml").write_bytes(b"budget: \xff\xff")  # the tuned file a sweep copies beside its records
    result = run_module("bench.report", "--results", str(broken), "--plots", str(tmp_path / "plots"))
    assert result.returncode == 2 and "tuned.yaml' is not UTF-8 text (byte 8: invalid start byte)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (broken / "tables").exists() and not (broken / "report.html").exists() and not (tmp_path / "plots").exists()
    good = write_records(tmp_path / "good", hand_records(seeds=(0,)))
    for args, message in (
        (["--proposed", "nope"], "--proposed 'nope' is not a method of these results; allowed: amnesiac_undo, broken,"),
        (["--order", "retrain,nope"], "--order names nope"),
        (["--alpha", "2"], "--alpha 2.0 is out of range"),
    ):
        result = run_module("bench.report", "--results", str(good), *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (good / "tables").exists()


def test_order_and_no_proposed_method(tmp_path):
    folder = write_records(tmp_path / "h", hand_records(seeds=(0, 1)))
    report = build_report(folder, tmp_path / "p", order=["fcalb", "finetune"], proposed=None, figures=False)
    text = (report.tables_dir / "main__digits__cnn__class-3.md").read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows[:2] == ["fcalb", "finetune"] and "fcalb_fixed" in rows  # no proposed method: no variants set apart
    assert not list(report.tables_dir.glob("ablation__*"))
    assert set(pd.read_csv(report.tables_dir / "significance.csv")["against"]) == {"retrain"}


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    config = load_config(write_config(tmp / "c.yaml", seeds=[0, 1]))
    run_sweep(config, tmp / "out", tmp / "cache", progress=False)
    return tmp / "out"


def test_report_of_a_real_sweep(finished_sweep, tmp_path):
    report = build_report(finished_sweep, tmp_path / "plots")
    records = [json.loads((finished_sweep / "runs" / f"digits__class3__s{s}__finetune.json").read_text()) for s in (0, 1)]
    values = np.array([r["metrics"]["retain_acc"] for r in records])
    text = (report.tables_dir / "main__digits__cnn__class-3.md").read_text()
    assert f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" in md_row(text, "finetune")[2]
    # records carry the original's forget-set histogram: the original predicts the forgotten class
    histogram = records[0]["prediction_histograms"]["original"]
    assert len(histogram) == 10 and sum(histogram) == pytest.approx(1) and np.argmax(histogram) == 3
    names = {f.name for f in report.figures}
    assert {"cost_vs_quality", "mia_vs_forget", "pred_dist__digits__cnn__class-3", "bars__forget_acc"} <= names
    for figure in report.figures:
        assert figure.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.pdf.read_bytes()[:5] == b"%PDF-"


def test_report_page_in_headless_chromium(hand_report, tmp_path):
    """The page opens from disk in a real browser (bench.report.pagecheck, the check a user
    runs on a real results folder): no console error, no failed request, every figure
    decodes, every table is there, a screenshot is not blank; it opens on the summary and the
    claims check, nothing is wider than a 1280-pixel window (wide tables scroll inside their
    own box), and the configuration is folded at the end, after the failures."""
    require_tool(find_chromium() is not None, "chromium")
    require_tool(importlib.util.find_spec("playwright") is not None, "playwright (the dev extra)")
    from PIL import Image

    facts = inspect_page(hand_report.html, screenshots=tmp_path)
    assert page_faults(facts) == []
    assert len(facts.images) == len(hand_report.figures) >= 12
    assert all(complete and width > 100 and height > 100 for complete, width, height in facts.images)
    assert {t.name for t in hand_report.tables} <= set(facts.headings)
    assert facts.folded_layout["first"] == ["summary", "claims"] and facts.folded_layout["summaryTop"] < 900
    assert facts.folded_layout["folded"] == [["config-section", False, True, False], ["environment-section", False, False, True]]
    html = hand_report.html.read_text()
    assert html.index("id='failures-section'") < html.index("id='config-section'")  # the failures before the folded configuration
    for shot in ("top.png", "figure.png"):
        pixels = np.asarray(Image.open(tmp_path / shot).convert("L"))
        assert pixels.shape == (900, 1280) and (pixels < 200).mean() > 0.01 and len(np.unique(pixels)) > 16


def test_the_page_check_names_each_fault(hand_report, tmp_path):
    """Known faults, made by hand in copies of the page, each give their lines: an element
    wider than the window outside a scroll box (folded and unfolded), the configuration left
    open; a file that is not a report page is one line, exit 2."""
    require_tool(find_chromium() is not None, "chromium")
    require_tool(importlib.util.find_spec("playwright") is not None, "playwright (the dev extra)")
    html = hand_report.html.read_text()
    wide = html.replace("</body>", '<div id="too-wide" style="width:1500px">x</div></body>')
    unfolded = html.replace("<details id='config-section'", "<details open id='config-section'")
    assert wide != html and unfolded != html
    faults = {}
    for name, text in (("wide", wide), ("unfolded", unfolded)):
        page = tmp_path / f"{name}.html"
        page.write_text(text)
        faults[name] = page_faults(inspect_page(page))
    assert len(faults["wide"]) == 2 and all("DIV#too-wide" in f for f in faults["wide"])
    assert faults["unfolded"] == [f"the configuration and environment are not folded sections at the end: "
                                  f"{[['config-section', True, True, False], ['environment-section', False, False, True]]}"]
    result = run_module("bench.report.pagecheck", str(tmp_path / "none.html"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'none.html'}: not a report page; pass the report.html that python -m bench.report wrote"]


def test_pareto_front_by_hand():
    points = pd.DataFrame({
        "method": ["a", "b", "c", "d", "e"],
        "time_s": [1.0, 2.0, 3.0, 0.5, 2.5],
        "avg_gap": [0.5, 0.2, 0.1, 0.9, 0.3],  # e is beaten by b on both
    })
    front = pareto_front(points, "time_s", "avg_gap")
    assert list(front["method"]) == ["d", "a", "b", "c"]


def test_balance_log_reads_rounds_and_the_epochs_of_older_records():
    from bench.report.load import balance_log

    assert balance_log({"method_log": {"rounds": ROUNDS}}) == ROUNDS
    assert balance_log({"method_log": {"epochs": ROUNDS}}) == ROUNDS  # FC+ALB's records before its step budget
    assert balance_log({"method_log": {"rounds": 5, "epochs": [1, 2]}}) == [] and balance_log({}) == []


def test_summary_and_claims_tables_are_written_first(hand_report):
    """The summary ranks every method but retraining by the objective (here the hand records'
    avg_gap) with tie letters; the claims check compares fcalb with each baseline; both come
    first and are written as Markdown, LaTeX and CSV."""
    assert [t.name for t in hand_report.tables[:2]] == ["summary", "claims"]
    for name in ("summary", "claims"):
        assert {p.suffix for p in hand_report.tables_dir.glob(f"{name}.*")} == {".md", ".tex", ".csv"}
    summary = pd.read_csv(hand_report.tables_dir / "summary.csv")
    assert set(summary["objective"]) == {"avg_gap"} and "retrain" not in set(summary["method"])
    for _, group in summary.groupby(["dataset", "scenario"]):
        ranked = group.dropna(subset=["rank"]).sort_values("rank")
        assert ranked["mean"].is_monotonic_increasing and ranked["letters"].iloc[0].startswith("a")
    claims = pd.read_csv(hand_report.tables_dir / "claims.csv")
    assert set(claims["proposed"]) == {"fcalb"} and set(claims["verdict"]) <= {"better", "worse", "not distinguishable"}
    assert not {"fcalb_fixed", "retrain", "original"} & set(claims["baseline"])  # its own variants and the references are not baselines
    assert (claims["p_holm"].dropna() >= claims["p"].dropna()).all()
