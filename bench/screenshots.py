"""The docs' screenshots, made from the running app so that they never go stale.

    .venv/bin/python bench/screenshots.py                       # every page, into docs/screenshots/
    .venv/bin/python bench/screenshots.py --pages inspect train  # just these
    WORKBENCH_WEIGHTS_DIR=/tmp/w .venv/bin/python bench/screenshots.py --port 8618

Starts `streamlit run streamlit_app.py` (starter runs off, hub off) on the runs folder it is given
(`WORKBENCH_WEIGHTS_DIR`, else `weights/`: it needs the starter runs there — `python -m model_zoo
starter-runs`), opens each page in Debian's Chromium at 1280 x 720 (a projector's size), waits until
Streamlit has finished the page's script and every visible chart is drawn (never a fixed sleep),
and writes `docs/screenshots/<page>.png`. A PNG over 250 KB is saved with 256 colours (the docs
stay small). A page that `streamlit_app.py` does not register is skipped with a line saying so.
Prints one JSON line: the files written, their sizes, the pages skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import CHROMIUM_ARGS, IDLE, free_port, wait_healthy  # noqa: E402
from playwright.sync_api import Page  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
MAX_BYTES = 250_000  # above this a screenshot is saved with 256 colours (the docs' limit is 300 KB)
STARTED = "() => !document.body.innerText.includes('Starting up: loading PyTorch')"  # the sidebar is whole
CHARTS_DRAWN = """
() => !document.querySelector('[data-testid="stSkeleton"]')
  && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
    .filter(c => c.getBoundingClientRect().width > 0)
    .every(c => c.querySelector('svg.marks, canvas.marks'))
"""  # no element still loading (Streamlit's skeleton), every visible Vega-Lite chart drawn
TEACHER_PASSPHRASE = "screenshots only"  # the server started here is local and stops with the script


@dataclass(frozen=True)
class Shot:
    name: str  # docs/screenshots/<name>.png
    file: str  # the page's file, as streamlit_app.py registers it
    query: str  # the page's link: what it shows
    title: str  # the page's title, shown once its script has run
    act: Callable[[Page], None] | None = None  # clicks that bring the view worth showing
    scroll_to: str = ""  # a heading (or, failing that, a text) brought to the top of the picture


def lesson_reveal(page: Page) -> None:
    """Step 5 of the guided lesson answered and revealed: the question, the verdict, the chart."""
    page.get_by_text("5 · Inspect: cross-attention").first.click()
    page.get_by_role("heading", name="5 · Inspect: cross-attention").wait_for()
    idle(page)
    page.get_by_text("an anti-diagonal").click()
    idle(page)
    page.get_by_role("button", name="Reveal").click()
    page.get_by_text("Open Inspect at this view").wait_for()


def train_copy(page: Page) -> None:
    """The copy task trained with every default (about 20 s): the live panel's charts, finished."""
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training finished after").wait_for()


def decode_to_the_end(page: Page) -> None:
    page.get_by_role("button", name="To the end").click()
    page.get_by_text("(nothing yet").wait_for(state="detached")


SHOTS = [
    Shot("home", "pages/home.py", "", "Transformer Workbench"),
    Shot("lesson", "pages/lesson.py", "", "Guided lesson", lesson_reveal, "5 · Inspect: cross-attention"),
    Shot("build", "pages/build.py", "", "Build a Transformer", scroll_to="Figure 1, as this app builds it"),
    Shot("train", "pages/train.py", "", "Train", train_copy, "Run copy"),
    Shot("decode", "pages/decode.py", "?run=reverse", "Step-through decoding", decode_to_the_end, "Output so far"),
    Shot("inspect", "pages/inspect.py", "?run=reverse&kind=cross&layer=1&head=2", "Inspect", scroll_to="Output:"),
    Shot("finetune", "pages/finetune.py", "", "Fine-tune a pretrained model"),
    Shot("compare", "pages/compare.py", "", "Compare"),
    Shot("setup", "pages/setup.py", "", "Setup: what this app runs on"),
    Shot("teacher", "pages/teacher.py", "", "Teacher"),
    Shot(
        "journey",
        "pages/journey.py",
        "?run=reverse&kind=decoder&stage=decoder.0.cross.softmax&pos=2",
        "A token's journey",
    ),
    Shot("heads", "pages/heads.py", "?run=sentiment-minilm", "All heads"),
    Shot("explain", "pages/explain.py", "", "What the prediction rests on"),
]


def registered(shot: Shot) -> bool:
    return f'"{shot.file}"' in (ROOT / "streamlit_app.py").read_text(encoding="utf-8")


def url_path(shot: Shot) -> str:
    """Streamlit's address of a page: its file's name without `.py`; the default page is `/`."""
    return "" if shot.name == "home" else Path(shot.file).stem


def small_png(png: bytes) -> bytes:
    """The screenshot as it is, or with 256 colours when it is larger than MAX_BYTES."""
    if len(png) <= MAX_BYTES:
        return png
    from PIL import Image

    image = Image.open(BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def idle(page: Page) -> None:
    page.wait_for_function(IDLE)


def take(page: Page, url: str, shot: Shot) -> bytes:
    page.goto(f"{url}/{url_path(shot)}{shot.query}")
    page.get_by_role("heading", name=shot.title).first.wait_for()
    idle(page)
    page.wait_for_function(STARTED)
    if shot.name == "teacher":  # signed in: what a teacher works with, not the lock
        page.get_by_label("teacher passphrase").fill(TEACHER_PASSPHRASE)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Publish a run to the class").wait_for()
    if shot.act is not None:
        shot.act(page)
    idle(page)
    page.wait_for_function(CHARTS_DRAWN)
    if shot.scroll_to:
        target = page.get_by_role("heading", name=shot.scroll_to)
        if not target.count():
            target = page.get_by_text(shot.scroll_to)
        target.first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_function(CHARTS_DRAWN)
    page.mouse.move(0, 0)  # no hover tooltip in the picture
    return page.screenshot(type="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", nargs="*", help="names of the screenshots to make (default: all)")
    parser.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed: `apt-get install chromium` (Debian), then run this again.")
    shots = [s for s in SHOTS if not args.pages or s.name in args.pages]
    skipped = [s.name for s in shots if not registered(s)]
    shots = [s for s in shots if registered(s)]
    args.out.mkdir(parents=True, exist_ok=True)

    env = {
        **os.environ,
        "WORKBENCH_STARTER_RUNS": "0",  # the runs folder is used as it is
        "WORKBENCH_TEACHER_PASSPHRASE": TEACHER_PASSPHRASE,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    written = {}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_healthy(server, url, time.perf_counter(), limit_s=120, poll_s=0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(180_000)  # a first visit imports torch and transformers on two cores
            for shot in shots:
                png = small_png(take(page, url, shot))
                (args.out / f"{shot.name}.png").write_bytes(png)
                written[shot.name] = len(png)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps({"written": written, "skipped (not registered)": skipped, "out": str(args.out)}))


if __name__ == "__main__":
    main()
