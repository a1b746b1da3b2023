"""The app as a student meets it, in a real browser (Playwright + Debian's Chromium), next to the
command line on the same machine in the same run. Prints JSON.

    python bench/bench_app.py                 # everything (about 5 minutes on 2 cores)
    python bench/bench_app.py --skip-finetune

1. cold start to the first rendered page, page switches (first visit, while the queue's spare
   workers start; then again, once they have: `waited_for_quiet_s`);
2. Train, every default, "Start training" for each of `--tasks` (copy and reverse): seconds from the
   click to "Training finished", the steps and held-out exact match the page reports, and
   Chromium's CPU seconds meanwhile (drawing the live charts on the same cores), against
   `python -m model_zoo train --task T` with every default (its whole process, imports included);
   each started once the server and its workers are quiet (the queue starts a spare worker after
   each job: seconds of CPU for torch's import);
3. Fine-tune, every default, "Fine-tune": seconds from the click to the result, with the run's
   before/after accuracy and macro-F1 read from its metrics.json;
4. the server's resident memory (with its worker processes) at the end.

Goals (issues 6 and 10): cold start <= 5 s, page switch <= 1 s; copy and reverse solved (>= 99%) in
<= 20 s in the app, <= 1.2x the command line's time; the default fine-tune >= 0.80 with macro-F1 up in <= 90 s.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app_server import CHROMIUM_ARGS, IDLE, free_port, tree_rss_mb, wait_healthy, wait_quiet  # noqa: E402  (beside this script)
from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
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
GOALS = {"cold_start_s": 5.0, "page_switch_s": 1.0, "solved_in_app_s": 20.0, "app_over_cli": 1.2,
         "finetune_accuracy": 0.80, "finetune_s": 90.0}  # fmt: skip


def cli_train(task: str, env: dict) -> dict:
    """`python -m model_zoo train --task TASK` with every default: the whole process, timed."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "model_zoo", "train", "--task", task, "--out", f"bench-cli-{task}", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    found = re.search(r"(\d+) steps in ([\d.]+) s.*exact match ([\d.]+)", done.stdout)
    return {
        "seconds": round(seconds, 2),
        "steps": int(found[1]) if found else None,
        "training_s": float(found[2]) if found else None,
        "exact_match": float(found[3]) if found else None,
        "solved": bool(found) and float(found[3]) >= 0.99,
    }


