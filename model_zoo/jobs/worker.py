"""One worker process: `python -m model_zoo.jobs.worker`, started by the queue ahead of time.

It imports torch and the library and warms them up (seconds), says "ready", waits for one
`JobSpec`, runs it, and exits: a fresh process for every job, so a job's memory goes back to the
machine when it ends and a job the kernel kills takes nothing else with it. Started as a program
of its own (not forked from the Streamlit server, whose threads and `__main__` a child must not
inherit).

A worker runs at a lower CPU priority than the server (`NICENESS`): on a 2-core Space the
trainings take whatever CPU the pages leave, so clicks stay quick while a class trains.

Messages are pickled over the process's stdin (from the queue: the spec, then perhaps "stop")
and its original stdout (to the queue: "ready", ("metrics", dict)..., then ("done", summary) or
("failed", message)); anything the libraries print goes to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
from multiprocessing.connection import Connection

NICENESS = 10  # below the server: a student's click is answered before a training's next step


def main() -> int:
    os.nice(NICENESS)
    reports = Connection(os.dup(sys.stdout.fileno()), readable=False)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the messages
    orders = Connection(os.dup(sys.stdin.fileno()), writable=False)

    from model_zoo.jobs.work import run_job, warm_up  # torch and the library; Hugging Face loads with its job

    warm_up()
    reports.send("ready")
    try:
        spec, threads = orders.recv()
    except EOFError:  # the queue went away before giving us work
        return 0
    stop = threading.Event()

    def listen() -> None:
        try:
            while orders.recv() != "stop":
                pass
        except (EOFError, OSError):  # the server is gone: nobody will read our results
            os._exit(1)
        stop.set()

    threading.Thread(target=listen, name="workbench-orders", daemon=True).start()
    run_job(spec, reports, stop, threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
