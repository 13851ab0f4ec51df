"""The eight baselines of issue 15 (GA, NegGrad+, RL, ℓ1-sparse, SalUn, SCRUB, Bad Teacher,
SSD): each moves what it acts on the way it intends, on digits with a small trained model,
and keeps the invariants its authors' code keeps."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from bench.training.loop import Recipe, block_batches
from conftest import make_task, run
from methods.bad_teacher import INCOMPETENT_SEED_OFFSET
from methods.l1_sparse import l1_norm, l1_weight
from methods.neggrad_plus import paired_batches
from methods.rl import random_labels, saliency_mask
from methods.scrub import decayed_lr, distill_kl
from methods.ssd import importances


def outputs(model, images, task):
    with torch.no_grad():
        return model.eval()(task.preprocess(images))


def loss(model, images, labels, task) -> float:
    return float(F.cross_entropy(outputs(model, images, task), labels))


def kl(teacher_logits, student_logits) -> float:
    """KL(teacher ‖ student) per sample, averaged."""
    return float(F.kl_div(F.log_softmax(student_logits, 1), F.softmax(teacher_logits, 1), reduction="batchmean"))


def test_ga_raises_the_forget_loss(digits):
    original = digits[2]
    _, model, task = run("ga", digits, lr=0.01, epochs=5)
    assert loss(model, task.forget_x, task.forget_y, task) > loss(original, task.forget_x, task.forget_y, task) + 1.0
    negated = task.log["epoch_loss"]  # the train-mode −CE of each epoch: falls as the forget loss rises
    assert all(later < earlier for earlier, later in zip(negated, negated[1:]))


def test_neggrad_plus_raises_the_forget_loss_above_the_retain_loss(digits):
    original = digits[2]
    _, model, task = run("neggrad_plus", digits, alpha=0.5, epochs=1, retain_batch_size=64, forget_batch_size=32)
    forget_before = loss(original, task.forget_x, task.forget_y, task)
    assert loss(model, task.forget_x, task.forget_y, task) > forget_before + 1.0
    assert loss(model, task.retain_x, task.retain_y, task) < loss(model, task.forget_x, task.forget_y, task)


def test_paired_batches_cycle_one_forget_order_per_epoch():
    pairs = list(paired_batches(10, 2, 3, 2, torch.Generator().manual_seed(0)))
    assert len(pairs) == 5  # one pass over the retain set
    assert sorted(torch.cat([r for r, _ in pairs]).tolist()) == list(range(10))
    forget = [f.tolist() for _, f in pairs]
    assert forget[0] == forget[2] == forget[4] and forget[1] == forget[3]  # cycled, not redrawn
    assert sorted(forget[0] + forget[1]) == [0, 1, 2]


def test_random_labels_are_uniform_over_all_classes_or_over_the_others():
    labels = torch.full((20000,), 3)
    drawn = random_labels(labels, 10, "any", torch.Generator().manual_seed(0))
    assert abs(float((drawn == 3).float().mean()) - 0.1) < 0.01  # the code's: the true class too
    assert set(drawn.tolist()) == set(range(10))
    other = random_labels(labels, 10, "other", torch.Generator().manual_seed(0))
    assert not bool((other == 3).any()) and set(other.tolist()) == set(range(10)) - {3}


def test_block_batches_never_straddle_and_keep_the_block_order():
    batches = [b.tolist() for b in block_batches([5, 7], [2, 3], torch.Generator().manual_seed(0))]
    assert [len(b) for b in batches] == [2, 2, 1, 3, 3, 1]
    assert sorted(sum(batches[:3], [])) == list(range(5)) and sorted(sum(batches[3:], [])) == list(range(5, 12))


@pytest.mark.parametrize("order", ["forget_first", "mixed"])
def test_rl_raises_the_forget_loss_on_the_true_labels(digits, order):
    original = digits[2]
    _, model, task = run("rl", digits, lr=0.05, epochs=2, order=order)
    assert loss(model, task.forget_x, task.forget_y, task) > loss(original, task.forget_x, task.forget_y, task) + 0.5


def test_l1_weight_decays_linearly_per_epoch_and_never_reaches_zero():
    assert [round(l1_weight(0.2, e, 10), 10) for e in (0, 1, 5, 9)] == [0.2, 0.18, 0.1, 0.02]


def test_l1_sparse_shrinks_the_l1_norm_more_with_a_larger_alpha(digits):
    with torch.no_grad():
        before = float(l1_norm(digits[2]))
    _, _, plain = run("l1_sparse", digits, alpha=0.0, epochs=1)
    _, _, sparse = run("l1_sparse", digits, alpha=1e-2, epochs=1)
    assert sparse.log["final_l1_norm"] < plain.log["final_l1_norm"] - 0.03 * before


def test_salun_mask_keeps_the_top_share_by_gradient_magnitude(digits):
    task = make_task(digits)
    assert len(task.forget_y) <= 256  # one batch: the summed gradient is the full forget gradient
    mask = saliency_mask(copy.deepcopy(digits[2]), task, 0.3, 256, True)
    total = sum(m.numel() for m in mask.values())
    assert sum(int(m.sum()) for m in mask.values()) == int(total * 0.3)
    model = copy.deepcopy(digits[2]).eval()
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(task.preprocess(task.forget_x)), task.forget_y), params)
    chosen = torch.cat([g.abs()[mask[n]] for n, g in zip(names, grads)])
    left = torch.cat([g.abs()[~mask[n]] for n, g in zip(names, grads)])
    assert float(chosen.min()) >= float(left.max()) * (1 - 1e-5)  # one global ranking over every parameter


@pytest.mark.parametrize(("frozen_weights", "unchanged"), [("restored", True), ("decayed", False)])
def test_salun_masked_weights(digits, frozen_weights, unchanged):
    """Restored (the code since #33): every weight outside the mask is bit for bit the
    original's. Decayed (every published number, issue #32): weight decay moves them."""
    mask = saliency_mask(copy.deepcopy(digits[2]), make_task(digits), 0.5, 256, True)  # the same draws as the method's
    _, model, _ = run("salun", digits, epochs=1, lr=0.05, frozen_weights=frozen_weights)
    original = dict(digits[2].named_parameters())
    moved_inside = False
    for name, p in model.named_parameters():
        frozen = ~mask[name]
        assert torch.equal(p[frozen], original[name][frozen]) == unchanged or not bool(frozen.any()), name
        moved_inside |= not torch.equal(p[mask[name]], original[name][mask[name]])
    assert moved_inside


def test_scrub_lr_decays_after_the_listed_epochs():
    assert [decayed_lr(5e-4, e, (3, 5, 9), 0.1) for e in range(7)] == pytest.approx([5e-4] * 3 + [5e-5] * 2 + [5e-6] * 2)


def test_distill_kl_known_answer():
    student, teacher = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 4.0 * float(torch.log(torch.tensor(3.0)))]])
    # T = 4: teacher probabilities (1/4, 3/4), student (1/2, 1/2); KL = Σ t ln(t/s), × T²
    expected = (0.25 * torch.log(torch.tensor(0.5)) + 0.75 * torch.log(torch.tensor(1.5))) * 16
    assert float(distill_kl(student, teacher, 4.0)) == pytest.approx(float(expected), rel=1e-5)


