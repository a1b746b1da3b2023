"""Streamlit pieces the pages share: who the student is, the runs they may open (pickers, the
sidebar), cached loaders, error display, and the panel of a queued job. UI only; computations live
in `model_zoo`."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from model_zoo.run_folder import weights_root
from model_zoo.utils import error_message

APP_FLAG = "workbench_navigation"  # set by streamlit_app.py before it runs a page


def ensure_app() -> None:
    """Run this page inside `streamlit_app.py`'s navigation (sidebar, device, error guard).

    Until `st.navigation` has been called once in the server process, Streamlit serves a `pages/`
    folder the legacy way: a deep link such as `/train` on a fresh server runs the page alone.
    Such a visit is sent through the app once; from then on the navigation owns every URL. Then
    the class's admission has its say (`admission_notice`).
    """
    if not st.session_state.get(APP_FLAG):
        st.switch_page("streamlit_app.py")
    admission_notice()


def keep_choices(prefix: str) -> None:
    """Keep this page's choices (widgets whose keys start with `prefix`) when the student visits
    another page and comes back: Streamlit forgets a widget's value once a run does not draw it."""
    kept = st.session_state.setdefault("workbench_kept_choices", {})
    for key, value in kept.items():
        if key.startswith(prefix) and key not in st.session_state:
            st.session_state[key] = value
    for key in list(st.session_state):
        if isinstance(key, str) and key.startswith(prefix) and not key.endswith(_NOT_KEPT):
            kept[key] = st.session_state[key]


# Buttons (a chart's download buttons end in _png, _svg, _csv) and uploads cannot be set back; a
# page's one-run flags ("make a new name next run", "was the job active") must not come back either:
# a kept `train_new_name` renamed every run after the first.
_NOT_KEPT = ("_start", "_stop", "_decode", "_upload", "_button", "_png", "_svg", "_csv", "_new_name", "_was_active", "_status")  # fmt: skip


def default_of(function, parameter: str):
    """The library's default for `parameter` of `function`, so a page never types it again."""
    return inspect.signature(function).parameters[parameter].default


def change_colour(change: float, decimals: int) -> str:
    """`st.metric`'s delta_color for a change shown to `decimals` places: one that rounds to zero is
    grey, not a green gain."""
    return "normal" if round(change, decimals) else "off"


def show_error(err: BaseException, what_to_do: str = "") -> None:
    """An `st.error` with the library's message (never a traceback)."""
    st.error(error_message(err) + (f" {what_to_do}" if what_to_do else ""))


# -- who is this, and which runs may they open ----------------------------------------------------
STUDENT_PARAM = "student"  # the URL keeps the student's id, so the same link brings their runs back


def student() -> str:
    """This browser session's student id: from the link (`?student=s-…`) when it has a valid one,
    else a new one, written into the link so that reopening it brings the same runs and jobs back.
    New ids are limited per client address (`classroom.admission.NewIdLimiter`): past the limit the
    page says why and what to do, and stops."""
    from model_zoo.classroom.workspace import check_student_id, new_student_id

    if "workbench_student" not in st.session_state:
        given = st.query_params.get(STUDENT_PARAM, "")
        try:
            st.session_state["workbench_student"] = check_student_id(given)
        except ValueError:
            address = st.context.ip_address
            if not new_ids().allow(address):
                st.error(new_ids().refusal(address))
                st.stop()
            st.session_state["workbench_student"] = new_student_id()
    mine = st.session_state["workbench_student"]
    if st.query_params.get(STUDENT_PARAM) != mine:
        st.query_params[STUDENT_PARAM] = mine
    return mine


@st.cache_resource(show_spinner=False)
def new_ids():
    """The server's one count of new student ids per client address."""
    from model_zoo.classroom.admission import NewIdLimiter

    return NewIdLimiter()


@st.cache_resource(show_spinner=False)
def teacher_guard():
    """The server's one count of wrong teacher passphrases per client address."""
    from model_zoo.classroom.admission import PassphraseGuard

    return PassphraseGuard()


def admission_notice() -> None:
    """In roster mode, tell a student whose link is not on the class's list that they may look
    around but not train (`classroom.admission.queue_refusal`)."""
    from model_zoo.classroom.admission import queue_refusal

    refusal = queue_refusal(student(), weights_root())
    if refusal and not st.session_state.get("teacher_signed_in"):  # the teacher makes a link for themselves
        st.info(refusal, icon=":material/badge:")


