"""The sidebar every page shares: the device, the job queue, the example runs being made, and the
runs this student can open."""

from __future__ import annotations

import streamlit as st

from model_zoo.utils import error_message
from pages.ui.admission import student
from pages.ui.jobs import LIVE_EVERY_S, STARTER_OWNER, job_queue, my_jobs, show_notices
from pages.ui.runs import visible_runs


def starter_runs_line(jobs) -> str | None:
    """The sidebar's line about the example runs still being made (None once every one ended)."""
    starting = [j for j in jobs if j.owner.startswith(STARTER_OWNER) and j.active]
    if not starting:
        return None
    return f"Example runs being made: {', '.join(j.name for j in starting)} (they appear below when ready)."


def _starter_runs() -> None:
    """The starter-run line, read from the queue at every redraw; when the runs it named are ready,
    the whole page reruns so that the list of runs shows them, without a reload."""
    line = starter_runs_line(job_queue().jobs())
    if line:
        st.caption(line)
        st.session_state["_starter_runs_shown"] = True
    elif st.session_state.pop("_starter_runs_shown", False):
        st.rerun()


def sidebar() -> None:
    """The device, the job queue, and the runs this student can open (damaged ones marked). Never
    raises: a damaged run or folder must not take every page down."""
    from model_zoo.distributed import device_description

    try:
        show_notices()
        counts = job_queue().counts()
        st.caption(
            f"Runs on **{device_description()}** · jobs running: {counts['running']}, waiting: {counts['queued']}"
        )
        starting = starter_runs_line(job_queue().jobs())
        # While they are made, the line redraws itself (and the whole page once they are ready).
        st.fragment(run_every=LIVE_EVERY_S if starting else None)(_starter_runs)()
        mine = [j for j in my_jobs() if j.active]
        if mine:
            st.markdown("**Your jobs**: " + ", ".join(f"`{j.name}` ({j.status})" for j in mine))
        runs = visible_runs()
    except Exception as err:  # the sidebar is drawn on every page: it must never take one down
        st.caption(f"The list of runs is unavailable right now ({error_message(err)}).")
        return
    st.markdown(f"**Runs you can open** ({len(runs)})")
    if not runs:
        st.caption("None yet: a run you train is saved for you.")
        return
    lines = []
    for choice in runs[:30]:
        info = choice.info
        if not info.readable:
            lines.append(f"- `{info.name}` · {choice.place} · **unreadable**: {info.error}")
            continue
        metric = info.metrics.get("exact_match", info.metrics.get("accuracy"))
        heldout = info.metrics.get("heldout_loss")  # a language model's: it has no answers to score
        if isinstance(metric, int | float):
            detail = f"{metric:.0%}"
        elif isinstance(heldout, int | float):
            detail = f"held-out loss {heldout:.2f}"
        else:
            detail = info.task or ""
        lines.append(f"- `{info.name}` · {choice.place} · {info.kind} · {detail}")
    st.markdown("\n".join(lines) + ("\n- …" if len(runs) > 30 else ""))
    st.caption(f"Your workspace: `{student()}` — bookmark this page's link to come back to your runs.")
