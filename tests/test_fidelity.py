"""The baselines behave as their authors' public code does by default (docs/methods.md), and
each named departure does what its name says. On digits with a small trained model."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bench.config.sweep import load_config
from bench.evaluation.evaluate import with_missing_outputs
from bench.registry import get_method
from bench.sweep import run_sweep
from bench.training.loop import batch_indices
from conftest import make_task, run, write_config


def running_statistics(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_dict().items() if "running_" in name}


def shrink(**params):
    method_class = get_method("boundary_shrink")
    return method_class(method_class.Config(**params))


def test_fgsm_images_lie_on_the_pixel_grid_in_the_unit_interval(digits):
    """The authors' FGSM: 0.1 in [0, 1] pixel space, clamped, rounded to 1/255."""
    task = make_task(digits)
    images = task.forget_x[:64]
    x = task.preprocess(images)
    sign = torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))
    attacked = shrink().adversarial(images, x, sign, task)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (task.preprocess.mean, task.preprocess.std))
    pixels = (attacked * std + mean) * 255
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)  # on the 1/255 grid
    assert float(pixels.min()) > -1e-3 and float(pixels.max()) < 255 + 1e-3
    step = (pixels.round() - images.float()) * sign
    moved = (pixels.round() > 0) & (pixels.round() < 255)  # not clamped
    assert set(step[moved].unique().tolist()) <= {25.0, 26.0}  # 0.1 × 255 = 25.5, rounded
    # in normalised space the step is 0.1 there, neither clamped nor rounded
    assert torch.equal(shrink(bound_space="normalised").adversarial(images, x, sign, task), x + 0.1 * sign)


def test_the_authors_fgsm_arithmetic_is_an_option(digits):
    """``bound_space="authors"``: adv_generator.py's FGSM on the normalised input, written out
    (its constants, one channel: the first): undo with them, step, clamp the delta to the
    bound, clamp to [0, 1] and round in that space, normalise back. In the harness's pixel
    space the step is 0.1 × the data's std / 0.2023 and is not kept inside [0, 1]."""
    task = make_task(digits)
    images = task.forget_x[:64]
    x = task.preprocess(images)
    sign = torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))
    attacked = shrink(bound_space="authors").adversarial(images, x, sign, task)
    mean, std = 0.4914, 0.2023
    natural = x * std + mean
    delta = (natural + 0.1 * sign - natural).clamp(-0.1, 0.1)
    expected = (torch.round((natural + delta).clamp(0, 1) * 255) / 255 - mean) / std
    assert torch.allclose(attacked, expected, atol=1e-5)
    pixels = attacked * task.preprocess.std[0] + task.preprocess.mean[0]
    inside = (expected * std + mean > 1e-6) & (expected * std + mean < 1 - 1e-6)
    step = ((pixels - images.float() / 255) * sign)[inside]
    assert float(step.median()) == pytest.approx(0.1 * task.preprocess.std[0] / std, abs=2 / 255)
    assert bool(((pixels < -1e-3) | (pixels > 1 + 1e-3)).any())


def test_boundary_shrink_relabels_with_the_plain_argmax_by_default(digits):
    """The code's label is the attacked logits' arg-max, the true class included; the
    ``nearest_wrong`` option never keeps the true label."""
    task = make_task(digits)
    frozen = copy.deepcopy(digits[2]).eval()
    plain = shrink().attacked_labels(frozen, task)
    images = task.forget_x
    x = task.preprocess(images).requires_grad_(True)
    frozen.requires_grad_(False)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(frozen(x), task.forget_y), x)
    pixels = torch.round((images.float() / 255 + 0.1 * grad.sign()).clamp(0, 1) * 255)  # adv_generator.py's FGSM
    with torch.no_grad():
        expected = frozen(task.preprocess(pixels.to(torch.uint8))).argmax(1)
    assert torch.equal(plain, expected)
    assert bool((plain == task.forget_y).any()) and bool((plain != task.forget_y).any())  # the rules differ here
    wrong = shrink(label_rule="nearest_wrong").attacked_labels(frozen, task)
    assert not bool((wrong == task.forget_y).any())
    assert torch.equal(wrong[plain != task.forget_y], plain[plain != task.forget_y])
    _, _, logged = run("boundary_shrink", digits)
    assert logged.log["attack_success"] == pytest.approx(float((plain != task.forget_y).float().mean()))


