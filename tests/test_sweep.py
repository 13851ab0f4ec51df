"""The sweep: every cell recorded, resume, determinism, config errors, the retrain reference."""

from __future__ import annotations

import gc
import json
import re

import numpy as np
import pandas as pd
import pytest

from bench.config.sweep import load_config
from bench.evaluation.evaluate import load_logits
from bench.running.results import COLUMNS, COST_METRICS
from bench.sweep import main, run_sweep
from conftest import ROOT, run_module, write_config


def sweep(config_path, out, cache, *args):
    result = run_module("bench.sweep", "--config", str(config_path), "--out", str(out), "--cache", str(cache), "--no-progress", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_cell_is_recorded_and_a_rerun_resumes(tmp_path):
    config = write_config(tmp_path / "c.yaml")
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert "6 cells run, 0 already finished, 0 failed" in sweep(config, out, cache)
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == COLUMNS
    cells = table.groupby(["dataset", "scenario", "seed", "method"]).size()
    assert len(cells) == 6 and set(table["status"]) == {"ok"}
    record = json.loads((out / "runs" / "digits__class3__s0__retrain.json").read_text())
    # class 3 in the 1,293 digits the sweep trains on: the 1,437 less the tuner's 144 validation images
    assert record["split"]["forget_size"] == 131 and record["split"]["forget_size"] + record["split"]["retain_size"] == 1293
    assert (out / record["split"]["file"]).is_file()
    logits, labels = load_logits(out / record["logits_file"])
    assert logits["forget"].shape == (131, 10) and (labels["forget"] == 3).all()
    assert record["metrics"]["forget_acc"] == float((logits["forget"].argmax(1) == labels["forget"]).mean())

    assert "0 cells run, 6 already finished" in sweep(config, out, cache)
    (out / "runs" / "digits__random0.1__s0__finetune.json").unlink()
    assert "1 cells run, 5 already finished" in sweep(config, out, cache)
    # a changed hyper-parameter re-runs exactly that method's cells
    assert "2 cells run, 4 already finished" in sweep(config, out, cache, "--set", "methods.2.params.lr=0.01")
    # --seeds and --methods narrow or widen the grid; models of seed 1 are trained, seed 0's are reused
    assert "2 cells run, 0 already finished" in sweep(config, out, cache, "--seeds", "1", "--methods", "original")


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml", scenarios=["random:0.1"]))
    first = run_sweep(config, tmp_path / "a", tmp_path / "cache_a", progress=False)
    assert gc.get_freeze_count() == 0  # what warm_up froze for the cells is the collector's again
    second = run_sweep(config, tmp_path / "b", tmp_path / "cache_b", progress=False)
    a, b = (pd.read_csv(s.results_csv) for s in (first, second))
    quality = lambda t: t[~t.metric.isin(COST_METRICS)].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(quality(a), quality(b))
    for name in ("original", "retrain", "finetune"):
        la, _ = load_logits(tmp_path / "a" / "runs" / f"digits__random0.1__s0__{name}.logits.npz")
        lb, _ = load_logits(tmp_path / "b" / "runs" / f"digits__random0.1__s0__{name}.logits.npz")
        assert all(np.array_equal(la[k], lb[k]) for k in la)


@pytest.mark.parametrize(
    "override, message",
    [
        ("datasets.0.name=svhn", "datasets.0.name: unknown dataset 'svhn'; allowed: cifar10, digits, fashion_mnist, imagefolder, mnist"),
        ("datasets.0.model=vgg", "datasets.0.model: unknown model 'vgg'; allowed: allcnn, cnn, resnet18"),
        ("methods=[nope]", "methods.0: unknown method 'nope'; allowed: "),
        ("datasets.0.recipe.epoch=2", "datasets.0.recipe.epoch: unknown field; allowed: optimizer, epochs, batch_size, lr"),
        ("datasets.0.recipe.epochs=two", "datasets.0.recipe.epochs: Input should be a valid integer"),
        ("datasets.0.recipe.schedule=step", "datasets.0.recipe.schedule: Input should be 'onecycle', 'cosine' or 'constant'"),
        ("scenarios=['class:10']", "scenarios.0 for dataset 'digits': scenario 'class:10': class must be an integer in 0..9"),
        ("scenarios=['random:1.5']", r"scenario 'random:1.5': fraction must be a number in (0, 1)"),
        ("scenarios=['pixel:3']", "unknown kind 'pixel'; allowed: class:<k>, random:<fraction>"),
        ("methods=[{name: finetune, params: {epochs: 0}}]", "methods.0: params of 'finetune': epochs: Input should be greater than or equal to 1"),
        ("methods=[{name: finetune, params: {lr_max: 1}}]", "methods.0: params of 'finetune': lr_max: unknown field; allowed: epochs, lr"),
        ("colour=blue", "colour: unknown field; allowed: sweep, datasets, scenarios, seeds, methods, device, evaluation"),
        ("evaluation.relearn.alpha=2", "evaluation.relearn.alpha: Input should be less than 1"),
        ("evaluation.forget_quality={runs: 1}", "evaluation.forget_quality.runs: Input should be greater than or equal to 2"),
        ("device=tpu", "device: unknown device 'tpu'; allowed: auto, cpu, cuda, cuda:<index>"),
        ("seeds=[]", "seeds: List should have at least 1 item"),
    ],
)
def test_config_errors_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, override, message):
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config), "--out", str(out), "--cache", str(tmp_path / "cache"), "--set", override])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config ")
    assert message in lines[0]
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "configs/none.yaml"], "config file 'configs/none.yaml' not found"),
        (["--config", "configs/quick.yaml", "--seeds", "0,x"], "--seeds '0,x': expected comma-separated integers"),
        (["--config", "configs/quick.yaml", "--methods", "nope"], "--methods: unknown method 'nope'"),
        (["--config", "configs/quick.yaml", "--set", "seeds"], "--set 'seeds': expected key=value"),
        (["--config", "configs/quick.yaml", "--datasets", "cifar10"], "--datasets: 'cifar10' is not in the config; allowed: digits"),
    ],
)
def test_command_line_errors_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00\x01sweep: x\n", "is not UTF-8 text (byte 0: invalid start byte)"),
    (b"sweep: caf\xe9\nseeds: [0]\n", "is not UTF-8 text (byte 10: invalid continuation byte)"),
])
def test_a_config_that_is_not_utf8_text_is_one_line_exit_2(tmp_path, content, message):
    config = tmp_path / "c.yaml"
    config.write_bytes(content)
    result = run_module("bench.sweep", "--config", str(config), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: config {str(config)!r} {message}; allowed: a YAML sweep config such as configs/quick.yaml"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_tuned_file_that_is_not_utf8_text_is_one_line_exit_2(tmp_path):
    (tmp_path / "t.yaml").write_bytes(bytes(range(256)))
    config = write_config(tmp_path / "c.yaml", tuned="t.yaml")
    result = run_module("bench.sweep", "--config", str(config), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"tuned: {str(tmp_path / 't.yaml')!r} is not UTF-8 text (byte 128: invalid start byte)" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_missing_tuned_file_is_named_as_resolved_against_the_configs_folder(tmp_path):
    (tmp_path / "configs").mkdir()
    config = write_config(tmp_path / "configs" / "c.yaml", tuned="results/t.yaml")
    result = run_module("bench.sweep", "--config", str(config), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (f"tuned: file {str(tmp_path / 'configs' / 'results' / 't.yaml')!r} not found; allowed: a file written by "
            "python -m bench.tune, its path absolute or relative to the config's folder") in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_missing_data_exits_2_before_any_work(tmp_path):
    config = write_config(tmp_path / "c.yaml", datasets=[{"name": "mnist"}])
    result = run_module("bench.sweep", "--config", str(config), "--out", str(tmp_path / "out"),
                        env={"UNLEARN_DATA": str(tmp_path / "nothing"), "UNLEARN_DOWNLOAD": "0"})
    assert result.returncode == 2
    assert "dataset 'mnist' not found in" in result.stderr and "UNLEARN_DATA" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_every_method_runs_under_bf16_autocast(tmp_path):
    """precision: bf16 runs CUDA's autocast path on the CPU (about a minute): every method's
    losses and updates must work on bf16 activations, and the models must learn as well as
    in float32 (digits, 3 epochs: test accuracy within 3 points)."""
    config = load_config(write_config(tmp_path / "c.yaml", scenarios=["class:3"], methods=["all"], precision="bf16"))
    summary = run_sweep(config, tmp_path / "bf16", tmp_path / "cache", progress=False)
    assert summary.failed == [] and summary.ran == len(config.methods) and summary.ran >= 9
    table = pd.read_csv(tmp_path / "bf16" / "results.csv")
    assert set(table["status"]) == {"ok"} and table["value"].notna().all()
    fp32 = load_config(write_config(tmp_path / "d.yaml", scenarios=["class:3"], methods=["original", "retrain"]))
    run_sweep(fp32, tmp_path / "fp32", tmp_path / "cache", progress=False)
    reference = pd.read_csv(tmp_path / "fp32" / "results.csv")

    def test_acc(results: pd.DataFrame, method: str) -> float:
        return results[(results["method"] == method) & (results["metric"] == "test_acc")]["value"].item()

    for method in ("original", "retrain"):
        assert test_acc(table, method) == pytest.approx(test_acc(reference, method), abs=0.03)
    assert len(list((tmp_path / "cache" / "models").glob("*.safetensors"))) == 4  # fp32's models are its own, not bf16's


def test_quick_profile_retrain_forgets_the_class_and_keeps_the_rest(tmp_path):
    """The Done-when of the harness: on the quick profile, retrain's forget accuracy in class:3
    is at most 1% and its test accuracy on the other classes within 2 points of the original's."""
    config = load_config(ROOT / "configs" / "quick.yaml", seeds=[0], methods=["original", "retrain"],
                         overrides=["scenarios=['class:3']"])
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False)
    table = pd.read_csv(summary.results_csv).set_index(["method", "metric"])["value"]
    assert table[("retrain", "forget_acc")] <= 0.01
    assert table[("retrain", "test_forget_class_acc")] <= 0.01
    assert abs(table[("retrain", "test_rest_acc")] - table[("original", "test_rest_acc")]) <= 0.02
    assert table[("original", "forget_acc")] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"), ("cifar10", "cifar10/train")])
def test_sweep_on_real_data(tmp_path, name, folder):
    """A small sweep on each real dataset: the original learns, retrain forgets class 3."""
    from conftest import require_data

    require_data(folder)
    dataset = {"name": name, "train_size": 3000, "test_size": 1000, "recipe": {"epochs": 3, "batch_size": 128, "lr": 0.1}}
    config = load_config(write_config(tmp_path / "c.yaml", datasets=[dataset], scenarios=["class:3"],
                                      methods=["original", "retrain"]))
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False)
    table = pd.read_csv(summary.results_csv).set_index(["method", "metric"])["value"]
    assert table[("original", "test_acc")] > {"mnist": 0.8, "fashion_mnist": 0.65, "cifar10": 0.3}[name]
    assert table[("retrain", "forget_acc")] <= 0.01
    record = json.loads((tmp_path / "out" / "runs" / f"{name}__class3__s0__retrain.json").read_text())
    from bench.data.datasets import load_dataset

    share = float((load_dataset(name).train_y == 3).float().mean())  # a stratified subset keeps it
    # the 3,000 of the subset less the 300 held out as the tuner's validation, which no model trains on
    assert abs(record["split"]["forget_size"] - 2700 * share) <= 1
    assert record["split"]["forget_size"] + record["split"]["retain_size"] == 2700


@pytest.mark.slow
def test_a_profile_run_one_dataset_at_a_time_writes_the_whole_profiles_records(tmp_path):
    """``--datasets`` runs a part of the grid; the rest of the profile then runs only what is left."""
    from conftest import require_data

    require_data("MNIST/raw")
    mnist = {"name": "mnist", "train_size": 600, "test_size": 300, "recipe": {"epochs": 1, "batch_size": 128, "lr": 0.1}}
    digits = {"name": "digits", "model": "cnn", "recipe": {"epochs": 1, "batch_size": 64, "lr": 0.05}}
    config = write_config(tmp_path / "c.yaml", datasets=[digits, mnist], scenarios=["class:3"], methods=["original", "retrain"])
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert "2 cells run, 0 already finished" in sweep(config, out, cache, "--datasets", "mnist")
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == ["mnist__class3__s0__original.json", "mnist__class3__s0__retrain.json"]
    assert "2 cells run, 2 already finished" in sweep(config, out, cache)
    assert set(pd.read_csv(out / "results.csv")["dataset"]) == {"digits", "mnist"}


REFERENCE_METRICS = {
    "mia_entropy", "mia_conf_svc", "mia_loss_cv", "mia_auc", "mia_tpr_1fpr", "js_retrain", "js_retrain_test",
    "kl_retrain", "pred_dist_js", "act_dist", "zrf", "zrf_compat", "weight_dist", "gap_forget_acc", "gap_retain_acc",
    "gap_test_acc", "gap_mia_entropy", "avg_gap", "speedup", "time_s", "eval_s", "peak_mem_mib", "mem_delta_mib",
}


def test_every_cell_is_compared_with_the_retrained_model(tmp_path):
    """Retrain compared with itself has zero distance and zero gaps; the original does not."""
    config = load_config(write_config(tmp_path / "c.yaml", scenarios=["class:3"]))
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False)
    table = pd.read_csv(summary.results_csv)
    for method in ("original", "retrain", "finetune"):
        assert REFERENCE_METRICS <= set(table[table.method == method]["metric"])
    value = table.set_index(["method", "metric"])["value"]
    for metric in ("js_retrain", "js_retrain_test", "kl_retrain", "pred_dist_js", "act_dist", "weight_dist", "avg_gap"):
        assert value[("retrain", metric)] == pytest.approx(0.0, abs=1e-9), metric
    assert value[("retrain", "speedup")] == pytest.approx(1.0)
    assert value[("original", "avg_gap")] > 0.1 and value[("original", "js_retrain")] > 0.1
    record = json.loads((tmp_path / "out" / "runs" / "digits__class3__s0__original.json").read_text())
    histograms = record["prediction_histograms"]
    assert histograms["retrain"][3] == 0.0 and histograms["model"][3] > 0.9  # the original still predicts class 3