def workspace():
    """The runs this student may open and the one folder they may write (`classroom.workspace`)."""
    from model_zoo.classroom.workspace import Workspace

    return Workspace.of(student(), weights_root())


def open_run(name_or_path: str | Path) -> Path:
    """The folder of a run this student may open (`Workspace.open_run`, the app's one gate): every
    link, picker and loader of the pages opens runs through it. Raises `RunNotVisible` (an OSError)
    otherwise."""
    return workspace().open_run(name_or_path)


def _mtime(path: Path) -> float:
    try:
        return max((p.stat().st_mtime for p in path.iterdir() if p.is_file()), default=0.0) if path.is_dir() else 0.0
    except OSError:
        return 0.0


@st.cache_data(show_spinner=False, max_entries=2048)
def _problem(path: str, mtime: float) -> str | None:
    """What is wrong with a run folder (None: nothing), once per version of its files."""
    from model_zoo.toy.runs import check_run

    return check_run(path)


def _check(path: Path) -> str | None:
    return _problem(str(path), _mtime(path))


@dataclass
class RunChoice:
    """A run a picker can offer: where it lives, what kind it is, and whether it can be read."""

    label: str  # as the picker shows it: "copy-1127 (yours)"
    place: str  # "yours", "example", "class" or "saved"
    info: object  # run_folder.RunInfo

    @property
    def path(self) -> Path:
        return self.info.path


def visible_runs(kind: str | None = None) -> list[RunChoice]:
    """The runs this student may open (theirs, the examples, the class's, the command line's),
    optionally of one kind ("scratch" or "finetune"); damaged ones carry their `info.error`.
    Never raises: a folder that cannot be listed is left out."""
    choices = []
    try:
        found = workspace().runs(check=_check)
    except OSError:
        return []
    for place, info in found:
        if kind is None or info.kind == kind:
            choices.append(RunChoice(f"{info.name} ({place.label})", place.label, info))
    return choices


@st.cache_resource(show_spinner="Loading the run…", max_entries=16)
def _load_scratch_run(path: str, mtime: float):
    """One copy per process of each saved run (keyed by its files' time: a re-saved run reloads).
    Shared between sessions, so pages only read it (decode, inspect), never train it."""
    from model_zoo.toy.runs import load_run

    return load_run(path)


def load_scratch_run(path: str | Path):
    path = open_run(path)
    return _load_scratch_run(str(path), _mtime(path))


@dataclass
class PickedModel:
    label: str  # what the picker showed
    run: object  # runs.Run: model, vocab, history, task ...


def _pick(choices: list[RunChoice], label: str, key: str, start_at: int = 0) -> RunChoice:
    """A select box of runs, first on the `start_at`-th; a damaged one is offered with its reason,
    so it is never a mystery."""
    shown = {(c.label if c.info.readable else f"{c.label} — unreadable"): c for c in choices}
    index = min(start_at, len(shown) - 1)
    return shown[st.selectbox(label, list(shown), index=index, key=key)]


def scratch_model_picker(
    key: str, label: str = "Model", required: bool = True, start_at: int = 0
) -> PickedModel | None:
    """A select box of the scratch runs this student may open (theirs first, then the examples),
    first on the `start_at`-th. Returns the chosen run loaded, or (when `required`) stops the page
    with a hint when there is none or it cannot be read."""
    choices = visible_runs("scratch")
    if not choices:
        if required:
            st.info(
                "No trained model yet: train one on the **Train** page (the copy task takes seconds), then come back."
            )
            st.stop()
        return None
    choice = _pick(choices, label, key, start_at)
    try:
        if not choice.info.readable:
            raise ValueError(f"The run {choice.info.name!r} cannot be read: {choice.info.error}.")
        return PickedModel(choice.label, load_scratch_run(choice.path))
    except (ValueError, FileNotFoundError, OSError) as err:
        show_error(err, "Pick another run, or train this one again.")
        if required:
            st.stop()
        return None


def example_text(run) -> str:
    """The run's own example input: one of its task's held-out sources (`Task.example`), so it is
    always in the run's vocabulary. A run that does not record its task: a few of its symbols."""
    if run.vocab.tokenizer == "chars":  # a character-level language model (Hamlet): a prompt to continue
        return "HAMLET\nTo be, or not to be"
    if run.task:
        with contextlib.suppress(ValueError, FileNotFoundError, OSError):
            return _task_example(json.dumps(run.task, sort_keys=True))
    symbols = run.vocab.symbols
    return " ".join(symbols[i] for i in (2, 4, 6, 8) if i < len(symbols)) or " ".join(symbols[:3])


