"""The training loop: batched augmentation with known answers, learning, determinism, the cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.data.datasets import load_dataset
from bench.evaluation.evaluate import predict_logits
from bench.evaluation.metrics import accuracy
from bench.data.models import build_model
from bench.config.sweep import load_config
from bench.evaluation.config import ForgetQualityConfig
from bench.running.grid import cell_key, plan_cells, prepare_data
from bench.running.model_store import ModelStore
from bench.training.loop import (
    PRECISIONS, Preprocess, Recipe, autocast, cached_training, make_optimizer, make_schedule, numerics_fields, random_crop,
    random_flip, train, use_numerics,
)
from conftest import write_config


def test_random_crop_takes_the_window_at_the_drawn_offset():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    out = random_crop(x, 2, torch.Generator().manual_seed(7))
    replay = torch.Generator().manual_seed(7)
    dy = torch.randint(0, 5, (2,), generator=replay)
    dx = torch.randint(0, 5, (2,), generator=replay)
    padded = F.pad(x, (2, 2, 2, 2))
    for b in range(2):
        assert torch.equal(out[b], padded[b, :, dy[b] : dy[b] + 5, dx[b] : dx[b] + 6])
    offsets = {tuple(torch.randint(0, 5, (2,), generator=replay).tolist()) for _ in range(50)}
    assert len(offsets) > 10  # offsets vary from batch to batch


def test_random_flip_flips_the_drawn_half():
    x = torch.arange(64 * 4, dtype=torch.float32).view(64, 1, 1, 4)
    out = random_flip(x, torch.Generator().manual_seed(3))
    flipped = torch.rand(64, generator=torch.Generator().manual_seed(3)) < 0.5
    assert torch.equal(out[flipped], x[flipped].flip(3))
    assert torch.equal(out[~flipped], x[~flipped])
    assert 16 < int(flipped.sum()) < 48


def test_preprocess_normalises_and_augments_only_with_a_generator():
    pre = Preprocess(mean=(0.5,), std=(0.25,), augment="crop_flip")
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    assert torch.allclose(pre(x), torch.tensor([[[[-2.0, 2.0]]]]))
    augmented = pre(torch.full((4, 1, 8, 8), 255, dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert augmented.shape == (4, 1, 8, 8) and bool((augmented == -2.0).any())  # zero padding entered some crops


def test_onecycle_peaks_at_the_recipe_lr():
    model = torch.nn.Linear(2, 2)
    recipe = Recipe(lr=0.3, schedule="onecycle")
    optimizer = make_optimizer(model.parameters(), recipe)
    schedule = make_schedule(optimizer, recipe, 100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert abs(max(rates) - 0.3) < 1e-3 and rates[0] < 0.02 and rates[-1] < 0.01


def fit_digits(seed: int):
    data = load_dataset("digits")
    model = build_model("cnn", 1, 10, 8, seed=0)
    pre = Preprocess(*data.channel_stats(), None)
    log = train(model, data.train_x, data.train_y, Recipe(epochs=8, batch_size=64, lr=0.05), pre, torch.Generator().manual_seed(seed))
    return model, log, data, pre


def test_training_learns_digits_and_is_deterministic():
    model, log, data, pre = fit_digits(seed=1)
    assert log.epoch_loss[-1] < 0.2 * log.epoch_loss[0]
    assert accuracy(predict_logits(model, data.test_x, pre), data.test_y.numpy()) > 0.9
    again, log_again, *_ = fit_digits(seed=1)
    assert log.epoch_loss == log_again.epoch_loss
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_cache_hit_miss_and_corrupted_file(tmp_path):
    fits = []

    def fit(model):
        fits.append(1)
        with torch.no_grad():
            model.weight.fill_(float(len(fits)))
        from bench.training.loop import TrainLog

        return TrainLog([0.0], seconds=1.5)

    build = lambda: torch.nn.Linear(3, 2)  # noqa: E731
    first = cached_training(tmp_path, {"a": 1}, build, fit)
    assert not first.from_cache and len(fits) == 1 and first.train_seconds == 1.5
    hit = cached_training(tmp_path, {"a": 1}, build, fit)
    assert hit.from_cache and len(fits) == 1 and torch.equal(hit.model.weight, first.model.weight)
    assert hit.train_seconds == 1.5
    miss = cached_training(tmp_path, {"a": 2}, build, fit)
    assert not miss.from_cache and len(fits) == 2
    path = next(p for p in tmp_path.glob("*.safetensors") if p.name.startswith(first.key[:32]))
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # flip bits inside the weights: the checksum no longer matches
    path.write_bytes(bytes(raw))
    rebuilt = cached_training(tmp_path, {"a": 1}, build, fit)
    assert not rebuilt.from_cache and len(fits) == 3
    path.write_bytes(b"not a safetensors file")
    assert not cached_training(tmp_path, {"a": 1}, build, fit).from_cache and len(fits) == 4


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_plain_weights():
    """torch.compile behind the switch: the same losses as eager (compiled kernels round a
    little differently), the model itself keeps its plain state-dict names; ~1 min on a CPU."""
    data = load_dataset("digits")
    mean, std = data.channel_stats()
    preprocess = Preprocess(mean, std, None)
    recipe = Recipe(epochs=2, batch_size=64, lr=0.05)
    runs = {}
    for flag in (False, True):
        use_numerics(compile=flag)
        try:
            model = build_model("cnn", data.channels, data.num_classes, data.image_size, 0)
            log = train(model, data.train_x, data.train_y, recipe, preprocess, torch.Generator().manual_seed(0))
            runs[flag] = (log.epoch_loss, predict_logits(model, data.test_x, preprocess), model.state_dict())
        finally:
            use_numerics()
    (eager_loss, eager_logits, eager_state), (loss, logits, state) = runs[False], runs[True]
    assert loss == pytest.approx(eager_loss, rel=1e-3)
    assert accuracy(logits, data.test_y.numpy()) == pytest.approx(accuracy(eager_logits, data.test_y.numpy()), abs=0.01)
    assert list(state) == list(eager_state)  # no "_orig_mod." prefixes: the cache stores the model itself


def test_numerics_switches_key_models_and_cells_apart(tmp_path):
    """compile and precision change the rounding, so models and cells made with them are
    cached apart; at their defaults the keys are those made before the switches existed."""
    config = load_config(write_config(tmp_path / "c.yaml", compile=True, precision="bf16"))
    default = load_config(write_config(tmp_path / "d.yaml"))
    assert (config.compile, config.precision) == (True, "bf16") and (default.compile, default.precision) == (False, "auto")
    assert numerics_fields(False, "auto") == {}
    assert numerics_fields(True, "fp32") == {"compile": True, "precision": "fp32"}
    prepared = prepare_data(config.datasets[0], torch.device("cpu"))
    plain = ModelStore(tmp_path, torch.device("cpu"), False)._key_fields(prepared, 0, "original")
    switched = ModelStore(tmp_path, torch.device("cpu"), False, numerics=numerics_fields(True, "bf16"))
    assert "compile" not in plain and "precision" not in plain
    assert switched._key_fields(prepared, 0, "original") == {**plain, "compile": True, "precision": "bf16"}
    cell = plan_cells(config, {prepared.config.name: prepared})[0]
    keys = {cell_key(cell, prepared, config.evaluation, numerics_fields(c, p)) for c in (False, True) for p in PRECISIONS}
    assert len(keys) == 6
    assert cell_key(cell, prepared, config.evaluation) == cell_key(cell, prepared, config.evaluation, {})


def test_a_forget_quality_change_redoes_only_the_cells_that_compute_it(tmp_path, monkeypatch):
    """FORGET_QUALITY_VERSION is in the key of a cell whose evaluation computes forget quality,
    and in no other: a change to the score leaves every other finished cell finished."""
    import bench.running.grid

    config = load_config(write_config(tmp_path / "c.yaml"))
    prepared = prepare_data(config.datasets[0], torch.device("cpu"))
    cell = plan_cells(config, {prepared.config.name: prepared})[0]
    plain, costly = config.evaluation, config.evaluation.model_copy(update={"forget_quality": ForgetQualityConfig()})
    before = {name: cell_key(cell, prepared, evaluation) for name, evaluation in (("plain", plain), ("costly", costly))}
    monkeypatch.setattr(bench.running.grid, "FORGET_QUALITY_VERSION", bench.running.grid.FORGET_QUALITY_VERSION + 1)
    after = {name: cell_key(cell, prepared, evaluation) for name, evaluation in (("plain", plain), ("costly", costly))}
    assert before["plain"] == after["plain"] and before["costly"] != after["costly"]
    assert bench.running.grid.evaluation_versions(plain) == {"metrics_version": bench.running.grid.METRICS_VERSION}


def test_precision_switch_sets_autocast():
    """auto: float32 on the CPU (bf16 is CUDA's default); bf16 forces the CUDA path's
    autocast on the CPU too; a bad name is refused."""
    a, b = torch.ones(4, 4), torch.ones(4, 4)
    dtypes = {}
    for precision in PRECISIONS:
        use_numerics(precision=precision)
        try:
            with autocast(torch.device("cpu")):
                dtypes[precision] = (a @ b).dtype
        finally:
            use_numerics()
    assert dtypes == {"auto": torch.float32, "bf16": torch.bfloat16, "fp32": torch.float32}
    with pytest.raises(ValueError, match="allowed: auto, bf16, fp32"):
        use_numerics(precision="fp16")


def test_warm_up_leaves_no_import_for_the_timed_regions():
    """A fresh process's first optimizer used to import torch._dynamo (seconds) inside the
    first method's timed region; after warm_up, building an optimizer and stepping it
    imports nothing, and the objects alive then are out of the collector's scans (a full
    collection before each method's memory baseline would scan ~280,000 of them)."""
    import subprocess
    import sys

    script = (
        "import sys, torch\n"
        "from bench.training.loop import warm_up, make_optimizer, Recipe\n"
        "warm_up(torch.device('cpu'))\n"
        "before = set(sys.modules)\n"
        "model = torch.nn.Linear(3, 2)\n"
        "optimizer = make_optimizer(model.parameters(), Recipe(optimizer='adam'))\n"
        "model(torch.ones(1, 3)).sum().backward()\n"
        "optimizer.step()\n"
        "print(sorted(set(sys.modules) - before))\n"
        "import gc; print(len(gc.get_objects()), gc.get_freeze_count())\n"
    )
    cold = "import sys, torch\nbefore = set(sys.modules)\ntorch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1)\nprint(sorted(set(sys.modules) - before))\n"
    without = subprocess.run([sys.executable, "-c", cold], capture_output=True, text=True, check=True).stdout
    assert "torch._dynamo" in without  # what warm_up is for: still PyTorch's behaviour
    after = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    imported, counts = after.strip().splitlines()
    assert imported == "[]"
    scanned, frozen = map(int, counts.split())
    assert frozen > 100_000 and scanned < 1_000