@pytest.mark.parametrize("name", ["boundary_shrink", "boundary_expand"])
def test_frozen_batchnorm_leaves_the_running_statistics_unchanged(digits, name):
    before = running_statistics(digits[2])
    _, frozen, _ = run(name, digits, batchnorm="frozen", lr=1e-3)
    _, trained, _ = run(name, digits, lr=1e-3)  # train mode (the code's): re-estimated on forget batches
    for key, value in running_statistics(frozen).items():
        assert torch.equal(value, before[key]), key
    assert any(not torch.equal(value, before[key]) for key, value in running_statistics(trained).items())


def test_boundary_expand_shadow_row_is_xavier_normal_with_zero_bias(digits):
    method_class = get_method("boundary_expand")
    d, k = 128, 10
    weight, bias = method_class().shadow_row(d, k, torch.Generator().manual_seed(0))
    assert float(bias) == 0.0 and weight.shape == (d,)
    assert float(weight.std()) == pytest.approx(math.sqrt(2 / (d + k + 1)), rel=0.2)
    uniform, uniform_bias = method_class(method_class.Config(shadow_init="uniform")).shadow_row(d, k, torch.Generator())
    assert float(uniform.abs().max()) <= 1 / math.sqrt(d) and float(uniform_bias) != 0.0


def test_boundary_expand_unpruned_keeps_the_shadow_output_and_is_evaluated(tmp_path):
    """SalUn's variant: k+1 outputs, evaluated against references that never predict the shadow class."""
    config = load_config(write_config(
        tmp_path / "c.yaml", scenarios=["class:3"],
        methods=["original", "retrain", {"name": "expand_unpruned", "method": "boundary_expand", "params": {"prune": False}}],
    ))
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False)
    table = pd.read_csv(summary.results_csv)
    rows = table[table.method == "expand_unpruned"].set_index("metric")["value"]
    assert set(table[table.method == "expand_unpruned"]["status"]) == {"ok"}
    for metric in ("forget_acc", "js_retrain", "kl_retrain", "pred_dist_js", "zrf", "avg_gap"):
        assert math.isfinite(rows[metric]), metric
    logits = np.load(tmp_path / "out" / "runs" / "digits__class3__s0__expand_unpruned.logits.npz")["logits_forget"]
    assert logits.shape[1] == 11


def test_missing_outputs_have_probability_under_e_to_the_minus_100():
    logits = np.array([[1.0, 3.0], [0.0, -2.0]], dtype=np.float32)
    wide = with_missing_outputs(logits, 3)
    assert np.array_equal(wide[:, :2], logits) and wide[:, 2].tolist() == [-99.0, -102.0]
    assert with_missing_outputs(logits, 2) is logits


def unsir(**params):
    method_class = get_method("unsir")
    return method_class(method_class.Config(noise_batch_size=32, noise_repeats=2, **params))


@pytest.mark.parametrize(("params", "expected"), [({}, 1), ({"noise_per_repeat": "all"}, 32)])
def test_unsir_noise_images_per_repetition(digits, params, expected):
    """By default, as the code, ``batch[0].size(0)`` noise images per repetition: the channel
    count (1 on digits); ``all`` keeps the whole optimised batch."""
    task = make_task(digits, "random:0.1")
    unsir(**params).unlearn(copy.deepcopy(digits[2]), task)
    labels = len(task.forget_y.unique())
    assert task.log["noise_used"] == expected * 2 * labels


@pytest.mark.parametrize(("params", "moves"), [({}, True), ({"noise_mode": "eval"}, False)])
def test_unsir_noise_is_optimised_in_train_mode(digits, params, moves):
    """By default in train mode (both codes): batch norm sees the noise batch and updates its
    running statistics; ``eval`` leaves them."""
    model = copy.deepcopy(digits[2])
    before = running_statistics(model)
    noise = unsir(**params).error_maximising_noise(model, make_task(digits), 3)
    assert noise.shape == (32, 1, 8, 8)
    changed = any(not torch.equal(value, before[key]) for key, value in running_statistics(model).items())
    assert changed == moves
    assert all(p.requires_grad for p in model.parameters())  # the weights are trainable again after