@st.cache_data(show_spinner=False, max_entries=64)
def _task_example(task: str) -> str:  # the English task reads every review: once per task
    from model_zoo.toy.tasks import task_from_dict

    return task_from_dict(json.loads(task)).example()


def seed_example(key: str, run) -> None:
    """Put `run`'s own example (`example_text`) in the text box with key `key` when the box is new
    or another run was picked since it was filled, so a decode box always holds an input of the run
    being decoded. Text the student typed (or a link opened) for this run stays. Call it before the
    box is drawn, and draw the box without `value=`."""
    marker = f"{key}__example_of"  # which run the box's text was seeded for
    seeded_for = st.session_state.get(marker)
    if key not in st.session_state or (seeded_for is not None and seeded_for != str(run.path)):
        st.session_state[key] = example_text(run)
    st.session_state[marker] = str(run.path)


# -- jobs: training and fine-tuning in the queue ---------------------------------------------------
def tidy_after_job(job) -> None:
    """After a job that ran (the queue calls it outside its lock, before the job shows as ended):
    tidy what a worker killed mid-save left beside the run (its writer is dead), then keep a
    student's runs within the disk quotas; a removed run is also a notice for its owner."""
    from model_zoo.classroom.workspace import STUDENTS, enforce_quotas
    from model_zoo.run_folder import clean_leftovers

    if not job.spec.out:
        return
    clean_leftovers(Path(job.spec.out).parent)
    if Path(job.spec.out).parent.parent.name == STUDENTS:
        notes = enforce_quotas(weights_root(), job.owner, keep=job.spec.out)
        if notes and isinstance(job.result, dict):
            job.result["notes"] = notes


@st.cache_resource(show_spinner=False)
def job_queue():
    """The server's one job queue (`model_zoo.jobs.queue`): every session's trainings, at most one
    per core at once, the rest waiting in order."""
    from model_zoo.jobs.queue import JobQueue

    queue = _class_queue(JobQueue)(on_finish=tidy_after_job)
    queue.warm_up()
    if os.environ.get("WORKBENCH_STARTER_RUNS", "1") != "0":  # the examples a class opens in its first minute
        from model_zoo.classroom.starter import starter_specs

        for spec in starter_specs(weights_root()):
            with contextlib.suppress(Exception):  # another server on this folder may be making it
                queue.submit(f"{STARTER_OWNER}{spec.name}", spec)
    return queue


STARTER_OWNER = "examples:"  # the queue's owner of the starter runs' jobs


def _class_queue(base):
    """The queue class of the app: `base` (the library's `JobQueue`) that first asks the class's
    admission whether the owner may queue (roster mode: only the teacher's links), with the reason
    as its `Busy` message."""
    from model_zoo.classroom.admission import queue_refusal
    from model_zoo.jobs.queue import Busy

    class ClassQueue(base):
        def submit(self, owner: str, spec):
            refusal = None if owner.startswith(STARTER_OWNER) else queue_refusal(owner, weights_root())
            if refusal:
                raise Busy(refusal)
            return super().submit(owner, spec)

    return ClassQueue


def submit_job(spec):
    """Queue `spec` for this student once the run it saves fits in the disk quotas: raises
    `workspace.NoRoom` (why, and what to delete) before anything runs, or the queue's `Busy`."""
    from model_zoo.classroom.workspace import check_room, expected_run_mb

    check_room(weights_root(), student(), expected_run_mb(spec))
    return job_queue().submit(student(), spec)


def show_notices() -> None:
    """What happened to this student's runs since they last looked (a disk quota removed one):
    what, when and why, each shown once."""
    import time

    from model_zoo.classroom.workspace import take_notices

    for notice in take_notices(weights_root(), student()):
        when = time.strftime("%d %b %H:%M UTC", time.gmtime(notice["when"]))
        st.warning(f"Your run **{notice['run']}** was removed on {when}: {notice['why']}.")


