"""THE training loop, its recipe, the batched data path, and cached trained models.

Images stay uint8 in memory (on the model's device once moved); each step slices a
batch of indices, then normalises and augments the whole batch with tensor
operations (airbench's data path: no per-image Python). :func:`fit` is the loop;
original, retrained and any method with one dataset and one loss use :func:`train` on
it; methods with unusual steps (two batches a step, a teacher, "max" and "min" passes,
balanced rounds) give :func:`fit` their own plan and step loss instead of copying the loop.
"""

from __future__ import annotations

import functools
import gc
import json
import math
import time
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm.auto import tqdm

from bench.core.resources import PeakMemory
from bench.core.store import file_lock, load_verified, save_tensors, stable_hash

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Recipe(BaseModel):
    """How a model is trained. Defaults: SGD with Nesterov momentum 0.9, weight decay
    5e-4 and a one-cycle schedule (Smith & Topin 2019), the usual CIFAR recipe.
    ``optimizer="adam"`` uses Adam with ``lr`` and ``weight_decay`` (momentum unused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["sgd", "adam"] = "sgd"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: bool = True  # use the dataset's augmentation (crop and flip for CIFAR-10), if it has one


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def warm_up(device: torch.device) -> None:
    """Pay this process's one-time costs before anything is timed: the first optimizer
    built imports ``torch._dynamo`` (PyTorch wraps ``Optimizer.__init__`` in
    ``torch._disable_dynamo``), about 2 s here; one backward pass and one step pay any
    lazy set-up of those too. Without this, the first method a process runs from cached
    models (a resumed sweep, an added method, a Ray worker's first cell) is charged for them.

    Then the objects the cyclic garbage collector tracks now (modules, datasets, models:
    about 280,000 after PyTorch's imports) are frozen out of its scans (``gc.freeze``): they
    live as long as the sweep, and a full collection, which :class:`bench.core.resources.PeakMemory`
    runs before every method, takes ~0.2 s here with them and ~2 ms without. No collection
    comes first (it would cost those 0.2 s once more): what little garbage there is now is
    kept, and never freed inside a method, until ``gc.unfreeze()`` gives it all back."""
    parameter = nn.Parameter(torch.zeros(1, device=device))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    (parameter * 2).sum().backward()
    optimizer.step()
    synchronize(device)
    gc.freeze()


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Precision = Literal["auto", "bf16", "fp32"]
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
_COMPILE = False
_PRECISION = "auto"


def use_numerics(compile: bool = False, precision: Precision = "auto") -> None:
    """Set this process's numerics for the training loop and the inference passes (the
    sweep sets them from its config; no arguments restore the defaults). ``compile``:
    ``torch.compile`` their forward. ``precision``: ``auto`` is bf16 autocast on CUDA and
    float32 on the CPU; ``bf16`` and ``fp32`` force one on any device (``bf16`` on the CPU
    runs the CUDA path's numerics where no GPU is at hand, slowly)."""
    global _COMPILE, _PRECISION
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    _COMPILE, _PRECISION = compile, precision


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile(model)`` when compilation is on, else ``model`` itself. The wrapper
    shares the model's parameters, so the model itself is what gets saved and copied."""
    return torch.compile(model) if _COMPILE else model


def autocast(device: torch.device):
    """bf16 autocast where the precision says so; a no-op context otherwise."""
    bf16 = _PRECISION == "bf16" or (_PRECISION == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def numerics_fields(compile: bool, precision: str) -> dict[str, Any]:
    """The numerics switches that go into model and cell keys: only those not at their
    default, so keys made before a switch existed stay valid. ``precision`` is keyed as
    configured, not as resolved on a device, so a driver without a GPU and its GPU workers
    agree on every key."""
    return {**({"compile": True} if compile else {}), **({"precision": precision} if precision != "auto" else {})}


@dataclass(frozen=True)
class Preprocess:
    """Batched normalisation and augmentation of uint8 images on their device.

    ``augment="crop_flip"``: random crop with zero padding ``pad`` and random
    horizontal flip, the standard CIFAR-10 augmentation (He et al. 2016).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str | None = None
    pad: int = 4

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalise a uint8 batch; augment it too when a ``generator`` is given. A float
        batch is taken to be normalised already (e.g. optimised noise) and passes as it is."""
        if images.is_floating_point():
            return images.contiguous(memory_format=torch.channels_last)
        x = images.float().div_(255)
        if generator is not None and self.augment == "crop_flip":
            x = random_crop(x, self.pad, generator)
            x = random_flip(x, generator)
        mean, std = _channel_tensors(self.mean, self.std, x.device)
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


@functools.lru_cache(maxsize=16)
def _channel_tensors(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as (1, C, 1, 1) tensors on ``device``, made once rather than per batch."""
    return torch.tensor(mean, device=device).view(1, -1, 1, 1), torch.tensor(std, device=device).view(1, -1, 1, 1)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Crop each image of ``x`` (B, C, H, W) at a random offset from its zero-padded copy."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def batch_indices(n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index batches over ``n`` samples, reshuffled from ``generator`` on every call."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def block_batches(sizes: list[int], batch_sizes: list[int], generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches over blocks laid end to end (block ``k`` holds ``sizes[k]`` samples):
    each block shuffled and cut into batches of its own size, the blocks in order, no batch
    straddling two. A forget-then-retain pass, as SalUn's RL and SCRUB's epochs run them."""
    offset = 0
    for size, batch_size in zip(sizes, batch_sizes):
        for batch in batch_indices(size, batch_size, generator):
            yield batch + offset
        offset += size


def make_optimizer(parameters, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``parameters`` (an iterable of tensors)."""
    if recipe.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        parameters,
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov and recipe.momentum > 0,
        weight_decay=recipe.weight_decay,
    )


def make_schedule(optimizer: torch.optim.Optimizer, recipe: Recipe, total_steps: int):
    """A per-step learning-rate schedule: one-cycle, cosine to zero, or constant (``None``:
    no scheduler to step)."""
    total_steps = max(1, total_steps)
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total_steps)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return None


@dataclass
class TrainLog:
    """Mean training loss per epoch, the wall time of the whole run (device synchronised),
    and any tensors a step hook produced (cached with the model)."""

    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


class StepHook(Protocol):
    """Instrumentation of the loop: called around each step (forward, backward and update)
    with the step's item (for :func:`train`, the batch's indices)."""

    def before_batch(self, model: nn.Module, indices: torch.Tensor) -> None: ...

    def after_batch(self, model: nn.Module, indices: torch.Tensor) -> None: ...


StepLoss = Callable[[nn.Module, Any, int], tuple[torch.Tensor, int]]


def train_mode(model: nn.Module, frozen_batchnorm: bool = False) -> None:
    """The loop's mode: train, batch norm in eval mode when ``frozen_batchnorm``."""
    model.train()
    for module in model.modules() if frozen_batchnorm else ():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def fit(
    model: nn.Module,
    epochs: int,
    plan: Callable[[int], Iterable[Any]],
    step_loss: StepLoss,
    optimizer: torch.optim.Optimizer,
    schedule: Any = None,
    hook: StepHook | None = None,
    frozen_batchnorm: bool = False,
    progress: str | None = None,
    on_epoch: Callable[[int], None] | None = None,
    end_epoch: Callable[[int], None] | None = None,
) -> TrainLog:
    """THE loop: for each epoch, one optimiser step per item ``plan(epoch)`` yields.

    ``step_loss(forward, item, epoch)`` returns the item's loss and how many samples it
    averages (the epoch's logged loss is their weighted mean); ``forward`` is the model,
    compiled when compilation is on. A method decides what an item is (an index batch, a
    pair of them) and what its loss reads; the loop owns the mode (train, or batch norm
    frozen: eval-mode normalisation, running statistics never updated), autocast, the
    step and its schedule, ``hook`` (around each step, given the item), ``on_epoch``
    (before each epoch: a learning-rate decay, a fresh draw of labels), ``end_epoch`` (after
    it: a balancer's update) and the timing.
    """
    device = next(model.parameters()).device
    log = TrainLog()
    synchronize(device)
    start = time.perf_counter()
    train_mode(model, frozen_batchnorm)
    forward = compiled(model)
    bar = tqdm(range(epochs), desc=progress, leave=False, disable=progress is None, delay=2)
    for epoch in bar:
        if on_epoch is not None:
            on_epoch(epoch)
        total, count = torch.zeros((), device=device), 0
        for item in plan(epoch):
            if hook is not None:
                hook.before_batch(model, item)
            with autocast(device):
                loss, n = step_loss(forward, item, epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if hook is not None:
                hook.after_batch(model, item)
            total += loss.detach() * n
            count += n
        log.epoch_loss.append(float(total) / max(count, 1))
        if end_epoch is not None:
            end_epoch(epoch)
        bar.set_postfix(loss=f"{log.epoch_loss[-1]:.3f}")
    synchronize(device)
    log.seconds = time.perf_counter() - start
    return log


def train(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    recipe: Recipe,
    preprocess: Preprocess,
    generator: torch.Generator,
    loss_fn: LossFn | None = None,
    progress: str | None = None,
    hook: StepHook | None = None,
    frozen_batchnorm: bool = False,
) -> TrainLog:
    """Train ``model`` in place on uint8 ``images`` and int64 ``labels`` with :func:`fit`.

    The data is moved to the model's device once; every random choice (order,
    augmentation) comes from ``generator``. ``loss_fn(logits, labels)`` defaults to
    cross-entropy with the recipe's label smoothing. ``hook`` sees every batch's
    indices (into ``images``) before and after its update. ``frozen_batchnorm`` keeps
    batch-norm layers in eval mode (see :func:`fit`); they are left in eval mode afterwards.
    """
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    loss_fn = loss_fn or (lambda logits, y: F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing))
    augmenting = preprocess if recipe.augment else Preprocess(preprocess.mean, preprocess.std, None)
    optimizer = make_optimizer(model.parameters(), recipe)
    schedule = make_schedule(optimizer, recipe, recipe.epochs * math.ceil(len(labels) / recipe.batch_size))

    def step_loss(forward: nn.Module, cpu_index: torch.Tensor, _epoch: int) -> tuple[torch.Tensor, int]:
        index = cpu_index.to(device)
        return loss_fn(forward(augmenting(images[index], generator)), labels[index]), len(index)

    return fit(model, recipe.epochs, lambda _epoch: batch_indices(len(labels), recipe.batch_size, generator), step_loss,
               optimizer, schedule, hook=hook, frozen_batchnorm=frozen_batchnorm, progress=progress)


@dataclass(frozen=True)
class CachedModel:
    """A trained model from the cache or fresh, with what its training cost (wall time, and
    peak and added memory as :class:`bench.core.resources.PeakMemory` measures them; NaN for models
    cached before memory was recorded) and the tensors its training hook produced."""

    model: nn.Module
    train_seconds: float
    from_cache: bool
    key: str
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    peak_mib: float = float("nan")
    delta_mib: float = float("nan")


EXTRA_PREFIX = "extra::"


def cached_training(
    cache_dir: Path,
    key_fields: dict,
    build: Callable[[], nn.Module],
    fit: Callable[[nn.Module], TrainLog],
) -> CachedModel:
    """Load the model trained for ``key_fields`` or train and cache it.

    The key is the SHA-256 of everything that determines the weights. A file whose
    stored key or content checksum does not match is trained again, never used.
    """
    key = stable_hash(key_fields, length=64)
    path = cache_dir / f"{key[:32]}.safetensors"
    with file_lock(path.with_suffix(".lock")):  # two workers needing this model: one trains, one waits and loads
        return _load_or_train(path, key, key_fields, build, fit)


def _load_or_train(
    path: Path, key: str, key_fields: dict, build: Callable[[], nn.Module], fit: Callable[[nn.Module], TrainLog]
) -> CachedModel:
    loaded = load_verified(path, key)
    model = build()
    if loaded is not None:
        tensors, metadata = loaded
        device = next(model.parameters()).device
        state = {name: t.to(device) for name, t in tensors.items() if not name.startswith(EXTRA_PREFIX)}
        extra = {name.removeprefix(EXTRA_PREFIX): t for name, t in tensors.items() if name.startswith(EXTRA_PREFIX)}
        model.load_state_dict(state)
        peak, delta = (float(metadata.get(name, "nan")) for name in ("peak_mib", "delta_mib"))
        return CachedModel(model, float(metadata["train_seconds"]), True, key, extra, peak, delta)
    with PeakMemory(next(model.parameters()).device) as memory:
        log = fit(model)
    metadata = {
        "key": key, "fields": json.dumps(key_fields, sort_keys=True, default=str), "train_seconds": repr(log.seconds),
        "peak_mib": repr(memory.peak_mib), "delta_mib": repr(memory.delta_mib),
    }
    tensors = {**model.state_dict(), **{EXTRA_PREFIX + name: t for name, t in log.extra.items()}}
    save_tensors(path, tensors, metadata)
    return CachedModel(model, log.seconds, False, key, dict(log.extra), memory.peak_mib, memory.delta_mib)
