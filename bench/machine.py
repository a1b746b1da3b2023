"""What every benchmark reports about the machine it ran on, so figures from different runs and
cards are never compared blindly; and the order of interleaved rounds the timing benchmarks share."""

from __future__ import annotations

import os
import platform

import torch


def machine_info(**extra) -> dict:
    """Python, platform, processor, cores, torch and its threads, the GPU (if any) and the load
    average when the benchmark started; `extra` adds benchmark-specific fields."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average_at_start": os.getloadavg(),
        **extra,
    }


def rotated(names: list[str], r: int) -> list[str]:
    """The order of round `r` of interleaved timings: each round starts one variant later, so no
    variant is always timed first (or last) while the machine drifts."""
    return names[r % len(names) :] + names[: r % len(names)]
