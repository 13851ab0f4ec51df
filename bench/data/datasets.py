"""Datasets as in-memory uint8 tensors.

Every dataset is loaded once per process into ``(N, C, H, W)`` uint8 images and
int64 labels with a fixed train/test split. Normalisation and augmentation happen
later, batched, on the model's device (see :mod:`bench.training.loop`). Decoded image
folders are cached as safetensors files under the cache folder, never in the data
root, which may be read-only.

Where data is looked for, in order: ``$UNLEARN_DATA`` (the folder that holds
``MNIST/raw``, ``FashionMNIST/raw``, ``cifar-10-batches-py`` or ``cifar10/``), then
``<cache>/downloads``, then torchvision's download into ``<cache>/downloads`` when
downloading is allowed (``UNLEARN_DOWNLOAD=0`` forbids it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from bench.core.errors import UserError
from bench.core.store import load_verified, save_tensors, tensor_sha256

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class ImageData:
    """A dataset held in memory: uint8 images ``(N, C, H, W)`` and int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    augment: str | None  # "crop_flip" or None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and standard deviation of the training images in [0, 1],
        used to normalise them (one channel at a time, to bound the memory)."""
        stats = [torch.var_mean(self.train_x[:, c].double() / 255) for c in range(self.channels)]
        return tuple(float(m) for _, m in stats), tuple(float(v) ** 0.5 for v, _ in stats)

    def to(self, device: torch.device) -> "ImageData":
        """The same dataset with its tensors on ``device``."""
        return replace(self, **{k: getattr(self, k).to(device) for k in ("train_x", "train_y", "test_x", "test_y")})

    def fingerprint(self) -> str:
        """SHA-256 of the content: part of every cache key built on this data."""
        digest = hashlib.sha256()
        for tensor in (self.train_x, self.train_y, self.test_x, self.test_y):
            digest.update(tensor_sha256(tensor).encode())
        digest.update(json.dumps(self.classes).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class DatasetEntry:
    """How to load one named dataset, and what is known about it without loading."""

    load: Callable[[str], ImageData]
    num_classes: Callable[[str], int]


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, num_classes: int | Callable[[str], int]):
    """Register a loader ``load(argument) -> ImageData`` under ``name``."""

    def decorator(load: Callable[[str], ImageData]) -> Callable[[str], ImageData]:
        count = num_classes if callable(num_classes) else (lambda _arg, n=num_classes: n)
        _DATASETS[name] = DatasetEntry(load=load, num_classes=count)
        return load

    return decorator


def dataset_names() -> list[str]:
    """Names a config may use (``imagefolder`` takes a path: ``imagefolder:/data/x``)."""
    return sorted(_DATASETS)


def _split_name(spec: str) -> tuple[str, str]:
    kind, _, argument = spec.partition(":")
    if kind not in _DATASETS:
        raise UserError(f"unknown dataset {spec!r}; allowed: {', '.join(dataset_names())} (imagefolder:<path>)")
    if kind == "imagefolder" and not argument:
        raise UserError("dataset 'imagefolder' needs a path: imagefolder:<path> with <path>/{train,test}/<class>/")
    return kind, argument


def dataset_num_classes(spec: str) -> int:
    """Number of classes of a dataset spec, without loading its images."""
    kind, argument = _split_name(spec)
    return _DATASETS[kind].num_classes(argument)


def data_root() -> Path | None:
    value = os.environ.get("UNLEARN_DATA")
    return Path(value).expanduser() if value else None


def cache_root() -> Path:
    """The project's cache folder: ``$UNLEARN_CACHE`` or ``~/.cache/unlearn-bench``."""
    value = os.environ.get("UNLEARN_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "unlearn-bench"


def download_allowed() -> bool:
    return os.environ.get("UNLEARN_DOWNLOAD", "1") not in ("0", "false", "no")


def search_roots() -> list[Path]:
    roots = [data_root(), cache_root() / "downloads"]
    return [root for root in roots if root is not None]


@lru_cache(maxsize=8)
def load_dataset(spec: str) -> ImageData:
    """Load a dataset by spec (``digits``, ``mnist``, ``imagefolder:/path``...), once per process."""
    kind, argument = _split_name(spec)
    return _DATASETS[kind].load(argument)


def stratified_subset(labels: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of a seeded, class-stratified subset of ``size`` samples (sorted)."""
    from sklearn.model_selection import train_test_split

    if size >= len(labels):
        return torch.arange(len(labels))
    keep, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels.numpy(), random_state=seed)
    return torch.from_numpy(np.sort(keep))


def subsample(data: ImageData, train_size: int | None, test_size: int | None) -> ImageData:
    """A fixed (seed 0), stratified subset of the train and test sets, the same for every sweep seed."""
    train = stratified_subset(data.train_y, train_size) if train_size else torch.arange(len(data.train_y))
    test = stratified_subset(data.test_y, test_size) if test_size else torch.arange(len(data.test_y))
    return replace(data, train_x=data.train_x[train], train_y=data.train_y[train], test_x=data.test_x[test], test_y=data.test_y[test])


def validation_indices(data: ImageData, size: float | int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held-out) training indices: a seeded, class-stratified share (< 1) or count held out."""
    n, classes = len(data.train_y), data.num_classes
    count = round(size * n) if size < 1 else int(size)
    if size >= 1 and size != int(size) or not classes <= count <= n - classes:
        raise UserError(
            f"tuning.validation_size {size!r} holds out {count} of {n} training images; allowed: a share in (0, 1) or a whole "
            f"count, leaving at least {classes} images (one a class) on each side"
        )
    held = stratified_subset(data.train_y, count, seed)
    return torch.from_numpy(np.setdiff1d(np.arange(n), held.numpy())), held


def holdout_validation(data: ImageData, size: float | int, seed: int = 0) -> ImageData:
    """The tuner's view of a dataset: the validation part of the training set (see
    :func:`validation_indices`) takes the test set's place; the rest is the training set. The
    test set itself is dropped, so nothing built on this view (models, splits, metrics, the
    tuner's choices) can read it."""
    train, held = validation_indices(data, size, seed)
    return replace(
        data, name=f"{data.name}[validation]", train_x=data.train_x[train], train_y=data.train_y[train],
        test_x=data.train_x[held], test_y=data.train_y[held],
    )


def without_validation(data: ImageData, size: float | int, seed: int = 0) -> ImageData:
    """The sweep's view that keeps the validation part out: the tuner's training set, the test
    set as it is, so a tuned parameter meets the kind of model it was chosen on."""
    train, _ = validation_indices(data, size, seed)
    return replace(data, train_x=data.train_x[train], train_y=data.train_y[train])

# --- digits: scikit-learn's 8x8 digits, shipped with scikit-learn -----------------


@register_dataset("digits", num_classes=10)
def load_digits(_argument: str = "") -> ImageData:
    """scikit-learn's 1,797 8×8 digits (values 0..16 rescaled to 0..255), split 80/20,
    stratified, with ``random_state=0``: 1,437 train and 360 test images."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0)
    train, test = np.sort(train), np.sort(test)
    return ImageData(
        name="digits",
        train_x=torch.from_numpy(images[train]),
        train_y=torch.from_numpy(labels[train]),
        test_x=torch.from_numpy(images[test]),
        test_y=torch.from_numpy(labels[test]),
        classes=tuple(str(i) for i in range(10)),
        augment=None,
    )


# --- MNIST and Fashion-MNIST through torchvision on the raw IDX files -------------


def _torchvision_mnist(name: str, dataset_class_name: str) -> ImageData:
    import torchvision.datasets as tvd

    dataset_class = getattr(tvd, dataset_class_name)
    looked = []
    for root in search_roots():
        looked.append(str(root / dataset_class_name / "raw"))
        try:
            train = dataset_class(str(root), train=True, download=False)
            test = dataset_class(str(root), train=False, download=False)
            break
        except RuntimeError:
            continue
    else:
        train, test = _download(name, looked, lambda root: (
            dataset_class(str(root), train=True, download=True),
            dataset_class(str(root), train=False, download=True),
        ))
    return ImageData(
        name=name,
        train_x=train.data.to(torch.uint8)[:, None].contiguous(),
        train_y=train.targets.to(torch.int64),
        test_x=test.data.to(torch.uint8)[:, None].contiguous(),
        test_y=test.targets.to(torch.int64),
        classes=tuple(str(c) for c in train.classes),
        augment=None,
    )


def _download(name: str, looked: list[str], fetch: Callable[[Path], tuple]):
    how = "set UNLEARN_DATA to a folder in torchvision's layout (see docs/usage.md, 'Data')"
    if not download_allowed():
        raise UserError(f"dataset {name!r} not found in {', '.join(looked)}; downloading is off (UNLEARN_DOWNLOAD=0); {how}")
    target = cache_root() / "downloads"
    try:
        target.mkdir(parents=True, exist_ok=True)
        return fetch(target)
    except Exception as error:  # any network or integrity failure ends in the same advice
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"dataset {name!r} not found in {', '.join(looked)} and the download failed ({reason}); {how}") from None


@register_dataset("mnist", num_classes=10)
def load_mnist(_argument: str = "") -> ImageData:
    """MNIST (LeCun et al. 1998): 60,000 train / 10,000 test 28×28 grey images."""
    return _torchvision_mnist("mnist", "MNIST")


@register_dataset("fashion_mnist", num_classes=10)
def load_fashion_mnist(_argument: str = "") -> ImageData:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 train / 10,000 test 28×28 grey images."""
    return _torchvision_mnist("fashion_mnist", "FashionMNIST")


# --- CIFAR-10: torchvision's batches, or an image-folder copy ---------------------


@register_dataset("cifar10", num_classes=10)
def load_cifar10(_argument: str = "") -> ImageData:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test 32×32 colour images.

    Read from torchvision's ``cifar-10-batches-py``, else from an image folder
    ``cifar10/{train,test}/<class>/`` (decoded once and cached), else downloaded.
    Trained with random crop (padding 4) and horizontal flip, as is standard.
    """
    import torchvision.datasets as tvd

    looked = []
    for root in search_roots():
        looked.append(str(root / "cifar-10-batches-py"))
        if (root / "cifar-10-batches-py").is_dir():
            try:
                return _cifar_from_torchvision(tvd.CIFAR10(str(root), train=True), tvd.CIFAR10(str(root), train=False))
            except RuntimeError:
                pass
        looked.append(str(root / "cifar10"))
        if (root / "cifar10" / "train").is_dir() and (root / "cifar10" / "test").is_dir():
            return _image_folder_data("cifar10", root / "cifar10", augment="crop_flip")
    train, test = _download("cifar10", looked, lambda root: (
        tvd.CIFAR10(str(root), train=True, download=True),
        tvd.CIFAR10(str(root), train=False, download=True),
    ))
    return _cifar_from_torchvision(train, test)


def _cifar_from_torchvision(train, test) -> ImageData:
    return ImageData(
        name="cifar10",
        train_x=torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous(),
        train_y=torch.tensor(train.targets, dtype=torch.int64),
        test_x=torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous(),
        test_y=torch.tensor(test.targets, dtype=torch.int64),
        classes=tuple(train.classes),
        augment="crop_flip",
    )


# --- any image folder: {train,test}/<class>/<image> --------------------------------


def _folder_classes(root: Path) -> list[str]:
    train = root / "train"
    if not train.is_dir() or not (root / "test").is_dir():
        raise UserError(f"image folder {str(root)!r} must hold train/<class>/ and test/<class>/ folders")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"image folder {str(root / 'train')!r} has no class folders")
    return classes


def _list_images(root: Path, classes: list[str]) -> dict[str, list[tuple[Path, int]]]:
    files = {}
    for part in ("train", "test"):
        files[part] = [
            (path, label)
            for label, name in enumerate(classes)
            for path in sorted((root / part / name).iterdir() if (root / part / name).is_dir() else [])
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not files[part]:
            raise UserError(f"image folder {str(root / part)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _decode(path: Path, mode: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert(mode))


def _decode_all(paths: list[Path], mode: str) -> np.ndarray:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        arrays = list(pool.map(lambda p: _decode(p, mode), paths, chunksize=256))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise UserError(f"images must all have one size; found {sorted(shapes)[:3]} (resize them first)")
    stacked = np.stack(arrays)
    return stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)


def _image_folder_data(name: str, root: Path, augment: str | None) -> ImageData:
    classes = _folder_classes(root)
    files = _list_images(root, classes)
    listing = [(str(p.relative_to(root)), p.stat().st_size) for part in ("train", "test") for p, _ in files[part]]
    key = hashlib.sha256(json.dumps([name, listing]).encode()).hexdigest()
    cache_file = cache_root() / "datasets" / f"{name.partition(':')[0]}-{key[:16]}.safetensors"
    cached = load_verified(cache_file, key)
    if cached is not None:
        tensors, _ = cached
    else:
        from PIL import Image

        with Image.open(files["train"][0][0]) as first:
            mode = "L" if first.mode in ("L", "1", "I;16") else "RGB"
        tensors = {}
        for part in ("train", "test"):
            tensors[f"{part}_x"] = torch.from_numpy(np.ascontiguousarray(_decode_all([p for p, _ in files[part]], mode)))
            tensors[f"{part}_y"] = torch.tensor([label for _, label in files[part]], dtype=torch.int64)
        save_tensors(cache_file, tensors, {"key": key, "root": str(root)})
    return ImageData(
        name=name,
        train_x=tensors["train_x"],
        train_y=tensors["train_y"],
        test_x=tensors["test_x"],
        test_y=tensors["test_y"],
        classes=tuple(classes),
        augment=augment,
    )


@register_dataset("imagefolder", num_classes=lambda path: len(_folder_classes(Path(path).expanduser())))
def load_image_folder(path: str) -> ImageData:
    """A user's own ``<path>/{train,test}/<class>/`` tree of equally sized images (no augmentation)."""
    root = Path(path).expanduser()
    return _image_folder_data(f"imagefolder:{root}", root, augment=None)
