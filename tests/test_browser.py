"""End to end in a real browser: Playwright drives Debian's Chromium against `streamlit run` on
localhost. It opens every page, trains a tiny model, steps through decoding, fine-tunes a tiny BERT
on an uploaded CSV, and saves a screenshot of each page in tests/screenshots/ (gitignored).

Needs `apt-get install chromium` (Playwright's own browser download is never used); skipped with
the reason when it is missing. About a minute on two CPU cores.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SLOW = 90_000  # ms: a page's first render imports torch / transformers; a training runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not answer its health check")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run streamlit_app.py` with its own weights folder, offline."""
    weights = tmp_path_factory.mktemp("browser_weights")
    port = free_port()
    env = {
        **os.environ,
        "WORKBENCH_WEIGHTS_DIR": str(weights),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("WORKBENCH_RAISE", None)  # the real app: errors become messages
    log = (tmp_path_factory.mktemp("browser_log") / "streamlit.log").open("w")
    process = subprocess.Popen(
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
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url, weights
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian) to run the browser test")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(SLOW)
        tab.goto(server[0])
        yield tab
        browser.close()


def go(page, title: str, ready: str) -> None:
    """Click a page in the sidebar navigation and wait for text only that page shows."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
    page.get_by_text(ready, exact=False).first.wait_for()


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()


def shoot(page, name: str) -> None:
    """A tall viewport for the picture: Streamlit scrolls inside its own container, so a
    full-page screenshot would stop at the window's height."""
    page.set_viewport_size({"width": 1400, "height": 2600})
    page.wait_for_timeout(800)  # let the charts draw at the new size
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def wait_idle(page) -> None:
    """Wait until the script run in progress (Streamlit's "Running..." status) has finished: a
    widget typed into during a rerun can be drawn afresh and lose what was typed."""
    page.wait_for_timeout(300)  # let a rerun that was just triggered start
    page.locator('[data-testid="stStatusWidget"]').get_by_text("Running", exact=False).wait_for(state="hidden")


def fill(page, label: str, value) -> None:
    for _ in range(3):
        wait_idle(page)
        field = page.get_by_label(label, exact=True)
        field.fill(str(value))
        field.press("Tab")
        wait_idle(page)
        if page.get_by_label(label, exact=True).input_value() == str(value):
            return
    raise AssertionError(f"the field {label!r} did not keep the value {value!r}")


def choose(page, label: str, option: str) -> None:
    wait_idle(page)
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).click()


def test_every_page_in_a_real_browser(page, server):
    from hf_tiny import tiny_bert_dir, tiny_csv

    # Home, and the sidebar with the device and the saved runs.
    page.get_by_role("heading", name="Transformer Workbench").wait_for()  # drawn while torch still loads
    page.locator('[data-testid="stSidebar"]').get_by_text("Runs you can open").wait_for()  # then the sidebar fills in
    assert "Runs on" in page.locator('[data-testid="stSidebar"]').inner_text()
    no_exception(page)
    shoot(page, "01_home")

    # Build: parity against nn.Transformer, live.
    go(page, "Build", "Shapes, stage by stage")
    page.get_by_role("button", name="Run the parity check").click()
    page.get_by_text("Parity holds").wait_for()
    no_exception(page)
    shoot(page, "02_build")

    # Train a tiny copy model; it is saved and listed in the sidebar; decode with it.
    go(page, "Train", "Start training")
    page.get_by_label("d_model", exact=True).and_(page.locator(":enabled")).wait_for()
    for label, value in (
        ("symbols", 5),
        ("longest sequence", 4),
        ("d_model", 16),
        ("heads", 2),
        ("blocks (each side)", 1),
        ("steps (at most)", 30),
        ("batch size", 16),
        ("evaluate every (steps)", 10),
        ("run name (saved among your runs)", "browser-copy"),
    ):
        fill(page, label, value)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training finished after").wait_for()
    assert list(server[1].glob("_students/*/browser-copy/model.safetensors"))  # the student's own folder
    page.locator('[data-testid="stSidebar"]').get_by_text("browser-copy").first.wait_for()
    page.get_by_role("button", name="Decode", exact=True).click()
    page.get_by_text("Output:").wait_for()
    no_exception(page)
    shoot(page, "03_train")

    # Step through decoding: two tokens, one back.
    go(page, "Step-through decoding", "Output so far")
    page.get_by_role("button", name="Next token").click()
    page.get_by_text("step 1: chosen token").wait_for()
    page.get_by_role("button", name="Next token").click()
    page.get_by_text("step 2: chosen token").wait_for()
    page.get_by_role("button", name="Back").click()
    page.get_by_text("step 1: chosen token").wait_for()
    no_exception(page)
    shoot(page, "04_decode")

    # Inspect: the attention maps of the run just trained.
    go(page, "Inspect", "parameters ·")
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    no_exception(page)
    shoot(page, "05_inspect")

    # Fine-tune a tiny BERT on an uploaded CSV (the column pickers find its columns).
    go(page, "Fine-tune", "1 · Model")
    choose(page, "pretrained model", "another model: type a hub name or a local folder")
    fill(page, "hub name or local folder", tiny_bert_dir())
    page.get_by_text("2 · Data").wait_for()
    page.get_by_text("upload a CSV / JSON-lines file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(tiny_csv()))
    page.get_by_text("3 · A sample, as the model reads it").wait_for()
    assert page.get_by_label("text column", exact=True).input_value() == "review"
    for label, value in (("at most steps (0 = no cap)", 2), ("batch size", 8), ("run name", "browser-ft")):
        fill(page, label, value)
    page.get_by_role("button", name="Fine-tune").click()
    # When the job ends, the live panel's fragment and the page's rerun may both draw the result for
    # a moment (the older one fading out, seen once in CI); the page must settle on one.
    page.get_by_text("Try it below").first.wait_for()
    page.wait_for_function("() => document.body.innerText.split('Try it below').length === 2")
    assert list(server[1].glob("_students/*/browser-ft/labels.json"))
    no_exception(page)
    shoot(page, "06_finetune")

    # Compare: before and after of that run, and the speed of scratch vs nn.Transformer.
    go(page, "Compare", "Before vs after fine-tuning")
    page.get_by_text("Changed predictions").wait_for()
    page.get_by_role("tab", name="Scratch vs nn.Transformer").click()
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("Parity holds").wait_for()
    no_exception(page)
    shoot(page, "07_compare")
