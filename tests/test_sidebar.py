"""The sidebar tells the truth without a reload: the threads named are the job workers' (with the
grammar of one), and the line about the example runs goes, and the page reruns to list them, as
soon as they are ready."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from model_zoo import distributed
from model_zoo.distributed import SERVER_THREADS, device_description, toy_threads

TIMEOUT = 120
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU's description")


def test_the_device_names_the_workers_threads_not_the_servers():
    cores = distributed.available_cores()
    text = device_description()
    assert text.startswith(f"CPU, {cores} core")
    assert f"a training uses {toy_threads()} thread" in text and f"a fine-tuning up to {cores}" in text
    assert f"({SERVER_THREADS} threads)" not in text


def test_one_core_and_one_thread_are_singular(monkeypatch):
    monkeypatch.setattr(distributed, "available_cores", lambda: 1)
    assert device_description() == "CPU, 1 core (a training uses 1 thread, a fine-tuning up to 1)"


def test_the_app_sidebar_shows_the_workers_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert f"Runs on **{device_description()}**" in sidebar
    assert "1 threads" not in sidebar


def starter_sidebar() -> None:
    """The sidebar's starter-run line alone, counting the page's runs."""
    import streamlit as st

    from pages.ui import sidebar

    st.session_state["page_runs"] = st.session_state.get("page_runs", 0) + 1
    sidebar._starter_runs()


class Jobs:
    """What the line reads of the queue, its jobs: here the queue's own Job objects, no workers."""

    def __init__(self, jobs):
        self.listed = jobs

    def jobs(self):
        return self.listed


def test_the_example_runs_line_goes_and_the_page_reruns_once_they_are_ready(monkeypatch):
    from model_zoo.jobs.queue import DONE, RUNNING, Job
    from model_zoo.jobs.work import JobSpec
    from pages.ui.jobs import STARTER_OWNER
    from pages.ui.sidebar import starter_runs_line

    job = Job(1, STARTER_OWNER + "copy", JobSpec("train", "copy-example", {}), status=RUNNING)
    assert starter_runs_line([job]).startswith("Example runs being made: copy-example")
    monkeypatch.setattr("pages.ui.sidebar.job_queue", lambda: Jobs([job]))
    at = AppTest.from_function(starter_sidebar, default_timeout=TIMEOUT)
    at.run()
    assert [c.value for c in at.caption] == [starter_runs_line([job])]
    runs = at.session_state["page_runs"]
    job.status = DONE  # the worker finished: the next redraw of the line finds it ready
    at.run()
    assert not at.caption and starter_runs_line([job]) is None
    assert at.session_state["page_runs"] == runs + 2  # the whole page ran again, its run list with it
