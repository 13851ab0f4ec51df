"""The tuner: studies resume, a kill loses only running trials, the test set is never read,
tuning seeds never overlap a sweep's, the objective, equal budgets, and sweeps running the
tuned variants."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
import yaml

from bench.config.sweep import load_config
from bench.data.datasets import holdout_validation, load_dataset
from bench.registry import method_names
from bench.tuning.studies import TrialOutcome
from bench.tuning.trials import judge
from bench.tuning.command import run_tune
from bench.config.tuning import TunedFile, TuningConfig
from conftest import ROOT, run_module, write_config


def tune_config(path, **overrides):
    """A tiny digits study: finetune on both scenarios, 3 trials each, one tuning seed."""
    settings = {
        "methods": ["original", {"name": "finetune", "params": {"epochs": 1}}],
        "tuning": {"seeds": [100], "trials": 3, "startup_share": 0.5},
        **overrides,
    }
    return write_config(path, **settings)


def trial_rows(db):
    """(study, number, state, value, params) of every trial in a study database."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT s.study_name, t.number, t.state, v.value FROM trials t JOIN studies s USING (study_id) "
            "LEFT JOIN trial_values v USING (trial_id) ORDER BY s.study_name, t.number"
        ).fetchall()
        params = connection.execute(
            "SELECT t.trial_id, s.study_name, t.number, p.param_name, p.param_value FROM trial_params p "
            "JOIN trials t USING (trial_id) JOIN studies s USING (study_id) ORDER BY 1, 4"
        ).fetchall()
    by_trial = {}
    for _id, study, number, name, value in params:
        by_trial.setdefault((study, number), {})[name] = value
    return [(study, number, state, value, tuple(sorted(by_trial.get((study, number), {}).items()))) for study, number, state, value in rows]


def test_holdout_validation_is_stratified_disjoint_and_drops_the_test_set():
    data = load_dataset("digits")
    view = holdout_validation(data, 0.1)
    assert len(view.test_y) == round(0.1 * len(data.train_y)) and len(view.train_y) + len(view.test_y) == len(data.train_y)
    # class shares of the held-out part follow the training set's (stratified) within one sample
    assert (torch.bincount(view.test_y, minlength=10) - torch.bincount(data.train_y, minlength=10) * 0.1).abs().max() <= 1
    rows = lambda x: {bytes(img.numpy().tobytes()) for img in x}  # noqa: E731
    assert not rows(view.train_x) & rows(view.test_x)  # no validation image is trained on
    assert not rows(data.test_x) & (rows(view.train_x) | rows(view.test_x))  # no test image anywhere
    assert holdout_validation(data, 50).test_y.shape == (50,)
    with pytest.raises(Exception, match="validation_size"):
        holdout_validation(data, len(data.train_y))


def test_judge_averages_the_objective_over_seeds_and_rejects_costly_or_failed_trials():
    def ok(gap, speedup, cost=0.5):
        return {"cell": "c", "status": "ok", "metrics": {"avg_gap_auc": gap, "speedup": speedup, "cost_ratio": cost}}

    tuning = TuningConfig(max_time_ratio=0.5)
    assert judge([ok(0.1, 4.0), ok(0.3, 4.0)], tuning) == TrialOutcome(
        "complete", value=pytest.approx(0.2), time_ratio=0.25, cost_ratio=0.5, seed_values=(0.1, 0.3),
    )
    slow = judge([ok(0.1, 4.0), ok(0.1, 1.0)], tuning)  # mean of 0.25 and 1.0 of retraining's time
    assert slow.state == "rejected" and slow.time_ratio == pytest.approx(0.625) and "max_time_ratio" in slow.reason
    costly = judge([ok(0.1, 4.0, cost=1.25)], TuningConfig())  # the default cap: retraining's operations
    assert costly.state == "rejected" and costly.cost_ratio == 1.25 and "over max_cost_ratio 1" in costly.reason
    assert judge([ok(0.1, 4.0, cost=1.25)], TuningConfig(max_cost_ratio=None)).state == "complete"
    failed = judge([ok(0.1, 4.0), {"cell": "x", "status": "failed", "error": "ValueError: boom"}], tuning)
    assert failed.state == "failed" and "boom" in failed.reason
    assert judge([ok(float("nan"), 4.0)], tuning).state == "failed"
    assert judge([ok(0.1, 1.0)], TuningConfig()).state == "complete"  # no time constraint by default


