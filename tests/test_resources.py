"""Peak memory: a block that holds 300 MiB for a moment is charged for it; an idle one is
not, nor one that only reads a memory-mapped file, nor garbage of earlier code collected
while the block runs."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import torch

from bench.resources import PeakMemory


def hold_300_mib_for_a_moment() -> None:
    block = np.ones(300 * 2**20, dtype=np.uint8)  # written, so resident
    time.sleep(0.05)
    del block


def test_peak_memory_sees_a_transient_allocation():
    with PeakMemory(torch.device("cpu")) as memory:
        hold_300_mib_for_a_moment()
    assert 290 < memory.delta_mib < 330
    assert memory.peak_mib >= memory.delta_mib


def test_peak_memory_of_an_idle_block_is_small():
    with PeakMemory(torch.device("cpu")) as memory:
        time.sleep(0.05)
    assert 0 <= memory.delta_mib < 50


def test_garbage_of_earlier_code_freed_during_the_block_is_not_subtracted():
    """A collection that frees 200 MiB of earlier garbage while the block runs would,
    measured from a level that still held it, leave the block charged ~100 MiB for 300."""
    gc.disable()
    try:
        cycle: list = [np.ones(200 * 2**20, dtype=np.uint8)]
        cycle.append(cycle)
        del cycle
        with PeakMemory(torch.device("cpu")) as memory:
            gc.collect()
            hold_300_mib_for_a_moment()
    finally:
        gc.enable()
    assert 290 < memory.delta_mib < 330


def test_reading_a_memory_mapped_file_is_not_charged(tmp_path: Path):
    """File-backed pages are the kernel's to drop and reload; only the heap is the block's."""
    np.save(tmp_path / "data.npy", np.ones(200 * 2**20, dtype=np.uint8))
    with PeakMemory(torch.device("cpu")) as memory:
        mapped = np.load(tmp_path / "data.npy", mmap_mode="r")
        assert int(mapped.sum(dtype=np.int64)) == 200 * 2**20  # every page read, so resident
        time.sleep(0.05)
        del mapped
    assert memory.delta_mib < 50