def test_costly_tier_relearn_and_forget_quality(tmp_path):
    """The original relearns in no step (AIN 0); retrain relearns like itself (AIN 1). The
    original's confidences on the forgotten class sit far from every retrained replica's, so
    its forget quality is about 0; retrain's own replicas are drawn like the reference ones."""
    evaluation = {"relearn": {"max_steps": 200}, "forget_quality": {"runs": 4}}
    config = load_config(write_config(tmp_path / "c.yaml", scenarios=["class:3"], evaluation=evaluation,
                                      methods=["original", "retrain"]))
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False)
    value = pd.read_csv(summary.results_csv).set_index(["method", "metric"])["value"]
    assert value[("original", "relearn_steps")] == 0 and value[("original", "ain")] == 0
    assert value[("retrain", "relearn_steps")] > 0 and value[("retrain", "relearn_censored")] == 0
    assert value[("retrain", "ain")] == 1.0
    assert value[("original", "fq_forgetting")] < 1e-6 and value[("original", "fq_epsilon_mean")] == 50
    assert value[("retrain", "fq_forgetting")] > 0.2
    assert value[("retrain", "forget_quality")] == pytest.approx(value[("retrain", "fq_forgetting")], rel=0.05)
    documented = set(re.findall(r"`([a-z0-9_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
    produced = set(value.index.get_level_values("metric"))
    assert produced - documented == set(), "metrics missing from docs/metrics.md"
