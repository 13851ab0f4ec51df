"""Every model exposes features(x) -> (B, D) and a linear head on them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.core.errors import UserError
from bench.data.models import build_model, model_names

SHAPES = [(1, 8), (1, 28), (3, 32)]
FEATURES = {"cnn": 128, "allcnn": 192, "resnet18": 512}


@pytest.mark.parametrize("name", sorted(FEATURES))
@pytest.mark.parametrize("channels, size", SHAPES)
def test_features_and_head(name, channels, size):
    model = build_model(name, channels, 7, size, seed=0).eval()
    x = torch.randn(3, channels, size, size)
    features = model.features(x)
    assert features.shape == (3, FEATURES[name])
    assert isinstance(model.head, nn.Linear) and model.head.in_features == FEATURES[name] and model.head.out_features == 7
    with torch.no_grad():
        assert torch.allclose(model(x), model.head(model.features(x)))


def test_registry_knows_the_three_models():
    assert model_names() == ["allcnn", "cnn", "resnet18"]
    with pytest.raises(UserError, match="unknown model 'vgg'; allowed: allcnn, cnn, resnet18"):
        build_model("vgg", 3, 10, 32, 0)


def test_seed_fixes_the_initialisation():
    a, b, c = (build_model("cnn", 1, 10, 28, seed) for seed in (0, 0, 1))
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.head.weight, c.head.weight)


def test_resnet18_has_the_cifar_stem():
    model = build_model("resnet18", 3, 10, 32, 0)
    stem = model.body[0]
    assert isinstance(stem, nn.Conv2d) and stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
