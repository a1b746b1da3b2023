"""Isolation and admission against a real server, over Streamlit's websocket protocol (the client
the classroom load test uses, bench/st_client.py): a link to a classmate's run is refused and opens
nothing else, and in roster mode a link that is not on the class's list may look but not train.
Starts one `streamlit run` (about 20 s on two cores)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
ME, OTHER = "s-mmmmmmmm", "s-tttttttt"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_run):
    """A roster-mode server with my run and a classmate's; ME is on the roster."""
    from app_server import free_port, wait_healthy

    from model_zoo.classroom.admission import mint_links, roster_path

    weights = tmp_path_factory.mktemp("ws_weights")
    tiny_run(weights / "_students" / OTHER / "their-copy", steps=10)
    mint_links(["a classmate"], weights)  # roster mode on
    roster = json.loads(roster_path(weights).read_text())
    roster["students"][ME] = {"label": "me", "created": time.time()}  # ME is on the list
    roster_path(weights).write_text(json.dumps(roster))
    tiny_run(weights / "_students" / ME / "my-copy", steps=10)
    port = free_port()
    env = {**os.environ, "WORKBENCH_WEIGHTS_DIR": str(weights), "WORKBENCH_STARTER_RUNS": "0", "WORKBENCH_WORKERS": "1"}
    env.pop("WORKBENCH_RAISE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url, time.perf_counter(), 120, 0.5)
        yield url, weights
    finally:
        process.terminate()
        process.wait(timeout=30)


def visit(url: str, query: str, page: str, *texts: str, click: str | None = None) -> tuple[str, object]:
    """Open the app with `query`, go to `page`, wait for one of `texts` (then click `click` and wait
    again); returns the text seen and the tab's state."""
    from st_client import StreamlitTab

    async def go():
        tab = StreamlitTab(url, query_string=query)
        try:
            await tab.open()
            await tab.wait_for_text("Runs you can open", timeout=180)
            await tab.goto(page)
            seen = await tab.wait_for_text(*texts, timeout=180)
            if click:
                await tab.click(click)
            return seen, tab
        finally:
            await tab.close()

    return asyncio.run(go())


@pytest.mark.timeout(600)
def test_a_link_to_a_classmates_run_is_refused_over_the_websocket(server):
    url, _ = server
    seen, tab = visit(url, f"student={ME}&run=their-copy", "Inspect", "not one you can open", "parameters ·")
    assert seen == "not one you can open"
    assert not tab.has_text("parameters ·")  # no model was opened in its place
    assert "run=their-copy" in tab.query_string
    seen, tab = visit(url, f"student={ME}&run=my-copy", "Inspect", "not one you can open", "parameters ·")
    assert seen == "parameters ·"


@pytest.mark.timeout(600)
def test_in_roster_mode_a_link_not_on_the_list_may_look_but_not_train(server):
    url, weights = server
    stranger = "s-zzzzzzzz"
    seen, tab = visit(url, f"student={stranger}", "Train", "Ask your teacher", click="Start training")
    assert tab.has_text("Ask your teacher") and not tab.exceptions
    assert not (weights / "_students" / stranger).exists()
