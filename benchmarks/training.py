"""Training throughput: the harness's one loop against a minimal hand-written PyTorch loop,
and (on a GPU) resnet18 on CIFAR-10 against the GPU's peak."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.models import build_model
from bench.training.loop import Preprocess, Recipe, autocast, make_optimizer, synchronize, train
from benchmarks.common import Measurement, real_or_embedded

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, for the share of peak;
# the first key found in the device's name wins, so the PCIe H100 (756 T) and the A100 come
# before the names they contain.
GPU_PEAK_BF16 = {
    "H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "RTX 4090": 165e12,
}


def train_step_flops(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs of one forward and backward pass on ``x``, counted by PyTorch's own
    ``FlopCounterMode`` (matrix multiplies and convolutions), not taken from a paper."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def minimal_epoch(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, recipe: Recipe,
                  mean: tuple[float, ...], std: tuple[float, ...], generator: torch.Generator) -> None:
    """The loop anyone would write: shuffle, normalise, forward, backward, step."""
    device = next(model.parameters()).device
    optimizer = make_optimizer(model.parameters(), recipe)
    mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
    model.train()
    for index in torch.randperm(len(labels), generator=generator).split(recipe.batch_size):
        index = index.to(device)
        x = ((images[index].float() / 255 - mean_t) / std_t).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            loss = F.cross_entropy(model(x), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)


def training_throughput(device: torch.device, repeats: int = 3) -> Measurement:
    """Images per second of one epoch of ``cnn`` on MNIST (10,000 images; the embedded
    digits without ``$UNLEARN_DATA``), no augmentation, batch 128: harness / minimal."""
    data, name = real_or_embedded("mnist", train_size=10_000)
    images, labels = data.train_x.to(device), data.train_y.to(device)
    mean, std = data.channel_stats()
    recipe = Recipe(epochs=1, batch_size=128, lr=0.05, schedule="constant", augment=False)
    preprocess = Preprocess(mean, std, None)

    def fresh() -> torch.nn.Module:
        return build_model("cnn", data.channels, data.num_classes, data.image_size, seed=0).to(device)

    def harness() -> float:
        model = fresh()
        return train(model, images, labels, recipe, preprocess, torch.Generator().manual_seed(0)).seconds

    def minimal() -> float:
        import time

        model = fresh()
        synchronize(device)
        start = time.perf_counter()
        minimal_epoch(model, images, labels, recipe, mean, std, torch.Generator().manual_seed(0))
        return time.perf_counter() - start

    harness(), minimal()  # warm-up: allocator, kernels
    harness_s, minimal_s = [], []
    for _ in range(repeats):  # back to back, so that a slow spell of a shared machine hits both of a pair
        harness_s.append(harness())
        minimal_s.append(minimal())
    n = len(labels)
    ratio = float(np.median(np.array(minimal_s) / np.array(harness_s)))
    return Measurement(
        "training throughput", n / min(harness_s), n / min(minimal_s), "images/s", ratio, 0.95, True,
        f"cnn on {name} ({n} images), batch 128, one epoch; images/s: best of {repeats}; "
        "ratio: median over back-to-back pairs",
    )


def gpu_resnet18_throughput(device: torch.device, steps: int = 50) -> Measurement | None:
    """On a GPU: images/s of resnet18 training steps on CIFAR-10-sized batches (batch 512,
    bf16 autocast, channels-last, augmentation on the device) and the share of the GPU's
    bf16 peak that represents. None on the CPU."""
    if device.type != "cuda":
        return None
    data, name = real_or_embedded("cifar10")
    if name != "cifar10":
        return None
    images, labels = data.train_x.to(device), data.train_y.to(device)
    mean, std = data.channel_stats()
    preprocess = Preprocess(mean, std, data.augment)
    model = build_model("resnet18", data.channels, data.num_classes, data.image_size, seed=0).to(device)
    recipe = Recipe(epochs=1, batch_size=512, lr=0.1, schedule="constant")
    subset = torch.arange(512 * steps) % len(labels)
    train(model, images[subset[:512 * 5]], labels[subset[:512 * 5]], recipe, preprocess, torch.Generator().manual_seed(0))
    seconds = train(model, images[subset], labels[subset], recipe, preprocess, torch.Generator().manual_seed(1)).seconds
    rate = len(subset) / seconds
    batch = subset[:64]
    flops_per_image = train_step_flops(model, preprocess(images[batch]), labels[batch]) / len(batch)
    gpu = torch.cuda.get_device_name(device)
    peak = next((value for key, value in GPU_PEAK_BF16.items() if key in gpu), None)
    share = rate * flops_per_image / peak if peak else float("nan")
    return Measurement(
        "resnet18 CIFAR-10 training (GPU)", rate, peak or float("nan"), "images/s; baseline: peak FLOP/s", share, None, True,
        f"{gpu}; share of the bf16 peak = images/s x {flops_per_image:.3g} FLOP per image per step (counted) / peak",
    )