LIVE_EVERY_S = 2.0  # how often a running job's panel redraws: each redraw costs the server and the browser
# A waiting job's place changes slowly: its panel redraws every 2 s when it starts soon (a job that
# a free worker takes at once shows as running 2 s later, not 5), up to every 20 s when it starts in
# minutes (a sixth of the wait). Thirty waiting panels at 5 s were six reruns a second on a class's
# server.
WAITING_AT_MOST_EVERY_S = 20.0


def refresh_every(job, queue=None) -> float | None:
    """How often the panel of `job` redraws: often while it runs or is about to, less while it
    waits (the longer the wait, the less), not once it ended. `queue`: the app's unless given."""
    if job is None or not job.active:
        return None
    if job.status != "queued":
        return LIVE_EVERY_S
    wait = (queue or job_queue()).expected_start(job)
    return min(WAITING_AT_MOST_EVERY_S, max(LIVE_EVERY_S, wait / 6))


def my_jobs(kind: str | None = None) -> list:
    """This student's jobs (of one kind), oldest first: they outlive the tab that started them."""
    return [j for j in job_queue().jobs(student()) if kind is None or j.spec.kind == kind]


def job_panel(job, key: str, charts=None) -> None:
    """Where a job stands: its place in the queue and expected start, or its progress and live
    charts (`charts(metrics)` draws them), with a button to cancel or stop it; then how it ended."""
    queue = job_queue()
    was = st.session_state.get(f"{key}_status")
    st.session_state[f"{key}_status"] = job.status
    if was == "queued" and job.status == "running":
        st.rerun()  # the whole page: its panel now redraws at a running job's rate
    if job.status == "queued":
        wait = queue.expected_start(job)
        place = queue.position(job)
        st.info(
            f"**{job.name}** is waiting: {_ordinal(place)} in line, "
            f"starting in about {duration(wait)} ({queue.workers} jobs run at once on this server)."
        )
    elif job.active:
        last = next((m for m in reversed(job.metrics) if "step" in m), {})
        text = f"**{job.name}** is running: step {last.get('step', 0)} of {last.get('total_steps') or job.spec.total_steps}"
        if job.measured_pace() is not None:  # its own pace, measured on this machine as busy as it is
            text += f", about {duration(queue.remaining(job))} left"
        st.progress(job.progress(), text=text)
    if job.active:
        verb = "Cancel" if job.status == "queued" else "Stop"
        if st.button(verb, key=f"{key}_stop", help="A waiting job leaves the queue; a running one stops after its "
                     "current step and keeps what it has learned so far."):  # fmt: skip
            queue.cancel(job)
            st.toast("Stopping after this step…" if verb == "Stop" else "Taken out of the queue.")
    if charts is not None and job.metrics:
        charts(job.metrics)
    if job.status == "failed":
        st.error(f"**{job.name}** stopped with an error: {job.error}")
    elif job.status == "cancelled":
        st.warning(f"**{job.name}** was cancelled before it started.")
    for note in (job.result or {}).get("notes", []) if isinstance(job.result, dict) else []:
        st.warning(note)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"


@st.cache_resource(show_spinner="Preparing the task's data…", max_entries=8)
def cached_task(name: str, **kwargs):
    """One task object per (name, settings) per process: the English task reads 10k sentences.
    Tasks only hand out batches from a caller's generator, so sessions can share them."""
    from model_zoo.toy.tasks import make_task

    return make_task(name, **kwargs)


def live_training_charts(
    history: list[dict],
    metrics=("loss", "token_accuracy", "lr", "grad_norm"),
    key: str = "",
    vocab_size: int | None = None,
    n_symbols: int | None = None,
    unit: str = "tokens",
) -> None:
    """Two charts a row of the metrics so far (`charts.live_metric_spec`, the rows beside it), each at
    least 200 px tall with its computed "what to look for" line. `vocab_size` / `n_symbols` / `unit`
    let the loss be read against a uniform guess (`captions.metric_caption`)."""
    from model_zoo.views.captions import metric_caption
    from model_zoo.views.charts import live_metric_spec
    from model_zoo.views.dynamics import metric_frame

    if not history:
        st.caption("Waiting for the first step…")
        return
    frame = metric_frame(history, metrics)
    present = [m for m in metrics if m in set(frame["metric"])]
    for i in range(0, len(present), 2):
        cols = st.columns(2)
        for col, metric in zip(cols, present[i : i + 2], strict=False):
            rows = frame.loc[frame["metric"] == metric, ["step", "value"]]
            log = None if bool((rows["value"] > 0).all()) else False  # a log scale needs positive values
            col.vega_lite_chart(rows, live_metric_spec(metric, log), key=f"{key}_{metric}_{i}" if key else None)
            col.caption(f"**What to look for:** {metric_caption(history, metric, vocab_size, n_symbols, unit)}")


