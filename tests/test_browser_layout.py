"""Readable on a classroom projector: every page at 1280 x 720 in a real browser, measured from the
rendered page. No chart, formula or table is wider than its column, every heatmap labels every
token of its data, the Inspect tab strip shows all its tabs, and no chart text is under 12 px.

Uses `test_browser`'s server fixture (its own `streamlit run`, offline) and Debian's Chromium;
skipped when Chromium is missing. The runs (a tiny reverse model, a tiny fine-tuned BERT) are made
through the library, not the pages, to keep the test near a minute on two CPU cores. Screenshots of
each page go to tests/screenshots/layout_*.png (gitignored) for a person to look at.

Streamlit 1.67 draws Vega-Lite charts as SVG, so the chart's own text nodes are measured; a chart of
more than 2,000 marks (the positional encodings) it draws on a canvas, whose size alone is measured.
"""

from __future__ import annotations

import re

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, SLOW, go, no_exception, server, wait_idle  # noqa: F401

pytestmark = pytest.mark.browser
PROJECTOR = {"width": 1280, "height": 720}
TOKEN_LABEL = re.compile(r"^\d+: ")
SENTENCE = "a gorgeous, witty, seductive movie."  # the Compare page's default sentence

# What the page looks like, measured in the page. A chart or formula is judged against the block it
# sits in (a column, an expander, the main column); hidden ones (other tabs) are skipped.
MEASURE = """
() => {
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const box = e => e.parentElement.closest('[data-testid="stVerticalBlock"]').getBoundingClientRect();
  const shown = t => getComputedStyle(t).opacity !== '0' && t.getAttribute('opacity') !== '0'
                     && t.textContent.trim() !== '';
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].filter(visible).map(c => {
    // Streamlit draws a chart of more than 2,000 marks on a canvas: its size is measured, its text
    // is not (tests/test_charts.py checks every chart's font sizes in its spec).
    const svg = c.querySelector('svg.marks') || c.querySelector('canvas.marks');
    const r = svg.getBoundingClientRect(); const b = box(c);
    const scale = r.width / parseFloat(svg.getAttribute('width') / (svg.tagName === 'CANVAS' ? devicePixelRatio : 1));
    const texts = [...svg.querySelectorAll('text')].filter(shown);
    const title = texts.filter(t => t.closest('.role-title')).map(t => t.textContent).join(' ');
    const labels = [...svg.querySelectorAll('.role-axis-label text')].filter(shown).map(t => t.textContent);
    return {title, left: r.left, right: r.right, boxLeft: b.left, boxRight: b.right, scale, labels,
            small: texts.map(t => [t.textContent, parseFloat(getComputedStyle(t).fontSize) * scale])
                        .filter(([, px]) => px < 11.95)};
  });
  const formulas = [...document.querySelectorAll('.katex-display')].filter(visible).map(f => {
    const r = f.querySelector('.katex-html').getBoundingClientRect(); const b = box(f);
    return {text: f.querySelector('annotation')?.textContent, right: r.right, boxRight: b.right,
            scroll: f.scrollWidth, client: f.clientWidth};
  });
  const tables = [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(visible).map(d => {
    const s = d.querySelector('.dvn-scroller');
    return {scroll: s ? s.scrollWidth : 0, client: s ? s.clientWidth : 0};
  });
  const list = document.querySelector('[data-testid="stTabs"] [role="tablist"]');
  let tabs = null;
  if (list) {
    const l = list.getBoundingClientRect();
    tabs = [...list.querySelectorAll('[role="tab"]')].map(t => {
      const r = t.getBoundingClientRect();
      return [t.innerText, r.left >= l.left - 1 && r.right <= l.right + 1 && r.width > 0];
    });
  }
  return {charts, formulas, tables, tabs};
}
"""
CHARTS_DRAWN = """
() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
  .filter(c => c.getBoundingClientRect().width > 0)
  .every(c => c.querySelector('svg.marks text, canvas.marks'))
"""


