"""Sequential requests, subpopulations and retain-only relearning, end to end on digits:
what each request is measured against, the clusters, the cumulative cost, the new metrics."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch

from bench.config.sweep import load_config
from bench.data.clusters import cached_class_clusters, cluster_class, kmeans
from bench.data.datasets import load_dataset
from bench.evaluation.config import RetainRelearnConfig
from bench.evaluation.costly import retain_finetune
from bench.evaluation.evaluate import SplitData
from bench.running.grid import prepare_data
from bench.running.results import COLUMNS, read_results_table, seed_matrix
from bench.sweep import main, run_sweep
from bench.training.loop import Preprocess
from conftest import ROOT, write_config

SCENARIOS = ["seq:2:class", "seq:2:random:0.05", "subclass:3:0"]
EVALUATION = {"retain_relearn": {"samples": 200, "epochs": 1}}
METHODS = ["original", "retrain", {"name": "finetune", "params": {"epochs": 1}}, "amnesiac_undo"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One tiny digits sweep of the three new kinds of scenario, with retain-only relearning."""
    folder = tmp_path_factory.mktemp("scenarios")
    config = load_config(write_config(folder / "c.yaml", scenarios=SCENARIOS, evaluation=EVALUATION, methods=METHODS))
    run_sweep(config, folder / "out", folder / "cache", progress=False)
    return folder / "out"


def record(out, scenario: str, method: str) -> dict:
    return json.loads((out / "runs" / f"digits__{scenario}__s0__{method}.json").read_text())


def test_each_request_is_measured_against_a_model_that_never_saw_any_request_so_far(swept):
    retrain = record(swept, "seq2-class", "retrain")
    assert [r["forget_size"] for r in retrain["requests"]] == [
        retrain["requests"][0]["request_size"], sum(r["request_size"] for r in retrain["requests"])
    ]
    for request in retrain["requests"]:  # retrained without both classes: neither is ever predicted right
        assert request["metrics"]["forget_acc"] == 0.0 and request["metrics"]["test_forget_class_acc"] == 0.0
        assert request["metrics"]["avg_gap"] == 0.0
    original = record(swept, "seq2-class", "original")
    assert all(r["metrics"]["forget_acc"] > 0.95 for r in original["requests"])
    assert original["metrics"] == original["requests"][-1]["metrics"]  # the record's metrics: the last request's


def test_cost_is_cumulative_over_requests(swept):
    finetune = record(swept, "seq2-random0.05", "finetune")
    times = [r["metrics"]["request_time_s"] for r in finetune["requests"]]
    retrain_s = [r["timings"]["retrain_s"] for r in finetune["requests"]]
    last = finetune["requests"][-1]["metrics"]
    assert last["time_s"] == pytest.approx(sum(times))
    assert last["speedup"] == pytest.approx(sum(retrain_s) / sum(times))
    assert finetune["requests"][0]["metrics"]["time_s"] == pytest.approx(times[0])


def test_a_method_that_needs_the_training_history_says_why_it_cannot_take_a_sequence(swept):
    undo = record(swept, "seq2-random0.05", "amnesiac_undo")
    assert undo["status"] == "not_applicable" and "first request" in undo["reason"]
    assert record(swept, "subclass3-0", "amnesiac_undo")["status"] == "ok"


def test_results_csv_has_one_row_set_per_request(swept):
    table = read_results_table(swept / "results.csv")
    assert list(table.columns) == COLUMNS
    requests = table.groupby("scenario")["request"].agg(["min", "max"])
    assert requests.loc["seq:2:class"].tolist() == [1, 2] and requests.loc["subclass:3:0"].tolist() == [1, 1]
    wide = seed_matrix(table)  # one row per cell: the sequence's last request
    assert not wide.index.duplicated().any()
    assert wide.loc[("digits", "seq:2:random:0.05", "finetune", 0), "time_s"] == pytest.approx(
        record(swept, "seq2-random0.05", "finetune")["metrics"]["time_s"]
    )
    old = table[table.request == 1].drop(columns="request")  # a table from before sequences reads as request 1
    old.to_csv(swept / "old.csv", index=False)
    assert set(read_results_table(swept / "old.csv")["request"]) == {1}


def test_a_subpopulation_is_forgotten_beside_the_rest_of_its_class(swept):
    retrain, original = record(swept, "subclass3-0", "retrain"), record(swept, "subclass3-0", "original")
    for metrics in (retrain["metrics"], original["metrics"]):
        assert {"test_forget_sub_acc", "test_rest_of_class_acc"} <= set(metrics)
    # the retrained model still knows class 3 from its other clusters
    assert retrain["metrics"]["test_rest_of_class_acc"] > 0.8
    assert original["metrics"]["test_forget_sub_acc"] >= retrain["metrics"]["test_forget_sub_acc"]


