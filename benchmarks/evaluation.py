"""Evaluation of one model on all splits with every metric, against a single bare forward
pass over the same samples; the MIA fits (SVCs, logistic regressions) are timed apart. And
the inference batch: the device's default against 1024."""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.evaluation.evaluate import SplitData, evaluate, gap_metrics, mia_metrics, predict_logits, reference_metrics, weight_distance
from bench.evaluation.config import EvaluationConfig
from bench.data.models import build_model
from bench.data.splits import make_split, parse_scenario
from bench.training.loop import Preprocess, synchronize
from benchmarks.common import Measurement, paired_seconds, real_or_embedded


def bare_forward(model: torch.nn.Module, images: list[torch.Tensor], preprocess: Preprocess, batch_size: int) -> None:
    model.eval()
    with torch.inference_mode():
        for part in images:
            for start in range(0, len(part), batch_size):
                model(preprocess(part[start : start + batch_size]))
    synchronize(next(model.parameters()).device)


def evaluation_overhead(device: torch.device, batch_size: int = 1024, repeats: int = 3) -> Measurement:
    data, name = real_or_embedded("mnist", train_size=20_000)
    data = data.to(device)
    mean, std = data.channel_stats()
    preprocess = Preprocess(mean, std, None)
    scenario = parse_scenario("random:0.1", data.num_classes)
    split = make_split(scenario, data.train_y.cpu(), seed=0)
    forget, retain = split.forget.to(device), split.retain.to(device)
    splits = {
        "forget": SplitData(data.train_x[forget], data.train_y[forget].cpu().numpy()),
        "retain": SplitData(data.train_x[retain], data.train_y[retain].cpu().numpy()),
        "test": SplitData(data.test_x, data.test_y.cpu().numpy()),
    }
    model = build_model("cnn", data.channels, data.num_classes, data.image_size, seed=0).to(device)
    reference_model = build_model("cnn", data.channels, data.num_classes, data.image_size, seed=1).to(device)
    reference = evaluate(reference_model, splits, scenario, preprocess, batch_size)
    reference_mia = mia_metrics(reference.logits, reference.labels, scenario, 0)
    random_forget = predict_logits(reference_model, splits["forget"].images, preprocess, batch_size)

    def suite() -> None:
        result = evaluate(model, splits, scenario, preprocess, batch_size)
        reference_metrics(result.logits, reference.logits, random_forget, data.num_classes)
        # the MIA scores are fitted apart (timed below); the reference's stand in for the model's here
        gap_metrics({**result.metrics, **reference_mia}, {**reference.metrics, **reference_mia})
        weight_distance(model, reference_model)

    images = [s.images for s in splits.values()]
    ours, theirs = paired_seconds(suite, lambda: bare_forward(model, images, preprocess, batch_size), repeats)
    result = evaluate(model, splits, scenario, preprocess, batch_size)
    start = time.perf_counter()
    mia_metrics(result.logits, result.labels, scenario, 0, 2500)
    mia_seconds = time.perf_counter() - start
    ratio = float(np.median(np.array(ours) / np.array(theirs)))
    n = sum(len(i) for i in images)
    return Measurement(
        "evaluation (all splits, all metrics but MIA fits)", min(ours), min(theirs), "s", ratio, 1.5, False,
        f"cnn on {name}: {n} images over forget/retain/test, batch {batch_size}; the MIA fits took {mia_seconds:.2f} s "
        "more (timed apart); ratio: median over back-to-back pairs",
        {"mia_seconds": mia_seconds, "images": n},
    )


def inference_batch_speedup(device: torch.device, images: int = 10_000, repeats: int = 3) -> Measurement:
    """The evaluation's default inference batch for ``device`` (128 on the CPU) against 1024,
    the default before it: one bare forward pass of ``cnn`` over CIFAR-10 test images."""
    data, name = real_or_embedded("cifar10")
    data = data.to(device)
    preprocess = Preprocess(*data.channel_stats(), None)
    model = build_model("cnn", data.channels, data.num_classes, data.image_size, seed=0).to(device)
    batch = EvaluationConfig().inference_batch(device)
    part = [data.test_x[:images]]
    ours, theirs = paired_seconds(
        lambda: bare_forward(model, part, preprocess, batch), lambda: bare_forward(model, part, preprocess, 1024), repeats
    )
    speedup = float(np.median(np.array(theirs) / np.array(ours)))
    return Measurement(
        f"inference batch {batch} against 1024", min(ours), min(theirs), "s", speedup,
        1.2 if batch != 1024 else None, True,
        f"cnn on {name}, {len(part[0])} test images, {torch.get_num_threads()} threads; ratio: 1024's time / the "
        "default's, median over back-to-back pairs",
    )
