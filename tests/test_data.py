"""Dataset loaders: shapes, dtypes, class counts, caching of decoded folders, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import datasets as data
from bench.core.errors import UserError
from conftest import require_data


def fresh(spec: str) -> data.ImageData:
    data.load_dataset.cache_clear()
    return data.load_dataset(spec)


def check_layout(d: data.ImageData, n_train: int, n_test: int, shape: tuple[int, int, int], classes: int) -> None:
    assert tuple(d.train_x.shape) == (n_train, *shape)
    assert tuple(d.test_x.shape) == (n_test, *shape)
    assert d.train_x.dtype == torch.uint8 and d.test_x.dtype == torch.uint8
    assert d.train_y.dtype == torch.int64 and d.test_y.dtype == torch.int64
    assert d.num_classes == classes
    assert set(d.train_y.unique().tolist()) == set(range(classes))
    assert set(d.test_y.unique().tolist()) == set(range(classes))


def test_digits_is_a_fixed_stratified_80_20_split():
    d = fresh("digits")
    check_layout(d, 1437, 360, (1, 8, 8), 10)
    assert int(d.train_x.max()) == 255 and int(d.train_x.min()) == 0
    train_share = np.bincount(d.train_y.numpy()) / np.bincount(np.concatenate([d.train_y.numpy(), d.test_y.numpy()]))
    assert np.allclose(train_share, 0.8, atol=0.01)
    again = fresh("digits")
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.test_y, again.test_y)


@pytest.mark.parametrize("spec, folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw")])
def test_mnist_family_from_raw_idx_files(spec, folder):
    require_data(folder)
    d = fresh(spec)
    check_layout(d, 60000, 10000, (1, 28, 28), 10)
    assert np.bincount(d.train_y.numpy()).min() >= 5000


@pytest.mark.slow
def test_cifar10_from_image_folder_is_decoded_once_and_cached(isolated_cache):
    require_data("cifar10/train")
    d = fresh("cifar10")
    check_layout(d, 50000, 10000, (3, 32, 32), 10)
    assert d.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert np.bincount(d.train_y.numpy()).tolist() == [5000] * 10
    assert d.augment == "crop_flip"
    cached = list((isolated_cache / "datasets").glob("cifar10-*.safetensors"))
    assert len(cached) == 1
    again = fresh("cifar10")
    assert torch.equal(again.train_x, d.train_x) and torch.equal(again.test_y, d.test_y)


def make_folder(root, size=(5, 4), mode="RGB"):
    """Two classes, three train and two test images each, every pixel a known value."""
    values = {}
    for part, count in (("train", 3), ("test", 2)):
        for label, name in enumerate(("bee", "ant")):  # sorted: ant = 0, bee = 1
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(count):
                value = 10 * i + 100 * label + (50 if part == "test" else 0)
                Image.new(mode, size, value if mode == "L" else (value, value + 1, value + 2)).save(folder / f"{i}.png")
                values[(part, name, i)] = value
    return values


def test_image_folder_decodes_pixels_labels_and_caches(tmp_path, isolated_cache):
    make_folder(tmp_path / "tree")
    d = fresh(f"imagefolder:{tmp_path / 'tree'}")
    check_layout(d, 6, 4, (3, 4, 5), 2)
    assert d.classes == ("ant", "bee")
    # train order: ant/0..2 then bee/0..2; "bee" was written with label index 0 in make_folder's loop
    assert d.train_x[0, :, 0, 0].tolist() == [100, 101, 102]  # ant/0.png: value 10*0 + 100*1
    assert d.train_x[3, :, 0, 0].tolist() == [0, 1, 2]  # bee/0.png: value 0
    assert d.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    caches = list((isolated_cache / "datasets").glob("imagefolder*.safetensors"))
    assert len(caches) == 1
    # a cache hit gives the same tensors; a corrupted cache file is decoded again, not used
    assert torch.equal(fresh(f"imagefolder:{tmp_path / 'tree'}").train_x, d.train_x)
    caches[0].write_bytes(caches[0].read_bytes()[:-10] + b"0123456789")
    assert torch.equal(fresh(f"imagefolder:{tmp_path / 'tree'}").train_x, d.train_x)


def test_grey_image_folder_has_one_channel(tmp_path):
    make_folder(tmp_path / "grey", mode="L")
    d = fresh(f"imagefolder:{tmp_path / 'grey'}")
    check_layout(d, 6, 4, (1, 4, 5), 2)


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA", str(tmp_path / "empty"))
    with pytest.raises(UserError, match=r"dataset 'mnist' not found in .*empty/MNIST/raw.*UNLEARN_DATA"):
        fresh("mnist")
    with pytest.raises(UserError, match=r"must hold train/<class>/ and test/<class>/"):
        fresh(f"imagefolder:{tmp_path / 'nowhere'}")
    with pytest.raises(UserError, match=r"unknown dataset 'svhn'; allowed: cifar10, digits"):
        fresh("svhn")


def test_stratified_subset_keeps_class_shares():
    d = fresh("digits")
    small = data.subsample(d, 500, 100)
    assert len(small.train_y) == 500 and len(small.test_y) == 100
    assert np.bincount(small.train_y.numpy()).min() >= 45
    assert torch.equal(data.subsample(d, 500, 100).train_x, small.train_x)


def test_channel_stats_known_answer():
    images = torch.tensor([[[[0, 255]], [[51, 51]]], [[[255, 0]], [[51, 51]]]], dtype=torch.uint8)  # (2, 2, 1, 2)
    d = data.ImageData("t", images, torch.tensor([0, 1]), images, torch.tensor([0, 1]), ("a", "b"), None)
    mean, std = d.channel_stats()
    assert mean == pytest.approx((0.5, 0.2))
    assert std == pytest.approx((np.std([0, 1, 1, 0], ddof=1), 0.0))
