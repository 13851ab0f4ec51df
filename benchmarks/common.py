"""What every benchmark shares: a measurement record and the data it runs on."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from bench.data.datasets import ImageData, load_dataset, subsample


@dataclass
class Measurement:
    """One benchmark: the harness's figure, the baseline's, their ratio and the target.

    ``higher_is_better`` says which side of ``target`` passes: a throughput ratio must be
    at least its target, a time ratio at most."""

    name: str
    harness: float
    baseline: float
    unit: str
    ratio: float
    target: float | None
    higher_is_better: bool
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def real_or_embedded(name: str, train_size: int | None = None) -> tuple[ImageData, str]:
    """A real dataset under ``$UNLEARN_DATA`` when it is there, else the embedded digits."""
    if os.environ.get("UNLEARN_DATA"):
        try:
            return subsample(load_dataset(name), train_size, None), name
        except Exception:  # noqa: BLE001 - any reason the real data is not there: fall back, and say so
            pass
    return load_dataset("digits"), "digits"


def paired_seconds(ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Wall times of ``ours`` and ``theirs`` run back to back ``repeats`` times after one
    warm-up each, so that a slow spell of the shared machine hits both of a pair."""
    ours(), theirs()
    pairs = [(_seconds(ours), _seconds(theirs)) for _ in range(repeats)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _seconds(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def machine() -> dict[str, Any]:
    import platform

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else (platform.processor() or "cpu"),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }
