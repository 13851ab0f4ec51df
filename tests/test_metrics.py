"""Metrics on hand-made inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.evaluation.evaluate import predict_logits, split_metrics
from bench.evaluation.config import EvaluationConfig
from bench.evaluation.metrics import accuracy
from bench.data.models import build_model
from bench.data.splits import parse_scenario
from bench.training.loop import Preprocess


def test_accuracy_known_answers():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0], [1.0, 1.0]])
    assert accuracy(logits, np.array([0, 1, 1, 0])) == 0.75  # the tie goes to class 0
    assert accuracy(logits, np.array([1, 0, 0, 1])) == 0.25
    assert math.isnan(accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int)))
    with pytest.raises(ValueError, match="accuracy needs logits"):
        accuracy(logits, np.array([0, 1]))


def test_class_scenario_splits_test_accuracy_by_the_forgotten_class():
    eye = np.eye(3)
    logits = {
        "forget": eye[[1, 1]],
        "retain": eye[[0, 2, 2]],
        "test": eye[[1, 0, 0, 2, 0]],
    }
    labels = {"forget": np.array([1, 1]), "retain": np.array([0, 2, 0]), "test": np.array([1, 1, 0, 2, 2])}
    metrics = split_metrics(logits, labels, parse_scenario("class:1", 3))
    assert metrics["forget_acc"] == 1.0
    assert metrics["retain_acc"] == pytest.approx(2 / 3)
    assert metrics["test_acc"] == pytest.approx(3 / 5)
    assert metrics["test_forget_class_acc"] == 0.5
    assert metrics["test_rest_acc"] == pytest.approx(2 / 3)
    random = split_metrics(logits, labels, parse_scenario("random:0.5", 3))
    assert "test_rest_acc" not in random and random["test_acc"] == pytest.approx(3 / 5)


def test_inference_batch_defaults_to_the_device_and_does_not_change_the_logits():
    assert EvaluationConfig().inference_batch(torch.device("cpu")) == 128
    assert EvaluationConfig().inference_batch(torch.device("cuda")) == 1024
    assert EvaluationConfig(batch_size=300).inference_batch(torch.device("cpu")) == 300
    model = build_model("cnn", 3, 10, 32, seed=0)
    images = torch.randint(0, 256, (700, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    preprocess = Preprocess((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    small, large = (predict_logits(model, images, preprocess, size) for size in (128, 1024))
    assert small.shape == large.shape == (700, 10)
    np.testing.assert_allclose(small, large, rtol=0, atol=1e-4)