@st.cache_resource(show_spinner="Loading the fine-tuned model…", max_entries=6)
def _load_finetuned(path: str, mtime: float, before: bool = False):
    from model_zoo.hf.inference import load_before, load_finetuned

    return load_before(path) if before else load_finetuned(path)


def load_finetuned_run(path: str | Path, before: bool = False):
    """A saved fine-tuning run as an `inference.FinetunedModel` (eager attention), once per process.
    `before=True`: its pretrained base with the same fresh head, as training started."""
    path = open_run(path)
    return _load_finetuned(str(path), _mtime(path), before)


def finetune_run_picker(key: str, label: str = "Fine-tuning run", task: str | None = None):
    """A select box of the fine-tuning runs this student may open (optionally only
    "classification" or "text2text" ones); returns the chosen run's folder, or None when there is
    none. A damaged run is offered with its reason and returns None with the reason shown."""
    from model_zoo.hf.finetune import load_run_info

    found = []
    for choice in visible_runs("finetune"):
        try:
            kind = load_run_info(choice.path).get("task") or "classification" if choice.info.readable else None
        except (ValueError, FileNotFoundError, OSError):
            kind = None
        if task is None or kind in (task, None):
            found.append(choice)
    if not found:
        return None
    choice = _pick(found, label, key)
    if not choice.info.readable:
        st.error(f"The run {choice.info.name!r} cannot be read: {choice.info.error}. Pick another run.")
        return None
    try:
        return open_run(choice.path)
    except OSError as err:
        show_error(err)
        return None


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
        detail = f"{metric:.0%}" if isinstance(metric, int | float) else (info.task or "")
        lines.append(f"- `{info.name}` · {choice.place} · {info.kind} · {detail}")
    st.markdown("\n".join(lines) + ("\n- …" if len(runs) > 30 else ""))
    st.caption(f"Your workspace: `{student()}` — bookmark this page's link to come back to your runs.")


def fixed_size(chart):
    """Draw an altair chart at the size it declares for its plot (a heatmap's cells), axes and
    legend around it. Streamlit's default ("fit") squeezes axes and legend into that size, which
    leaves a small heatmap no room at all."""
    import altair as alt

    return chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))


# -- insights: figures that leave the app --------------------------------------------------------------
def download_figure(chart, frame, name: str, key: str, where=None) -> None:
    """PNG, SVG and CSV download buttons for a chart and its table, in one row under it. The files
    are made when a button is pressed (`model_zoo.views.export`), not on every rerun."""

    from model_zoo.views.export import chart_to_png, chart_to_svg, frame_to_csv

    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "figure"
    row = (where or st).container(horizontal=True, gap="small")
    common = dict(on_click="ignore", type="tertiary", icon=":material/download:")
    row.download_button("PNG", lambda: chart_to_png(chart), f"{stem}.png", "image/png", key=f"{key}_png", **common)
    row.download_button("SVG", lambda: chart_to_svg(chart), f"{stem}.svg", "image/svg+xml", key=f"{key}_svg", **common)
    if frame is not None:
        row.download_button("CSV", lambda: frame_to_csv(frame), f"{stem}.csv", "text/csv", key=f"{key}_csv", **common)


def chart_with_download(chart, frame, name: str, key: str, where=None, fixed: bool = False) -> None:
    """Draw an altair chart (at its declared size when `fixed`), the download buttons under it."""
    where = where or st
    if fixed:
        where.altair_chart(fixed_size(chart), width="content")
    else:
        where.altair_chart(chart)
    download_figure(chart, frame, name, key, where)


# -- insights: a link that opens the same view -------------------------------------------------------
VIEW_PARAMS = ("tab", "run", "text", "kind", "layer", "head", "step")  # the only things a generated link holds
_URL_WRITTEN = "workbench_url_view"  # {page: the view parameters this session last wrote into the URL}
_PLACE_SUFFIX = re.compile(r" \((yours|example|class|saved)\)( — unreadable)?$")  # how run pickers label runs
MEAN_OF_HEADS = "mean of heads"  # the head pickers' option for the heads' mean


