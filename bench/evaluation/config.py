"""How cells are evaluated: the inference batch, the SVC attack's sample cap and the costly
tier (relearn time, forget quality, retain-only relearning); part of a sweep's config (:mod:`bench.config.sweep`)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field


class RelearnConfig(BaseModel):
    """The relearn-time test (Chundawat et al. 2023, "Zero-shot machine unlearning", the
    anamnesis index): fine-tune on ``samples`` forget samples, ``batch_size`` at a time, with
    SGD (momentum 0.9) at ``lr``, until the forget accuracy is at least (1 − ``alpha``) of
    the original model's; at most ``max_steps`` steps. α = 0.05 as this benchmark's
    specification asks; the other values are chosen here: small enough to relearn in
    seconds on a CPU, large enough that a retrained model needs more than a step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(0.05, gt=0, lt=1)
    samples: int = Field(64, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(0.01, gt=0)
    max_steps: int = Field(500, ge=1)


class RetainRelearnConfig(BaseModel):
    """Retain-only relearning (arXiv 2505.22310, "shallow forgetting"): fine-tune a copy of
    the model for ``epochs`` passes over ``samples`` retain samples (a seeded choice, no
    augmentation), ``batch_size`` at a time, with SGD (momentum 0.9) at ``lr``, and measure
    the forget accuracy after; the retrained model gets the same fine-tuning, same samples and
    order. Forgetting that such fine-tuning undoes was never deep. The defaults are chosen here:
    a few epochs of a small sample, a fraction of an epoch of a MNIST-sized retain set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(1000, ge=1)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)


class ForgetQualityConfig(BaseModel):
    """The NeurIPS 2023 unlearning challenge's score from ``runs`` (K) runs of each method
    and K retrained models; the challenge used K = 512 and δ = 1e-5."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: int = Field(16, ge=2)
    delta: float = Field(1e-5, gt=0, lt=1)
    workers: int | None = Field(None, ge=1)  # runs at once on the CPU; default one per core


class EvaluationConfig(BaseModel):
    """How cells are evaluated. ``svc_max_samples`` caps the members and the non-members
    the SVC attack is fit on (each side), since its fit grows about quadratically with them
    (12 s at 10,000 a side, 0.7 s at 2,500, measured on 2 cores); ``null`` fits on the whole
    test set as SalUn does. ``relearn``, ``forget_quality`` and ``retain_relearn`` turn on the costly tier.
    ``batch_size``: images per inference batch; ``null`` is 1024 on a GPU and 128 on the CPU,
    where a batch of 1024 outgrows the caches (``cnn`` at 128: 1.8x faster on 10,000 CIFAR-10
    images, two threads, benchmarks/README.md row 7; 1.4-1.9x on random 32x32 and 28x28
    batches, one and two threads, measured alone once)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int | None = Field(None, ge=1)
    svc_max_samples: int | None = Field(2500, ge=10)
    relearn: RelearnConfig | None = None
    forget_quality: ForgetQualityConfig | None = None
    retain_relearn: RetainRelearnConfig | None = None

    def key_fields(self) -> dict:
        """What of this config decides results, for cell, reference and study keys: all but
        the inference batch; ``retain_relearn`` only when on (keys made before it existed
        stay valid)."""
        exclude = {"batch_size"} | ({"retain_relearn"} if self.retain_relearn is None else set())
        return self.model_dump(exclude=exclude)

    def inference_batch(self, device: torch.device) -> int:
        """``batch_size``, or its default for ``device`` when null."""
        return self.batch_size or (1024 if device.type == "cuda" else 128)