@pytest.mark.parametrize("spec", ["class:3", "random:0.1"])
def test_unsir_noise_raises_the_loss_of_its_label(digits, spec):
    task = make_task(digits, spec)
    method = unsir()
    model = copy.deepcopy(digits[2])
    method.error_maximising_noise(model, task, 3)
    ce = task.log["noise_ce"]["3"]
    assert ce["end"] > ce["start"] + 1.0
    method.unlearn(model, task)
    assert set(task.log["noise_ce"]) == {str(label) for label in task.forget_y.unique().tolist()}


@pytest.mark.parametrize(("params", "labels"), [({}, [3, 3, 5, 5]), ({"noise_label": "zero"}, [0, 0, 0, 0])])
def test_unsir_noise_label(digits, params, labels):
    """SSD labels the noise with the label it was optimised for (the default); the notebook
    labels every noise image 0. One channel on digits: one image of each batch, twice."""
    task = make_task(digits)
    noises = {3: torch.randn(32, 1, 8, 8), 5: torch.randn(32, 1, 8, 8)}
    noise_x, noise_y = unsir(**params).noise_set(noises, task)
    assert noise_y.tolist() == labels
    assert torch.equal(noise_x, torch.cat([noises[3][:1], noises[3][:1], noises[5][:1], noises[5][:1]]))


# (aspect, method, field, value): the authors' code's numbers (docs/methods.md)
AUTHORS_DEFAULTS = [
    ("UNSIR noise per repetition (both codes)", "unsir", "noise_per_repeat", "channels"),
    ("UNSIR noise in train mode (both codes)", "unsir", "noise_mode", "train"),
    ("UNSIR retain subset (the notebook)", "unsir", "retain_per_class", 1000),
    ("UNSIR repetitions (the notebook)", "unsir", "noise_repeats", 20),
    ("UNSIR impair / repair lr (the notebook)", "unsir", "impair_lr", 0.02),
    ("UNSIR impair / repair lr (the notebook)", "unsir", "repair_lr", 0.01),
    ("FGSM bound in pixel space", "boundary_shrink", "bound_space", "pixel"),
    ("FGSM bound", "boundary_shrink", "bound", 0.1),
    ("new label: plain arg-max", "boundary_shrink", "label_rule", "argmax"),
    ("fine-tune in train mode", "boundary_shrink", "batchnorm", "train"),
    ("boundary lr", "boundary_shrink", "lr", 1e-5),
    ("shadow row init", "boundary_expand", "shadow_init", "xavier_normal"),
    ("shadow class pruned", "boundary_expand", "prune", True),
    ("SSD's amnesiac batch", "amnesiac", "batch_size", 128),
    ("SSD's amnesiac: no augmentation", "amnesiac", "augment", False),
    ("SSD's amnesiac: Adam 1e-4, 3 epochs", "amnesiac", "lr", 1e-4),
    ("SSD's amnesiac: Adam 1e-4, 3 epochs", "amnesiac", "epochs", 3),
    ("exact undo (issue 13)", "amnesiac_undo", "undo_buffers", True),
    ("no repair after the undo (the paper's point)", "amnesiac_undo", "repair_epochs", 0),
    ("SSD's finetune: no augmentation", "finetune", "augment", False),
    ("SSD's finetune: SGD 0.02, 5 epochs", "finetune", "lr", 0.02),
    ("SSD's finetune: SGD 0.02, 5 epochs", "finetune", "epochs", 5),
    ("GA: the README's lr 1e-4, 5 epochs", "ga", "lr", 1e-4),
    ("GA: batch 256 (arg_parser.py)", "ga", "batch_size", 256),
    ("GA: SGD momentum 0.9, weight decay 5e-4 (impl.py)", "ga", "momentum", 0.9),
    ("GA: SGD momentum 0.9, weight decay 5e-4 (impl.py)", "ga", "weight_decay", 5e-4),
    ("Bad Teacher: batch 256", "bad_teacher", "batch_size", 256),
    ("RL: arg_parser.py's lr 0.01, 10 epochs", "rl", "lr", 0.01),
    ("RL: forget pass, then retain pass (CIFAR-10 since f31f82e)", "rl", "order", "forget_first"),
    ("RL: labels uniform over all classes (RL.py)", "rl", "labels", "any"),
    ("SalUn: the README's lr 0.013", "salun", "lr", 0.013),
    ("SalUn: the README's mask with_0.5.pt", "salun", "mask_ratio", 0.5),
    ("SalUn: masked weights restored (#33)", "salun", "frozen_weights", "restored"),
    ("l1-sparse: the README's lr 0.01, 10 epochs", "l1_sparse", "lr", 0.01),
    ("NegGrad+: alpha 0.9999 (large scale)", "neggrad_plus", "alpha", 0.9999),
    ("NegGrad+: SGD 0.01 without momentum or weight decay", "neggrad_plus", "lr", 0.01),
    ("NegGrad+: SGD 0.01 without momentum or weight decay", "neggrad_plus", "momentum", 0.0),
    ("NegGrad+: SGD 0.01 without momentum or weight decay", "neggrad_plus", "weight_decay", 0.0),
    ("NegGrad+: MIA_experiments' batches 32 / 16", "neggrad_plus", "retain_batch_size", 32),
    ("NegGrad+: MIA_experiments' batches 32 / 16", "neggrad_plus", "forget_batch_size", 16),
    ("SCRUB: SGD 5e-4, T = 4", "scrub", "lr", 5e-4),
    ("SCRUB: SGD 5e-4, T = 4", "scrub", "temperature", 4.0),
    ("SCRUB: no smoothing since 812dd5d", "scrub", "smoothing", 0.0),
    ("Bad Teacher: Adam 1e-4, 1 epoch, T = 1, 30% of the retain set", "bad_teacher", "lr", 1e-4),
    ("Bad Teacher: Adam 1e-4, 1 epoch, T = 1, 30% of the retain set", "bad_teacher", "epochs", 1),
    ("Bad Teacher: Adam 1e-4, 1 epoch, T = 1, 30% of the retain set", "bad_teacher", "temperature", 1.0),
    ("Bad Teacher: Adam 1e-4, 1 epoch, T = 1, 30% of the retain set", "bad_teacher", "retain_share", 0.3),
    ("Bad Teacher: F.kl_div's default reduction", "bad_teacher", "reduction", "mean"),
    ("SSD: alpha 10, lambda 1 (ResNet-18)", "ssd", "alpha", 10.0),
    ("SSD: alpha 10, lambda 1 (ResNet-18)", "ssd", "dampening", 1.0),
]


