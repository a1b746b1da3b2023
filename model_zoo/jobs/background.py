"""Long work in the app (training, fine-tuning) in a background thread, so a user's page keeps
drawing while it runs and can stop it; `TrainingSlots` caps how many run at once in the process,
so a shared Space does not run out of memory ("busy" instead of a crash). This module never
imports Streamlit: the pages read a job's metrics and status on each rerun."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from model_zoo.utils import error_message

DEFAULT_MAX_TRAININGS = 2  # a free CPU Space has 2 cores and 16 GB: two trainings share them fairly


class Busy(RuntimeError):
    """Every training slot of this process is taken."""


class TrainingSlots:
    """At most `limit` trainings at once in this process; `acquire` never waits."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit={limit} must be at least 1.")
        self.limit = limit
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> None:
        with self._lock:
            if self._in_use >= self.limit:
                raise Busy(
                    f"The workbench is busy: {self._in_use} of {self.limit} training slots are in use "
                    "on this server. Wait for one to finish (a minute or so) and press the button again."
                )
            self._in_use += 1

    def release(self) -> None:
        with self._lock:
            self._in_use = max(0, self._in_use - 1)


def _slot_limit() -> int:
    try:
        return max(1, int(os.environ.get("WORKBENCH_MAX_TRAININGS", DEFAULT_MAX_TRAININGS)))
    except ValueError:
        return DEFAULT_MAX_TRAININGS


SLOTS = TrainingSlots(_slot_limit())  # one per process: every user's session shares it


@dataclass
class BackgroundJob:
    """Work running in a thread. The work gets `on_step(metrics)` and `should_stop()`; the page
    reads `metrics` (appended by the thread) and `status` on each rerun."""

    name: str
    total_steps: int | None = None
    metrics: list[dict] = field(default_factory=list)
    status: str = "starting"  # starting | running | done | stopped | failed
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running")

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> list[dict]:
        """A copy of the metrics so far (the thread keeps appending)."""
        return list(self.metrics)

    def progress(self) -> float:
        """Fraction done, from the last step and the total (`total_steps`, or the metrics' own
        "total_steps" when the work only knows it once it has started, as fine-tuning does)."""
        last = self.metrics[-1] if self.metrics else {}
        total = last.get("total_steps") or self.total_steps
        if not last or not total:
            return 0.0 if self.running else 1.0
        return min(1.0, last.get("step", 0) / total)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work ends (tests, benchmarks); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


def start_job(
    name: str,
    work: Callable[[Callable[[dict], None], Callable[[], bool]], Any],
    total_steps: int | None = None,
    slots: TrainingSlots | None = None,
) -> BackgroundJob:
    """Run `work(on_step, should_stop)` in a daemon thread holding one training slot; raises `Busy`
    at once when none is free. The job ends "done", "stopped" (asked to) or "failed" (with
    `error`, a message for the page; no traceback)."""
    slots = slots or SLOTS
    slots.acquire()
    job = BackgroundJob(name, total_steps)

    def run() -> None:
        job.status = "running"
        try:
            job.result = work(job.metrics.append, job._stop.is_set)
            job.status = "stopped" if job._stop.is_set() else "done"
        except Exception as err:  # the page shows the message; the thread must never die silently
            job.error = error_message(err)
            job.status = "failed"
        finally:
            job.finished = time.time()
            slots.release()

    job._thread = threading.Thread(target=run, name=f"workbench-{name}", daemon=True)
    try:
        job._thread.start()
    except BaseException:
        slots.release()
        raise
    return job
