"""Peak memory: a block that holds 300 MiB for a moment is charged for it; an idle one is not."""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.resources import PeakMemory


def test_peak_memory_sees_a_transient_allocation():
    with PeakMemory(torch.device("cpu")) as memory:
        block = np.ones(300 * 2**20, dtype=np.uint8)  # written, so resident
        time.sleep(0.05)
        del block
    assert memory.delta_mib > 250
    assert memory.peak_mib >= memory.delta_mib


def test_peak_memory_of_an_idle_block_is_small():
    with PeakMemory(torch.device("cpu")) as memory:
        time.sleep(0.05)
    assert 0 <= memory.delta_mib < 50
