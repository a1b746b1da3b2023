"""The teaching layer in a real browser at a classroom projector's 1280 x 720: every page it changed
renders without an exception, shows its computed "What to look for" lines and its explanations,
draws no chart text cut short with "…", and is saved as a screenshot in tests/screenshots/
(gitignored) for a person to look at: `<page>.png` is what the projector shows, `<page>_full.png`
the whole page at the same width.

Uses `test_browser`'s server fixture (its own `streamlit run`, offline) and Debian's Chromium;
skipped when Chromium is missing. About a minute on two CPU cores.
"""

from __future__ import annotations

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, SLOW, fill, go, no_exception, server, wait_idle  # noqa: F401

pytestmark = pytest.mark.browser
PROJECTOR = {"width": 1280, "height": 720}


@pytest.fixture(scope="module")
def projector(server):  # noqa: F811
    """A browser tab at 1280 x 720, with a tiny fine-tuning run saved for Compare and the lesson."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian) to run the browser test")
    from hf_tiny import tiny_bert_dir, tiny_config
    from playwright.sync_api import sync_playwright

    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=2), server[1] / "teach-ft")
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport=PROJECTOR)
        tab.set_default_timeout(SLOW)
        tab.goto(server[0])
        yield tab
        browser.close()


def settle(page) -> None:
    """Wait for the script run and for every chart to have drawn (no loading skeleton left)."""
    wait_idle(page)
    page.locator('[data-testid="stSkeleton"]').first.wait_for(state="detached")
    page.wait_for_timeout(600)  # vega draws after its element appears


def no_text_cut_short(page) -> None:
    """Vega writes "…" where it had to cut an axis label, a legend or a title: there must be none."""
    if page.locator('[data-testid="stVegaLiteChart"] svg').count():  # vega draws svg here: its text is readable
        assert page.locator('[data-testid="stVegaLiteChart"] svg text').count() > 0
    cut = page.locator('[data-testid="stVegaLiteChart"] svg text', has_text="…")
    assert cut.count() == 0, cut.first.text_content()


def shoot(page, name: str) -> None:
    """The projector's view, then the whole page at the same width (Streamlit scrolls inside its own
    container, so a taller window shows more)."""
    settle(page)
    no_exception(page)
    no_text_cut_short(page)
    page.screenshot(path=str(SHOTS / f"teach_{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 3000})
    settle(page)
    no_text_cut_short(page)
    page.screenshot(path=str(SHOTS / f"teach_{name}_full.png"))
    page.set_viewport_size(PROJECTOR)


def looks_for(page, at_least: int = 1) -> None:
    """Wait for at least this many computed "What to look for" lines (they draw one after another)."""
    page.get_by_text("What to look for:").nth(at_least - 1).wait_for()


def test_teaching_pages_at_1280x720(projector, server):  # noqa: F811
    page = projector
    page.get_by_role("heading", name="Transformer Workbench").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Runs you can open").wait_for()
    page.get_by_text("Take the guided lesson", exact=False).wait_for()
    shoot(page, "01_home")

    go(page, "Build", "Figure 1, as this app builds it")
    page.locator('[data-testid="stGraphVizChart"] svg').first.wait_for()
    assert "MultiHeadAttention" in page.locator('[data-testid="stGraphVizChart"]').first.inner_text()
    page.get_by_text("Scaled dot-product attention: what is it?").click()
    opened = page.locator('[data-testid="stExpander"]', has_text="Scaled dot-product attention")
    opened.locator(".katex").first.wait_for()  # the formula, typeset
    assert "scaled_dot_product_attention" in opened.inner_text()  # and where model_zoo computes it
    looks_for(page, 2)  # parameters, shapes
    shoot(page, "02_build")

    # Train a tiny copy model through the page: the live charts are 200 px plots with their captions.
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
        ("run name (saved among your runs)", "teach-copy"),
    ):
        fill(page, label, value)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training finished after").wait_for()
    looks_for(page, 4)
    heights = page.locator('[data-testid="stVegaLiteChart"] svg').evaluate_all(
        "els => els.filter(e => e.checkVisibility()).map(e => e.getBoundingClientRect().height)"  # not in hidden tabs
    )
    assert heights and min(heights) >= 200, heights
    shoot(page, "03_train")

    go(page, "Step-through decoding", "Output so far")
    page.get_by_role("button", name="Next token").click()
    page.get_by_text("step 1: chosen token").wait_for()
    looks_for(page, 2)  # top-k, cross-attention
    shoot(page, "04_decode")

    go(page, "Inspect", "parameters ·")
    looks_for(page)
    shoot(page, "05_inspect_attention")
    page.get_by_role("tab", name="Training dynamics").click()
    page.get_by_text("The learning rate is still warming up", exact=False).wait_for()  # 30 steps, warmup 50
    shoot(page, "06_inspect_dynamics")

    go(page, "Compare", "Before vs after fine-tuning")
    page.get_by_text("Changed predictions").wait_for()
    page.get_by_text("Fine-tuning moved these weights", exact=False).wait_for()
    shoot(page, "07_compare")

    # The lesson: answer step 1, reveal it, from the student's own run.
    go(page, "Guided lesson", "Predict first:")
    settle(page)
    page.locator('[data-testid="stRadioOption"]', has_text="the feed-forward layers").click()
    wait_idle(page)
    page.get_by_role("button", name="Reveal").click()
    page.get_by_text("1 of 10 steps revealed").wait_for()
    page.get_by_text("In your trained model", exact=False).wait_for()
    shoot(page, "08_lesson")
