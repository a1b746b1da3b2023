"""The device and the processes: which device runs (CUDA when present), and data parallelism
under `torchrun --nproc_per_node=N` (or `accelerate launch`), which sets RANK, WORLD_SIZE and
LOCAL_RANK. The scratch trainer and the fine-tuning loop both use this one helper."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Processes:
    """This process's place among the data-parallel processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def processes() -> Processes:
    """What torchrun's variables say, without joining any process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return Processes(rank, world, int(os.environ.get("LOCAL_RANK", rank)))


def is_main_process() -> bool:
    """Rank 0, the process that reports and writes files."""
    return processes().is_main


def join(device_setting: str = "auto") -> Processes:
    """Under torchrun (WORLD_SIZE > 1) join the process group: NCCL on GPUs, gloo on the CPU."""
    found = processes()
    if not found.active:
        return found
    import torch.distributed as dist

    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_setting != "cpu"
        if use_cuda:  # NCCL talks to the current device: one GPU a process
            torch.cuda.set_device(found.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
        found.owns_group = True
    found.rank, found.world_size = dist.get_rank(), dist.get_world_size()
    return found


def leave(found: Processes) -> None:
    """Destroy the process group if `join` created it."""
    if found.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()


def resolve_device(setting: str | None = "auto", found: Processes | None = None) -> torch.device:
    """ "auto" (or None): CUDA when present — this process's GPU under torchrun — else the CPU;
    "cpu", "cuda", "cuda:1": that device, with a clear error when CUDA is absent."""
    found = found or processes()
    if setting in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", found.local_rank if found.active else torch.cuda.current_device())
        return torch.device("cpu")
    device = torch.device(setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={setting!r} but CUDA is not available here: use 'auto' or 'cpu'.")
        if found.active and device.index is None:
            device = torch.device("cuda", found.local_rank)
    return device


def toy_threads(running: int = 1) -> int:
    """Threads for training a toy model (`running` of them at once): its small matmuls gain little
    from a second thread (copy: 11.2 s on one, 11.9 s on two) and lose several times over when they
    compete with the app's server or the browser, so one core stays free. The app's queue and the
    command line use the same number, so a run does the same arithmetic, and stops at the same
    step, in both."""
    return max(1, (available_cores() - 1) // running)


SERVER_THREADS = 1


def use_server_threads() -> None:
    """One torch thread for the app's server process. Its torch work is many small computations
    for many students (a decoding step, an attention map: milliseconds each) while the queue's
    workers train on the cores; a second OpenMP thread only waits for a core a worker holds. A
    decoding step and an attention map: 16-28 ms on one thread, 45 ms on two, with a class's
    trainings running (2 cores)."""
    torch.set_num_threads(SERVER_THREADS)


def available_cores() -> int:
    """CPU cores this process may use: its affinity, capped by a container's CPU quota (cgroup v2
    `cpu.max`; a Space's 2 vCPU on a host with many more cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open("/sys/fs/cgroup/cpu.max") as limits:
            quota, period = limits.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def device_description() -> str:
    """ "CUDA: NVIDIA H100 80GB HBM3" or "CPU, 2 cores (a training uses 1 thread, a fine-tuning up
    to 2)": what the app tells the user. The threads are the job workers' (`toy_threads` for a
    training, every core for a fine-tuning, shared when several run), not the server's own
    (`SERVER_THREADS`), which trains nothing."""
    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    cores = available_cores()
    return (
        f"CPU, {_count(cores, 'core')} (a training uses {_count(toy_threads(), 'thread')}, a fine-tuning up to {cores})"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
