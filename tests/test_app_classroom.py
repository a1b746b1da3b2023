"""The app's side of a shared classroom, through `AppTest`: a job whose run would not fit in the
disk quotas is refused before it runs, with why and what to delete; a run a quota removed is told
to its owner the next time they open the app, once; revisiting Step-through and opening an Inspect
link log no Session State warning (a class's server log holds no stack)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest

from model_zoo.classroom.workspace import STUDENTS, add_notice

TIMEOUT = 120  # pages import torch on their first run
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
ANN, BEN = "s-aaaaaaaa", "s-bbbbbbbb"


pytestmark = pytest.mark.usefixtures("app_env")  # tests/conftest.py: runs in the module's `weights` folder


@pytest.fixture(scope="module")
def copy_run(weights, tiny_run) -> Path:
    """A tiny copy run saved from the command line (everyone may open it)."""
    return tiny_run(weights / "tiny-copy", steps=4, eval_every=2, batch_size=8)


def open_page(page: str | None = None, student: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if student:
        at.query_params["student"] = student
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def make_run(folder: Path, mb: float) -> None:
    folder.mkdir(parents=True)
    with open(folder / "model.safetensors", "wb") as f:
        f.truncate(int(mb * 2**20))


def test_a_training_that_would_not_fit_is_refused_before_it_runs_with_what_to_delete(weights, monkeypatch):
    make_run(weights / STUDENTS / ANN / "homework", 1.0)
    make_run(weights / STUDENTS / BEN / "homework", 1.0)
    monkeypatch.setenv("WORKBENCH_TOTAL_QUOTA_MB", "2")  # full, and both students within their 1 MB share
    at = open_page("train", student=ANN)
    at.button(key="train_start").click().run()
    assert not at.exception
    refused = " ".join(texts(at.error))
    assert "There is no room for this run" in refused and "fair share" in refused and "homework" in refused
    assert _queue_jobs(ANN) == []  # nothing was queued
    assert (weights / STUDENTS / BEN / "homework").is_dir()


def _queue_jobs(student: str) -> list:
    from pages.ui.jobs import job_queue

    return job_queue().jobs(student)


def test_a_run_removed_by_a_quota_is_told_to_its_owner_when_they_next_open_the_app_once(weights):
    add_notice(weights, BEN, "homework-1", "your runs may take 200 MB at most")
    at = open_page(student=BEN)
    told = " ".join(texts(at.sidebar.warning))
    when = time.strftime("%d %b", time.gmtime())
    assert f"Your run **homework-1** was removed on {when}" in told and "200 MB at most" in told
    assert not texts(open_page(student=BEN).sidebar.warning)  # told once
    assert not texts(open_page(student=ANN).sidebar.warning)  # and only its owner


@pytest.fixture
def session_state_warnings():
    """What Streamlit logs about a widget given both a default and a Session State value (it logs
    it once a process: the flag is reset here)."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger(policies.__name__)
    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    policies._shown_default_value_warning = False
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def test_a_second_visit_of_step_through_logs_no_session_state_warning(copy_run, session_state_warnings):
    at = open_page("decode")
    at.switch_page("pages/inspect.py").run()
    at.text_input(key="inspect_text").set_value("3 4 5 1").run()  # the link's text changes on Inspect
    at.switch_page("pages/decode.py").run()  # and Step-through takes it up on the second visit
    assert not at.exception, at.exception
    assert at.text_input(key="decode_text").value == "3 4 5 1"
    assert not [w for w in session_state_warnings if "Session State" in w], session_state_warnings


def test_an_inspect_link_with_a_text_logs_no_session_state_warning(copy_run, session_state_warnings):
    at = open_page("inspect", run="tiny-copy", text="3 4 5 1")
    assert not at.exception, at.exception
    assert at.text_input(key="inspect_text").value == "3 4 5 1"
    assert not [w for w in session_state_warnings if "Session State" in w], session_state_warnings
