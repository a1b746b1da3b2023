"""A class on one server: N simulated students against one real `streamlit run`, doing what a
class does in its first minutes. Prints JSON.

    python bench/bench_classroom.py --students 5 10 30 --client websocket
    python bench/bench_classroom.py --students 5                      # Chromium contexts
    python bench/bench_classroom.py --students 30 --client websocket --image workbench  # the Space's image

Each student is a Chromium context (Playwright) or, with `--client websocket`, a tab that speaks
Streamlit's own websocket protocol without drawing anything (`st_client.py`): the same clicks and
the same texts waited for (`--client mixed` alternates the two; tests/test_classroom.py runs it).
The websocket client measures the server a class shares: a real class's browsers draw on their own
laptops, while N Chromiums here would share the server's two cores.

The teacher opens the app first (the server imports PyTorch once), then each student, started
`--stagger` seconds after the previous one:
  1. opens the app;                                2. looks at a starter run on Inspect;
  3. presses Train with every default;             4. steps through decoding (Next token x3);
  5. opens Fine-tune;                              6. goes back to Train and waits for the run.
Reported: per-interaction latency (p50, p95, max) of everything but the training itself, the time
from each student's click to their trained run, how long jobs waited in the queue (as the Train
page says it), the server's and its workers' peak resident memory, and errors (an exception on a
page, a "busy" refusal, a run missing from its student's folder afterwards).

Goals on 2 cores (issue 13), N = 30: no error, p95 of the non-training interactions <= 2 s while
trainings run, every student's copy run done within 10 minutes, memory <= 4 GB.

`--hostile K` adds a hostile student (issue 20) who, as the class arrives, opens the app K times
without a link (K new student ids, websocket tabs) and presses Start training in each: K jobs
against the class's N. Reported beside the honest students' figures (which stay the students'
only): how many of the hostile ids were made and how many jobs got queued or refused, and how many
of the honest students' runs a quota removed (`honest_runs_removed`, goal 0: a run missing from its
student's folder at the end, or a removal notice there). `--total-quota-mb` sets the server's
WORKBENCH_TOTAL_QUOTA_MB, to make the class's disk the scarce thing.
The starter runs the students look at are made first, shorter than the real ones (`--starter-steps`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_server import CHROMIUM_ARGS, IDLE, free_port, tree_rss_mb, wait_healthy  # noqa: E402
from machine import machine_info  # noqa: E402

from model_zoo.classroom.workspace import STUDENTS  # noqa: E402

GOALS = {"errors": 0, "p95_s": 2.0, "all_trained_within_s": 600.0, "memory_mb": 4096.0, "honest_runs_removed": 0}


WAITED = re.compile(r"waited (\d+) (s|min) in the queue")


def waited_s(text: str) -> float:
    """The queue wait the Train page reports in its "Training finished" line (none shown: 0 s)."""
    found = WAITED.search(text)
    return 0.0 if found is None else float(found[1]) * (60 if found[2] == "min" else 1)


class Student:
    def __init__(self, number: int):
        self.number = number
        self.latencies: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self.trained_s: float | None = None
        self.waited_s: float | None = None
        self.id = ""  # the student id the app gave them (from the link)

    async def timed(self, what: str, action) -> None:
        start = time.perf_counter()
        await action()
        self.latencies.append((what, time.perf_counter() - start))


async def idle(page) -> None:
    await page.wait_for_timeout(150)  # let a run that was just triggered start
    await page.wait_for_function(IDLE)


async def check(page, student: Student, where: str) -> None:
    if await page.locator('[data-testid="stException"]').count():
        student.errors.append(f"{where}: an exception on the page")
    if await page.get_by_text("busy", exact=False).count():
        student.errors.append(f"{where}: told the workbench is busy")


async def go(page, title: str, ready: str) -> None:
    await page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
    await page.get_by_text(ready, exact=False).first.wait_for()
    await idle(page)


async def run_student(browser, url: str, student: Student, steps: int | None) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    page.set_default_timeout(900_000)
    try:

        async def open_app():
            await page.goto(url)
            await page.get_by_role("heading", name="Transformer Workbench").wait_for()
            await page.locator('[data-testid="stSidebar"]').get_by_text("Runs you can open").wait_for()
            await idle(page)

        await student.timed("open the app", open_app)
        student.id = parse_qs(urlparse(page.url).query).get("student", [""])[0]
        await student.timed("Inspect a starter run", lambda: go(page, "Inspect", "parameters ·"))
        await check(page, student, "Inspect")
        await student.timed("open Train", lambda: go(page, "Train", "Start training"))
        if steps:  # the tests' short version
            field = page.get_by_label("steps (at most)", exact=True)
            await field.fill(str(steps))
            await field.press("Tab")
            await idle(page)

        async def press_train():
            await page.get_by_role("button", name="Start training").click()
            await (
                page.get_by_text("is waiting", exact=False)
                .or_(page.get_by_text("is running", exact=False))
                .or_(page.get_by_text("Training finished", exact=False))
                .first.wait_for()
            )

        clicked = time.perf_counter()
        await student.timed("press Start training", press_train)
        await check(page, student, "Train")
        await student.timed("open Step-through", lambda: go(page, "Step-through decoding", "Output so far"))
        for n in range(1, 4):

            async def next_token(n=n):
                await page.get_by_role("button", name="Next token").click()
                await page.get_by_text(f"step {n}: chosen token").wait_for()

            await student.timed("Next token", next_token)
        await check(page, student, "Step-through")
        await student.timed("open Fine-tune", lambda: go(page, "Fine-tune", "1 · Model"))
        await check(page, student, "Fine-tune")
        await student.timed("back to Train", lambda: go(page, "Train", "Start training"))
        finished = page.get_by_text("Training finished", exact=False).first
        await finished.wait_for()
        student.trained_s = time.perf_counter() - clicked
        student.waited_s = waited_s(await finished.inner_text())
        await check(page, student, "Train, at the end")
    except Exception as err:  # a timeout or a page that never came: the student's run failed
        student.errors.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
    finally:
        await context.close()


async def run_student_ws(url: str, student: Student, steps: int | None) -> None:
    """The same student as `run_student`, over Streamlit's websocket protocol (`st_client.py`):
    the same clicks, waiting for the same texts, timed from the click to the end of the run."""
    from st_client import StreamlitTab

    tab = StreamlitTab(url)

    def check_ws(where: str) -> None:
        if tab.exceptions:
            student.errors.append(f"{where}: an exception on the page: {tab.exceptions[-1]}")
            tab.exceptions.clear()
        if tab.has_text("busy"):
            student.errors.append(f"{where}: told the workbench is busy")

    async def go(title: str, ready: str) -> None:
        await tab.goto(title)
        await tab.wait_for_text(ready)

    try:

        async def open_app():
            await tab.open()
            await tab.wait_for_text("Runs you can open")

        await student.timed("open the app", open_app)
        student.id = tab.student
        await student.timed("Inspect a starter run", lambda: go("Inspect", "parameters ·"))
        check_ws("Inspect")
        await student.timed("open Train", lambda: go("Train", "Start training"))
        if steps:  # the tests' short version
            await tab.set_number("steps (at most)", steps)

        async def press_train():
            await tab.click("Start training")
            await tab.wait_for_text("is waiting", "is running", "Training finished")

        clicked = time.perf_counter()
        await student.timed("press Start training", press_train)
        check_ws("Train")
        await student.timed("open Step-through", lambda: go("Step-through decoding", "Output so far"))
        for n in range(1, 4):

            async def next_token(n=n):
                await tab.click("Next token")
                await tab.wait_for_text(f"step {n}: chosen token")

            await student.timed("Next token", next_token)
        check_ws("Step-through")
        await student.timed("open Fine-tune", lambda: go("Fine-tune", "1 · Model"))
        check_ws("Fine-tune")
        await student.timed("back to Train", lambda: go("Train", "Start training"))
        await tab.wait_for_text("Training finished")
        student.trained_s = time.perf_counter() - clicked
        student.waited_s = waited_s(tab.text_with("Training finished"))
        check_ws("Train, at the end")
    except Exception as err:  # a timeout or a page that never came: the student's run failed
        student.errors.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
    finally:
        await tab.close()


async def run_hostile(url: str, ids: int, steps: int | None, hostile: dict) -> None:
    """One hostile student: `ids` tabs opened without a link (a new id each, all at once), each
    pressing Start training and leaving (a job outlives its tab). Counts what the app let through."""
    from st_client import StreamlitTab

    async def one() -> None:
        tab = StreamlitTab(url)
        try:
            await tab.open()
            await tab.wait_for_text("Runs you can open", "Start training", timeout=300)
            await tab.goto("Train")
            await tab.wait_for_text("Start training", timeout=300)
            hostile["ids"].add(tab.student)
            if steps:
                await tab.set_number("steps (at most)", steps)
            await tab.click("Start training")
            queued = any(tab.has_text(t) for t in ("is waiting", "is running", "Training finished"))
            hostile["queued" if queued else "refused"] += 1  # the run after the click is over: what it said
        except Exception as err:  # refused at the door (no page, no button): what the app did
            hostile["refused"] += 1
            hostile["errors"].append(f"{type(err).__name__}: {str(err)[:120]}")
        finally:
            await tab.close()

    await asyncio.gather(*(one() for _ in range(ids)))


def client_of(number: int, client: str) -> str:
    """Which client student `number` uses: all the same, or (client "mixed") browser, websocket, ..."""
    if client == "mixed":
        return "browser" if number % 2 == 0 else "websocket"
    return client


async def classroom(
    url: str, n: int, stagger: float, steps: int | None, client: str, hostile_ids: int = 0, hostile: dict | None = None
) -> list[Student]:
    from playwright.async_api import async_playwright

    students = [Student(i) for i in range(n)]
    async with async_playwright() as p:
        browser = None
        if any(client_of(s.number, client) == "browser" for s in students):
            browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)

        async def later(student: Student):
            await asyncio.sleep(student.number * stagger)
            if client_of(student.number, client) == "browser":
                await run_student(browser, url, student, steps)
            else:
                await run_student_ws(url, student, steps)

        attacks = [run_hostile(url, hostile_ids, steps, hostile)] if hostile_ids else []
        await asyncio.gather(*attacks, *(later(s) for s in students))
        if browser is not None:
            await browser.close()
    return students


async def teacher_opens(url: str) -> float:
    """The teacher opens the app before the class arrives (a Space is started ahead of the lesson):
    the server imports PyTorch once. Returns the seconds until the sidebar lists the runs."""
    from st_client import StreamlitTab

    start = time.perf_counter()
    tab = StreamlitTab(url)
    try:
        await tab.open()
        await tab.wait_for_text("Runs you can open", timeout=300)
    finally:
        await tab.close()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def start_local(weights: Path, port: int, workers: int | None, total_quota_mb: float | None = None) -> subprocess.Popen:
    """`streamlit run` here, on runs in `weights` (the starter runs made by `run`)."""
    env = {**os.environ, **OFFLINE, "WORKBENCH_WEIGHTS_DIR": str(weights), "WORKBENCH_STARTER_RUNS": "0"}
    if total_quota_mb is not None:
        env["WORKBENCH_TOTAL_QUOTA_MB"] = str(total_quota_mb)
    env["TOKENIZERS_PARALLELISM"] = "false"
    if workers:
        env["WORKBENCH_WORKERS"] = str(workers)
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def start_container(image: str, name: str, students: Path, port: int, workers: int | None) -> subprocess.Popen:
    """The Space's image as a Space runs it (its own starter runs, its own command), with the
    students' folder mounted from `students` so that their runs can be counted here."""
    students.chmod(0o777)  # the container runs as user 1000
    env = [f"--env={k}={v}" for k, v in OFFLINE.items()] + ([f"--env=WORKBENCH_WORKERS={workers}"] if workers else [])
    return subprocess.Popen(
        ["docker", "run", "--rm", f"--name={name}", f"--publish=127.0.0.1:{port}:8501", *env,
         f"--volume={students}:/home/user/app/weights/{STUDENTS}", image],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def container_pid(name: str) -> int:
    """The container's first process as this machine sees it (its memory is the server's)."""
    out = subprocess.run(["docker", "inspect", "--format={{.State.Pid}}", name], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def run(
    n: int,
    stagger: float,
    steps: int | None,
    starter_steps: int,
    workers: int | None,
    client: str = "browser",
    image: str | None = None,
    hostile_ids: int = 0,
    total_quota_mb: float | None = None,
    limit_s: float | None = None,
) -> dict:
    """One class against one server. `limit_s` bounds the whole class (a TimeoutError past it, the
    server stopped): a test must fail in its time, not wait out each student's 15-minute waits."""
    from model_zoo.classroom.starter import make_starter_runs

    weights = Path(tempfile.mkdtemp(prefix="bench_classroom_"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = f"bench-classroom-{port}"
    if image:
        (weights / STUDENTS).mkdir()
        server = start_container(image, name, (weights / STUDENTS).resolve(), port, workers)
    else:
        make_starter_runs(weights, names=["copy", "reverse"], train_overrides={"steps": starter_steps})
        server = start_local(weights, port, workers, total_quota_mb)
    peak = {"mb": 0.0}
    done = threading.Event()

    def sample(pid: int) -> None:
        while not done.wait(1.0):
            peak["mb"] = max(peak["mb"], tree_rss_mb(pid))

    start = time.perf_counter()
    try:
        wait_healthy(server, url, start, limit_s=120, poll_s=0.1)
        threading.Thread(target=sample, args=(container_pid(name) if image else server.pid,), daemon=True).start()
        cold_start = asyncio.run(teacher_opens(url))
        hostile = {"ids": set(), "queued": 0, "refused": 0, "errors": []}
        students = asyncio.run(
            asyncio.wait_for(classroom(url, n, stagger, steps, client, hostile_ids, hostile), limit_s)
        )
    finally:
        done.set()
        server.terminate()
        try:
            _, log = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _, log = server.communicate()
        if image:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True)
        if os.environ.get("WORKBENCH_BENCH_LOG"):  # keep the server's log to read what it logged
            Path(os.environ["WORKBENCH_BENCH_LOG"]).write_text(log or "", encoding="utf-8")
    for student in students:  # every student's run is in their own folder
        if not student.errors and not list(weights.glob(f"{STUDENTS}/*/copy-*/model.safetensors")):
            student.errors.append("no trained run on disk")
    honest_ids = {s.id for s in students if s.id}
    runs_on_disk = sum(len(list(weights.glob(f"{STUDENTS}/{i}/copy-*/model.safetensors"))) for i in honest_ids)
    honest_removed = honest_runs_removed(weights, students)
    shutil.rmtree(weights, ignore_errors=True)
    latencies = [s for student in students for _, s in student.latencies]
    trained = [s.trained_s for s in students if s.trained_s is not None]
    waits = [s.waited_s for s in students if s.waited_s is not None]
    by_kind: dict[str, list[float]] = {}
    for student in students:
        for what, seconds in student.latencies:
            by_kind.setdefault(what, []).append(seconds)
    errors = [f"student {s.number}: {e}" for s in students for e in s.errors]
    return {
        "students": n,
        "client": client,
        "server": f"docker image {image}" if image else "streamlit run here",
        "stagger_s": stagger,
        "teacher_opens_the_app_s": round(cold_start, 2),
        "latency_s": {
            "p50": round(statistics.median(latencies), 3) if latencies else None,
            "p95": round(percentile(latencies, 0.95), 3),
            "max": round(max(latencies), 3) if latencies else None,
            "by_interaction_p95": {k: round(percentile(v, 0.95), 3) for k, v in by_kind.items()},
        },
        "trained_s": {
            "first": round(min(trained), 1) if trained else None,
            "median": round(statistics.median(trained), 1) if trained else None,
            "last": round(max(trained), 1) if trained else None,
            "done": len(trained),
        },
        "queue_wait_s": {  # as the Train page reports it (whole seconds, or minutes over 90 s)
            "median": statistics.median(waits) if waits else None,
            "max": max(waits) if waits else None,
        },
        "runs_on_disk": runs_on_disk,  # the honest students'
        "honest_runs_removed": honest_removed,
        "hostile": {
            "ids_asked": hostile_ids,
            "ids_made": len(hostile["ids"] - {""}),
            "jobs_queued": hostile["queued"],
            "jobs_refused": hostile["refused"],
            "examples": hostile["errors"][:3],
        }
        if hostile_ids
        else None,
        "peak_rss_mb": round(peak["mb"], 1),
        "errors": errors,
        "server_log_tracebacks": log.count("Traceback"),
        "server_log_stacks": log.count("Stack (most recent call last)"),  # a warning logged with its stack
        "meets": {
            "no_errors": not errors,
            "p95": percentile(latencies, 0.95) <= GOALS["p95_s"],
            "all_trained_in_time": len(trained) == n and max(trained) <= GOALS["all_trained_within_s"],
            "memory": peak["mb"] <= GOALS["memory_mb"],
            "honest_runs_kept": honest_removed == GOALS["honest_runs_removed"],
        },
    }


def honest_runs_removed(weights: Path, students: list[Student]) -> int:
    """Runs of the honest students a quota removed: a trained run missing from its student's folder,
    or a removal notice there."""
    removed = 0
    for student in students:
        if not student.id:
            continue
        folder = weights / STUDENTS / student.id
        if student.trained_s is not None and not list(folder.glob("copy-*/model.safetensors")):
            removed += 1
        with contextlib.suppress(OSError, ValueError):
            removed += len(json.loads((folder / ".notices.json").read_text()))
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, nargs="+", default=[5], help="class sizes to try, one run each")
    parser.add_argument("--stagger", type=float, default=1.0, help="seconds between two students' arrival")
    parser.add_argument("--steps", type=int, default=None, help="override the training steps (default: the task's)")
    parser.add_argument("--starter-steps", type=int, default=300, help="steps of the two starter runs made first")
    parser.add_argument("--workers", type=int, default=None, help="WORKBENCH_WORKERS for the server")
    parser.add_argument(
        "--hostile",
        type=int,
        default=0,
        metavar="K",
        help="add a hostile student who makes K ids and presses Start training in each",
    )
    parser.add_argument("--total-quota-mb", type=float, default=None,
                        help="WORKBENCH_TOTAL_QUOTA_MB for the server (a local one)")  # fmt: skip
    parser.add_argument(
        "--client", default="browser",
        choices=["browser", "websocket", "mixed"],
        help="each student a Chromium context, or Streamlit's websocket protocol (st_client.py; no "
        "rendering: a class's browsers run on their own laptops), or the two in turn",
    )  # fmt: skip
    parser.add_argument(
        "--image", default=None,
        help="run the server from this Docker image (bench/docker_offline.sh builds it) instead of here; "
        "its own starter runs, the students' folder mounted to count their runs",
    )  # fmt: skip
    args = parser.parse_args()
    if args.client != "websocket" and shutil.which("chromium") is None:
        print(json.dumps({"error": "chromium is not installed: apt-get install chromium"}))
        return 1
    results = [
        run(
            n,
            args.stagger,
            args.steps,
            args.starter_steps,
            args.workers,
            args.client,
            args.image,
            args.hostile,
            args.total_quota_mb,
        )
        for n in args.students
    ]
    print(json.dumps({"benchmark": "classroom", "machine": machine_info(), "goals": GOALS, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
