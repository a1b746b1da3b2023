"""`model_zoo.jobs`: the queue runs jobs in worker processes, at most `workers` at once, the rest
waiting in order with their place and expected start; jobs can be cancelled or stopped; a worker
the kernel kills ends its job with a message and the queue goes on; one job per student; a run
name is reserved from the moment its job is queued."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model_zoo.jobs.queue import Busy, JobQueue
from model_zoo.jobs.work import stability_spec, train_spec
from model_zoo.run_folder import is_reserved
from model_zoo.toy.runs import check_run
from model_zoo.toy.tasks import make_task
from model_zoo.toy.train_config import TrainConfig
from pages._ui import LIVE_EVERY_S, WAITING_AT_MOST_EVERY_S, refresh_every

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
    assert doomed.status == "failed" and "killed" in doomed.error and "memory" in doomed.error
    assert after.status == "done"


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
