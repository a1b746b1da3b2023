"""A fair queue for the app's long work: trainings, fine-tunings and demonstrations run in worker
processes, at most `workers` at once (the machine's cores), the rest wait in the order they came.

Why processes: a training inside the Streamlit server shares the server's interpreter (its GIL)
with every student's page, and one that runs out of memory takes every session down with it. Each
job gets a fresh worker process (`model_zoo.jobs.worker`), started ahead of time so that it has
already imported torch and the library when the job arrives: a job starts at once, can be stopped
or killed on its own, and gives its memory back when it ends. The standard library is enough
(`subprocess` and `multiprocessing.connection`): a pool (`concurrent.futures.ProcessPoolExecutor`)
can neither stop a running job nor survive a worker the kernel kills (the pool breaks for
everyone); `multiprocessing.Process` would re-run the Streamlit page that is `__main__` when it
starts a child; a queue service (Celery, RQ) needs a broker a Space does not have.

A job belongs to its owner (a student), outlives the browser tab that submitted it, reports its
metrics as it goes (`Job.metrics`), can be cancelled while it waits or runs, and ends "done",
"stopped", "cancelled" or "failed" with a message — a worker killed by a signal included (its
signal's name and the memory it had used at its peak).

Fair to a class: an owner has at most `per_owner` jobs waiting or running (one in the app), and
the line is served round-robin — an owner's second job waits behind every other owner's first, and
no owner has two jobs running at once. A server that runs for a term stays the same size: every
worker process is reaped when it ends (no zombie per job), a finished job keeps its per-step
metrics for KEEP_METRICS_S (as long as a page may still draw its charts) and only its summary
(status, name, owner, result, error, times) for KEEP_SUMMARY_S after that, then leaves the list.
The clean-up after a job (`on_finish`: disk quotas) runs outside the queue's lock, so no page's
call waits for it. Never imports Streamlit.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from model_zoo.distributed import available_cores, toy_threads
from model_zoo.jobs.work import JobSpec
from model_zoo.run_folder import reserve

STOP_GRACE_S = 15.0  # a job asked to stop that is still running after this long is killed
POLL_S = 0.1  # how often the queue reads its workers' reports
# A page draws a finished job's charts while the student looks at it (the Train page shows the last
# run until the next one); half an hour covers a lesson's exercise. After that only the summary is
# kept (what the pages say about an old job), for a day, then the job leaves the list.
KEEP_METRICS_S = 30 * 60.0
KEEP_SUMMARY_S = 24 * 3600.0
REAP_GRACE_S = 30.0  # a worker that said "done" but has not exited after this long is killed
# A job's turn when others wait: past it, a running job is asked to stop (it keeps what it learned)
# as soon as another student's job is waiting for a worker. The defaults train in 15-60 s and
# fine-tune in about a minute; a student who asks for 100,000 steps of a large model would hold a
# worker for hours and, with two of them, the whole class. Alone on a laptop, a job runs to its end.
TURN_S = 20 * 60.0
_PROJECT = Path(__file__).resolve().parent.parent.parent  # where `model_zoo` is importable from

QUEUED, RUNNING, DONE, STOPPED, CANCELLED, FAILED = "queued", "running", "done", "stopped", "cancelled", "failed"
ACTIVE = (QUEUED, RUNNING)


RECENT_JOBS = 5  # a first estimate reads how long this many recent jobs of the same kind really took


class Reports(list):
    """A job's reports, in order, each noted with the time it arrived (`arrived`): a job's own
    pace is read from them."""

    def __init__(self, *reports):
        super().__init__(*reports)
        self.arrived = [time.time()] * len(self)

    def append(self, report) -> None:
        super().append(report)
        self.arrived.append(time.time())


@dataclass
class Job:
    """One submitted piece of work. The queue's thread updates it; pages only read it."""

    id: int
    owner: str
    spec: JobSpec
    status: str = QUEUED
    metrics: list[dict] = field(default_factory=Reports)  # what the work reported, in order, and when
    result: Any = None  # what the work returned (a small, picklable summary)
    error: str | None = None  # why it failed, for the page
    note: str | None = None  # why the queue stopped it (its turn was over and others were waiting)
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _worker: Any = field(default=None, repr=False)
    _stop_asked: float | None = field(default=None, repr=False)
    _hold: Any = field(default=None, repr=False)  # the run name's reservation, released at the end
    _ending: tuple[str, str | None] | None = field(default=None, repr=False)  # (status, error) once on_finish runs
    _round: int = field(default=0, repr=False)  # how many jobs its owner had in line when it came

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def name(self) -> str:
        return self.spec.name

    def progress(self) -> float:
        """Fraction done, from the last reported step and the total."""
        if not self.active:
            return 1.0
        last = next((m for m in reversed(self.metrics) if "step" in m), None)
        total = (last or {}).get("total_steps") or self.spec.total_steps
        return min(1.0, last["step"] / total) if last and total else 0.0

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def waited(self) -> float:
        """Seconds this job waited in the queue: until a worker took it or it was cancelled (so far,
        while it still waits)."""
        return (self.started or self.finished or time.time()) - self.submitted

    def _step_reports(self) -> list[tuple[float, dict]]:
        """(arrival time, report) of the training steps this job reported (evaluations left out)."""
        arrived = getattr(self.metrics, "arrived", None)
        if arrived is None or len(arrived) != len(self.metrics):
            return []
        return [
            (t, m)
            for t, m in zip(arrived, self.metrics, strict=True)
            if isinstance(m.get("step"), int | float) and m.get("kind", "train") == "train"
        ]

    def measured_pace(self) -> float | None:
        """Wall-clock seconds a step, measured on this job's own step reports (the first to the
        last: the machine as busy as it really is, evaluations between them included); None until
        two reports are at least one step apart."""
        steps = self._step_reports()
        if len(steps) < 2 or steps[-1][1]["step"] <= steps[0][1]["step"]:
            return None
        return (steps[-1][0] - steps[0][0]) / (steps[-1][1]["step"] - steps[0][1]["step"])

    def remaining(self, first_estimate: float | None = None) -> float:
        """Seconds this job still needs. Once it runs and has a measured pace: the steps left times
        its own seconds a step, less the time since its last report. Before that: `first_estimate`
        (the queue's, from its recent jobs on this machine: `JobQueue.estimate`) or else the spec's
        estimate, less the time it has run."""
        if not self.active:
            return 0.0
        pace = self.measured_pace() if self.status == RUNNING else None
        if pace is not None:
            arrived, last = self._step_reports()[-1]
            total = last.get("total_steps") or self.spec.total_steps or last["step"]
            return max(0.0, (total - last["step"]) * pace - (time.time() - arrived))
        return max(0.0, (first_estimate if first_estimate is not None else self.spec.estimate_s) - self.elapsed())