def _widget_value(param: str, text: str):
    """A URL parameter's text as the widget's value (ValueError when it cannot be one; `RunNotVisible`
    when the link's run is not one this student may open)."""
    if param == "run":  # the picker's label of the run this student can open under that name (theirs first)
        path = open_run(text)
        label = next((c.label for c in visible_runs("scratch") if c.path.resolve() == path), None)
        if label is None:
            raise ValueError(f"{text!r} is not a scratch run")
        return label
    if param in ("layer", "step"):
        return int(text)
    if param == "head":
        return MEAN_OF_HEADS if text == "mean" else int(text)
    return text


def _param_text(param: str, value) -> str:
    """A widget's value as the URL shows it: run names without the picker's suffix, "mean" for the mean."""
    if param == "run":
        return _PLACE_SUFFIX.sub("", str(value))
    if param == "head" and value == MEAN_OF_HEADS:
        return "mean"
    return str(value)


def view_from_url(page: str, widgets: dict[str, str | list[str]]) -> None:
    """Open the view a link describes: call at the top of a page, before its widgets. `widgets` maps
    each URL parameter (one of VIEW_PARAMS) to the widget key(s) it sets. A parameter only counts
    when the URL changed since this session last wrote it (a link was opened, or edited by hand);
    values a widget cannot take are left to the widget, which then shows its default."""
    params = {p: st.query_params[p] for p in widgets if p in st.query_params}
    if not params or params == st.session_state.get(_URL_WRITTEN, {}).get(page):
        return
    from model_zoo.classroom.workspace import RunNotVisible

    for param, text in params.items():
        try:
            value = _widget_value(param, text)
        except RunNotVisible:
            _refuse_link(page, widgets, text)
        except ValueError:
            continue  # "layer=one": ignored, the widget keeps its default
        for key in [widgets[param]] if isinstance(widgets[param], str) else widgets[param]:
            st.session_state[key] = value


def _refuse_link(page: str, widgets: dict[str, str | list[str]], run: str) -> None:
    """A link to a run this student may not open: say so and open nothing else (the page stops, the
    address keeps the link) until the student chooses to open the page without it."""
    from model_zoo.run_folder import check_run_name

    try:
        shown = f"`{check_run_name(run)}`"  # a run name is plain text; anything else is not echoed
    except ValueError:
        shown = "it names"
    st.warning(
        f"This link opens the run {shown}, which is not one you can open: it may be another student's "
        "(each student's runs are their own), or it was removed. Nothing else was opened in its place. "
        "Ask whoever sent the link to publish the run to the class, or open this page with your own runs.",
        icon=":material/lock:",
    )
    if st.button("Open this page with my own runs", key=f"{page}_refused_link_button"):
        for param in widgets:
            if param in st.query_params:
                del st.query_params[param]
        st.rerun()
    st.stop()


