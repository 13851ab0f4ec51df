"""The harness's batched data path against torchvision's DataLoader with per-image PIL
transforms, for the same CIFAR-10 augmentation (pad-4 random crop, horizontal flip,
normalisation), one epoch of batches, no model."""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image

from bench.training.loop import Preprocess, batch_indices
from benchmarks.common import Measurement, real_or_embedded


class PilImages(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 dataset does per item: a PIL image, then the transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def harness_epoch(images: torch.Tensor, preprocess: Preprocess, batch_size: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for index in batch_indices(len(images), batch_size, generator):
        preprocess(images[index], generator)


def dataloader_epoch(loader) -> None:
    for _batch in loader:
        pass


def data_path(workers: int = 2, batch_size: int = 128) -> Measurement:
    from torchvision import transforms

    data, name = real_or_embedded("cifar10")
    mean, std = data.channel_stats()
    preprocess = Preprocess(mean, std, "crop_flip")
    size = data.image_size
    transform = transforms.Compose([
        transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    hwc = data.train_x.permute(0, 2, 3, 1).numpy()
    if hwc.shape[-1] == 1:
        hwc = hwc[..., 0]
    loader = torch.utils.data.DataLoader(
        PilImages(hwc, data.train_y.numpy(), transform), batch_size=batch_size, shuffle=True, num_workers=workers,
        persistent_workers=workers > 0,
    )
    dataloader_epoch(loader)  # warm-up: worker start-up is not charged to the epoch
    start = time.perf_counter()
    dataloader_epoch(loader)
    theirs = time.perf_counter() - start
    harness_epoch(data.train_x, preprocess, batch_size)
    start = time.perf_counter()
    harness_epoch(data.train_x, preprocess, batch_size)
    ours = time.perf_counter() - start
    return Measurement(
        "data path (epoch time)", ours, theirs, "s per epoch", theirs / ours, 5.0, True,
        f"{name}, {len(data.train_y)} images, batch {batch_size}, crop+flip+normalise; DataLoader with "
        f"{workers} workers and PIL transforms; ratio = DataLoader time / harness time",
    )