def chromium_cpu_s() -> float:
    """CPU seconds used so far by every Chromium process on the machine (the benchmark's own)."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if (process.info["name"] or "").startswith("chrom") and process.info["cpu_times"]:
            total += process.info["cpu_times"].user + process.info["cpu_times"].system
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--tasks", nargs="+", default=["copy", "reverse"], help="tasks to train in the app and the CLI")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print(json.dumps({"error": "chromium is not installed: apt-get install chromium"}))
        return 1
    from playwright.sync_api import sync_playwright

    weights = Path(tempfile.mkdtemp(prefix="bench_app_weights_"))
    env = {
        **os.environ,
        "WORKBENCH_WEIGHTS_DIR": str(weights),
        "WORKBENCH_STARTER_RUNS": "0",  # the app's own starter jobs would compete with the measured ones
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
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(300_000)

        # 1) Cold start: from launching the server to the home page's title in the browser.
        start = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_healthy(server, url, start, limit_s=60, poll_s=0.05)
            results["server_healthy_s"] = time.perf_counter() - start
            page.goto(url)
            page.get_by_role("heading", name="Transformer Workbench").wait_for()
            page.wait_for_function(IDLE)
            results["cold_start_s"] = time.perf_counter() - start
            results["rss_idle_mb"] = tree_rss_mb(server.pid)

            # 2) Page switches: click in the sidebar, wait for the page's own text.
            def switch(title: str) -> float:
                t0 = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
                page.get_by_text(PAGES[title], exact=False).first.wait_for()
                page.wait_for_function(IDLE)
                return time.perf_counter() - t0

            results["first_visit_s"] = {title: switch(title) for title in PAGES}
            results["waited_for_quiet_s"] = [round(wait_quiet(server.pid), 1)]  # the spares, started with the server
            results["page_switch_s"] = {title: switch(title) for title in PAGES}
            results["page_switch_max_s"] = max(results["page_switch_s"].values())

            # 3) Train each task with every default, as a student presses the button; then the CLI.
            switch("Train")
            for task in args.tasks:
                box = page.get_by_label("task", exact=True)
                box.click()
                if not page.get_by_role("option").first.is_visible():
                    box.press("ArrowDown")  # focused but not open (after the page's rerun): open it from the keys
                page.get_by_role("option", name=re.compile(f"^{task}:")).click()
                page.wait_for_function(IDLE)
                name = f"bench-app-{task}"  # a name of our own (the settings stay the defaults)
                field = page.get_by_role("textbox", name="run name (saved among your runs)")
                field.fill(name)
                field.press("Tab")
                page.wait_for_function(IDLE)
                # Both measured alone: the queue's spare workers have started (they import torch after
                # the server starts and again after each job), and the CLI starts once they have.
                results["waited_for_quiet_s"].append(round(wait_quiet(server.pid), 1))
                t0, browser_cpu = time.perf_counter(), chromium_cpu_s()
                page.get_by_role("button", name="Start training").click()
                done = page.get_by_text(f"Saved as {name} among your runs", exact=False)
                try:
                    done.wait_for(timeout=120_000)
                except Exception:
                    page.screenshot(path=f"/tmp/bench_app_{task}_failed.png", full_page=True)
                    raise
                app_s = time.perf_counter() - t0
                found = re.search(r"after (\d+) steps in (\d+) s.*get (\d+)%", done.first.inner_text())
                results[f"{task}_in_app"] = {
                    "seconds": round(app_s, 2),
                    "steps": int(found[1]) if found else None,
                    "training_s": float(found[2]) if found else None,
                    "exact_match": int(found[3]) / 100 if found else None,
                    "solved": bool(found) and int(found[3]) >= 99,
                    "chromium_cpu_s": round(chromium_cpu_s() - browser_cpu, 1),  # drawing the live charts
                }
                results["waited_for_quiet_s"].append(round(wait_quiet(server.pid), 1))
                results[f"{task}_cli"] = cli_train(task, env)
                results[f"{task}_app_over_cli"] = round(app_s / results[f"{task}_cli"]["seconds"], 3)

            # 4) Fine-tune with every default.
            if not args.skip_finetune:
                switch("Fine-tune")
                page.get_by_role("button", name="Fine-tune").wait_for()
                t0 = time.perf_counter()
                page.get_by_role("button", name="Fine-tune").click()
                page.get_by_text("saved among your runs", exact=False).wait_for()
                seconds = time.perf_counter() - t0
                metrics_file = next(weights.glob("_students/*/ft-*/metrics.json"))
                metrics = json.loads(metrics_file.read_text())
                results["finetune_in_app"] = {"seconds": round(seconds, 2), **metrics}
            results["rss_end_mb"] = tree_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(10)
            browser.close()
            shutil.rmtree(weights, ignore_errors=True)

    meets = {
        "cold_start": results["cold_start_s"] <= GOALS["cold_start_s"],
        "page_switch": results["page_switch_max_s"] <= GOALS["page_switch_s"],
    }
    for task in args.tasks:
        app = results[f"{task}_in_app"]
        meets[f"{task}_in_app"] = app["solved"] and app["seconds"] <= GOALS["solved_in_app_s"]
        meets[f"{task}_app_over_cli"] = results[f"{task}_app_over_cli"] <= GOALS["app_over_cli"]
    if "finetune_in_app" in results:
        ft = results["finetune_in_app"]
        meets["finetune"] = (
            ft["after"]["accuracy"] >= GOALS["finetune_accuracy"]
            and ft["after"]["macro_f1"] > ft["before"]["macro_f1"]
            and ft["seconds"] <= GOALS["finetune_s"]
        )
    results["meets"] = meets
    info = machine_info(streamlit=importlib.metadata.version("streamlit"))
    print(json.dumps({"benchmark": "app", "machine": info, "goals": GOALS, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