_PAGE_PATHS = {p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_")}  # their URL paths


def app_url() -> str:
    """The app's address as the browser sees it ("https://host/base"), so a link can be pasted
    anywhere; from the Host header when the browser did not say, "http://localhost:PORT" at last."""
    url = (st.context.url or "").rstrip("/")
    if url:
        # Streamlit leaves the page in it when the navigation is ours (seen on 1.67: ".../teacher")
        base, _, last = url.rpartition("/")
        return base if last in _PAGE_PATHS and "://" in base else url
    host = st.context.headers.get("Host") if st.context.headers else None
    if host:
        return f"http://{host}"
    return f"http://localhost:{st.get_option('server.port')}"


def view_to_url(page: str, widgets: dict[str, str | list[str]]) -> str:
    """Write the page's current choices into the URL (call at the end of the page) and return the
    link to this view. Only the view parameters are written or removed; any other parameter of
    the URL is left alone and never copied into the returned link, which is whole (the app's address,
    the page, the view) so it can be pasted into a slide. With several widget keys, the first one's
    value counts."""
    view = {}
    for param, keys in widgets.items():
        if param not in VIEW_PARAMS:
            raise ValueError(f"{param!r} is not a view parameter ({VIEW_PARAMS}): it must not go into a link.")
        key = keys if isinstance(keys, str) else keys[0]
        if st.session_state.get(key) is not None:
            view[param] = _param_text(param, st.session_state[key])
    for param in widgets:
        if param in view:
            if st.query_params.get(param) != view[param]:
                st.query_params[param] = view[param]
        elif param in st.query_params:
            del st.query_params[param]
    st.session_state.setdefault(_URL_WRITTEN, {})[page] = view
    from urllib.parse import urlencode

    return f"{app_url()}/{page}?{urlencode(view)}"


# -- insights: attention forming during training -------------------------------------------------------
def attention_over_training(run, key: str) -> None:
    """The probe's attention at each evaluation of a run's training (`attention_snapshots.safetensors`):
    a step slider tied to the loss curve, the snap step marked, and the map at the chosen step.
    For the Train and Inspect pages; `run` is a `runs.Run`."""
    from model_zoo.toy.runs import load_attention_snapshots
    from model_zoo.views import attention, charts, dynamics

    try:
        snapshots = load_attention_snapshots(run.path)
        lm = snapshots is not None and not snapshots.source_ids  # a language model: no source to align with
        shares = attention.alignment_shares(snapshots) if snapshots is not None and not lm else None
    except ValueError as err:
        show_error(err)
        return
    if snapshots is None or not snapshots.steps:
        st.info(
            "This run has no attention snapshots (it was trained before they were recorded). "
            "Train it again: every evaluation keeps the attention of one held-out example."
        )
        return
    snap = None if lm else attention.snap_step(shares)
    steps = snapshots.steps
    n_source = len(snapshots.source_ids)
    if lm:
        st.markdown(
            "A language model has no source to align with: here is its causal self-attention on one held-out "
            "window at each evaluation (each character sees only the ones before it)."
        )
    elif snap is None:
        st.markdown(
            f"No cross-attention head has put {attention.SNAP_THRESHOLD:.0%} of its weight on the right source "
            f"token yet (uniform attention gives about {1 / n_source:.0%}): the attention has **not snapped**."
        )
    else:
        st.markdown(
            f"The attention **snapped at step {snap.step}**: the first evaluation at which a cross-attention head "
            f"(layer {snap.layer}, head {snap.head}) put {snap.share:.0%} of its weight on the source token each "
            f"output position must write (threshold {snap.threshold:.0%}; uniform attention gives about "
            f"{1 / n_source:.0%})."
        )
    step_key = f"{key}_step"
    if st.session_state.get(step_key) not in steps:
        st.session_state[step_key] = snap.step if snap is not None else steps[-1]
    step = st.select_slider(
        "training step", steps, key=step_key, help="The snapshots are taken at every evaluation (eval_every)."
    )
    loss = dynamics.metric_frame(run.history, ["loss"]) if run.history else None
    if loss is not None and not loss.empty and shares is not None:
        chart_with_download(
            charts.training_snapshot_chart(loss, shares, step, snap),
            shares,
            f"{run.name}-attention-over-training",
            f"{key}_curve",
        )
    view = attention.snapshot_attention(snapshots, run.vocab, step)
    c1, c2, c3 = st.columns(3)
    kinds = attention.available_kinds(view.attentions)
    kind_key, layer_key, head_key = f"{key}_kind", f"{key}_layer", f"{key}_head"
    if snap is not None and kind_key not in st.session_state:
        st.session_state.update({kind_key: "cross", layer_key: snap.layer, head_key: snap.head})
    kind = c1.selectbox("kind", kinds, format_func=attention.KIND_TITLES.get, key=kind_key)
    layer = c2.selectbox("layer", range(attention.num_layers(view.attentions, kind)), key=layer_key)
    head = c3.selectbox("head", [MEAN_OF_HEADS, *range(attention.num_heads(view.attentions, kind))], key=head_key)
    queries, keys = view.axes(kind)
    frame = attention.attention_map(
        view.attentions, kind, layer, queries, keys, head=None if head == MEAN_OF_HEADS else head
    )
    shown = "heads averaged" if head == MEAN_OF_HEADS else f"head {head}"
    chart = charts.attention_heatmap(frame, title=f"step {step}: {attention.KIND_TITLES[kind]}, layer {layer}, {shown}")
    chart_with_download(chart, frame, f"{run.name}-step{step}-{kind}-L{layer}-H{head}", f"{key}_map", fixed=True)
    st.caption(
        f"The probe is one held-out example ({' '.join(view.source_tokens)}); the decoder reads the right answer "
        "(teacher forcing), as in training, so the map shows where the model looks, not what it wrote."
    )
