"""Each method's defining property, on digits with a small trained model."""

from __future__ import annotations

import copy
import dataclasses
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench.training.balance import make_balancer
from bench.config.sweep import load_config
from bench.data.datasets import load_dataset
from bench.data.models import build_model
from bench.registry import UnlearnTask, get_method
from bench.data.splits import parse_scenario
from bench.sweep import run_sweep
from bench.training.loop import Preprocess, Recipe, train
from bench.training.update_record import TrainingRecord, UpdateRecorder
from conftest import ROOT, make_task, run, write_config
from methods.amnesiac import random_wrong_labels


def test_the_task_carries_no_test_data():
    assert not [f.name for f in dataclasses.fields(UnlearnTask) if "test" in f.name]


def test_fcalb_teacher_is_frozen_untrained_and_never_updated(digits):
    method, _, task = run("fcalb", digits, step_share=0.01)
    fresh = task.new_model(task.log["teacher_seed"])
    for (name, value), expected in zip(method.teacher.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(value, expected), name
    assert not method.teacher.training
    assert not any(p.requires_grad for p in method.teacher.parameters())
    original_init = build_model("cnn", 1, 10, 8, seed=0)
    assert not torch.equal(method.teacher.head.weight, original_init.head.weight)


@pytest.mark.parametrize("balancer", ["dwa", "uncertainty", "gradnorm", "fixed"])
def test_fcalb_balancer_weights_stay_positive_and_finite(digits, balancer):
    # at lr 0.03: from lr 0.1 up the uncertainty balancer's log-variance overshoots under SGD
    # momentum and the retain weight underflows to 0 within these 23 steps (docs/methods.md)
    _, model, task = run("fcalb", digits, step_share=0.1, rounds=4, balancer=balancer, lr=0.03)
    rounds = task.log["rounds"]
    assert [r["steps"] for r in rounds] == [6, 6, 6, 5] and task.log["steps"] == 23  # 10% of 10 epochs × 23 batches
    for entry in rounds:
        for key in ("forget_weight", "retain_weight", "forget_loss", "retain_loss"):
            assert math.isfinite(entry[key]), (key, entry)
        assert entry["forget_weight"] > 0 and entry["retain_weight"] > 0
    assert rounds[-1]["forget_loss"] < rounds[0]["forget_loss"]  # the features move toward the teacher's


def test_fcalb_steps_do_not_grow_with_the_forget_set(digits):
    """The budget is a share of the original training's steps: one class (~10% of the
    data) and 30% at random take the same number of steps."""
    small, large = make_task(digits, "class:3"), make_task(digits, "random:0.3")
    assert len(large.forget_y) > 2.5 * len(small.forget_y)
    run("fcalb", digits, small, step_share=0.02)
    run("fcalb", digits, large, step_share=0.02)
    for task in (small, large):
        assert task.log["steps"] == sum(r["steps"] for r in task.log["rounds"]) == 5


def test_fc_only_has_no_recover_task(digits):
    _, _, task = run("fcalb", digits, step_share=0.02, recover=False)
    assert all(e["retain_loss"] is None and e["forget_weight"] == 1.0 for e in task.log["rounds"])


def test_dwa_weights_known_answer():
    dwa = make_balancer("dwa", 2, temperature=2.0)
    dwa.end_epoch(torch.tensor([1.0, 1.0]))
    assert dwa.weights().tolist() == [1.0, 1.0]  # the first two epochs keep weight 1
    dwa.end_epoch(torch.tensor([0.5, 1.0]))
    e = torch.exp(torch.tensor([0.25, 0.5], dtype=torch.float64))
    assert torch.allclose(dwa.weights().double(), 2 * e / e.sum(), atol=1e-6)


def test_uncertainty_and_gradnorm_known_answers():
    uncertainty = make_balancer("uncertainty", 2)
    assert float(uncertainty.combine(torch.tensor([2.0, 3.0]), []).detach()) == 5.0  # s = 0: plain sum
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    gradnorm = make_balancer("gradnorm", 2, alpha=1.5)
    for step in range(20):
        losses = torch.stack([(w[0] * 3) ** 2, (w[1] * 0.1) ** 2]) * (1 + step)
        gradnorm.combine(losses, [w])
    weights = gradnorm.weights()
    assert abs(float(weights.sum()) - 2) < 1e-5 and bool((weights > 0).all())
    assert weights[1] > weights[0]  # the task with the far smaller gradient gets more weight


def test_amnesiac_relabels_never_keep_the_true_label():
    labels = torch.arange(10).repeat(500)
    wrong = random_wrong_labels(labels, 10, torch.Generator().manual_seed(0))
    assert not bool((wrong == labels).any())
    assert set(wrong[labels == 3].tolist()) == set(range(10)) - {3}


def test_amnesiac_lowers_forget_accuracy(digits):
    _, model, task = run("amnesiac", digits)
    with torch.no_grad():
        forget_acc = (model.eval()(task.preprocess(task.forget_x)).argmax(1) == task.forget_y).float().mean()
        original_acc = (digits[2].eval()(task.preprocess(task.forget_x)).argmax(1) == task.forget_y).float().mean()
    assert forget_acc < original_acc - 0.3  # SSD's 3 epochs at Adam 1e-4, batches of 128: 0.53 here


def last_batch_undo(**params):
    """A one-epoch digits training whose forget samples all lie in its last batch, undone by
    ``amnesiac_undo(**params)``: (the undone model, the state before the last batch, the
    trained state, the task)."""
    data = load_dataset("digits")
    x, y = data.train_x[:200], data.train_y[:200]
    pre = Preprocess(*data.channel_stats(), None)
    recipe = Recipe(epochs=1, batch_size=64, lr=0.05, schedule="constant")
    order = torch.randperm(200, generator=torch.Generator().manual_seed(5))
    last_batch = order.split(64)[-1]

    class Snapshot:
        def __init__(self):
            self.calls, self.before_last = 0, None

        def before_batch(self, model, indices):
            self.calls += 1
            if self.calls == 4:
                self.before_last = copy.deepcopy(model.state_dict())

        def after_batch(self, model, indices):
            pass

    snapshot = Snapshot()
    reference = build_model("cnn", 1, 10, 8, seed=0)
    train(reference, x, y, recipe, pre, torch.Generator().manual_seed(5), hook=snapshot)

    recorder = UpdateRecorder({"last": last_batch}, 200)
    model = build_model("cnn", 1, 10, 8, seed=0)
    train(model, x, y, recipe, pre, torch.Generator().manual_seed(5), hook=recorder)
    trained = copy.deepcopy(model.state_dict())
    record = TrainingRecord.from_tensors(recorder.tensors(), "last", model)
    assert record.batches == 1
    method_class = get_method("amnesiac_undo")
    method = method_class(method_class.Config(**params))
    task = UnlearnTask(
        forget_x=x[last_batch], forget_y=y[last_batch], retain_x=x, retain_y=y, num_classes=10,
        scenario=parse_scenario("random:0.1", 10), new_model=lambda s: build_model("cnn", 1, 10, 8, s),
        device=torch.device("cpu"), generator=torch.Generator(), preprocess=pre, recipe=recipe, seed=0,
        training_record=record,
    )
    return method.unlearn(model, task), snapshot.before_last, trained, task


@pytest.mark.parametrize("undo_buffers", [True, False])
def test_amnesiac_undo_restores_the_training_stopped_before_the_last_batch(undo_buffers):
    """Forget samples only in the last batch of a one-epoch training: undoing them gives
    exactly the parameters from before that batch, and the batch-norm statistics from
    before it too (``undo_buffers``, the default) or those after it (Graves' code)."""
    undone, before_last, trained, _ = last_batch_undo(undo_buffers=undo_buffers)
    parameters = {name for name, _ in undone.named_parameters()}
    for name, value in undone.state_dict().items():
        expected = before_last if name in parameters or undo_buffers else trained
        assert torch.equal(value, expected[name]), name
    assert any("running_mean" in name and not torch.equal(trained[name], before_last[name]) for name in trained)


def test_amnesiac_undo_repair_trains_on_the_retain_data():
    """Graves' repair (``repair_epochs``): after the undo, Adam epochs on the retain data lower
    its loss below the undone model's."""
    undone, before_last, _, task = last_batch_undo()
    repaired, _, _, _ = last_batch_undo(repair_epochs=3)
    x, y = task.preprocess(task.retain_x), task.retain_y
    with torch.no_grad():
        loss = {name: float(F.cross_entropy(m.eval()(x), y)) for name, m in (("undone", undone), ("repaired", repaired))}
    assert all(torch.equal(v, before_last[k]) for k, v in undone.state_dict().items())
    assert loss["repaired"] < 0.8 * loss["undone"], loss


def test_amnesiac_undo_over_budget_is_not_applicable(tmp_path):
    config = load_config(write_config(
        tmp_path / "c.yaml", scenarios=["class:3"],
        methods=["original", {"name": "undo_tiny", "method": "amnesiac_undo", "params": {"memory_budget_gib": 1e-6}}],
    ))
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False)
    table = pd.read_csv(summary.results_csv)
    row = table[table.method == "undo_tiny"]
    assert row["status"].tolist() == ["not_applicable"]
    from bench.running.results import read_records

    record = next(r for r in read_records(tmp_path / "out") if r["method"] == "undo_tiny")
    assert "GiB, over the budget of 1e-06 GiB" in record["reason"]