@pytest.fixture(scope="module")
def projector(server):  # noqa: F811
    """A browser tab at 1280 x 720 on a server holding a tiny reverse run (with its per-layer
    metrics and attention snapshots) and a tiny fine-tuning run."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian) to run the browser test")
    import torch
    from hf_tiny import tiny_bert_dir, tiny_config
    from playwright.sync_api import sync_playwright

    from model_zoo import Transformer
    from model_zoo.hf.finetune import finetune
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    weights = server[1]
    task = make_task("reverse", n_symbols=6, max_len=8, n_heldout=16)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32))
    train(model, task, TrainConfig(steps=30, eval_every=10, batch_size=16), checkpoint_dir=weights / "layout-reverse")
    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=2), weights / "layout-ft")
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport=PROJECTOR)
        tab.set_default_timeout(SLOW)
        tab.goto(server[0])
        yield tab
        browser.close()


def settle(page) -> None:
    """The script run has finished and every visible chart has drawn its text."""
    wait_idle(page)
    page.locator('[data-testid="stSkeleton"]').first.wait_for(state="detached")
    page.wait_for_function(CHARTS_DRAWN, timeout=SLOW)


def check_readable(page, name: str, problems: list[str]) -> dict:
    """Measure the page at 1280 x 720, add what is unreadable to `problems` (so one run of the test
    lists every page's), and save what a projector shows (`layout_<name>.png`) and the page at the
    same width (`layout_<name>_full.png`)."""
    settle(page)
    no_exception(page)
    seen = page.evaluate(MEASURE)
    for chart in seen["charts"]:
        where = f"{name}: chart {chart['title']!r}"
        if chart["right"] > chart["boxRight"] + 1 or chart["left"] < chart["boxLeft"] - 1:
            problems.append(f"{where} overflows its column")
        if chart["scale"] < 0.99:
            problems.append(f"{where} is drawn shrunk to {chart['scale']:.2f} of its size")
        if chart["small"]:
            problems.append(f"{where} has text under 12 px: {chart['small'][:5]}")
        # Token labels read "3: movie" (a logit lens step "1: 3"): their positions run on with none left out.
        numbered = sorted({int(label.split(": ")[0]) for label in chart["labels"] if TOKEN_LABEL.match(label)})
        if numbered and numbered != list(range(numbered[0], numbered[0] + len(numbered))):
            problems.append(f"{where} leaves out token labels: {numbered}")
    for formula in seen["formulas"]:
        if formula["scroll"] > formula["client"] + 4 or formula["right"] > formula["boxRight"] + 1:
            problems.append(f"{name}: formula cut on the right: {formula['text']}")
    hidden = [label for label, shown in seen["tabs"] or [] if not shown]
    if hidden:
        problems.append(f"{name}: tabs hidden behind the scroll arrow: {hidden}")
    page.screenshot(path=str(SHOTS / f"layout_{name}.png"))
    page.set_viewport_size({"width": PROJECTOR["width"], "height": 3000})
    settle(page)
    page.screenshot(path=str(SHOTS / f"layout_{name}_full.png"))
    page.set_viewport_size(PROJECTOR)
    settle(page)
    return seen


def token_labels(seen: dict, title_part: str) -> list[str]:
    chart = next((c for c in seen["charts"] if title_part.replace(" ", "") in c["title"].replace(" ", "")), None)
    assert chart is not None, [c["title"] for c in seen["charts"]]
    return chart["labels"]


def test_every_page_is_readable_on_a_projector(projector, server):  # noqa: F811
    page, problems = projector, []
    page.get_by_role("heading", name="Transformer Workbench").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Runs you can open").wait_for()
    check_readable(page, "home", problems)

    # Build: every concept open, so every formula is typeset; the Shapes table fits its column.
    go(page, "Build", "Shapes, stage by stage")
    for summary in page.locator('[data-testid="stExpander"] summary').all():
        summary.click()
    page.locator(".katex-display").first.wait_for()
    built = check_readable(page, "build", problems)
    assert len(built["formulas"]) >= 8  # every concept opened
    assert len(built["tables"]) == 5  # parameter counts, Shapes, the three families, Figure 1's parts, Table 3's rows
    if not all(0 < t["scroll"] <= t["client"] + 2 for t in built["tables"]):
        problems.append(f"build: a table is cut on the right: {built['tables']}")

    go(page, "Train", "Start training")
    check_readable(page, "train", problems)

    # Step-through: three tokens, so the logit lens has three columns; the beam tree drawn.
    go(page, "Step-through decoding", "Output so far")
    for step in (1, 2, 3):
        page.get_by_role("button", name="Next token").click()
        page.get_by_text(f"step {step}: chosen token").wait_for()
    page.get_by_text("show every hypothesis beam search kept and pruned").click()
    page.locator('[data-testid="stVegaLiteChart"]', has_text="Beam search").wait_for()
    decoded = check_readable(page, "decode", problems)
    lens = next(
        c for c in decoded["charts"] if "Logitlens" in c["title"].replace(" ", "")
    )  # a wrapped title: lines joined
    if lens["right"] - lens["left"] < 320:
        problems.append(f"decode: the logit lens is a sliver ({lens['right'] - lens['left']:.0f} px)")

    # Inspect: every tab, each one opened.
    go(page, "Inspect", "parameters ·")
    page.get_by_role("tab", name="Heads together").wait_for()
    settle(page)
    labels = [label for label, _ in page.evaluate(MEASURE)["tabs"]]
    assert len(labels) == 11
    for label in labels:
        page.get_by_role("tab", name=label, exact=True).click()
        check_readable(page, "inspect_" + label.lower().replace(" ", "_"), problems)

    # Compare: the difference map labels each of the sentence's tokens on both axes.
    from hf_tiny import tiny_bert_dir
    from transformers import AutoTokenizer

    n_tokens = len(AutoTokenizer.from_pretrained(tiny_bert_dir())(SENTENCE)["input_ids"])
    go(page, "Compare", "Before vs after fine-tuning")
    page.locator('[data-testid="stVegaLiteChart"]', has_text="after − before").first.wait_for()
    compared = check_readable(page, "compare", problems)
    difference = token_labels(compared, "after − before")
    if len(difference) != 2 * n_tokens:  # every token, across and down
        problems.append(f"compare: the difference map labels {len(difference)} of {2 * n_tokens} tokens")

    go(page, "Fine-tune", "1 · Model")
    check_readable(page, "finetune", problems)
    go(page, "Guided lesson", "Predict first:")
    check_readable(page, "lesson", problems)
    assert not problems, "\n".join(problems)
