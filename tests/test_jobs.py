"""`model_zoo.jobs`: the queue runs jobs in worker processes, at most `workers` at once, the rest
waiting in order with their place and expected start; jobs can be cancelled or stopped; a worker
a signal kills ends its job with the signal's name and the queue goes on; one job per student,
served round-robin; a run name is reserved from the moment its job is queued; a server that runs
for a term reaps its workers, prunes its finished jobs and tidies after a job outside its lock."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from model_zoo.jobs.queue import KEEP_METRICS_S, Busy, JobQueue, _death_message
from model_zoo.jobs.work import stability_spec, train_spec
from model_zoo.run_folder import is_reserved
from model_zoo.toy.runs import check_run
from model_zoo.toy.tasks import make_task
from model_zoo.toy.train_config import TrainConfig
from pages.ui.jobs import LIVE_EVERY_S, WAITING_AT_MOST_EVERY_S, refresh_every

TASK = {"n_symbols": 5, "max_len": 4, "n_heldout": 8}
TINY = {"d_model": 16, "n_heads": 2, "n_encoder_layers": 1, "n_decoder_layers": 1, "d_ff": 32}


@pytest.fixture(scope="module")
def queue():
    q = JobQueue(workers=1)
    q.warm_up()
    yield q
    q.shutdown()


def spec(folder, name, steps=20, overwrite=False):
    task = make_task("copy", **TASK)
    config = TrainConfig(steps=steps, batch_size=8, eval_every=10, checkpoint_every=10)
    return train_spec(name, folder / name, "copy", TASK, task.model_config(**TINY), config, overwrite=overwrite)


def wait(condition, seconds=120):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_job_trains_in_a_worker_reports_each_step_and_saves_the_run(queue, tmp_path):
    job = queue.submit("s-one", spec(tmp_path, "first"))
    wait(lambda: not job.active)
    assert job.status == "done", job.error
    assert [m["step"] for m in job.metrics] == list(range(1, 21))
    assert job.result["steps"] == 20 and job.result["path"] == str(tmp_path / "first")
    assert check_run(tmp_path / "first") is None
    assert job._worker.process.pid != os.getpid()


def test_jobs_beyond_the_workers_wait_in_order_with_their_place_and_expected_start(queue, tmp_path):
    first = queue.submit("s-a", spec(tmp_path, "a", steps=200))
    second = queue.submit("s-b", spec(tmp_path, "b"))
    third = queue.submit("s-c", spec(tmp_path, "c"))
    wait(lambda: first.status == "running")
    assert (queue.position(second), queue.position(third)) == (1, 2)
    # the pages redraw a running job's panel often, a waiting one's less, an ended one's never
    assert refresh_every(first, queue) == LIVE_EVERY_S and refresh_every(None) is None
    assert refresh_every(second, queue) == max(LIVE_EVERY_S, queue.expected_start(second) / 6) < 20
    assert 0 < queue.expected_start(second) < queue.expected_start(third)
    queue.cancel(third)
    assert third.status == "cancelled" and queue.position(second) == 1
    queue.cancel(first)  # running: stops after its step, keeps what it learned
    wait(lambda: not second.active)
    assert first.status == "stopped" and check_run(tmp_path / "a") is None, first.error
    assert second.status == "done" and second.started >= first.finished
    # how long the second waited (the Train page says it): from its submission until the first stopped
    assert second.waited() == pytest.approx(second.started - second.submitted)
    assert second.waited() >= first.finished - second.submitted > 0
    assert third.started is None and third.waited() == third.finished - third.submitted > 0
    assert not (tmp_path / "c").exists()


def test_a_student_has_one_job_at_a_time_and_a_run_name_is_held_from_the_queue_on(queue, tmp_path):
    job = queue.submit("s-same", spec(tmp_path, "held", steps=100))
    with pytest.raises(Busy, match="still"):
        queue.submit("s-same", spec(tmp_path, "other"))
    with pytest.raises(FileExistsError, match="Another job"):
        queue.submit("s-else", spec(tmp_path, "held"))
    queue.cancel(job)
    wait(lambda: not job.active)
    assert not is_reserved(tmp_path / "held")
    again = queue.submit("s-else", spec(tmp_path, "held", steps=1, overwrite=True))  # the name is free again
    wait(lambda: not again.active)
    assert again.status == "done" and check_run(tmp_path / "held") is None


def test_a_worker_killed_by_the_kernel_ends_its_job_with_a_message_and_the_queue_goes_on(queue, tmp_path):
    doomed = queue.submit("s-doomed", spec(tmp_path, "doomed", steps=100_000))
    after = queue.submit("s-after", spec(tmp_path, "after"))
    wait(lambda: doomed.metrics)
    os.kill(doomed._worker.process.pid, signal.SIGKILL)  # what the kernel does when memory runs out
    wait(lambda: not after.active)
    assert doomed.status == "failed" and "killed by SIGKILL" in doomed.error, doomed.error
    assert "peaked at" in doomed.error and "most likely" not in doomed.error  # what was measured, not a guess
    assert after.status == "done"


def test_a_worker_stopped_by_another_signal_is_reported_by_that_signal_s_name():
    assert _death_message(-15) == "The job's process was killed by SIGTERM before it finished."
    assert "exit code 3" in _death_message(3, 120.0) and "peaked at 120 MB" in _death_message(3, 120.0)


def test_the_stability_demonstration_runs_as_a_job_and_reports_both_recipes(queue):
    job = queue.submit("s-demo", stability_spec("copy", "high_lr", 4))
    wait(lambda: not job.active)
    assert job.status == "done", job.error
    assert [m["step"] for m in job.metrics] == list(range(1, 9)) and job.progress() == 1.0
    assert set(job.result.histories()) == {"stable", "broken"}


def test_no_spare_worker_starts_while_a_lone_job_runs(queue, tmp_path):
    # Starting a worker imports torch: seconds of CPU taken from the job running. With nobody
    # waiting, the queue waits for the job to end before it starts the next spare.
    wait(lambda: len(queue._spares) == queue.workers + 1 and all(w.ready() for w in queue._spares))
    job = queue.submit("s-lone", spec(tmp_path, "lone", steps=60))
    wait(lambda: job.status == "running")
    counts = []
    while True:
        with queue._lock:  # the job's end and the next spare's start happen under this lock
            if not job.active:
                break
            counts.append(len(queue._spares))
        time.sleep(0.02)
    assert job.status == "done" and max(counts) == queue.workers  # one was taken, none started meanwhile
    wait(lambda: len(queue._spares) == queue.workers + 1)  # and the queue is ready for the next two again


def test_a_waiting_worker_has_done_what_the_first_training_step_would_import():
    """PyTorch's first optimizer imports torch._dynamo (1.7 s on two cores): a worker does it before
    it says "ready", so a student's job does not wait for it."""
    code = (
        "import sys; from model_zoo.jobs.work import warm_up; "
        "assert 'torch._dynamo' not in sys.modules; warm_up(); assert 'torch._dynamo' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_a_long_wait_redraws_its_panel_less_often(queue, tmp_path):
    from dataclasses import replace

    first = queue.submit("s-a", spec(tmp_path, "a", steps=200))
    long = queue.submit("s-b", replace(spec(tmp_path, "b"), estimate_s=60000.0))  # scaled by the recent jobs
    last = queue.submit("s-c", spec(tmp_path, "c"))
    assert queue.expected_start(last) > 600
    assert refresh_every(last, queue) == WAITING_AT_MOST_EVERY_S
    for job in (last, long, first):
        queue.cancel(job)
    wait(lambda: not first.active)


def zombie_children() -> list[int]:
    """This process's children that have exited but were never waited for."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_finished_workers_are_reaped_so_no_zombie_is_left_per_job(queue, tmp_path):
    for n in range(3):
        job = queue.submit("s-zombie", spec(tmp_path, f"z{n}", steps=2))
        wait(lambda job=job: not job.active)
        assert job.status == "done", job.error
    wait(lambda: not zombie_children())  # the last worker is reaped once it has exited


def test_a_finished_job_keeps_its_metrics_while_a_page_may_show_them_then_only_its_summary(queue, tmp_path):
    assert queue.keep_metrics_s == KEEP_METRICS_S >= 30 * 60
    job = queue.submit("s-prune", spec(tmp_path, "pruned", steps=3))
    wait(lambda: not job.active)
    assert job.status == "done" and len(job.metrics) == 3  # within the half hour: the charts are still there
    try:
        queue.keep_metrics_s = 0.0
        wait(lambda: not job.metrics)
        assert job in queue.jobs("s-prune")  # the summary stays: status, name, owner, result, error, times
        assert (job.status, job.name, job.owner, job.error) == ("done", "pruned", "s-prune", None)
        assert job.result["steps"] == 3 and job.started <= job.finished
        queue.keep_summary_s = 0.0
        wait(lambda: job not in queue.jobs())
    finally:
        queue.keep_metrics_s, queue.keep_summary_s = KEEP_METRICS_S, 24 * 3600.0


def test_a_slow_clean_up_after_a_job_does_not_make_pages_wait_for_the_queue(queue, tmp_path):
    entered, release = threading.Event(), threading.Event()

    def slow_tidy(job):
        entered.set()
        release.wait(120)
        job.result["notes"] = ["tidied"]

    queue.on_finish = slow_tidy
    try:
        job = queue.submit("s-tidy", spec(tmp_path, "tidy", steps=2))
        assert entered.wait(120)
        answered = []
        page = threading.Thread(target=lambda: answered.append((queue.jobs(), queue.counts(), queue.position(job))))
        page.start()
        page.join(60)  # a deadlock detector: under the lock this would wait for `release` forever
        assert answered, "a page's queue call waited for the clean-up after a job"
        assert job.status == "running"  # it shows as ended only once tidied, with what the tidying said
        release.set()
        wait(lambda: not job.active)
        assert job.status == "done" and job.result["notes"] == ["tidied"]
    finally:
        release.set()
        queue.on_finish = None


def test_the_line_is_round_robin_an_owners_second_job_waits_behind_everyone_elses_first(queue, tmp_path):
    queue.per_owner = 2
    try:
        first = queue.submit("s-many", spec(tmp_path, "m1", steps=400))
        second = queue.submit("s-many", spec(tmp_path, "m2"))
        with pytest.raises(Busy, match="still"):
            queue.submit("s-many", spec(tmp_path, "m3"))
        other = queue.submit("s-other", spec(tmp_path, "o1"))
        wait(lambda: first.status == "running")
        assert (queue.position(other), queue.position(second)) == (1, 2)
        assert queue.expected_start(other) < queue.expected_start(second)
    finally:
        queue.per_owner = 1
        for job in (second, other, first):
            queue.cancel(job)
    wait(lambda: not first.active)


def test_each_starter_run_owner_and_each_student_has_one_job_in_line(queue, tmp_path):
    # pages/ui/jobs.py submits each starter run as its own owner ("examples:copy"): one job each, like a student
    copy = queue.submit("examples:copy", spec(tmp_path, "copy", steps=200))
    reverse = queue.submit("examples:reverse", spec(tmp_path, "reverse"))
    with pytest.raises(Busy):
        queue.submit("examples:copy", spec(tmp_path, "copy2"))
    for job in (reverse, copy):
        queue.cancel(job)
    wait(lambda: not copy.active)


def test_a_job_past_its_turn_is_stopped_when_another_student_waits_and_keeps_what_it_learned(tmp_path):
    q = JobQueue(workers=1, turn_s=2.0)
    q.warm_up()
    try:
        alone = q.submit("s-long", spec(tmp_path, "alone", steps=100_000))
        wait(lambda: alone.status == "running")
        wait(lambda: time.time() - alone.started > 4.0)  # past its turn, nobody waiting: it goes on
        assert alone.status == "running" and alone.note is None
        other = q.submit("s-next", spec(tmp_path, "next"))
        wait(lambda: not other.active)
        assert alone.status == "stopped" and check_run(tmp_path / "alone") is None  # saved, usable
        assert "others were waiting" in alone.note and "2 s" in alone.note
        assert other.status == "done", other.error
    finally:
        q.shutdown()


def test_a_job_past_its_turn_goes_on_when_a_free_worker_takes_the_waiting_job(tmp_path):
    q = JobQueue(workers=2, turn_s=1.0)
    q.warm_up()
    try:
        long = q.submit("s-long", spec(tmp_path, "long", steps=100_000))
        wait(lambda: long.status == "running" and time.time() - long.started > 2.0)
        other = q.submit("s-next", spec(tmp_path, "next"))
        wait(lambda: not other.active)
        assert other.status == "done", other.error
        assert long.status == "running" and long.note is None  # the second worker served the other job
        q.cancel(long)
        wait(lambda: not long.active)
    finally:
        q.shutdown()


def test_the_turn_is_the_servers_setting_in_minutes(monkeypatch):
    monkeypatch.setenv("WORKBENCH_JOB_TURN_MIN", "0.5")
    q = JobQueue(workers=1)
    try:
        assert q.turn_s == 30.0
    finally:
        q.shutdown()
