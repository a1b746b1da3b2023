"""What the browser benchmarks share (bench_app.py, bench_classroom.py): Chromium's flags, the
"page has finished its run" test, a free port, waiting for a started server, and its memory."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
IDLE = (  # true once Streamlit has finished running the page's script
    "() => document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state') === 'notRunning'"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(server: subprocess.Popen, url: str, start: float, limit_s: float, poll_s: float) -> None:
    """Wait until the Streamlit `server` started at `start` answers its health check."""
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                return
        except OSError:
            if server.poll() is not None or time.perf_counter() - start > limit_s:
                raise RuntimeError("streamlit did not start") from None
            time.sleep(poll_s)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the server and the job queue's workers)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its living children."""
    import psutil

    try:
        process = psutil.Process(pid)
        times = [p.cpu_times() for p in [process, *process.children(recursive=True)]]
    except psutil.Error:
        return 0.0
    return sum(t.user + t.system for t in times)


def wait_quiet(pid: int, share: float = 0.05, window_s: float = 0.5, limit_s: float = 60.0) -> float:
    """Wait until a process and its children (the server and the queue's workers) use less than
    `share` of a core over `window_s`: the spare workers the queue starts after a job (each imports
    torch, seconds of CPU) are ready. Returns the seconds waited; at most `limit_s`."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        before = tree_cpu_s(pid)
        time.sleep(window_s)
        if tree_cpu_s(pid) - before < share * window_s:
            break
    return time.perf_counter() - start
