"""A link to a page as the very first visit to a freshly started server (the teacher restarted the
Space; a student opens their bookmark): it opens that page, for that student, not Start here with
a new id. Until `st.navigation` has run once in the process Streamlit serves `pages/` the legacy
way, so this needs a server of its own that nothing has visited yet.

Uses `test_browser`'s server fixture (module-scoped: a new `streamlit run` for this module) and
Debian's Chromium; skipped when Chromium is missing.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, SLOW, no_exception, server, wait_idle  # noqa: F401

pytestmark = pytest.mark.browser
STUDENT = "s-7kq2m9xd"


def test_a_deep_link_on_a_fresh_server_opens_its_page_for_its_student(server):  # noqa: F811
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian) to run the browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 720})
        tab.set_default_timeout(SLOW)
        tab.goto(f"{server[0]}/setup?student={STUDENT}")  # the server's first visitor
        tab.get_by_role("heading", name="Setup: what this app runs on").wait_for()
        wait_idle(tab)
        no_exception(tab)
        link = urlparse(tab.url)
        assert link.path == "/setup", tab.url
        assert parse_qs(link.query).get("student") == [STUDENT], tab.url  # the same student, not a new id
        browser.close()
