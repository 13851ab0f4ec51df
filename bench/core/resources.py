"""Peak memory of a block of code: CUDA's peak allocation on a GPU, the process's peak
anonymous resident memory (sampled) on the CPU."""

from __future__ import annotations

import gc
import threading
from types import TracebackType

import psutil
import torch
from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode

MIB = 2**20


class PeakMemory:
    """Context manager measuring the peak memory used while its block runs.

    On CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak statistics, so
    the peak is of the tensors the block held (the caching allocator's reserve aside). On
    the CPU: the process's anonymous resident memory (the heap: tensors, arrays, Python
    objects) sampled every ``interval`` seconds by a thread (the operating system keeps
    only a lifetime maximum, which a block cannot be charged with), plus a sample at entry
    and exit. A peak shorter than the interval can be missed, as can one inside a single C
    call that holds Python's GIL all along (the sampler is a Python thread; PyTorch's
    operators release the GIL). File-backed pages (shared libraries, memory-mapped files)
    are left out: the kernel drops and reloads them at will, and a library loaded lazily
    would be charged to whichever block touched it first.

    ``peak_mib`` is the absolute peak. ``delta_mib``, what the block added, is the largest
    rise of the level during the block above its lowest point before that rise. On the CPU
    the level also falls for reasons not the block's (memory another thread freed, an
    allocator arena trimmed), and measured from the level at entry such a fall would hide
    what the block allocated after it (the likeliest reason for the 224 MiB once measured
    for a block holding 300). On both devices garbage is collected before the level at
    entry is read, so that a collection in the middle of the block cannot lower it either;
    that full collection takes ~0.2 s in a process that has imported PyTorch, ~2 ms once
    the long-lived objects are frozen (:func:`bench.training.loop.warm_up`, before a sweep's cells).
    """

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device = device
        self.interval = interval
        self.start_bytes = 0
        self.peak_bytes = 0
        self.rise_bytes = 0
        self._low_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()

    def _resident_bytes(self) -> int:
        info = self._process.memory_info()
        # On Linux ``shared`` is RssFile + RssShmem (/proc/<pid>/statm), leaving RssAnon;
        # other systems report no such split, and all of the resident set is counted.
        return info.rss - getattr(info, "shared", 0)

    def _record(self, level: int) -> None:
        self.peak_bytes = max(self.peak_bytes, level)
        self._low_bytes = min(self._low_bytes, level)
        self.rise_bytes = max(self.rise_bytes, level - self._low_bytes)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._record(self._resident_bytes())

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = self.peak_bytes = torch.cuda.memory_allocated(self.device)
        else:
            self.start_bytes = self.peak_bytes = self._low_bytes = self._resident_bytes()
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = max(self.peak_bytes, torch.cuda.max_memory_allocated(self.device))
            self.rise_bytes = self.peak_bytes - self.start_bytes  # CUDA keeps only the peak; only our tensors move it
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self._record(self._resident_bytes())

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / MIB

    @property
    def delta_mib(self) -> float:
        return self.rise_bytes / MIB


class OperationCounter(FlopCounterMode):
    """The floating-point operations of the matrix products and convolutions run inside the
    block (PyTorch's own formulas, :mod:`torch.utils.flop_counter`), as ``get_total_flops()``:
    a machine-independent, deterministic measure of work. PyTorch's counter also tracks
    modules with hooks that break ``torch.autograd.grad`` on an input tensor (FGSM, UNSIR's
    noise); this one counts everything as one total and tracks nothing."""

    def __enter__(self) -> "OperationCounter":
        self.flop_counts.clear()
        self.mode = _FlopCounterMode(self)
        self.mode.__enter__()
        return self

    def __exit__(self, *args) -> None:
        self.mode.__exit__(*args)
        self.mode = None
