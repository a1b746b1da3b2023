"""`model_zoo.jobs.background`: the app's background jobs and training limit, without Streamlit."""

import threading

import pytest

from model_zoo.jobs.background import Busy, TrainingSlots, start_job


def test_a_job_beyond_the_training_limit_is_refused_as_busy_and_the_slot_comes_back():
    slots = TrainingSlots(1)
    release = threading.Event()
    first = start_job("first", lambda on_step, should_stop: release.wait(5), slots=slots)
    with pytest.raises(Busy, match="busy: 1 of 1 training slots"):
        start_job("second", lambda on_step, should_stop: None, slots=slots)
    release.set()
    assert first.wait(5) and first.status == "done"
    assert slots.in_use == 0
    assert start_job("third", lambda on_step, should_stop: 42, slots=slots).wait(5)


def test_a_job_that_fails_keeps_the_message_and_releases_its_slot():
    slots = TrainingSlots(1)

    def work(on_step, should_stop):
        on_step({"step": 1})
        raise ValueError("lr=7 must be in (0, 1]")

    job = start_job("bad", work, slots=slots)
    assert job.wait(5)
    assert job.status == "failed" and job.error == "lr=7 must be in (0, 1]"
    assert job.snapshot() == [{"step": 1}]
    assert slots.in_use == 0


def test_a_job_stops_when_asked_and_reports_its_progress():
    started = threading.Event()

    def work(on_step, should_stop):
        step = 0
        while not should_stop():
            step += 1
            on_step({"step": step, "total_steps": 10**12})
            started.set()
        return step

    job = start_job("loop", work, slots=TrainingSlots(1))
    assert started.wait(5)
    assert 0 < job.progress() < 1
    job.request_stop()
    assert job.wait(5) and job.status == "stopped" and job.result >= 1