def test_scrub_max_and_min_passes_alternate_as_configured(digits):
    task = make_task(digits)
    forget_batches, retain_batches = -(-len(task.forget_y) // 64), -(-len(task.retain_y) // 128)
    _, _, task = run("scrub", digits, task, epochs=4, max_epochs=2, forget_batch_size=64, retain_batch_size=128)
    assert task.log["passes"] == [["max", forget_batches], ["min", retain_batches]] * 2 + [["min", retain_batches]] * 2


@pytest.mark.parametrize(("spec", "expected"), [("class:3", (3, 2, 0.99, 0.001, 256, 512)), ("random:0.1", (5, 3, 1.0, 0.5, 32, 16))])
def test_scrub_defaults_follow_the_scenarios_notebook(digits, spec, expected):
    """An original trained as long as the notebooks' (25 epochs) runs their settings as they are."""
    task = dataclasses.replace(make_task(digits, spec), recipe=Recipe(epochs=25))
    _, _, task = run("scrub", digits, task, lr=1e-12)
    assert tuple(task.log["settings"].values()) == expected


def test_scrub_max_steps_push_the_student_away_from_the_teacher_on_the_forget_set(digits):
    original = digits[2]
    _, model, task = run("scrub", digits, epochs=1, max_epochs=1, lr=0.02, forget_batch_size=32, retain_batch_size=256)
    forget_kl = kl(outputs(original, task.forget_x, task), outputs(model, task.forget_x, task))
    retain_kl = kl(outputs(original, task.retain_x, task), outputs(model, task.retain_x, task))
    assert forget_kl > 0.5 and forget_kl > 5 * retain_kl


def test_bad_teacher_pulls_the_forget_outputs_towards_the_random_teacher(digits):
    original = digits[2]
    _, model, task = run("bad_teacher", digits, lr=1e-3, epochs=3)
    bad = task.new_model(task.seed + INCOMPETENT_SEED_OFFSET)
    assert task.log["incompetent_teacher_seed"] == task.seed + INCOMPETENT_SEED_OFFSET
    bad_out = outputs(bad, task.forget_x, task)
    assert kl(bad_out, outputs(model, task.forget_x, task)) < 0.5 * kl(bad_out, outputs(original, task.forget_x, task))
    assert kl(outputs(original, task.retain_x, task), outputs(model, task.retain_x, task)) < 0.1


def independent_importance(model, images, labels, task, batch_size):
    """Mean over batches of the squared batch-mean gradient, by ``torch.autograd.grad``."""
    model = copy.deepcopy(model).eval()
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    starts = range(0, len(labels), batch_size)
    for start in starts:
        x, y = task.preprocess(images[start:start + batch_size]), labels[start:start + batch_size]
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        total = [t + g**2 for t, g in zip(total, grads)]
    return [t / len(starts) for t in total]


def test_ssd_importances_match_an_independent_computation(digits):
    task = make_task(digits)
    ours = importances(digits[2], task.forget_x, task.forget_y, task.preprocess, 64)
    theirs = independent_importance(digits[2], task.forget_x, task.forget_y, task, 64)
    for (name, a), b in zip(ours.items(), theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-12), name


@pytest.mark.parametrize("alpha", [10.0, 2.0])
def test_ssd_dampens_only_weights_far_more_important_to_the_forget_set(digits, alpha):
    task = make_task(digits)
    full_order = torch.sort(task.retain_y, stable=True).indices  # a class scenario: D sorted by class, then D_f
    full_x, full_y = torch.cat([task.retain_x[full_order], task.forget_x]), torch.cat([task.retain_y[full_order], task.forget_y])
    forget = independent_importance(digits[2], task.forget_x, task.forget_y, task, 64)
    full = independent_importance(digits[2], full_x, full_y, task, 64)
    _, model, task = run("ssd", digits, alpha=alpha)
    assert 0 < task.log["dampened_weights"] < task.log["weights"]
    for (name, after), before, i_f, i_d in zip(model.named_parameters(), digits[2].parameters(), forget, full):
        margin = (i_f - alpha * i_d).abs() > 1e-6 * i_f.abs().clamp(min=1e-30)  # away from the threshold
        kept = (i_f <= alpha * i_d) & margin
        assert torch.equal(after[kept], before[kept]), name
        chosen = (i_f > alpha * i_d) & margin
        expected = before[chosen] * (i_d[chosen] / i_f[chosen]).clamp(max=1)
        assert torch.allclose(after[chosen], expected, rtol=1e-4, atol=1e-8), name


@pytest.mark.parametrize(("spec", "training_epochs", "expected"), [
    ("class:3", 25, {"lr": 5e-4, "epochs": 3, "max_epochs": 2, "alpha": 0.001}),
    ("random:0.1", 25, {"lr": 5e-4, "epochs": 5, "max_epochs": 3, "alpha": 0.5}),
    ("random:0.1", 5, {"lr": 5e-4, "epochs": 1, "max_epochs": 1, "alpha": 0.5}),
])
def test_the_tuner_tries_scrubs_notebook_settings_for_the_scenario_first(spec, training_epochs, expected):
    """SCRUB leaves its scenario's settings at None; a study's default point is them, filled
    in, the epoch counts scaled from the notebooks' 25 training epochs to the dataset's recipe."""
    from bench.config.sweep import DatasetConfig, MethodEntry
    from bench.data.splits import parse_scenario
    from bench.tuning.studies import StudySpec
    from bench.training.loop import Recipe

    dataset = DatasetConfig(name="digits", model="cnn", recipe=Recipe(epochs=training_epochs))
    study = StudySpec(dataset, parse_scenario(spec, 10), MethodEntry(name="scrub", method="scrub"), "0" * 64)
    assert study.defaults() == expected
