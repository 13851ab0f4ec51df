"""The report's tuning sections on hand-made tuned files and records: the tuning table and study
figure, the "did tuning hold" table, the tuned note, and a study with no completed trial."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.report import build_report
from conftest import hand_record, run_module, write_records
from report_hand import SEEDS, TUNED, VALUES, hand_records, md_row, value


def test_tuning_table_marks_and_study_figure(tmp_path):
    records = hand_records(seeds=(0, 1))
    tuned = {"finetune": [0.1, 0.12], "fcalb": [0.01, 0.015]}  # avg_gap of the tuned variants per seed
    for name, gaps in tuned.items():
        for seed, gap in enumerate(gaps):
            metrics = {m: value(name, m, seed) for m in VALUES[name]} | {"avg_gap": gap}
            records.append(hand_record(f"{name}+tuned", seed, metrics, method_class=name))
    folder = write_records(tmp_path / "h", records)
    (folder / "tuned.yaml").write_text(yaml.safe_dump(TUNED))
    report = build_report(folder, tmp_path / "plots")
    text = (report.tables_dir / "tuning__digits__class-3.md").read_text()
    row = md_row(text, "finetune")
    assert row[1] == "lr: log-uniform [0.0001, 0.1]" and row[2] == "4 of 4 (1 failed, 0 rejected)"
    assert row[3:] == ["lr=0.02", "lr=0.05", "0.400", "**0.100**"]
    assert md_row(text, "original")[1].startswith("none: tuned over nothing")
    # a better trial within noise of the defaults: they stand, and the row says so
    kept = "lr=0.02 (defaults kept: the best trial, 0.350, was better by less than the noise)"
    assert md_row(text, "rl")[4:] == [kept, "0.400", "0.400"]
    assert "the defaults kept unless beaten by more than 2 standard errors" in text
    main = (report.tables_dir / "main__digits__cnn__class-3.md").read_text()
    rows = [line.split("|")[1].strip() for line in main.splitlines() if line.startswith("| ") and "---" not in line][1:]
    # each tuned variant right after its defaults, marked; the proposed method's tuned variant last (not an ablation)
    assert rows == ["retrain", "original", "amnesiac_undo", "finetune", "finetune+tuned§", "broken", "fcalb", "fcalb+tuned§"]
    assert md_row(main, "fcalb+tuned§")[7] == "**0.013 ± 0.004**"  # the lowest average gap: bold
    assert "§ +tuned: parameters chosen by python -m bench.tune (4 trials per method on tuning seeds 100" in main
    assert "finetune+tuned§" in (report.tables_dir / "gap__digits__cnn__class-3.md").read_text()
    assert "$^{\\S}$" in (report.tables_dir / "main__digits__cnn__class-3.tex").read_text()
    figure = next(f for f in report.figures if f.name == "tuning__digits__class-3")
    assert figure.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "id='tuning__digits__class-3'" in report.html.read_text()
    # a malformed tuned file is one line naming it, and nothing is written
    (folder / "tuned.yaml").write_text("budget: many\n")
    result = run_module("bench.report", "--results", str(folder), "--out", str(tmp_path / "again"))
    assert result.returncode == 2 and "tuned.yaml" in result.stderr and not (tmp_path / "again").exists()


def held_entry(method: str, params: dict, defaults: dict, history: list, space: dict | None = None) -> dict:
    return {"dataset": "digits", "scenario": "class:3", "method": method, "method_class": method, "dataset_hash": "h",
            "space": {"lr": "log-uniform [0.0001, 0.1]"} if space is None else space, "defaults": defaults, "params": params,
            "objective": min(v for v in history if v is not None), "default_objective": history[0], "trials": len(history),
            "history": history}


# js_retrain of x on seeds 0, 1, 2 and the per-seed differences x+tuned − x (None: no x+tuned cell on that seed)
HELD = {
    "finetune": ([0.20, 0.30, 0.25], [0.10, 0.11, 0.12]),  # mean 0.11, SE 0.01/√3 = 0.0058: worse by > 2 SE
    "ga": ([0.40, 0.35, 0.30], [0.10, -0.10, 0.05]),  # mean 0.0167, SE 0.0601: within noise
    "rl": ([0.20], [0.30]),  # one seed: n/a, though far worse
    "salun": ([0.20, 0.22, 0.90], [0.05, 0.07, None]),  # seed 2 has no tuned cell: pairs 0, 1; mean 0.06, SE 0.01
    "ssd": ([0.10, 0.20, 0.30], [0.0, 0.0, 0.0]),  # other values, yet x+tuned's cells are x's (one computation)
}


def held_records() -> list[dict]:
    records = []
    for method, (values, differences) in HELD.items():
        for seed, (base, difference) in enumerate(zip(values, differences)):
            # avg_gap is a decoy: it says tuned is better everywhere; the tuned file's objective is js_retrain
            records.append(hand_record(method, seed, {"js_retrain": base, "avg_gap": 0.5}))
            if difference is not None:
                records.append(hand_record(method + "+tuned", seed, {"js_retrain": base + difference, "avg_gap": 0.1},
                                           method_class=method))
    records += [hand_record("scrub", s, {"js_retrain": 0.3, "avg_gap": 0.5}) for s in SEEDS]  # kept its defaults: no x+tuned
    records += [hand_record("original", s, {"js_retrain": 0.6, "avg_gap": 0.5}) for s in SEEDS]
    return records


HELD_TUNED = {
    "sweep": "hand", "budget": 10, "tuning_seeds": [100], "validation_size": 0.1, "objective": "js_retrain", "config_hash": "x",
    "entries": [
        held_entry("finetune", {"lr": 0.05}, {"lr": 0.02}, [0.3, 0.25, None, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.1]),  # best at 9: late
        held_entry("ga", {"lr": 0.05}, {"lr": 0.02}, [0.3, 0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.1, 0.2]),  # first best at 1
        held_entry("rl", {"lr": 0.05}, {"lr": 0.02}, [0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.05]),  # best at 8: late
        held_entry("salun", {"lr": 0.05}, {"lr": 0.02}, [0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.1]),  # best at 7: not late
        held_entry("ssd", {"lr": 0.05}, {"lr": 0.02}, [0.3, 0.2]),
        held_entry("scrub", {"lr": 0.02}, {"lr": 0.02}, [0.3, None, 0.4]),
        {"dataset": "digits", "scenario": "class:3", "method": "original", "method_class": "original", "dataset_hash": "h"},
    ],
}


def test_tuning_held_table_by_hand(tmp_path):
    folder = write_records(tmp_path / "h", held_records())
    (folder / "tuned.yaml").write_text(yaml.safe_dump(HELD_TUNED))
    report = build_report(folder, tmp_path / "plots", figures=False)
    text = (report.tables_dir / "tuning_held.md").read_text()
    # method, dataset, scenario, validation (defaults, tuned), seeds: defaults, tuned, difference, pairs
    assert md_row(text, "finetune") == [
        "finetune", "digits", "class:3", "0.300", "0.100", "0.250 ± 0.029", "0.360 ± 0.032", "**+0.110 ± 0.006** worse", "3"]
    assert md_row(text, "ga")[5:] == ["0.350 ± 0.029", "0.367 ± 0.073", "+0.017 ± 0.060", "3"]
    assert md_row(text, "rl")[5:] == ["0.200", "0.500", "n/a", "1"]
    assert md_row(text, "salun")[5:] == ["0.440 ± 0.230 (n=3)", "0.270 ± 0.020", "**+0.060 ± 0.010** worse", "2"]
    assert md_row(text, "ssd")[5:] == ["0.200 ± 0.058", "0.200 ± 0.058", "same as defaults", "3"]
    assert md_row(text, "scrub")[5:] == ["0.300 ± 0.000 (n=3)", "same as defaults", "same as defaults", "0"]
    assert "| original |" not in text  # no search space, no study
    assert ("2 of 3 studies: tuned worse than defaults by more than 2 SE (of 6 studies: 3 compared on 2 or more paired seeds, "
            "2 same as defaults, 1 with fewer than 2 paired seeds).") in text
    # best at trial index >= 0.8 x 10: finetune (9) and rl (8); not ga (its first best, 1), salun (7), ssd (1), scrub (0)
    assert "Best in the last fifth of the budget: 2 of 6 studies." in text
    assert "Best in the last fifth of the budget: 2 of 6 studies." in (report.tables_dir / "tuning__digits__class-3.md").read_text()
    frame = pd.read_csv(report.tables_dir / "tuning_held.csv").set_index("method")
    assert list(frame.index) == ["finetune", "ga", "rl", "salun", "ssd", "scrub"]
    assert list(frame["worse"]) == [True, False, False, True, False, False]
    assert frame.loc["finetune", "difference_mean"] == pytest.approx(0.11)
    assert frame.loc["finetune", "difference_se"] == pytest.approx(0.01 / np.sqrt(3))
    assert frame.loc["ga", "difference_se"] == pytest.approx(np.std([0.1, -0.1, 0.05], ddof=1) / np.sqrt(3))
    assert frame.loc["salun", "n_pairs"] == 2 and frame.loc["salun", "difference_mean"] == pytest.approx(0.06)
    assert frame.loc["salun", "tuned_n"] == 2 and frame.loc["salun", "defaults_n"] == 3
    assert frame.loc["ssd", "same_as_defaults"] and frame.loc["scrub", "same_as_defaults"] and not frame.loc["ga", "same_as_defaults"]
    assert (frame["objective"] == "js_retrain").all()
    tex = (report.tables_dir / "tuning_held.tex").read_text()
    assert r"\textbf{+0.110 $\pm$ 0.006} worse" in tex and "2 of 3 studies" in tex
    assert "id='tuning_held'" in report.html.read_text()


def test_the_tuned_note_states_the_race_and_the_cost_cap():
    from bench.report.tuning import tuned_note
    from bench.config.tuning import TunedFile

    raced = TunedFile.model_validate({**TUNED, "tuning_seeds": [100, 101, 102], "race_z": 2.0, "max_cost_ratio": 1.0,
                                      "objective": "avg_gap_auc", "budget": 20})
    assert tuned_note([raced]) == (
        "§ +tuned: parameters chosen by python -m bench.tune (20 trials per method on tuning seeds 100, 101, 102 (raced, "
        "z = 2), the defaults kept unless beaten by more than 2 standard errors, avg_gap_auc on 0.1 of the training set "
        "held out as validation, trials over 1× retraining's operations rejected).")
    one_seed = tuned_note([TunedFile.model_validate({**TUNED, "tuning_seeds": [100]})])
    assert "raced" not in one_seed and "rejected" not in one_seed and "defaults kept" not in one_seed  # no spread to judge by


def test_a_study_with_no_completed_trial_has_no_tuned_variant_and_says_so():
    """UNSIR on random forgetting: every trial over the cost cap, so no params and no x+tuned
    cells; the held table says "no tuned variant", counts it apart and judges nothing."""
    from bench.report.tuning import held_summary, study_check
    from bench.config.tuning import TunedFile

    file = TunedFile.model_validate({**TUNED, "objective": "avg_gap_auc", "entries": [
        {"dataset": "digits", "scenario": "random:0.1", "method": "unsir", "method_class": "unsir", "dataset_hash": "h",
         "space": {"impair_lr": "log-uniform [1e-05, 0.1]"}, "defaults": {"impair_lr": 0.02}, "params": {},
         "trials": 4, "rejected": 4, "history": [None] * 4}]})
    records = [hand_record("unsir", s, {"avg_gap_auc": 0.4}, scenario="random:0.1") for s in (0, 1, 2)]
    check = study_check(records, file, file.entries[0])
    assert check.untuned and not check.compared and not check.worse and check.defaults.n == 3
    assert held_summary([check]) == ("0 of 0 studies: tuned worse than defaults by more than 2 SE (of 1 studies: 0 compared on 2 "
                                     "or more paired seeds, 0 same as defaults, 1 with no tuned variant (no trial completed), "
                                     "0 with fewer than 2 paired seeds).")


