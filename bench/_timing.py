"""Shared timing for the bench scripts: the median of repeated wall-clock runs after one warm-up.

CUDA runs asynchronously: ``synchronize(device)`` waits for the queued work, so that a clock read after it counts
the work and not only its launch. On the CPU it does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def synchronize(device: str | torch.device = "cpu") -> None:
    """Wait for the work queued on ``device`` (CUDA); a no-op elsewhere."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], object], repeats: int, device: str | torch.device = "cpu") -> float:
    """Median seconds of ``repeats`` calls of ``fn`` (after one warm-up call) on ``device``."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
