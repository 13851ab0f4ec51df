"""The tuner never reads the test set: on both scenarios and both backends, a dataset whose
test images and labels are noise gives the same studies, choices and trial records, and the
tuner's training view holds no validation image (nor, by default, the sweep's). Each test was seen to fail with the leak
it guards against put in by hand (docs/tuning.md says how)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.numpy import load_file

from bench.config.sweep import load_config
from bench.data.datasets import load_dataset
from bench.running.grid import config_numerics, prepare_data, sweep_hold_out
from bench.running.model_store import ModelStore
from bench.tuning.command import run_tune
from bench.tuning.local import prepare_tuning_data
from bench.config.tuning import TunedFile
from conftest import require_tool, write_config
from test_tune import trial_rows

# What differs between two runs of one trial besides its result: names, paths, times, machine.
VOLATILE = {"sweep", "cell", "dataset", "dataset_config", "cell_key", "models", "env", "timings", "finished_at", "split"}
VOLATILE_METRICS = {"time_s", "speedup", "eval_s", "peak_mem_mib", "mem_delta_mib"}


def digit_folder(root, noisy_test: bool) -> str:
    """The digits as an image folder (any process can load it, Ray's workers too), with the
    test images and labels replaced by seeded noise when ``noisy_test``."""
    data = load_dataset("digits")
    test_x, test_y = data.test_x, data.test_y
    if noisy_test:
        generator = torch.Generator().manual_seed(1)
        test_x = torch.randint(0, 256, test_x.shape, generator=generator, dtype=torch.uint8)
        test_y = torch.randint(0, 10, test_y.shape, generator=generator)
    for part, images, labels in (("train", data.train_x, data.train_y), ("test", test_x, test_y)):
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = root / part / str(int(label))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].numpy()).save(folder / f"{index:05d}.png")
    return f"imagefolder:{root}"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("digit_folders")
    return digit_folder(root / "real", noisy_test=False), digit_folder(root / "noisy", noisy_test=True)


def leak_config(path, dataset: str):
    """Both scenarios, finetune and SSD (a training method and one that reads no label of
    the retain set), 3 trials raced over 2 tuning seeds."""
    return load_config(write_config(
        path, datasets=[{"name": dataset, "model": "cnn", "recipe": {"epochs": 3, "batch_size": 64, "lr": 0.05}}],
        methods=[{"name": "finetune", "params": {"epochs": 1}}, "ssd"], resources={"cpus": 1},
        tuning={"seeds": [100, 101], "trials": 3, "startup_share": 0.5},
    ))


def studies(summary) -> list[tuple]:
    tuned = TunedFile.model_validate(yaml.safe_load(summary.tuned_file.read_text()))
    return [(e.scenario, e.method, e.params, e.objective, e.history, e.seed_values) for e in tuned.entries]


def trial_records(out) -> dict[str, dict]:
    """Every trial record of a tuning folder, by its scenario, entry and seed, without what
    differs between two runs of the same trial."""
    records = {}
    for path in sorted(out.glob("studies/*/runs/*.json")):
        record = json.loads(path.read_text())
        kept = {k: v for k, v in record.items() if k not in VOLATILE}
        kept["metrics"] = {k: v for k, v in record["metrics"].items() if k not in VOLATILE_METRICS}
        records[f"{record['scenario']} {record['method']} s{record['seed']}"] = kept
    return records


def test_noise_in_place_of_the_test_set_changes_no_study_and_no_trial_record(tmp_path, folders):
    real, noisy = folders
    assert not torch.equal(load_dataset(real).test_x, load_dataset(noisy).test_x)
    a = run_tune(leak_config(tmp_path / "a.yaml", real), tmp_path / "a", cache_dir=tmp_path / "cache", progress=False)
    b = run_tune(leak_config(tmp_path / "b.yaml", noisy), tmp_path / "b", cache_dir=tmp_path / "cache", progress=False)
    assert a.ran == b.ran == 12
    assert studies(a) == studies(b)
    assert {s for s, *_ in studies(a)} == {"class:3", "random:0.1"} and all(h[0] is not None for *_, h, _v in studies(a))
    assert [row[1:] for row in trial_rows(tmp_path / "a" / "studies.db")] == [row[1:] for row in trial_rows(tmp_path / "b" / "studies.db")]
    records_a, records_b = trial_records(tmp_path / "a"), trial_records(tmp_path / "b")
    assert len(records_a) >= 12 and records_a == records_b


def test_ray_tunes_noise_in_place_of_the_test_set_as_the_local_backend_tunes_the_real_one(tmp_path, folders):
    require_tool(importlib.util.find_spec("ray") is not None, "ray (the dev extra)")
    import ray

    real, noisy = folders
    local = run_tune(leak_config(tmp_path / "a.yaml", real), tmp_path / "local", cache_dir=tmp_path / "c1", progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        first = run_tune(leak_config(tmp_path / "b.yaml", noisy), tmp_path / "ray", cache_dir=tmp_path / "c2", progress=False, backend="ray")
        again = run_tune(leak_config(tmp_path / "b.yaml", noisy), tmp_path / "ray", cache_dir=tmp_path / "c2", progress=False, backend="ray")
    finally:
        ray.shutdown()
    assert first.ran == local.ran == 12 and again.ran == 0  # stored and resumed the same way
    # one trial at a time per study: the same parameters, values and records, bit for bit
    assert studies(first) == studies(local)
    assert [row[1:] for row in trial_rows(tmp_path / "ray" / "studies.db")] == [row[1:] for row in trial_rows(tmp_path / "local" / "studies.db")]
    assert trial_records(tmp_path / "ray") == trial_records(tmp_path / "local")
    ray_record = json.loads(next((tmp_path / "ray").glob("studies/*/runs/*finetune.t1.json")).read_text())
    assert ray_record["env"]["ray_node"]  # the trial ran as a Ray task


def rows(images: torch.Tensor) -> list[bytes]:
    return [bytes(image.numpy().tobytes()) for image in images]


def test_the_tuners_training_view_holds_no_validation_and_no_test_image(tmp_path, folders):
    """What the tuner's models train on (the view's training set, and every split's forget
    and retain sets drawn from it) is the training set less the validation share; the
    validation share is the evaluation set; the test set is nowhere."""
    real, _noisy = folders
    config = leak_config(tmp_path / "a.yaml", real)
    view = prepare_tuning_data(config, torch.device("cpu"))[real].data
    full = load_dataset(real)
    train, validation = rows(view.train_x), rows(view.test_x)
    assert len(validation) == round(0.1 * len(full.train_y)) and not set(train) & set(validation)
    assert sorted(train + validation) == sorted(rows(full.train_x))  # a partition of the training set
    assert not set(rows(full.test_x)) & set(train + validation)
    pairs = lambda x, y: list(zip(rows(x), y.tolist()))  # noqa: E731
    assert sorted(pairs(view.train_x, view.train_y) + pairs(view.test_x, view.test_y)) == sorted(pairs(full.train_x, full.train_y))
    summary = run_tune(config, tmp_path / "t", cache_dir=tmp_path / "cache", progress=False)
    assert summary.ran == 12
    for path in (tmp_path / "t").glob("studies/*/runs/*.json"):
        record = json.loads(path.read_text())
        assert record["split"]["forget_size"] + record["split"]["retain_size"] == len(view.train_y), path.name
    splits = list((tmp_path / "t").glob("studies/*/splits/*.safetensors"))
    assert len(splits) == 16  # each of the 4 studies holds both scenarios' splits (the original's plan) on 2 seeds
    for path in splits:
        split = load_file(path)
        indices = np.concatenate([split["forget"], split["retain"]])
        assert sorted(indices.tolist()) == list(range(len(view.train_y)))  # indices into the view, each once


def test_the_sweeps_models_train_on_the_tuners_training_set(tmp_path, folders):
    """The sweep keeps the validation share out of its training set too (``tuning.sweep_holds_out``):
    it trains on exactly the tuner's training set and tests on the whole test set, so the
    sweep's original of a seed is the tuner's original of that seed, weight for weight."""
    real, _noisy = folders
    config = leak_config(tmp_path / "a.yaml", real)
    cpu = torch.device("cpu")
    view = prepare_tuning_data(config, cpu)[real]
    sweep = prepare_data(config.datasets[0], cpu, hold_out=sweep_hold_out(config))
    full = load_dataset(real)
    assert torch.equal(sweep.data.train_x, view.data.train_x) and torch.equal(sweep.data.train_y, view.data.train_y)
    assert torch.equal(sweep.data.test_x, full.test_x) and len(sweep.data.train_y) == len(full.train_y) - len(view.data.test_y)
    models = ModelStore(tmp_path / "cache", cpu, progress=False, numerics=config_numerics(config))
    tuner_original, sweep_original = (models.original(prepared, 100, []).model.state_dict() for prepared in (view, sweep))
    assert all(torch.equal(tuner_original[name], sweep_original[name]) for name in tuner_original)
    whole = config.model_copy(update={"tuning": config.tuning.model_copy(update={"sweep_holds_out": False})})
    assert sweep_hold_out(whole) is None
    assert torch.equal(prepare_data(whole.datasets[0], cpu, hold_out=sweep_hold_out(whole)).data.train_x, full.train_x)