@pytest.mark.parametrize(("aspect", "name", "field", "value"), AUTHORS_DEFAULTS)
def test_defaults_are_the_authors_code(aspect, name, field, value):
    assert getattr(get_method(name).Config(), field) == value, aspect


# (method, scenario, the epochs the authors' originals trained, the counts their code runs)
AUTHORS_EPOCHS = [
    ("ga", "class:3", 182, {"epochs": 5}),  # Unlearn-Sparse README; arg_parser.py --epochs 182
    ("rl", "class:3", 182, {"epochs": 10}),  # Unlearn-Saliency arg_parser.py
    ("salun", "random:0.1", 182, {"epochs": 10}),  # Unlearn-Saliency README
    ("l1_sparse", "class:3", 182, {"epochs": 10}),  # Unlearn-Sparse README
    ("neggrad_plus", "random:0.1", 25, {"epochs": 5}),  # MIA_experiments.ipynb, training_epochs=25
    ("scrub", "class:3", 25, {"epochs": 3, "max_epochs": 2}),  # large_scale_unlearning.ipynb
    ("scrub", "random:0.1", 25, {"epochs": 5, "max_epochs": 3}),  # MIA_experiments.ipynb
]


# The same counts on the profiles' training lengths: the cpu profile's digit sets (5 epochs),
# its CIFAR-10 (10) and the quick profile (30); worked by hand from the rule (round, at least 1).
PROFILE_EPOCHS = {
    ("ga", "class:3"): ({"epochs": 1}, {"epochs": 1}, {"epochs": 1}),  # 5·30/182 = 0.82
    ("rl", "class:3"): ({"epochs": 1}, {"epochs": 1}, {"epochs": 2}),  # 10·10/182 = 0.55, 10·30/182 = 1.65
    ("salun", "random:0.1"): ({"epochs": 1}, {"epochs": 1}, {"epochs": 2}),
    ("l1_sparse", "class:3"): ({"epochs": 1}, {"epochs": 1}, {"epochs": 2}),
    ("neggrad_plus", "random:0.1"): ({"epochs": 1}, {"epochs": 2}, {"epochs": 6}),  # 5·10/25 = 2
    ("scrub", "class:3"): ({"epochs": 1, "max_epochs": 1}, {"epochs": 1, "max_epochs": 1}, {"epochs": 4, "max_epochs": 2}),
    ("scrub", "random:0.1"): ({"epochs": 1, "max_epochs": 1}, {"epochs": 2, "max_epochs": 1}, {"epochs": 6, "max_epochs": 4}),
}