def first_estimate(spec: JobSpec, jobs: list[Job]) -> float:
    """Seconds `spec` should take, before it has a pace of its own: `spec.estimate_s` times the
    median ratio of measured to estimated seconds of the last `RECENT_JOBS` of `jobs` that ended
    "done" and are of the same kind (`JobQueue.estimate`)."""
    recent = [
        j
        for j in jobs
        if j.status == DONE and j.spec.kind == spec.kind and j.started and j.finished and j.spec.estimate_s > 0
    ][-RECENT_JOBS:]
    if not recent:
        return spec.estimate_s
    ratios = sorted((j.finished - j.started) / j.spec.estimate_s for j in recent)
    return spec.estimate_s * ratios[len(ratios) // 2]


class Busy(RuntimeError):
    """The owner already has a job waiting or running, or the queue is full."""


class JobQueue:
    """Jobs of every session of one server, run `workers` at a time in worker processes."""

    def __init__(
        self,
        workers: int | None = None,
        max_waiting: int = 200,
        on_finish: Callable[[Job], None] | None = None,
        per_owner: int = 1,
        keep_metrics_s: float = KEEP_METRICS_S,
        keep_summary_s: float = KEEP_SUMMARY_S,
        turn_s: float | None = None,
    ):
        """`on_finish(job)` runs in the queue's thread, outside its lock, when a job that ran has
        ended and before the job shows as ended (to tidy up after it: disk quotas). `per_owner`:
        how many jobs one owner may have waiting or running. `turn_s` (default TURN_S, or the
        server's WORKBENCH_JOB_TURN_MIN in minutes): how long a job runs before it is stopped for
        another owner's waiting job."""
        self.workers = max(1, workers or _default_workers())
        self.turn_s = turn_s if turn_s is not None else _env_minutes("WORKBENCH_JOB_TURN_MIN", TURN_S)
        self.on_finish = on_finish
        self.max_waiting = max_waiting
        self.per_owner = max(1, per_owner)
        self.keep_metrics_s, self.keep_summary_s = keep_metrics_s, keep_summary_s
        self._jobs: list[Job] = []
        self._retired: list[_Worker] = []  # workers whose job ended, until their process is reaped
        self._finishing: list[Job] = []  # ended jobs whose on_finish has not run yet
        self._pruned_at = 0.0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._spares: list[_Worker] = []  # started ahead of time, waiting for a job
        self._thread = threading.Thread(target=self._run, name="workbench-jobs", daemon=True)
        self._thread.start()
        atexit.register(self.shutdown)

    # -- what pages call ---------------------------------------------------------------------------
    def submit(self, owner: str, spec: JobSpec) -> Job:
        """Queue `spec` for `owner`. The run name is reserved now (a second job with it is refused
        at once); raises `Busy` when the owner already has `per_owner` jobs waiting or running.
        The job goes behind every waiting job of an owner with fewer jobs in line (round-robin)."""
        with self._lock:
            if self._closed:
                raise Busy("The workbench is shutting down: try again in a minute.")
            mine = [j for j in self._jobs if j.owner == owner and j.active]
            if len(mine) >= self.per_owner:
                raise Busy(
                    f"Your {mine[0].spec.kind} {mine[0].name!r} is still {mine[0].status}: wait for it or cancel it, "
                    "then press the button again."
                )
            if sum(j.status == QUEUED for j in self._jobs) >= self.max_waiting:
                raise Busy(f"{self.max_waiting} jobs are already waiting: try again in a few minutes.")
            hold = None
            if spec.out is not None:
                hold = contextlib.ExitStack()
                hold.enter_context(reserve(spec.out, overwrite=spec.overwrite, owner=owner))
            job = Job(next(self._ids), owner, spec, _hold=hold, _round=len(mine))
            later = next((i for i, j in enumerate(self._jobs) if j.status == QUEUED and j._round > job._round), None)
            self._jobs.insert(len(self._jobs) if later is None else later, job)
        self._wake.set()
        return job

    def jobs(self, owner: str | None = None) -> list[Job]:
        """Every job (of `owner`), oldest first."""
        with self._lock:
            return [j for j in self._jobs if owner is None or j.owner == owner]

    def cancel(self, job: Job) -> None:
        """A waiting job leaves the queue; a running one is asked to stop after its current step
        (what it trained so far is saved) and killed if it has not stopped within STOP_GRACE_S."""
        with self._lock:
            if job.status == QUEUED:
                self._end(job, CANCELLED)
            elif job.status == RUNNING and job._stop_asked is None and job._ending is None:
                with contextlib.suppress(OSError):  # it is ending on its own
                    job._worker.send("stop")
                job._stop_asked = time.time()
        self._wake.set()

    def position(self, job: Job) -> int:
        """1 for the next job to start, 0 once it runs."""
        with self._lock:
            waiting = [j for j in self._jobs if j.status == QUEUED]
            return waiting.index(job) + 1 if job in waiting else 0

    def expected_start(self, job: Job) -> float:
        """Seconds from now until `job` starts: the running jobs' and the earlier waiting jobs'
        remaining times (`remaining`, `estimate`) laid out over the workers, in queue order."""
        with self._lock:
            if job.status != QUEUED:
                return 0.0
            free_at = sorted(j.remaining(self._estimate(j.spec)) for j in self._jobs if j.status == RUNNING)
            free_at += [0.0] * (self.workers - len(free_at))
            for waiting in (j for j in self._jobs if j.status == QUEUED):
                start = heapq.heappop(free_at)
                if waiting is job:
                    return start
                heapq.heappush(free_at, start + self._estimate(waiting.spec))
        return 0.0

    def estimate(self, spec: JobSpec) -> float:
        """Seconds `spec` should take on this machine as it is now: its own estimate (`spec.estimate_s`,
        for an idle machine) times how much longer than theirs the last `RECENT_JOBS` finished jobs
        of the same kind really took (the median ratio of measured to estimated seconds, which
        scales with each job's steps and size). Without such jobs yet: the spec's estimate."""
        with self._lock:
            return self._estimate(spec)

    def remaining(self, job: Job) -> float:
        """Seconds `job` still needs (`Job.remaining`, with this queue's first estimate)."""
        with self._lock:
            return job.remaining(self._estimate(job.spec))

    def _estimate(self, spec: JobSpec) -> float:
        return first_estimate(spec, self._jobs)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {state: sum(j.status == state for j in self._jobs) for state in (QUEUED, RUNNING)}

    def warm_up(self) -> None:
        """Start the spare workers now (each imports torch and the library: seconds), so the first
        job does not wait for one. The queue's thread does it too, as soon as it runs."""
        with self._lock:
            self._keep_spares()

    def shutdown(self) -> None:
        """Kill every worker (the server is going away)."""
        with self._lock:
            self._closed = True
            for job in self._jobs:
                if job.status == RUNNING:
                    job._worker.kill()
                if job.active:
                    self._end(job, CANCELLED, "The server stopped.")
            for worker in self._spares + self._retired:
                worker.kill()
            self._spares.clear()
            self._retired.clear()
        self._wake.set()

    # -- the queue's own thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                for job in [j for j in self._jobs if j.status == RUNNING and j._ending is None]:
                    self._read(job)
                self._start_waiting()
                self._end_long_turns()
                self._keep_spares()
                self._reap()
                self._prune()
                finishing, self._finishing = self._finishing, []
            for job in finishing:  # outside the lock: the pages' calls never wait for the tidying
                self._finish(job)
            self._wake.wait(0 if finishing else POLL_S)
            self._wake.clear()

    def _start_waiting(self) -> None:
        """Start waiting jobs in line order on the free workers, skipping a job whose owner already
        has one running (that owner's next job waits for the next free worker)."""
        busy_owners = {j.owner for j in self._jobs if j.status == RUNNING}
        running = [j for j in self._jobs if j.status == RUNNING and j._ending is None]  # a tidying job's worker is gone
        for job in [j for j in self._jobs if j.status == QUEUED]:
            if len(running) >= self.workers:
                break
            if job.owner in busy_owners:
                continue
            worker = self._ready_spare()
            if worker is None:
                break  # a spare is still starting: the job starts once it is ready
            running.append(job)
            busy_owners.add(job.owner)
            self._start(job, worker, len(running))

    def _end_long_turns(self) -> None:
        """Ask each job that has run longer than its turn to stop, when another owner's job waits and
        every worker is busy (called after `_start_waiting`: a job that could start has started)."""
        running = [j for j in self._jobs if j.status == RUNNING and j._ending is None]
        if len(running) < self.workers:
            return
        waiting_owners = {j.owner for j in self._jobs if j.status == QUEUED}
        now = time.time()
        for job in self._jobs:
            if (
                job.status == RUNNING
                and job._stop_asked is None
                and job._ending is None
                and now - job.started > self.turn_s
                and waiting_owners - {job.owner}
            ):
                job.note = (
                    f"Stopped after {duration(self.turn_s)}: others were waiting, and a job's turn on this "
                    "shared server is that long. It kept what it had learned; train again to go on."
                )
                with contextlib.suppress(OSError):  # it is ending on its own
                    job._worker.send("stop")
                job._stop_asked = now

    def _finish(self, job: Job) -> None:
        """Run `on_finish` for a job that ran, then show it as ended."""
        status, error = job._ending
        try:
            self.on_finish(job)
        except Exception as err:  # tidying up must never stop the queue
            error = (error or "") + f" (and tidying up after it failed: {err})"
        with self._lock:
            job._ending = None
            self._close(job, status, error)

    def _reap(self) -> None:
        """Collect the exit status of every worker whose job ended (a process nobody waits for stays
        a zombie until the server stops); kill one still running long after its job ended."""
        for worker in self._retired:
            if worker.poll() is None and time.time() - worker.closed_at > REAP_GRACE_S:
                worker.kill()
        self._retired = [w for w in self._retired if w.poll() is None]

    def _prune(self) -> None:
        """Drop finished jobs' per-step metrics after keep_metrics_s, the jobs after keep_summary_s."""
        now = time.time()
        if now - self._pruned_at < min(1.0, self.keep_metrics_s):
            return
        self._pruned_at = now
        for job in self._jobs:
            if not job.active and now - job.finished > self.keep_metrics_s and (job.metrics or job._worker):
                job.metrics, job._worker = [], None
        self._jobs = [j for j in self._jobs if j.active or now - j.finished <= self.keep_summary_s]

    def _keep_spares(self) -> None:
        """Keep a started worker for every free slot and every waiting job (one more when idle:
        back-to-back jobs). Starting one costs seconds of CPU (torch's import), taken from the jobs
        that run: a lone student's training does not pay for spares nobody is waiting for."""
        self._spares = [w for w in self._spares if w.alive()]
        running = sum(j.status == RUNNING for j in self._jobs)
        waiting = sum(j.status == QUEUED for j in self._jobs)
        wanted = self.workers + 1 if running == 0 else min(self.workers + 1, self.workers - running + waiting)
        while not self._closed and len(self._spares) < wanted:
            self._spares.append(_Worker())

    def _ready_spare(self) -> _Worker | None:
        for worker in self._spares:
            if worker.ready():
                self._spares.remove(worker)
                return worker
        return None

    def _start(self, job: Job, worker: _Worker, running: int) -> None:
        # Fine-tuning's large matmuls use every core the job may have; a toy model leaves one free.
        threads = max(1, available_cores() // running) if job.spec.kind == "finetune" else toy_threads(running)
        try:
            worker.send((job.spec, threads))
        except OSError as err:
            worker.kill()
            self._end(job, FAILED, f"The job could not start ({err}); try again in a minute.")
            return
        job._worker, job.status, job.started = worker, RUNNING, time.time()

    def _read(self, job: Job) -> None:
        worker = job._worker
        try:
            while worker.reports.poll():
                kind, payload = worker.reports.recv()
                if kind == "metrics":
                    job.metrics.append(payload)
                elif kind == "done":
                    job.result = payload
                    self._end(job, STOPPED if job._stop_asked is not None else DONE)
                    return
                elif kind == "failed":
                    self._end(job, FAILED, payload)
                    return
        except (EOFError, OSError):
            pass  # the worker ended without a word: see below
        if not worker.alive():
            self._end(job, FAILED, _death_message(worker.wait(5), worker.peak_mb))
        elif job._stop_asked is not None and time.time() - job._stop_asked > STOP_GRACE_S:
            worker.kill()

    def _end(self, job: Job, status: str, error: str | None = None) -> None:
        """Called with the lock held. A job that ran and has an `on_finish` stays "running" until
        `on_finish` has run (outside the lock, `_finish`): its page then sees what it tidied."""
        if job._worker is not None and not job._worker.closed:
            job._worker.close()
            self._retired.append(job._worker)
        if self.on_finish is not None and job.started is not None and job.status == RUNNING and not self._closed:
            job._ending = (status, error)
            self._finishing.append(job)
        else:
            self._close(job, status, error)

    def _close(self, job: Job, status: str, error: str | None) -> None:
        job.status, job.error, job.finished = status, error, time.time()
        if job._hold is not None:
            job._hold.close()


class _Worker:
    """A worker process (`python -m model_zoo.jobs.worker`) and its two pipes."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_PROJECT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model_zoo.jobs.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.orders = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.reports = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self._ready = False
        self.closed = False
        self.closed_at = 0.0
        self.peak_mb: float | None = None  # its peak resident memory, known once it is reaped

    def ready(self) -> bool:
        """Whether it has imported the library and waits for a job."""
        try:
            if not self._ready and self.reports.poll():
                self._ready = self.reports.recv() == "ready"
        except (EOFError, OSError):
            return False
        return self._ready

    def alive(self) -> bool:
        return self.poll() is None

    def poll(self) -> int | None:
        """Its exit code once it has ended (reaping it, and reading its peak memory), else None."""
        if self.process.returncode is None:
            if not hasattr(os, "wait4"):  # not a Unix: no peak memory
                return self.process.poll()
            try:
                pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already
                return self.process.poll()
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                self.peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
        return self.process.returncode

    def wait(self, timeout: float) -> int | None:
        """Its exit code, waiting up to `timeout` seconds for it to end."""
        end = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        return self.process.returncode

    def send(self, message) -> None:
        self.orders.send(message)

    def kill(self) -> None:
        """Kill it and reap it."""
        if self.alive():
            self.process.kill()
            self.wait(5)
        self.close()

    def close(self) -> None:
        """Close its pipes (the queue reaps the process once it has exited: `poll`)."""
        for conn in (self.orders, self.reports):
            with contextlib.suppress(OSError):
                conn.close()
        if not self.closed:
            self.closed, self.closed_at = True, time.time()


def _env_minutes(name: str, default_s: float) -> float:
    try:
        return float(os.environ[name]) * 60.0
    except (KeyError, ValueError):
        return default_s


def duration(seconds: float) -> str:
    """'45 s', '20 min': a wait or a turn, for a sentence."""
    seconds = max(1, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"


def _default_workers() -> int:
    try:
        return int(os.environ.get("WORKBENCH_WORKERS", "0")) or available_cores()
    except ValueError:
        return available_cores()


def _death_message(exitcode: int | None, peak_mb: float | None = None) -> str:
    """What is known about a worker that ended without a word: the signal that killed it (by name)
    or its exit code, and its peak memory when it was measured."""
    peak = f" Its memory peaked at {peak_mb:,.0f} MB." if peak_mb else ""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = (
            " The kernel sends SIGKILL when the machine runs out of memory (so does anyone who ends the process): "
            "if that was it, try a smaller model, batch or text length."
            if name == "SIGKILL"
            else ""
        )
        return f"The job's process was killed by {name} before it finished.{peak}{hint}"
    return f"The job's process ended unexpectedly (exit code {exitcode}) before it finished.{peak}"