@pytest.mark.parametrize("args, message", [
    (["--set", "tuning.seeds=[0]"], "tuning.seeds: must not overlap seeds"),
    (["--trials", "0"], "--trials 0: must be a positive integer"),
    (["--set", "tuning.objective=test_acc"], "tuning.objective"),
    (["--methods", "nope"], "--methods: unknown method entry 'nope'; allowed: original, finetune"),
])
def test_bad_tuning_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    config = tune_config(tmp_path / "c.yaml")
    result = run_module("bench.tune", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unreadable_tuner_inputs_are_one_line_exit_2_and_write_nothing(tmp_path):
    """A config that is not UTF-8 text, a studies.db that is not SQLite and an --out that is a
    file: one line naming it, before any work; the damaged database is left as it was."""
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n")
    result = run_module("bench.tune", "--config", str(binary), "--out", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"config {str(binary)!r} is not UTF-8 text (byte 0: invalid start byte)" in result.stderr
    assert not (tmp_path / "out").exists()
    out = tmp_path / "damaged"
    out.mkdir()
    (out / "studies.db").write_bytes(b"not a database at all, just text")
    result = run_module("bench.tune", "--config", str(tune_config(tmp_path / "c.yaml")), "--out", str(out), "--no-progress")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{str(out / 'studies.db')!r} is not an SQLite database" in result.stderr
    assert [p.name for p in out.iterdir()] == ["studies.db"] and (out / "studies.db").read_bytes().startswith(b"not a database")
    (tmp_path / "a_file").write_text("")
    result = run_module("bench.tune", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "a_file"), "--no-progress")
    assert result.returncode == 2 and f"--out {str(tmp_path / 'a_file')!r} is not a folder" in result.stderr, result.stderr


def test_a_sweep_seed_equal_to_a_tuning_seed_is_refused(tmp_path):
    config = tune_config(tmp_path / "c.yaml")
    result = run_module("bench.sweep", "--config", str(config), "--seeds", "100", "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "tuning.seeds: must not overlap seeds" in result.stderr and "100" in result.stderr


def test_every_method_declares_its_space_with_sources_and_the_listing_shows_them():
    from bench.registry import get_method

    untuned = {"original", "retrain", "amnesiac_undo"}  # nothing that changes their result to search
    for name in method_names():
        method = get_method(name)
        assert bool(method.search_space) == (name not in untuned), name
        assert all(len(param.source) > 20 for param in method.search_space.values()), name
    listing = run_module("bench.methods").stdout
    for name in method_names():
        for field, param in get_method(name).search_space.items():
            assert f"{field}: {param.describe()}  [{param.source}]" in listing
    assert listing.count("search space: none") == len(untuned)
    assert "None: the authors' 10 epochs after 182 of training" in listing  # rl, salun, l1_sparse


def test_a_space_the_config_would_reject_is_refused_at_registration():
    from pydantic import Field

    from bench.registry import MethodConfig, UnlearningMethod, register
    from bench.registry.space import IntRange, LogUniform

    class Bad(UnlearningMethod):
        class Config(MethodConfig):
            epochs: int = Field(3, ge=1)

    Bad.search_space = {"epochs": IntRange(0, 3, "test")}
    with pytest.raises(Exception, match="greater than or equal to 1"):
        register("bad_space")(Bad)
    Bad.search_space = {"lr": LogUniform(1e-3, 1e-1, "test")}
    with pytest.raises(TypeError, match="not a field of its Config"):
        register("bad_space")(Bad)
    assert "bad_space" not in method_names()


def test_tuning_resumes_without_repeating_a_trial_and_keeps_the_budget_equal(tmp_path):
    config = tune_config(tmp_path / "c.yaml")
    out = tmp_path / "tuning"
    first = run_module("bench.tune", "--config", str(config), "--out", str(out), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "6 trials run in 4 studies" in first.stdout
    rows = trial_rows(out / "studies.db")
    tuned = TunedFile.model_validate(yaml.safe_load((out / "tuned.yaml").read_text()))
    again = run_module("bench.tune", "--config", str(config), "--out", str(out), "--no-progress")
    assert again.returncode == 0 and "0 trials run in 4 studies" in again.stdout
    assert trial_rows(out / "studies.db") == rows
    assert TunedFile.model_validate(yaml.safe_load((out / "tuned.yaml").read_text())).entries == tuned.entries
    for entry in tuned.entries:
        if entry.method == "original":
            assert entry.space == {} and entry.trials == 0 and entry.params == {}
            continue
        assert entry.trials == 3 == tuned.budget and len(entry.history) == 3
        # trial 0 is the entry's own parameters (epochs 1, lr 0.02): the default's objective
        assert entry.default_objective == entry.history[0]
        assert entry.objective == min(v for v in entry.history if v is not None)
        (path,) = out.glob(f"studies/*/runs/digits__{entry.scenario.replace(':', '')}__s100__finetune.t0.json")
        record = json.loads(path.read_text())
        assert record["params"]["epochs"] == 1 and record["params"]["lr"] == 0.02
        assert record["metrics"]["avg_gap_auc"] == entry.history[0]
    # a larger budget continues the same studies: 2 more trials each, the first 3 untouched
    more = run_module("bench.tune", "--config", str(config), "--out", str(out), "--trials", "5", "--no-progress")
    assert more.returncode == 0 and "4 trials run in 4 studies" in more.stdout
    assert [row for row in trial_rows(out / "studies.db") if row[1] < 3] == rows


def test_a_killed_study_resumes_keeping_every_completed_trial(tmp_path):
    config = tune_config(tmp_path / "c.yaml", scenarios=["random:0.1"],
                         tuning={"seeds": [100], "trials": 6, "startup_share": 0.5, "max_cost_ratio": None})  # every trial completes
    out, env = tmp_path / "tuning", {**os.environ, "UNLEARN_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "bench.tune", "--config", str(config), "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("studies/*/runs/*.t*.json"))) < 2:
        time.sleep(0.2)
    time.sleep(0.5)  # into the middle of the next trial
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = [row for row in trial_rows(out / "studies.db") if row[2] == "COMPLETE"]
    assert 2 <= len(before) < 6  # killed in the middle of the study
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{6 - len(before)} trials run" in result.stdout  # exactly the ones that had not ended
    after = trial_rows(out / "studies.db")
    assert set(before) <= set(after)  # every trial completed before the kill is kept as it was
    complete = [row for row in after if row[2] == "COMPLETE"]
    entry = next(e for e in TunedFile.model_validate(yaml.safe_load((out / "tuned.yaml").read_text())).entries if e.method == "finetune")
    assert entry.trials == 6 and len(complete) == 6  # the budget is met by trials that ran to the end
    assert all(state in ("COMPLETE", "FAIL") for _s, _n, state, _v, _p in after)


def test_a_sweep_runs_each_tuned_method_beside_its_default(tmp_path):
    config_path = tune_config(tmp_path / "c.yaml", scenarios=["class:3"])
    tuned = run_tune(load_config(config_path), tmp_path / "tuning", cache_dir=tmp_path / "cache", progress=False).tuned_file
    raw = yaml.safe_load(config_path.read_text())
    raw["tuned"] = str(tuned)
    config_path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    result = run_module("bench.sweep", "--config", str(config_path), "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "3 cells run" in result.stdout  # original, finetune, finetune+tuned (original has nothing to tune)
    entry = next(e for e in TunedFile.model_validate(yaml.safe_load(tuned.read_text())).entries if e.method == "finetune")
    record = json.loads((out / "runs" / "digits__class3__s0__finetune+tuned.json").read_text())
    from bench.registry import get_method

    expected = get_method("finetune").Config.model_validate({"epochs": 1, **entry.params}).model_dump()
    assert record["status"] == "ok" and record["params"] == expected and entry.params
    assert record["tuning"]["objective"] == entry.objective and record["tuning"]["budget"] == 3
    assert (out / "tuned.yaml").is_file()
    # a tuned file made for another recipe is refused before any work
    raw["datasets"][0]["recipe"]["epochs"] = 4
    config_path.write_text(yaml.safe_dump(raw))
    stale = run_module("bench.sweep", "--config", str(config_path), "--out", str(tmp_path / "o2"))
    assert stale.returncode == 2 and "was tuned for another dataset config" in stale.stderr
    assert not (tmp_path / "o2").exists()


def drivers_for(tmp_path, **tuning):
    """The studies of a tiny config and drivers on a fresh storage (no trial run)."""
    from bench.tuning.studies import StudyDriver, plan_studies
    from bench.tuning.local import prepare_tuning_data

    config = load_config(tune_config(tmp_path / "c.yaml", scenarios=["class:3"], tuning={"seeds": [100], "trials": 4, **tuning}))
    specs = [s for s in plan_studies(config, prepare_tuning_data(config, torch.device("cpu"))) if s.space]
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    return config, specs[0], storage, lambda: StudyDriver(specs[0], storage, config.tuning, config.tuning.trials)


def test_a_driver_killed_in_the_default_trial_runs_it_again_and_counts_only_ended_trials(tmp_path):
    _config, spec, _storage, new_driver = drivers_for(tmp_path)
    driver = new_driver()
    number, params, _race = driver.ask()
    assert params == spec.defaults() == {"lr": 0.02, "epochs": 1}  # trial 0: the entry's own values
    del driver  # killed while trial 0 ran
    driver = new_driver()
    assert driver.counted() == [] and driver.remaining() == 4
    again, params, _race = driver.ask()
    assert again == number + 1 and params == {"lr": 0.02, "epochs": 1}  # the default, enqueued again
    driver.tell(again, TrialOutcome("failed", reason="ValueError: the method's own failure"))
    third, _params, _race = driver.ask()
    driver.abandon(third, "RuntimeError: a worker was lost")  # not the method's: not counted, no more asks this run
    assert [t.number for t in driver.counted()] == [again] and driver.remaining() == 0
    driver = new_driver()  # the next run goes on
    assert driver.remaining() == 3
    entry = driver.result("h")
    assert entry.trials == 1 and entry.failed == 1 and entry.history == [None] and entry.params == {}


def test_trials_asked_at_once_get_different_parameters(tmp_path):
    _config, _spec, _storage, new_driver = drivers_for(tmp_path, parallel=3, startup_share=0.5)
    driver = new_driver()
    asked = [driver.ask()[1] for _ in range(3)]
    assert asked[0] == {"lr": 0.02, "epochs": 1} and asked[1] != asked[2] and len(driver.in_flight) == 3


def test_a_merged_files_note_and_tables_give_each_study_its_own_budget():
    from bench.report.tuning import late_best_counts, tuned_note

    def entry(dataset: str, budget: int | None, history: list[float]) -> dict:
        return {"dataset": dataset, "scenario": "class:3", "method": "ga", "method_class": "ga", "dataset_hash": "",
                "budget": budget, "history": history, "trials": len(history)}
    rules = {"sweep": "a + b", "budget": 20, "tuning_seeds": [100], "validation_size": 0.1, "objective": "avg_gap_auc", "config_hash": "x"}
    merged = TunedFile.model_validate({**rules, "entries": [entry("digits", 20, [0.5] * 19 + [0.1]), entry("mnist", 16, [0.5] * 15 + [0.1])]})
    assert tuned_note([merged]).startswith("§ +tuned: parameters chosen by python -m bench.tune (16-20 trials (one budget per dataset) per method")
    assert late_best_counts((merged, e) for e in merged.entries) == (2, 2)  # trial 15 is in the last fifth of 16, trial 19 of 20
    single = TunedFile.model_validate({**rules, "entries": [entry("digits", None, [0.1] + [0.5] * 19)]})
    assert "(20 trials per method" in tuned_note([single]) and single.budgets() == [20]
    assert "budget" not in single.model_dump(mode="json")["entries"][0]  # a single file is written as before
    assert [e["budget"] for e in merged.model_dump(mode="json")["entries"]] == [20, 16]


def tiny_tuned_file(raw: dict) -> dict:
    """A tuned file for ``tune_config``'s digits class:3: the original and finetune (lr 0.05, 3 epochs)."""
    from bench.config.sweep import DatasetConfig, dataset_hash
    from bench.registry import get_method

    tuned = {
        "sweep": "tiny", "budget": 3, "tuning_seeds": [100], "validation_size": 0.1, "objective": "avg_gap_auc", "config_hash": "x",
        "entries": [
            {"dataset": "digits", "scenario": "class:3", "method": "original", "method_class": "original", "dataset_hash": ""},
            {"dataset": "digits", "scenario": "class:3", "method": "finetune", "method_class": "finetune",
             "base_params": {"epochs": 1}, "space": {"lr": "log-uniform [0.0001, 0.1]", "epochs": "integer [1, 10]"},
             "defaults": {"lr": 0.02, "epochs": 1}, "params": {"lr": 0.05, "epochs": 3}, "trials": 3},
        ],
    }
    for entry in tuned["entries"]:
        entry["dataset_hash"] = dataset_hash(DatasetConfig.model_validate(raw["datasets"][0]))
        entry["method_params"] = get_method(entry["method_class"]).Config.model_validate(entry.get("base_params", {})).model_dump()
    return tuned


@pytest.mark.parametrize("change, message", [
    (lambda raw, tuned: raw.update(seeds=[100], tuning={"seeds": [7]}), "seeds: 100 chose the tuned file's parameters"),
    (lambda raw, tuned: raw["methods"][1]["params"].update(epochs=2), "was tuned from other base params"),
    (lambda raw, tuned: tuned["entries"][1]["params"].update(lr=-1.0), "are not valid for 'finetune' (lr: Input should be greater than 0)"),
    (lambda raw, tuned: tuned["entries"][1]["space"].update(lr="log-uniform [1, 2]"), "was tuned over another search space"),
    (lambda raw, tuned: tuned["entries"][1]["defaults"].update(lr=0.5), "was tuned from other defaults"),
    (lambda raw, tuned: tuned["entries"][1]["method_params"].update(momentum=0.5), "was tuned with other method parameters (differing: momentum)"),
    (lambda raw, tuned: raw["methods"].append({"name": "x+tuned", "method": "finetune"}), "names ending in '+tuned' are the tuned variants'"),
])
def test_a_tuned_file_that_does_not_fit_the_sweep_is_one_line_exit_2(tmp_path, change, message):
    config_path = tune_config(tmp_path / "c.yaml", scenarios=["class:3"])
    raw = yaml.safe_load(config_path.read_text())
    tuned = tiny_tuned_file(raw)
    raw["tuned"] = "tuned.yaml"
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(tuned))
    config_path.write_text(yaml.safe_dump(raw))
    assert load_config(config_path).tuned_variant("digits", "class:3", load_config(config_path).methods[1]).params == {"epochs": 3, "lr": 0.05}
    change(raw, tuned)
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(tuned))
    config_path.write_text(yaml.safe_dump(raw))
    result = run_module("bench.sweep", "--config", str(config_path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_tuned_files_tuned_alike_are_read_as_one_and_others_are_one_line_exit_2(tmp_path):
    config_path = tune_config(tmp_path / "c.yaml", scenarios=["class:3"])
    raw = yaml.safe_load(config_path.read_text())
    tuned = tiny_tuned_file(raw)
    first, second = dict(tuned, entries=tuned["entries"][:1]), dict(tuned, entries=tuned["entries"][1:], sweep="other")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(first))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(second))
    raw["tuned"] = ["a.yaml", "b.yaml"]
    config_path.write_text(yaml.safe_dump(raw))
    config = load_config(config_path)
    assert config.tuned.sweep == "tiny + other" and [e.method for e in config.tuned.entries] == ["original", "finetune"]
    assert config.tuned_variant("digits", "class:3", config.methods[1]).params == {"epochs": 3, "lr": 0.05}
    other = dict(tuned, budget=5, startup_trials=2, entries=[dict(entry, dataset="mnist") for entry in tuned["entries"]])
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(dict(tuned, startup_trials=1)))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(other))  # another dataset may have had another budget and random start
    config = load_config(config_path)
    assert [config.tuned.budget_of(e) for e in config.tuned.entries] == [3, 3, 5, 5] and config.tuned.budgets() == [3, 5]
    assert config.tuned.startup_trials is None  # no one file's random start stands for both datasets
    assert config.tuned_variant("digits", "class:3", config.methods[1]).params == {"epochs": 3, "lr": 0.05}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(first))
    for listed, second_file, message in [
        (["a.yaml", "b.yaml"], dict(second, budget=5), "tuned: 'b.yaml' gives digits 5 trials where 'a.yaml' gives 3 trials"),
        (["a.yaml", "b.yaml"], dict(second, tuning_seeds=[101]),
         "tuned: 'b.yaml' was tuned under other rules than 'a.yaml' (tuning_seeds: [101] against [100])"),
        (["a.yaml", "b.yaml"], dict(second, keep_defaults_z=2.0),  # one chose the best, the other kept defaults within noise
         "tuned: 'b.yaml' was tuned under other rules than 'a.yaml' (keep_defaults_z: 2.0 against None)"),
        (["a.yaml", "b.yaml"], dict(second, entries=tuned["entries"]), "tuned: 'b.yaml' and 'a.yaml' both hold original on digits class:3"),
        (["a.yaml", "b.yaml"], dict(second, entries=tuned["entries"][1:] * 2), "tuned: 'b.yaml' holds finetune on digits class:3 twice"),
        (["a.yaml", "b.yaml"], dict(second, startup_trials=2),
         "tuned: 'b.yaml' gives digits 3 trials (2 at random first) where 'a.yaml' gives 3 trials"),
        (["a.yaml", "a.yaml"], second, "names a file twice"),
        (["a.yaml", 3], second, "is not a list of paths"),
        ([], second, "tuned: an empty list names no file"),
    ]:
        (tmp_path / "b.yaml").write_text(yaml.safe_dump(second_file))
        raw["tuned"] = listed
        config_path.write_text(yaml.safe_dump(raw))
        result = run_module("bench.sweep", "--config", str(config_path), "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and message in result.stderr and not (tmp_path / "out").exists(), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_tuning_some_methods_keeps_every_entry_of_the_tuned_file(tmp_path):
    config = tune_config(tmp_path / "c.yaml", scenarios=["class:3"], methods=[
        "original", {"name": "finetune", "params": {"epochs": 1}}, {"name": "ft2", "method": "finetune", "params": {"epochs": 2}},
    ], tuning={"seeds": [100], "trials": 2, "startup_share": 0.5})
    out = tmp_path / "tuning"
    run = lambda *args: run_module("bench.tune", "--config", str(config), "--out", str(out), "--no-progress", *args)  # noqa: E731
    assert "2 trials run" in run("--methods", "finetune").stdout
    entries = {e.method: e for e in TunedFile.model_validate(yaml.safe_load((out / "tuned.yaml").read_text())).entries}
    assert entries["finetune"].trials == 2 and entries["ft2"].trials == 0 and set(entries) == {"original", "finetune", "ft2"}
    assert "2 trials run" in run("--methods", "ft2").stdout
    again = {e.method: e for e in TunedFile.model_validate(yaml.safe_load((out / "tuned.yaml").read_text())).entries}
    assert again["finetune"] == entries["finetune"] and again["ft2"].trials == 2
