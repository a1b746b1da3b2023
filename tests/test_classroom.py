"""The classroom load test (bench/bench_classroom.py), small: three students against one real
server, each opening the app, a starter run on Inspect, pressing Train, stepping through decoding,
opening Fine-tune and waiting for their run. No exception, no "busy", every run in its student's
own folder. Needs Debian's Chromium; about a minute on two cores."""

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed: apt-get install chromium")
@pytest.mark.timeout(600)
def test_three_students_train_in_the_queue_without_an_error():
    from bench_classroom import run

    result = run(3, stagger=1.0, steps=30, starter_steps=30, workers=None)
    assert result["errors"] == []
    assert result["trained_s"]["done"] == 3 and result["runs_on_disk"] == 3
    assert result["server_log_tracebacks"] == 0
