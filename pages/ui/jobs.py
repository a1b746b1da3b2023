"""Training and fine-tuning in the server's queue: the one queue, submitting a job, a job's panel and
how often it redraws, what happened to a student's runs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import streamlit as st

from model_zoo.jobs.queue import duration
from model_zoo.run_folder import weights_root
from pages.ui.admission import student


def tidy_after_job(job) -> None:
    """After a job that ran (the queue calls it outside its lock, before the job shows as ended):
    tidy what a worker killed mid-save left beside the run (its writer is dead), then keep a
    student's runs within the disk quotas; a removed run is also a notice for its owner."""
    from model_zoo.classroom.workspace import STUDENTS, enforce_quotas
    from model_zoo.run_folder import clean_leftovers

    if not job.spec.out:
        return
    clean_leftovers(Path(job.spec.out).parent)
    if Path(job.spec.out).parent.parent.name == STUDENTS:
        notes = enforce_quotas(weights_root(), job.owner, keep=job.spec.out)
        if notes and isinstance(job.result, dict):
            job.result["notes"] = notes


@st.cache_resource(show_spinner=False)
def job_queue():
    """The server's one job queue (`model_zoo.jobs.queue`): every session's trainings, at most one
    per core at once, the rest waiting in order."""
    from model_zoo.jobs.queue import JobQueue

    queue = _class_queue(JobQueue)(on_finish=tidy_after_job)
    queue.warm_up()
    if os.environ.get("WORKBENCH_STARTER_RUNS", "1") != "0":  # the examples a class opens in its first minute
        from model_zoo.classroom.starter import starter_specs

        for spec in starter_specs(weights_root()):
            with contextlib.suppress(Exception):  # another server on this folder may be making it
                queue.submit(f"{STARTER_OWNER}{spec.name}", spec)
    return queue


STARTER_OWNER = "examples:"  # the queue's owner of the starter runs' jobs


def _class_queue(base):
    """The queue class of the app: `base` (the library's `JobQueue`) that first asks the class's
    admission whether the owner may queue (roster mode: only the teacher's links), with the reason
    as its `Busy` message."""
    from model_zoo.classroom.admission import queue_refusal
    from model_zoo.jobs.queue import Busy

    class ClassQueue(base):
        def submit(self, owner: str, spec):
            refusal = None if owner.startswith(STARTER_OWNER) else queue_refusal(owner, weights_root())
            if refusal:
                raise Busy(refusal)
            return super().submit(owner, spec)

    return ClassQueue


def submit_job(spec):
    """Queue `spec` for this student once the run it saves fits in the disk quotas: raises
    `workspace.NoRoom` (why, and what to delete) before anything runs, or the queue's `Busy`."""
    from model_zoo.classroom.workspace import check_room, expected_run_mb

    check_room(weights_root(), student(), expected_run_mb(spec))
    return job_queue().submit(student(), spec)


def show_notices() -> None:
    """What happened to this student's runs since they last looked (a disk quota removed one):
    what, when and why, each shown once."""
    import time

    from model_zoo.classroom.workspace import take_notices

    for notice in take_notices(weights_root(), student()):
        when = time.strftime("%d %b %H:%M UTC", time.gmtime(notice["when"]))
        st.warning(f"Your run **{notice['run']}** was removed on {when}: {notice['why']}.")


LIVE_EVERY_S = 2.0  # how often a running job's panel redraws: each redraw costs the server and the browser

# A waiting job's place changes slowly: its panel redraws every 2 s when it starts soon (a job that
# a free worker takes at once shows as running 2 s later, not 5), up to every 20 s when it starts in
# minutes (a sixth of the wait). Thirty waiting panels at 5 s were six reruns a second on a class's
# server.
WAITING_AT_MOST_EVERY_S = 20.0


def refresh_every(job, queue=None) -> float | None:
    """How often the panel of `job` redraws: often while it runs or is about to, less while it
    waits (the longer the wait, the less), not once it ended. `queue`: the app's unless given."""
    if job is None or not job.active:
        return None
    if job.status != "queued":
        return LIVE_EVERY_S
    wait = (queue or job_queue()).expected_start(job)
    return min(WAITING_AT_MOST_EVERY_S, max(LIVE_EVERY_S, wait / 6))


def my_jobs(kind: str | None = None) -> list:
    """This student's jobs (of one kind), oldest first: they outlive the tab that started them."""
    return [j for j in job_queue().jobs(student()) if kind is None or j.spec.kind == kind]


def job_panel(job, key: str, charts=None) -> None:
    """Where a job stands: its place in the queue and expected start, or its progress and live
    charts (`charts(metrics)` draws them), with a button to cancel or stop it; then how it ended."""
    queue = job_queue()
    was = st.session_state.get(f"{key}_status")
    st.session_state[f"{key}_status"] = job.status
    if was == "queued" and job.status == "running":
        st.rerun()  # the whole page: its panel now redraws at a running job's rate
    if job.status == "queued":
        wait = queue.expected_start(job)
        place = queue.position(job)
        st.info(
            f"**{job.name}** is waiting: {_ordinal(place)} in line, "
            f"starting in about {duration(wait)} ({queue.workers} jobs run at once on this server)."
        )
    elif job.active:
        last = next((m for m in reversed(job.metrics) if "step" in m), {})
        text = f"**{job.name}** is running: step {last.get('step', 0)} of {last.get('total_steps') or job.spec.total_steps}"
        if job.measured_pace() is not None:  # its own pace, measured on this machine as busy as it is
            text += f", about {duration(queue.remaining(job))} left"
        st.progress(job.progress(), text=text)
    if job.active:
        verb = "Cancel" if job.status == "queued" else "Stop"
        if st.button(verb, key=f"{key}_stop", help="A waiting job leaves the queue; a running one stops after its "
                     "current step and keeps what it has learned so far."):  # fmt: skip
            queue.cancel(job)
            st.toast("Stopping after this step…" if verb == "Stop" else "Taken out of the queue.")
    if charts is not None and job.metrics:
        charts(job.metrics)
    if job.status == "failed":
        st.error(f"**{job.name}** stopped with an error: {job.error}")
    elif job.status == "cancelled":
        st.warning(f"**{job.name}** was cancelled before it started.")
    if job.note:  # the queue stopped it: its turn was over and others were waiting
        st.warning(job.note)
    for note in (job.result or {}).get("notes", []) if isinstance(job.result, dict) else []:
        st.warning(note)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
