"""The classroom load test (bench/bench_classroom.py), small: three students against one real
server, each opening the app, a starter run on Inspect, pressing Train, stepping through decoding,
opening Fine-tune and waiting for their run. Students 0 and 2 are Chromium tabs, student 1 speaks
Streamlit's websocket protocol (bench/st_client.py, what the large load tests use): the same clicks
and the same texts waited for, so both clients are shown to drive the same app to the same end.
A hostile student opens four more ids and presses Start training in each as the class arrives.
No exception, no "busy", every run in its student's own folder, none of the honest students' runs
removed. Needs Debian's Chromium; about two minutes on two cores."""

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed: apt-get install chromium")
@pytest.mark.timeout(600)
def test_three_students_browser_and_websocket_train_in_the_queue_without_an_error_beside_a_hostile_one():
    from bench_classroom import run

    result = run(3, stagger=1.0, steps=30, starter_steps=30, workers=None, client="mixed", hostile_ids=4, limit_s=420)
    assert result["errors"] == []
    assert result["trained_s"]["done"] == 3 and result["runs_on_disk"] == 3
    assert result["honest_runs_removed"] == 0
    hostile = result["hostile"]  # four ids pressed Start training as the class arrived: each one was answered
    assert hostile["jobs_queued"] + hostile["jobs_refused"] == 4, hostile
    assert result["server_log_tracebacks"] == 0 and result["server_log_stacks"] == 0
    assert result["queue_wait_s"]["max"] is not None  # each student read how long their job waited


def test_the_queue_wait_is_read_from_the_train_page():
    from bench_classroom import waited_s

    assert waited_s("Training finished after 300 steps in 12 s (it waited 40 s in the queue): …") == 40
    assert waited_s("Training finished after 300 steps in 12 s (it waited 3 min in the queue): …") == 180
    assert waited_s("Training finished after 300 steps in 12 s: the saved weights …") == 0