@pytest.mark.parametrize(("name", "spec", "authors_training", "counts"), AUTHORS_EPOCHS)
def test_epoch_counts_are_the_authors_share_of_the_training(name, spec, authors_training, counts):
    """On the authors' training length the defaults run the authors' counts; on the profiles'
    shorter ones, the same share (the known counts above); a count set by hand is run as it is."""
    from bench.data.splits import parse_scenario

    method = get_method(name)
    defaults, scenario = method.Config().model_dump(), parse_scenario(spec, 10)
    assert all(defaults[field] is None for field in counts)
    assert {f: method.setting_params(defaults, scenario, authors_training)[f] for f in counts} == counts
    for training, expected in zip((5, 10, 30), PROFILE_EPOCHS[(name, spec)]):
        assert {f: method.setting_params(defaults, scenario, training)[f] for f in counts} == expected, training
    assert method.setting_params({**defaults, "epochs": 7}, scenario, authors_training)["epochs"] == 7


def test_boundary_expand_prunes_by_default_and_writes_the_shadow_row(digits):
    """Pruned (the code): k outputs, the first k rows fine-tuned; unpruned: row k is the
    xavier-normal shadow row with zero bias (lr 1e-12 leaves it where it was written)."""
    head = digits[2].head
    _, pruned, _ = run("boundary_expand", digits)
    assert pruned.head.out_features == head.out_features
    method, wide, task = run("boundary_expand", digits, prune=False, lr=1e-12)
    weight, bias = method.shadow_row(head.in_features, head.out_features, make_task(digits).generator)
    assert wide.head.out_features == head.out_features + 1
    assert torch.allclose(wide.head.weight[-1], weight, atol=1e-6) and abs(float(wide.head.bias[-1].detach()) - float(bias)) < 1e-6
    assert float(bias) == 0.0
    assert torch.allclose(wide.head.weight[:-1], head.weight, atol=1e-6)


def expand_by_hand(digits, task, first_batch_eval: bool) -> nn.Module:
    """boundary_unlearning.py's expand loop written out on the harness's model: the widened
    head, SGD 1e-5 with momentum 0.9, 10 epochs of batches of 64 in the harness's order, each
    batch's forward before ``widen_model.train()`` (so the first in the mode it was handed)."""
    model = copy.deepcopy(digits[2])
    head = model.head
    k, d = head.out_features, head.in_features
    weight, bias = get_method("boundary_expand")().shadow_row(d, k, task.generator)
    wide = nn.Linear(d, k + 1)
    with torch.no_grad():
        wide.weight.copy_(torch.cat([head.weight, weight[None]]))
        wide.bias.copy_(torch.cat([head.bias, bias[None]]))
    model.head = wide
    model.eval() if first_batch_eval else model.train()  # main.py's test() leaves eval mode
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    for _epoch in range(10):
        for index in batch_indices(len(task.forget_y), 64, task.generator):
            logits = model(task.preprocess(task.forget_x[index]))
            model.train()
            loss = nn.functional.cross_entropy(logits, torch.full_like(task.forget_y[index], k))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def test_boundary_expand_runs_its_first_batch_as_the_code_does(digits):
    """The code's first fine-tune batch is normalised with the running statistics and does not
    update them (``first_batch="eval"``, the default); ``"train"`` runs every batch in train
    mode. Each equals the loop written out, and the two differ in the running statistics."""
    _, code, _ = run("boundary_expand", digits, prune=False)
    _, all_train, _ = run("boundary_expand", digits, prune=False, first_batch="train")
    for method_model, first_batch_eval in ((code, True), (all_train, False)):
        by_hand = expand_by_hand(digits, make_task(digits), first_batch_eval).state_dict()
        for name, value in method_model.state_dict().items():
            assert torch.allclose(value.float(), by_hand[name].float(), atol=1e-6), (first_batch_eval, name)
    assert any(not torch.allclose(a, b) for a, b in zip(running_statistics(code).values(), running_statistics(all_train).values()))
