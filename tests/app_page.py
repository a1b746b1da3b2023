"""Opening the app in `streamlit.testing.v1.AppTest` as a student's browser would: the home page
first (with the student's link), then the page asked for. Shared by the app tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TIMEOUT = 120  # pages import torch, transformers and datasets on their first run


def open_page(page: str | None = None, params: dict[str, str] | None = None, *, student: str | None = None) -> AppTest:
    """A new browser session on the home page, opened with `student`'s link when given; then
    `page` (pages/PAGE.py) with `params` added to its link. Fails on any exception the app shows."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if student:
        at.query_params["student"] = student
    at.run()
    assert not at.exception, at.exception
    for name, value in (params or {}).items():
        at.query_params[name] = value
    if page:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
    return at