def test_retain_only_relearning_brings_back_no_class_the_data_lacks(swept):
    """Fine-tuning on retain data only cannot teach class 3 to a model retrained without it:
    its forget accuracy stays 0. Retrain measured against itself has no gap."""
    retrain = record(swept, "seq2-class", "retrain")["requests"][0]["metrics"]
    assert retrain["retain_relearn_forget_acc_retrain"] == 0.0 and retrain["retain_relearn_gap"] == 0.0
    original = record(swept, "seq2-class", "original")["metrics"]
    assert original["retain_relearn_forget_acc"] > 0.9 and original["retain_relearn_gap"] > 0.9


def test_retain_finetuning_is_seeded_and_trains_a_copy():
    """Two runs from the same generator give the same weights, and the caller's model is left
    as it was (that it never reads the forget set is shown by the sweep test above: a model
    retrained without class 3 stays at forget accuracy 0)."""
    data = load_dataset("digits")
    preprocess = Preprocess(*data.channel_stats(), None)
    retain = SplitData(data.train_x[:300], data.train_y[:300].numpy())
    from bench.data.models import build_model

    model = build_model("cnn", 1, 10, 8, 0)
    config = RetainRelearnConfig(samples=100, epochs=1, batch_size=32)
    first = retain_finetune(model, retain, config, preprocess, torch.Generator().manual_seed(3))
    second = retain_finetune(model, retain, config, preprocess, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert not torch.equal(next(first.parameters()), next(model.parameters()))  # it trained a copy


def test_kmeans_finds_separated_groups_and_is_deterministic():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    points = torch.cat([c + torch.randn(30, 2, generator=generator, dtype=torch.float64) for c in centres])
    found, assignment = kmeans(points, 3)
    groups = [set(assignment[i * 30:(i + 1) * 30].tolist()) for i in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3
    again, reassigned = kmeans(points, 3)
    assert torch.equal(found, again) and torch.equal(assignment, reassigned)


def test_class_clusters_depend_on_the_images_only_and_are_cached(tmp_path):
    prepared = prepare_data(load_config(write_config(tmp_path / "c.yaml")).datasets[0], torch.device("cpu"))
    data = prepared.data
    path = tmp_path / "clusters.safetensors"
    first = cached_class_clusters(path, prepared.fingerprint, data.train_x, data.train_y, 3, 4)
    fresh = cluster_class(data.train_x.clone(), data.train_y.clone(), 3, 4)
    loaded = cached_class_clusters(path, prepared.fingerprint, data.train_x, data.train_y, 3, 4)
    for other in (fresh, loaded):
        assert torch.equal(other.centres, first.centres) and torch.equal(other.train_assignment, first.train_assignment)
    assert sorted(set(first.train_assignment.tolist())) == [0, 1, 2, 3]
    assert set(data.train_y[first.train_members].tolist()) == {3}
    # every training member is nearest its own centre: the test samples are assigned by the same rule
    assert torch.equal(first.assign(data.train_x[first.train_members]), first.train_assignment)


@pytest.mark.parametrize("scenario, message", [
    ("seq:0:class", "requests must be an integer of at least 1"),
    ("seq:3:random:0.4", "3 disjoint requests of 0.4 each need requests x fraction < 1"),
    ("subclass:3:7", r"cluster must be an integer in 0..3"),
    ("subclass:12:0", r"class must be an integer in 0..9"),
])
def test_impossible_requests_exit_2_with_one_line_before_any_work(tmp_path, capsys, scenario, message):
    config = write_config(tmp_path / "c.yaml", scenarios=[scenario])
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(config), "--out", str(tmp_path / "out"), "--no-progress"])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "scenarios.0" in error and re.search(message, error)
    assert not (tmp_path / "out").exists()


def test_sequences_and_subpopulations_take_a_tuned_scenarios_parameters(tmp_path, capsys):
    scenarios = ["class:3", "random:0.1", "seq:2:random:0.05", "seq:2:class", "subclass:3:1"]
    config = load_config(write_config(tmp_path / "c.yaml", scenarios=scenarios, tuned_from={"seq:2:class": "class:3"}))
    assert config.tuned_scenarios() == ["class:3", "random:0.1"]
    assert [config.tuned_scenario(s) for s in scenarios] == ["class:3", "random:0.1", "random:0.05", "class:3", "class:3"]
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(write_config(tmp_path / "d.yaml", tuned_from={"seq:2:class": "seq:3:class"})),
              "--out", str(tmp_path / "out"), "--no-progress"])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "tuned_from.seq:2:class: 'seq:3:class' is not a tuned scenario" in error


def test_the_requests_profile_and_the_quick_sequence_are_valid_configs():
    requests = load_config(ROOT / "configs" / "requests.yaml", read_tuned=False)
    kinds = {s.split(":")[0] for s in requests.scenarios}
    assert {"seq", "subclass"} <= kinds and requests.evaluation.retain_relearn is not None
    assert {d.name for d in requests.datasets} == {"digits", "mnist"} and len(requests.seeds) == 3
    quick = load_config(ROOT / "configs" / "quick.yaml", read_tuned=False)
    assert any(s.startswith("seq:") for s in quick.scenarios)
