"""Peak memory of a block of code: CUDA's peak allocation on a GPU, the process's peak
anonymous resident memory (sampled) on the CPU."""

from __future__ import annotations

import gc
import threading
from types import TracebackType

import psutil
import torch

MIB = 2**20


class PeakMemory:
    """Context manager measuring the peak memory used while its block runs.

    On CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak statistics, so
    the peak is of the tensors the block held (the caching allocator's reserve aside). On
    the CPU: the process's anonymous resident memory (the heap: tensors, arrays, Python
    objects) sampled every ``interval`` seconds by a thread (the operating system keeps
    only a lifetime maximum, which a block cannot be charged with), plus a sample at entry
    and exit, so a peak shorter than the interval can be missed. File-backed pages
    (shared libraries, memory-mapped files) are left out: the kernel drops and reloads
    them at will, and a library loaded lazily would be charged to whichever block touched
    it first. Garbage is collected before the level at entry is read, so that memory
    freed by a collection during the block is not subtracted from what the block added;
    that full collection takes ~0.2 s in a process that has imported PyTorch, ~2 ms once
    the long-lived objects are frozen (:func:`bench.train.warm_up`, before a sweep's cells).
    ``peak_mib`` is the absolute peak; ``delta_mib`` the peak less the level at entry,
    which is what the block added.
    """

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device = device
        self.interval = interval
        self.start_bytes = 0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()

    def _resident_bytes(self) -> int:
        info = self._process.memory_info()
        # On Linux ``shared`` is RssFile + RssShmem (/proc/<pid>/statm), leaving RssAnon;
        # other systems report no such split, and all of the resident set is counted.
        return info.rss - getattr(info, "shared", 0)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._resident_bytes())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = self.peak_bytes = torch.cuda.memory_allocated(self.device)
        else:
            gc.collect()
            self.start_bytes = self.peak_bytes = self._resident_bytes()
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = max(self.peak_bytes, torch.cuda.max_memory_allocated(self.device))
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, self._resident_bytes())

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / MIB

    @property
    def delta_mib(self) -> float:
        return (self.peak_bytes - self.start_bytes) / MIB
