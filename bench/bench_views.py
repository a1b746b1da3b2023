"""The All heads page's model view on MiniLM: all 72 heads (6 layers × 12) for one sentence, by the
app's own path. Prints JSON. Goal: ≤ 2 s on 2 cores, median of the repetitions.

Each repetition times, in order:
  attention  the fine-tuned model reads the sentence (`inference.attention_maps`, eager attention)
  frame      every head's weights as the model view's table (`heads.model_view_frame`)
  chart      the chart and its Vega-Lite spec as Streamlit sends it (`heads.model_view_chart`, then
             Streamlit's own Altair conversion, the table sent as Arrow)
  render     the spec drawn to SVG by vl-convert (Vega's renderer without a browser: a stand-in for
             the browser's drawing)
and the total. With --app-url, Chromium also opens the page on a running app (`streamlit run
streamlit_app.py`) and the time until the grid is drawn is measured (needs the `playwright`
package and Debian's `chromium`).

    python bench/bench_views.py                       # the starter MiniLM run, else a random MiniLM-shaped BERT
    python bench/bench_views.py --run weights/_examples/sentiment-minilm --repeats 9
    python bench/bench_views.py --app-url http://localhost:8612
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)

SENTENCE = "a gorgeous, witty, seductive movie that never loses its nerve."
GOAL_S = 2.0


def starter_minilm() -> Path | None:
    """The app's starter MiniLM run, where the app keeps it."""
    from model_zoo.run_folder import weights_root

    found = weights_root() / "_examples" / "sentiment-minilm"
    return found if found.is_dir() else None


def random_minilm() -> Path:
    """A fine-tuning run folder of a random BERT with MiniLM's shape (hidden 384, 6 layers, 12
    heads): the same work per head when no fine-tuned MiniLM is at hand. No hub needed."""
    import model_zoo.hf  # noqa: F401  (first: see model_zoo/hf/__init__.py)

    # isort: split
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from model_zoo.run_folder import FINETUNE, LABELS_FILE, RUN_FILE
    from model_zoo.utils import atomic_write_json

    folder = Path(tempfile.mkdtemp(prefix="bench_views_")) / "minilm-shaped"
    words = sorted(set(SENTENCE.replace(",", " ,").replace(".", " .").split()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    config = BertConfig(vocab_size=len(vocab), hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, num_labels=2)  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    atomic_write_json(folder / LABELS_FILE, ["negative", "positive"])
    atomic_write_json(folder / RUN_FILE, {"kind": FINETUNE, "task": "classification", "model": "random"})
    return folder


def spread(times: list[float]) -> dict:
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "spread_s": round(max(times) - min(times), 4),
        "runs": len(times),
    }


def time_library_path(fm, text: str, repeats: int) -> tuple[dict, dict]:
    import vl_convert
    from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec

    from model_zoo.hf.inference import attention_maps
    from model_zoo.views import attention, heads

    stages = {"attention": [], "frame": [], "chart": [], "render": [], "total": []}
    shape = {}
    for i in range(repeats + 1):  # the first is a warm-up (imports, caches), not counted
        t0 = time.perf_counter()
        view = attention_maps(fm, text)
        t1 = time.perf_counter()
        q, k = attention.attention_axes("encoder_self", view.source_tokens, None)
        frame = heads.model_view_frame(view.attentions, "encoder_self", q, k)
        t2 = time.perf_counter()
        chart = heads.model_view_chart(frame, picked=(0, 0))
        spec = _convert_altair_to_vega_lite_spec(chart)  # what st.altair_chart sends (its table as Arrow)
        t3 = time.perf_counter()
        svg = vl_convert.vegalite_to_svg(heads.chart_spec(chart, frame))
        t4 = time.perf_counter()
        if i == 0:
            n_layers = attention.num_layers(view.attentions, "encoder_self")
            n_heads = attention.num_heads(view.attentions, "encoder_self")
            shape = {"layers": n_layers, "heads": n_heads, "maps": n_layers * n_heads, "tokens": len(q),
                     "rows": len(frame), "svg_bytes": len(svg), "spec_keys": sorted(spec)}  # fmt: skip
            continue
        for name, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
            stages[name].append(value)
    return {name: spread(values) for name, values in stages.items()}, shape


def time_browser(app_url: str, run_name: str, repeats: int) -> dict:
    """Chromium opens the page on a running app; the time from the request until the grid's
    drawing is on the page (its canvas or SVG inside the chart element)."""
    import shutil
    from urllib.parse import urlencode

    from playwright.sync_api import sync_playwright

    url = f"{app_url.rstrip('/')}/heads?{urlencode({'run': run_name, 'tab': 'Model view', 'text': SENTENCE})}"
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(app_url)  # a fresh server sends a first deep link through the app once
        page.wait_for_timeout(3000)
        for i in range(repeats + 1):
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
                                   timeout=120_000)  # fmt: skip
            if i:
                times.append(time.perf_counter() - start)
        browser.close()
    return spread(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a fine-tuned MiniLM run folder (default: the app's starter run)")
    parser.add_argument("--text", default=SENTENCE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the app's server uses 1)")
    parser.add_argument("--app-url", help="also time Chromium drawing the page on this running app")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be at least 5: a median needs them")
    torch.set_num_threads(args.threads)
    from model_zoo.hf.inference import load_finetuned

    run = Path(args.run) if args.run else starter_minilm()
    model_note = "fine-tuned MiniLM run"
    if run is None:
        run, model_note = random_minilm(), "random BERT of MiniLM's shape (no MiniLM run found)"
    fm = load_finetuned(run)
    stages, shape = time_library_path(fm, args.text, args.repeats)
    result = {
        "benchmark": "model view of every head (All heads page)",
        "model": model_note,
        "run": str(run),
        "text": args.text,
        **shape,
        "stages": stages,
        "goal_s": GOAL_S,
        "meets_goal": stages["total"]["median_s"] <= GOAL_S,
        "machine": machine_info(omp_wait_policy=os.environ.get("OMP_WAIT_POLICY")),
    }
    if args.app_url:
        result["browser_page_to_grid"] = time_browser(args.app_url, run.name, args.repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
