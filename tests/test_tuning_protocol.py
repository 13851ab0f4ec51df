"""The tuning protocol's parts, each against a hand-worked answer: the race, the startup
share, a sampler per study, the cost cap's operation count, cells that are what they
compute (one cell for x and x+tuned of equal parameters, whatever their names), work kept
across trials, and a stored trial re-run to its stored value."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from bench.running.cells import Measure, run_cell
from bench.config.sweep import load_config
from bench.running.grid import Cell, cell_key, config_numerics, prepare_data
from bench.running.model_store import ModelStore
from bench.data.splits import parse_scenario
from bench.config.tuning import TuningConfig
from bench.tuning.studies import Race, TrialOutcome, defaults_stand, race_for
from conftest import run_module, write_config


def test_the_race_stops_a_trial_only_when_clearly_worse_on_the_same_seeds():
    race = Race(incumbent=(0.10, 0.12, 0.14), sigma=0.01, z=2.0)
    # after one seed the bar is 2 * 0.01 * sqrt(2) = 0.0283 above the incumbent's first value
    assert race.stops([0.129]) and not race.stops([0.127])
    # after two: 2 * 0.01 * sqrt(2 / 2) = 0.02 above the incumbent's mean on them, 0.11
    assert race.stops([0.13, 0.1305]) and not race.stops([0.13, 0.129])
    assert not race.stops([9.0, 9.0, 9.0])  # on every seed it is complete, never pruned
    assert not Race(incumbent=(0.1,), sigma=None, z=2.0).stops([9.0])  # no spread measured yet
    assert not Race(incumbent=(0.1, 0.1), sigma=0.01, z=None).stops([9.0])  # racing off


def test_the_race_pools_the_spread_of_finished_trials_and_follows_the_best():
    race = race_for([(0.1, 0.2, 0.3), (0.5, 0.5, 0.5), ()], z=2.0)
    assert race.incumbent == (0.1, 0.2, 0.3)
    assert race.sigma == pytest.approx(math.sqrt((0.01 + 0.0) / 2))  # variances 0.01 and 0: pooled
    assert race_for([], z=2.0) == Race(z=2.0) and race_for([(0.1, 0.2)], z=None).sigma is None


def test_the_defaults_stand_unless_beaten_beyond_noise():
    # sigma 0.01 on 3 seeds: the bar is 2 * 0.01 * sqrt(2 / 3) = 0.01633 below the defaults' mean
    defaults = (0.19, 0.20, 0.21)
    assert defaults_stand((0.175, 0.185, 0.195), defaults, sigma=0.01, z=2.0)  # 0.015 better: noise
    assert not defaults_stand((0.173, 0.183, 0.193), defaults, sigma=0.01, z=2.0)  # 0.017 better: a finding
    assert not defaults_stand((0.19, 0.20, 0.21), defaults, sigma=0.01, z=None)  # rule off: the best
    assert not defaults_stand((0.19,), (0.20,), sigma=None, z=2.0)  # one tuning seed, no spread: the best


DEFAULTS_RUN = (0.19, 0.20, 0.21)


@pytest.mark.parametrize("defaults_state, second, chosen, kept", [
    ("complete", (0.18, 0.19, 0.20), 0, True),  # 0.01 better, the bar 0.0163: the defaults stand
    ("complete", (0.10, 0.11, 0.12), 1, False),  # 0.09 better: a finding
    ("complete", (0.29, 0.30, 0.31), 0, False),  # the defaults are the best: chosen as such, nothing kept
    ("rejected", (0.18, 0.19, 0.20), 1, False),  # defaults over the cost cap: never chosen, the best is
])
def test_a_study_keeps_its_defaults_when_its_best_is_within_noise(tmp_path, defaults_state, second, chosen, kept):
    from bench.tuning.local import prepare_tuning_data
    from bench.tuning.studies import StudyDriver, plan_studies

    config = load_config(write_config(
        tmp_path / "c.yaml", scenarios=["class:3"], methods=[{"name": "finetune", "params": {"epochs": 1}}],
        tuning={"seeds": [100, 101, 102], "trials": 3},
    ))
    spec = plan_studies(config, prepare_tuning_data(config, torch.device("cpu")))[0]
    driver = StudyDriver(spec, f"sqlite:///{tmp_path / 's.db'}", config.tuning, 3)
    runs = [DEFAULTS_RUN, second, (0.50, 0.52, 0.51)]  # pooled sigma 0.01 over the complete ones
    asked = []
    for index, values in enumerate(runs):
        number, params, _ = driver.ask()
        state = defaults_state if index == 0 else "complete"
        driver.tell(number, TrialOutcome(state, value=sum(values) / 3 if state == "complete" else None,
                                         seed_values=values if state == "complete" else values[:1]))
        asked.append(params)
    entry = driver.result("hash")
    assert entry.defaults_kept is kept and entry.best_trial == chosen and entry.params == asked[chosen]
    assert entry.params != asked[1 - chosen] and entry.objective == pytest.approx(sum(runs[chosen]) / 3)
    means = [None if defaults_state != "complete" else pytest.approx(sum(runs[0]) / 3)] + [pytest.approx(sum(v) / 3) for v in runs[1:]]
    assert entry.history == means  # the search's record is whole either way


def test_the_selection_rule_is_not_in_a_studys_key():
    """Rewriting a tuned file under another keep_defaults_z reads the same studies (a running
    tuning's studies among them); a rule that decides trials starts new ones."""
    from bench.config.sweep import DatasetConfig, MethodEntry
    from bench.evaluation.config import EvaluationConfig
    from bench.tuning.studies import study_key

    def key(tuning: TuningConfig) -> str:
        return study_key(DatasetConfig(name="digits"), "f", "class:3", MethodEntry(name="finetune", method="finetune"), tuning,
                         EvaluationConfig(), {})

    assert key(TuningConfig(keep_defaults_z=2.0)) == key(TuningConfig(keep_defaults_z=None)) == key(TuningConfig(keep_defaults_z=1))
    assert key(TuningConfig(race_z=1.0)) != key(TuningConfig())


def test_startup_trials_are_a_share_of_the_budget():
    assert TuningConfig(trials=20).startup_trials() == 5
    assert TuningConfig(trials=3, startup_share=0.25).startup_trials() == 1
    assert TuningConfig(trials=10, startup_share=0.5).startup_trials() == 5
    assert TuningConfig().seeds == [100, 101, 102] and TuningConfig().race_z == 2.0 and TuningConfig().max_cost_ratio == 1.0
    assert TuningConfig().keep_defaults_z == 2.0
    with pytest.raises(Exception, match="must be unique"):
        TuningConfig(seeds=[100, 100])


def test_every_study_draws_its_own_random_points(tmp_path):
    from bench.tuning.local import prepare_tuning_data
    from bench.tuning.studies import StudyDriver, plan_studies

    config = load_config(write_config(
        tmp_path / "c.yaml", methods=[{"name": "finetune", "params": {"epochs": 1}}],
        tuning={"seeds": [100], "trials": 4, "startup_share": 1.0},
    ))
    specs = plan_studies(config, prepare_tuning_data(config, torch.device("cpu")))
    assert [s.scenario.spec for s in specs] == ["class:3", "random:0.1"]
    draws = []
    for index, spec in enumerate(specs):
        driver = StudyDriver(spec, f"sqlite:///{tmp_path / f'{index}.db'}", config.tuning, 4)
        driver.ask()  # trial 0: the defaults, the same in both
        draws.append(driver.ask()[1])
    assert draws[0] != draws[1]  # seeded per study, not per method alone


def tiny(tmp_path, methods, **overrides):
    return load_config(write_config(tmp_path / "c.yaml", scenarios=["class:3"], methods=methods, **overrides))


def one_cell(tmp_path, config, entry_index: int = 0, measure: Measure = Measure(), models=None):
    prepared = prepare_data(config.datasets[0], torch.device("cpu"))
    cell = Cell(config.datasets[0], parse_scenario("class:3", 10), 0, config.methods[entry_index])
    models = models or ModelStore(tmp_path / "cache", torch.device("cpu"), False, numerics=config_numerics(config))
    return run_cell(cell, prepared, models, tmp_path / "out", config, {}, measure), models


def test_the_cost_cap_counts_operations_as_a_share_of_retraining(tmp_path):
    """Fine-tuning on the retain set for e epochs does e / 3 of a 3-epoch retraining's
    operations, exactly: the same images, the same model, forward and backward."""
    config = tiny(tmp_path, [{"name": f"ft{e}", "method": "finetune", "params": {"epochs": e}} for e in (1, 2, 6)])
    ratios = [one_cell(tmp_path, config, i, Measure(count_flops=True))[0]["metrics"]["cost_ratio"] for i in range(3)]
    assert ratios == pytest.approx([1 / 3, 2 / 3, 2.0], rel=1e-12)
    record, _ = one_cell(tmp_path, config, 0)
    assert "cost_ratio" not in record["metrics"]  # a sweep cell is not slowed by the count
    # counted under autograd.grad on an input (FGSM), which PyTorch's own counter's module hooks break
    shrink = tiny(tmp_path, ["boundary_shrink"])
    counted, _ = one_cell(tmp_path, shrink, 0, Measure(count_flops=True))
    assert counted["status"] == "ok" and 0 < counted["metrics"]["cost_ratio"] < 1, counted.get("error")


def test_a_trial_measures_only_what_its_objective_reads(tmp_path):
    config = tiny(tmp_path, ["ssd"])
    full, _ = one_cell(tmp_path, config)
    lean, _ = one_cell(tmp_path, config, measure=Measure(attacks=frozenset({"mia_auc"}), count_flops=True, memory=False, save_logits=False))
    assert {"mia_conf_svc", "mia_entropy", "mia_loss_cv", "avg_gap", "avg_gap_entropy"} <= set(full["metrics"])
    assert not {"mia_conf_svc", "mia_entropy", "mia_loss_cv", "avg_gap", "avg_gap_entropy"} & set(lean["metrics"])
    assert lean["metrics"]["avg_gap_auc"] == full["metrics"]["avg_gap_auc"] and "logits_file" not in lean
    assert full["metrics"]["avg_gap"] == pytest.approx(sum(
        full["metrics"][f"gap_{m}"] for m in ("forget_acc", "retain_acc", "test_acc", "mia_conf_svc")) / 4)


def test_work_kept_across_runs_changes_no_result_and_is_charged(tmp_path):
    """SSD's importances, computed once per original model and split: a second run (another
    trial) reuses them, gives the same model, and is charged their time and operations."""
    config = tiny(tmp_path, ["ssd", {"name": "ssd_b", "method": "ssd", "params": {"alpha": 5.0}}])
    counting = Measure(count_flops=True)
    first, models = one_cell(tmp_path, config, 0, counting)
    assert len(next(iter(models._shared.values()))) == 2  # forget and training-set importances kept
    again, _ = one_cell(tmp_path, config, 0, counting, models)
    alone, _ = one_cell(tmp_path / "other", config, 0, counting)
    for name in ("forget_acc", "retain_acc", "test_acc", "mia_auc", "flops"):
        assert first["metrics"][name] == again["metrics"][name] == alone["metrics"][name], name
    assert again["metrics"]["time_s"] >= 0.5 * first["metrics"]["time_s"]  # charged, not free
    other, _ = one_cell(tmp_path, config, 1, counting, models)
    assert other["metrics"]["flops"] == first["metrics"]["flops"]  # alpha changes no operation count


def test_a_cell_is_what_it_computes_not_what_it_is_called(tmp_path):
    """``rl`` leaves its epochs to the setting (None: 10 of 182 training epochs, scaled to 3:
    one); an entry of another name that sets epochs 1 is the same computation: one key, one
    random stream, one cell run, the other recorded as the same."""
    config = tiny(tmp_path, ["rl", {"name": "rl_one", "method": "rl", "params": {"epochs": 1}},
                             {"name": "rl_two", "method": "rl", "params": {"epochs": 2}}])
    prepared = prepare_data(config.datasets[0], torch.device("cpu"))
    cells = [Cell(config.datasets[0], parse_scenario("class:3", 10), 0, m) for m in config.methods]
    keys = [cell_key(c, prepared, config.evaluation, config_numerics(config)) for c in cells]
    assert keys[0] == keys[1] != keys[2]
    result = run_module("bench.sweep", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "2 cells run, 0 already finished, 1 the same computation as another cell" in result.stdout
    rl, one = (json.loads((tmp_path / "out" / "runs" / f"digits__class3__s0__{n}.json").read_text()) for n in ("rl", "rl_one"))
    assert one["same_as"] == rl["cell"] and one["metrics"] == rl["metrics"] and one["cell_key"] == rl["cell_key"]
    assert one["params"]["epochs"] == 1 and rl["params"]["epochs"] is None and rl["setting_params"]["epochs"] == 1
    again = run_module("bench.sweep", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"), "--no-progress")
    assert "0 cells run, 3 already finished, 0 failed" in again.stdout
    # run alone under its own name, the copy draws the same numbers as the original entry did
    alone = run_module("bench.sweep", "--config", str(tmp_path / "c.yaml"), "--methods", "rl_one", "--out", str(tmp_path / "o2"), "--no-progress")
    assert alone.returncode == 0, alone.stderr
    solo = json.loads((tmp_path / "o2" / "runs" / "digits__class3__s0__rl_one.json").read_text())
    assert "same_as" not in solo and solo["metrics"]["forget_acc"] == rl["metrics"]["forget_acc"]
    assert solo["metrics"]["avg_gap_auc"] == rl["metrics"]["avg_gap_auc"]


def test_a_tuned_variant_with_the_defaults_parameters_is_the_default_cell(tmp_path):
    from bench.config.sweep import DatasetConfig, dataset_hash
    from bench.registry import get_method

    config_path = write_config(tmp_path / "c.yaml", scenarios=["class:3"], methods=["ssd"], tuned="tuned.yaml")
    raw = yaml.safe_load(config_path.read_text())
    defaults = {"alpha": 10.0, "dampening": 1.0}
    entry = {
        "dataset": "digits", "scenario": "class:3", "method": "ssd", "method_class": "ssd", "space": {
            name: param.describe() for name, param in get_method("ssd").search_space.items()},
        "dataset_hash": dataset_hash(DatasetConfig.model_validate(raw["datasets"][0])),
        "method_params": get_method("ssd").Config().model_dump(), "defaults": defaults, "params": dict(defaults), "trials": 3,
    }
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump({
        "sweep": "tiny", "budget": 3, "tuning_seeds": [100], "validation_size": 0.1, "objective": "avg_gap_auc",
        "config_hash": "x", "entries": [entry],
    }))
    result = run_module("bench.sweep", "--config", str(config_path), "--out", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "1 cells run, 0 already finished, 1 the same computation" in result.stdout
    tuned = json.loads((tmp_path / "out" / "runs" / "digits__class3__s0__ssd+tuned.json").read_text())
    assert tuned["same_as"] == "digits__class3__s0__ssd" and tuned["tuning"]["params"] == defaults


def test_a_stored_trial_run_again_gives_its_stored_values(tmp_path):
    """With a model cache of its own (every model trained again), each seed's value of a
    stored trial comes back bit for bit."""
    config = write_config(
        tmp_path / "c.yaml", scenarios=["random:0.1"], methods=[{"name": "finetune", "params": {"epochs": 1}}],
        resources={"cpus": 1}, tuning={"seeds": [100, 101], "trials": 2, "startup_share": 0.5, "race_z": None},
    )
    out = tmp_path / "tuning"
    tuned = run_module("bench.tune", "--config", str(config), "--out", str(out), "--cache", str(tmp_path / "c1"), "--no-progress")
    assert tuned.returncode == 0, tuned.stderr
    study = next(p.name for p in (out / "studies").iterdir())
    replay = run_module("bench.tune", "--config", str(config), "--out", str(out), "--cache", str(tmp_path / "c2"), "--replay", f"{study}#1")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    stored = yaml.safe_load((out / "tuned.yaml").read_text())["entries"][0]["history"][1]
    assert f"trial {study}#1: identical" in replay.stdout and repr(stored) != "None"
    assert replay.stdout.count("DIFFERS") == 0 and replay.stdout.count("seed 10") == 2
    bad = run_module("bench.tune", "--config", str(config), "--out", str(out), "--replay", f"{study}#9")
    assert bad.returncode == 2 and "has no trial 9 that ran" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
