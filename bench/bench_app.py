"""The app in a real browser: cold start to the first rendered page, page switches (first visit and
again), and the server's resident memory with the MiniLM pack loaded. Prints JSON.

    python bench/bench_app.py            # needs Debian's chromium (apt-get install chromium)

Goals (issue 6, on 2 CPU cores): cold start ≤ 5 s, page switch ≤ 1 s, memory ≤ 1.5 GB.
A first visit to a page imports what it needs (transformers, datasets) once per process; the
switch goal is about a page already visited, and both are reported.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# page title in the sidebar -> text only that page shows once it has rendered
PAGES = {
    "Build": "Shapes, stage by stage",
    "Train": "Start training",
    "Step-through decoding": "Step-through decoding",
    "Inspect": "Inspect",
    "Fine-tune": "1 · Model",
    "Compare": "Before vs after fine-tuning",
    "Start here": "The path",
}
# The app has finished its script run (and drawn what it sent) once this holds.
IDLE = (
    "() => document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state') === 'notRunning'"
)
GOALS = {"cold_start_s": 5.0, "page_switch_s": 1.0, "rss_with_minilm_mb": 1536.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its children."""
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print(json.dumps({"error": "chromium is not installed: apt-get install chromium"}))
        return 1
    from playwright.sync_api import sync_playwright

    weights = Path(tempfile.mkdtemp(prefix="bench_app_weights_"))
    env = {
        **os.environ,
        "WORKBENCH_WEIGHTS_DIR": str(weights),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    results: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)

        # 1) Cold start: from launching the server to the home page's title in the browser.
        start = time.perf_counter()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.fileWatcherType",
                "none",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - start > 60:
                        raise RuntimeError("streamlit did not start") from None
                    time.sleep(0.05)
            results["server_healthy_s"] = time.perf_counter() - start
            page.goto(url)
            page.get_by_role("heading", name="Transformer Workbench").wait_for()
            page.wait_for_function(IDLE)
            results["cold_start_s"] = time.perf_counter() - start
            results["rss_idle_mb"] = rss_mb(server.pid)

            # 2) Page switches: click in the sidebar, wait for the page's own text.
            def switch(title: str) -> float:
                t0 = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
                page.get_by_text(PAGES[title], exact=False).first.wait_for()
                page.wait_for_function(IDLE)
                return time.perf_counter() - t0

            results["first_visit_s"] = {title: switch(title) for title in PAGES}
            results["page_switch_s"] = {title: switch(title) for title in PAGES}
            results["page_switch_max_s"] = max(results["page_switch_s"].values())

            # 3) Memory with the MiniLM pack loaded (its tokenizer and the model with a new head).
            switch("Fine-tune")
            page.get_by_role("button", name="Load minilm-l6 (offline)").click()
            page.get_by_text("word pieces:").wait_for()
            results["rss_with_minilm_mb"] = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(10)
            browser.close()
            shutil.rmtree(weights, ignore_errors=True)

    results["meets"] = {
        "cold_start": results["cold_start_s"] <= GOALS["cold_start_s"],
        "page_switch": results["page_switch_max_s"] <= GOALS["page_switch_s"],
        "memory": results["rss_with_minilm_mb"] <= GOALS["rss_with_minilm_mb"],
    }
    print(
        json.dumps(
            {
                "benchmark": "app",
                "machine": machine_info(streamlit=importlib.metadata.version("streamlit")),
                "goals": GOALS,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