# How far the other classes' test accuracy may fall. FC+ALB at its defaults is the least stable
# method (docs/tuning.md, the noise of the objective): over seeds 0, 1, 2 of this recipe it costs
# the other classes 0.21, 0.056 and 0.084 (mean 0.12), so 0.10 holds for it on no seed reliably.
REST_DROP = {"amnesiac": 0.10, "boundary_shrink": 0.10, "boundary_expand": 0.10, "fcalb": 0.25}


@pytest.mark.parametrize("name", list(REST_DROP))
def test_class_forgetting_on_digits(tmp_path, name):
    """Forget accuracy falls well below the original's; the other classes' test accuracy
    stays within ``REST_DROP`` of it (on the quick profile's recipe, seed 0, trained on the
    whole training set: on the 90% the sweep trains on by default, 30 steps of amnesiac's
    Adam 1e-4 leave forget accuracy at 0.75, where 36 steps on all of it reach below 0.5)."""
    config = load_config(ROOT / "configs" / "quick.yaml", seeds=[0], methods=["original", name],
                         overrides=["scenarios=['class:3']", "tuned=null", "tuning.sweep_holds_out=false"])  # the defaults alone
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False)
    value = pd.read_csv(summary.results_csv).set_index(["method", "metric"])["value"]
    assert value[(name, "forget_acc")] < 0.5 * value[("original", "forget_acc")]
    assert value[("original", "test_rest_acc")] - value[(name, "test_rest_acc")] <= REST_DROP[name]
