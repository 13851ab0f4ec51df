"""The commands of the README and the docs' table scripts, run as a user runs them."""

from __future__ import annotations

import importlib.util
import os
import subprocess

import pandas as pd
import pytest
import yaml

from bench.report.pagecheck import find_chromium, inspect_page, page_faults
from conftest import ROOT, require_tool


@pytest.mark.slow
def test_run_all_quick_profile_end_to_end(tmp_path):
    out, plots = tmp_path / "quick", tmp_path / "plots"
    result = subprocess.run(
        ["./run_all.sh", "quick", "--out", str(out), "--plots", str(plots), "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sweep backend: ray" in result.stderr  # the dev extra brings Ray: cells as parallel tasks
    assert f"results: {out}/results.csv" in result.stdout and "tables:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == f"{out}/report.html"
    table = pd.read_csv(out / "results.csv")
    # the whole grid: 1 dataset x 3 scenarios x 3 seeds x (every entry + the tuned variants the
    # tuned file has for that scenario: none where every trial was rejected, as UNSIR's on
    # random:0.1; none for the sequence seq:2:class, which names no tuned scenario)
    tuned = yaml.safe_load((ROOT / "configs" / "tuned" / "quick.yaml").read_text())["entries"]
    methods = table["method"].unique()
    entries = [m for m in methods if not m.endswith("+tuned")]
    variants = {s: sum(1 for e in tuned if e["params"] and e["scenario"] == s) for s in ("class:3", "random:0.1")}
    expected = 3 * (3 * len(entries) + variants["class:3"] + variants["random:0.1"])
    assert len(table.groupby(["scenario", "seed", "method"]).size()) == expected
    assert sorted(table[table.scenario == "seq:2:class"]["request"].unique()) == [1, 2]
    assert {"original", "retrain", "finetune"} <= set(methods)
    # every method with a search space also runs tuned, beside its defaults
    assert {"finetune+tuned", "unsir+tuned", "fcalb+tuned", "fc_only+tuned"} <= set(methods)
    assert not {"original+tuned", "retrain+tuned", "amnesiac_undo+tuned"} & set(methods)
    # the report: every table and figure of the paper, all of them on one page
    groups = ("digits__cnn__class-3", "digits__cnn__random-0.1")
    tables = [f"{kind}__{group}" for kind in ("main", "gap", "ablation") for group in groups] + ["cost", "failures"]
    tables += ["tuning__digits__class-3", "tuning__digits__random-0.1"]  # from configs/tuned/quick.yaml
    tables += ["requests"]  # the sequence's drift from its first request to its last
    for name in tables:
        for suffix in (".md", ".tex", ".csv"):
            assert (out / "tables" / f"{name}{suffix}").stat().st_size > 0, name + suffix
    assert (out / "tables" / "significance.csv").is_file()
    figures = ["cost_vs_quality", "mia_vs_forget"] + [f"{kind}__{group}" for kind in ("pred_dist", "balance") for group in groups]
    figures += [f"bars__{metric}" for metric in ("forget_acc", "retain_acc", "test_acc", "mia_entropy", "js_retrain",
                                                 "pred_dist_js", "avg_gap", "time_s", "peak_mem_mib")]
    figures += ["tuning__digits__class-3", "tuning__digits__random-0.1", "requests__digits__cnn__seq-2-class"]
    for name in figures:
        assert (plots / f"{name}.png").stat().st_size > 5000 and (plots / f"{name}.pdf").stat().st_size > 5000, name
    page = (out / "report.html").read_text()
    for name in tables + figures:
        assert f"id='{name}'" in page, name
    assert "<h2 id='config'>" in page and "<h2 id='environment'>" in page
    # the only cells without results: amnesiac_undo on the sequence, not applicable with its reason
    failures = pd.read_csv(out / "tables" / "failures.csv")
    assert sorted(zip(failures["scenario"], failures["seed"], failures["method"], failures["status"])) == [
        ("seq:2:class", seed, "amnesiac_undo", "not_applicable") for seed in range(3)
    ]
    # every cell that ran has every metric of the evaluation suite (the costly tier aside)
    every_cell = {
        "forget_acc", "retain_acc", "test_acc", "mia_entropy", "mia_conf_svc", "mia_mentr_svc", "mia_loss_cv", "mia_auc",
        "mia_tpr_1fpr", "js_retrain", "js_retrain_test", "kl_retrain", "pred_dist_js", "act_dist", "zrf", "zrf_compat",
        "weight_dist", "gap_forget_acc", "gap_retain_acc", "gap_test_acc", "gap_mia_entropy", "avg_gap", "time_s",
        "speedup", "peak_mem_mib", "mem_delta_mib", "eval_s",
    }
    ok = table[table["status"] == "ok"]
    for (scenario, _seed, _method), cell in ok.groupby(["scenario", "seed", "method"]):
        wanted = every_cell | ({"test_forget_class_acc", "test_rest_acc"} if scenario.startswith("class") else set())
        assert wanted <= set(cell["metric"]), wanted - set(cell["metric"])
    # last, as it needs the browser: the real quick profile's page opens on the summary and the
    # claims check, nothing is wider than 1280 px, the configuration folded at the end
    require_tool(find_chromium() is not None, "chromium")
    require_tool(importlib.util.find_spec("playwright") is not None, "playwright (the dev extra)")
    assert page_faults(inspect_page(out / "report.html")) == []


def test_run_all_rejects_an_unknown_profile():
    result = subprocess.run(["./run_all.sh", "huge"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown profile 'huge'; allowed: " in result.stderr


def test_default_vs_tuned_table_by_hand(tmp_path):
    from bench.running.results import rebuild_results_csv
    from conftest import hand_record, run_module, write_records

    metrics = lambda gap, speedup: {  # noqa: E731
        "forget_acc": 0.5, "retain_acc": 0.9, "test_acc": 0.8, "mia_entropy": 0.1, "avg_gap": gap, "speedup": speedup,
    }
    records = [hand_record("unsir", s, metrics(0.3 + s / 10, 2.0)) for s in (0, 1)]
    records += [hand_record("unsir+tuned", s, metrics(0.1, 4.0 + 4 * s)) for s in (0, 1)]
    records += [hand_record("retrain", 0, metrics(0.0, 1.0))]  # nothing tuned: no row
    records += [hand_record("original", 0, metrics(0.5, float("inf")))]  # opens the group: doing nothing costs nothing
    rebuild_results_csv(write_records(tmp_path, records))
    result = run_module("scripts.default_vs_tuned", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| digits")]
    assert rows == [
        "| digits | class:3 | original | 0.500 | 0.900 | 0.800 | 0.100 | 0.500 | 0.00 |",
        "| digits | class:3 | unsir | 0.500 | 0.900 | 0.800 | 0.100 | 0.350 | 0.50 |",
        "| digits | class:3 | unsir+tuned | 0.500 | 0.900 | 0.800 | 0.100 | 0.100 | 0.19 |",  # mean of 1/4 and 1/8
    ]
    only_seed_1 = run_module("scripts.default_vs_tuned", str(tmp_path), "--seeds", "1").stdout
    assert "| unsir | 0.500 | 0.900 | 0.800 | 0.100 | 0.400 |" in only_seed_1
    missing = run_module("scripts.default_vs_tuned", str(tmp_path / "none"))
    assert missing.returncode == 2 and "results.csv not found" in missing.stderr
    bad_seeds = run_module("scripts.default_vs_tuned", str(tmp_path), "--seeds", "zero")
    assert bad_seeds.returncode == 2 and bad_seeds.stderr.count("\n") == 1 and "--seeds 'zero': expected comma-separated integers" in bad_seeds.stderr
    for content, message in (
        (b"\xff\xfe\x00binary", "is not UTF-8 text (byte 0: invalid start byte)"),
        (b"not,a\nresults,table\n", "lacks the columns sweep, dataset, model, scenario, seed, method, status, metric, value"),
        (b"", "is not CSV (No columns to parse from file)"),
    ):
        (tmp_path / "results.csv").write_bytes(content)
        broken = run_module("scripts.default_vs_tuned", str(tmp_path))
        assert broken.returncode == 2 and broken.stderr.count("\n") == 1, broken.stderr
        assert f"results table {str(tmp_path / 'results.csv')!r} {message}" in broken.stderr, broken.stderr


def test_option_effects_table_by_hand(tmp_path):
    from conftest import hand_record, run_module, write_records

    metrics = lambda forget, speedup: {  # noqa: E731
        "forget_acc": forget, "retain_acc": 0.9, "test_acc": 0.8, "test_rest_acc": 0.85, "avg_gap": 0.1, "speedup": speedup,
    }
    defaults = {"lr": 1e-5, "batchnorm": "train"}
    records = [hand_record("boundary_shrink", s, metrics(0.2 + s / 10, 2.0), params=defaults) for s in (0, 1)]
    records += [hand_record("shrink_frozen_bn", s, metrics(0.9, 4.0), method_class="boundary_shrink",
                            params={**defaults, "batchnorm": "frozen"}) for s in (0, 1)]
    records += [hand_record("finetune", 0, metrics(0.5, 1.0), params={"lr": 0.02})]  # no variant: no row
    write_records(tmp_path, records)
    result = run_module("scripts.option_effects", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| digits")]
    assert rows == [
        "| digits | class:3 | boundary_shrink | defaults | 0.250 | 0.900 | 0.800 | 0.850 | 0.100 | 0.50 |",
        "| digits | class:3 | boundary_shrink | batchnorm=frozen | 0.900 | 0.900 | 0.800 | 0.850 | 0.100 | 0.25 |",
    ]
    assert "| defaults | 0.300 |" in run_module("scripts.option_effects", str(tmp_path), "--seeds", "1").stdout
    missing = run_module("scripts.option_effects", str(tmp_path / "none"))
    assert missing.returncode == 2 and "runs not found" in missing.stderr
    bad = run_module("scripts.option_effects", str(tmp_path), "--seeds", "a")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--seeds 'a': expected comma-separated integers" in bad.stderr


def test_class_forgetting_table_by_hand(tmp_path):
    from bench.running.results import rebuild_results_csv
    from conftest import hand_record, run_module, write_records

    metrics = lambda forget, rest, speedup: {"forget_acc": forget, "test_rest_acc": rest, "avg_gap": 0.1, "speedup": speedup}  # noqa: E731
    records = [hand_record("original", s, metrics(0.9, rest, float("inf"))) for s, rest in ((0, 0.90), (1, 0.80))]
    records += [hand_record("rl", s, metrics(forget, rest, speedup)) for s, forget, rest, speedup in ((0, 0.02, 0.82, 2.0), (1, 0.04, 0.80, 8.0))]
    records += [hand_record("ga", s, metrics(0.06, 0.85, 4.0)) for s in (0, 1)]  # does not forget enough
    records += [hand_record("ssd", s, metrics(0.0, 0.79, 4.0)) for s in (0, 1)]  # forgets, loses the rest
    # exactly on the bar, where float subtraction alone would fail it: 0.40 - 0.05 = 0.35000000000000003
    records += [hand_record(m, s, metrics(f, rest, v), dataset="letters") for s in (0, 1)
                for m, f, rest, v in (("original", 0.9, 0.40, float("inf")), ("bad_teacher", 0.05, 0.35, 4.0))]
    records += [hand_record("rl", 0, metrics(0.5, 0.5, 1.0), scenario="random:0.1")]  # not a class scenario: no table
    rebuild_results_csv(write_records(tmp_path, records))
    result = run_module("scripts.class_forgetting", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "digits class:3: mean (sd) over seeds 0, 1; the original's other classes 0.850"
    blocks = result.stdout.split("\n\n")  # a title and a table per group: digits, then letters
    assert [line for line in blocks[1].splitlines() if line.startswith("| ") and "---" not in line][1:] == [
        "| ga | 0.060 (0.000) | 0.850 (0.000) | 0.100 (0.000) | 0.25 | no | 0 of 2 |",
        "| original | 0.900 (0.000) | 0.850 (0.071) | 0.100 (0.000) | 0.00 | no | 0 of 2 |",
        # mean of 1/2 and 1/8; 0.810 >= 0.850 - 0.05 on the means, but seed 0's 0.82 < its original's 0.90 - 0.05
        "| rl | 0.030 (0.014) | 0.810 (0.014) | 0.100 (0.000) | 0.31 | yes | 1 of 2 |",
        "| ssd | 0.000 (0.000) | 0.790 (0.000) | 0.100 (0.000) | 0.25 | no | 1 of 2 |",  # seed 1: 0.79 >= 0.80 - 0.05
    ]
    assert "| bad_teacher | 0.050 (0.000) | 0.350 (0.000) | 0.100 (0.000) | 0.25 | yes | 2 of 2 |" in blocks[3]
    assert "random" not in result.stdout
    seed_1 = run_module("scripts.class_forgetting", str(tmp_path), "--seeds", "1").stdout
    assert "the original's other classes 0.800" in seed_1 and "| rl | 0.040 | 0.800 | 0.100 | 0.12 | yes | 1 of 1 |" in seed_1
    without_original = write_records(tmp_path / "no_original", [r for r in records if r["method"] != "original"])
    rebuild_results_csv(without_original)
    no_bar = run_module("scripts.class_forgetting", str(without_original)).stdout
    assert "| rl | 0.030 (0.014) | 0.810 (0.014) | 0.100 (0.000) | 0.31 | no | 0 of 2 |" in no_bar  # nothing to keep
    missing = run_module("scripts.class_forgetting", str(tmp_path / "none"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "results.csv not found" in missing.stderr


def test_rank_stability_by_hand(tmp_path):
    """Two sweeps' tuned variants ranked per scenario: Spearman, the pairs that swap, and which
    swaps lie within the seeds' noise (paired difference within 2 standard errors in either)."""
    from bench.running.results import rebuild_results_csv
    from conftest import hand_record, run_module, write_records

    values = {
        "a": {("class:3", "x"): [0.1, 0.1, 0.1], ("class:3", "y"): [0.2, 0.2, 0.2], ("class:3", "z"): [0.3, 0.31, 0.29],
              ("random:0.1", "x"): [0.1, 0.2, 0.0], ("random:0.1", "y"): [0.12, 0.1, 0.11], ("random:0.1", "w"): [0.5] * 3},
        "b": {("class:3", "x"): [0.1, 0.1, 0.1], ("class:3", "y"): [0.35, 0.33, 0.34], ("class:3", "z"): [0.3, 0.3, 0.3],
              ("random:0.1", "x"): [0.12, 0.1, 0.14], ("random:0.1", "y"): [0.1, 0.1, 0.1], ("random:0.1", "w"): [0.5] * 3},
    }
    for name, table in values.items():
        records = [hand_record(f"{method}+tuned", seed, {"avg_gap_auc": value}, scenario=scenario)
                   for (scenario, method), per_seed in table.items() for seed, value in enumerate(per_seed)]
        # defaults are not ranked: their order is the opposite in the two folders
        records += [hand_record("x", seed, {"avg_gap_auc": 0.9 if name == "a" else 0.0}) for seed in range(3)]
        rebuild_results_csv(write_records(tmp_path / name, records))
    result = run_module("scripts.rank_stability", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| digits")]
    assert rows == [
        "| digits | class:3 | 3 | 0.500 | 1 | 0 | y+tuned / z+tuned |",  # ranks 1 2 3 against 1 3 2: 1 - 6·2/24
        "| digits | random:0.1 | 3 | 0.500 | 1 | 1 | – |",  # x and y swap, but their difference is noise in a
    ]
    missing = run_module("scripts.rank_stability", str(tmp_path / "a"), str(tmp_path / "none"))
    assert missing.returncode == 2 and "results.csv not found" in missing.stderr
    wrong = run_module("scripts.rank_stability", str(tmp_path / "a"), str(tmp_path / "b"), "--objective", "nope")
    assert wrong.returncode == 2 and "no tuned variant has 'nope'" in wrong.stderr


def test_race_options_replay_each_rule_by_hand(monkeypatch):
    """One study, three seeds: the defaults (0.1 everywhere), a bad trial, a trial that starts
    well and ends worse, and one rejected by the cost cap (one cell under every rule)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from scripts.race_options import simulate

    trials = [(0, "complete", [0.1, 0.1, 0.1]), (1, "pruned", [0.5, 0.5, 0.5]), (2, "pruned", [0.09, 0.2, 0.2]),
              (3, "rejected", [0.3])]
    assert simulate(trials, 3, "none") == (10, pytest.approx(0.1))
    # the defaults' spread over seeds is 0: the race stops the bad trial after its first seed and
    # the third after its second (0.145 above 0.1)
    assert simulate(trials, 3, "race", 2.0) == (7, pytest.approx(0.1))
    # halving: the bad trial is outside the best third at seed 1 (0.5 > 0.233), the third at seed 2 (0.145 > 0.115)
    assert simulate(trials, 3, "halving") == (7, pytest.approx(0.1))
    # had the third trial been the best on every seed, halving would not have dropped it, nor the race
    better = trials[:2] + [(2, "pruned", [0.09, 0.08, 0.07])]
    assert simulate(better, 3, "race", 2.0)[1] == pytest.approx(0.08) and simulate(better, 3, "halving")[1] == pytest.approx(0.08)
