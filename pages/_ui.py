"""Streamlit pieces the pages share: cached loaders, the model pickers, error display, the live
view of a background job. UI only; computations live in `model_zoo`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from model_zoo.run_folder import weights_root
from model_zoo.utils import error_message

SESSION_MODELS = "workbench_scratch_models"  # {name: runs.Run} trained in this browser session
SESSION_FINETUNED = "workbench_finetuned"  # {name: FinetuneResult-like dict} fine-tuned this session


APP_FLAG = "workbench_navigation"  # set by streamlit_app.py before it runs a page


def ensure_app() -> None:
    """Run this page inside `streamlit_app.py`'s navigation (sidebar, device, error guard).

    Until `st.navigation` has been called once in the server process, Streamlit serves a `pages/`
    folder the legacy way: a deep link such as `/train` on a fresh server runs the page alone.
    Such a visit is sent through the app once; from then on the navigation owns every URL.
    """
    if not st.session_state.get(APP_FLAG):
        st.switch_page("streamlit_app.py")


def show_error(err: BaseException, what_to_do: str = "") -> None:
    """An `st.error` with the library's message (never a traceback)."""
    st.error(error_message(err) + (f" {what_to_do}" if what_to_do else ""))


# -- runs on disk ------------------------------------------------------------------------------
def _mtime(path: Path) -> float:
    return max((p.stat().st_mtime for p in path.iterdir() if p.is_file()), default=0.0) if path.is_dir() else 0.0


@st.cache_resource(show_spinner="Loading the run…", max_entries=16)
def _load_scratch_run(path: str, mtime: float):
    """One copy per process of each saved run (keyed by its files' time: a re-saved run reloads).
    Shared between sessions, so pages only read it (decode, inspect), never train it."""
    from model_zoo.toy.runs import load_run

    return load_run(path)


def load_scratch_run(path: str | Path):
    path = Path(path)
    return _load_scratch_run(str(path), _mtime(path))


def saved_runs(kind: str | None = None) -> list:
    """`runs.list_runs()` of the weights folder, optionally only "scratch" or "finetune" runs."""
    from model_zoo.run_folder import list_runs

    try:
        found = list_runs(weights_root())
    except OSError:
        return []
    return [r for r in found if kind is None or r.kind == kind]


def session_models() -> dict:
    return st.session_state.setdefault(SESSION_MODELS, {})


@dataclass
class PickedModel:
    label: str  # what the picker showed
    run: object  # runs.Run: model, vocab, history, task ...


def scratch_model_picker(key: str, label: str = "Model", required: bool = True) -> PickedModel | None:
    """A select box of this session's trained models, then the saved scratch runs. Returns the
    chosen run loaded, or (when `required`) stops the page with a hint when there is none."""
    options: dict[str, tuple[str, object]] = {}
    for name, run in session_models().items():
        options[f"{name} (this session)"] = ("session", run)
    for info in saved_runs("scratch"):
        shown = f"{info.name} (saved)"
        if f"{info.name} (this session)" not in options:
            options[shown] = ("disk", info.path)
    if not options:
        if required:
            st.info(
                "No trained model yet: train one on the **Train** page (the copy task takes seconds), then come back."
            )
            st.stop()
        return None
    choice = st.selectbox(label, list(options), key=key)
    where, value = options[choice]
    if where == "session":
        return PickedModel(choice, value)
    try:
        return PickedModel(choice, load_scratch_run(value))
    except (ValueError, FileNotFoundError, OSError) as err:
        show_error(
            err,
            f"The run folder {value} is damaged or does not match its config: delete it, or train and save it again.",
        )
        if required:
            st.stop()
        return None


def example_text(run) -> str:
    """A sensible default input for a run's vocabulary ("3 5 7 9" for the toy tasks)."""
    symbols = run.vocab.symbols
    if run.vocab.tokenizer == "words":
        return "the film is a fine one ."
    return " ".join(symbols[i] for i in (2, 4, 6, 8) if i < len(symbols)) or " ".join(symbols[:3])


# -- background jobs ----------------------------------------------------------------------------
def stop_button(job, key: str) -> None:
    if job.running and st.button(
        "Stop", key=key, type="secondary", help="Ends the run after the current step; what was trained so far is kept."
    ):
        job.request_stop()
        st.toast("Stopping after this step…")


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
    """Two charts a row of the metrics so far (altair, from `dynamics.metric_frame`), each at
    least 200 px tall with its computed "what to look for" line. `vocab_size` / `n_symbols` / `unit`
    let the loss be read against a uniform guess (`captions.metric_caption`)."""
    from model_zoo.views.captions import metric_caption
    from model_zoo.views.charts import MIN_HEIGHT, metric_chart
    from model_zoo.views.dynamics import metric_frame

    if not history:
        st.caption("Waiting for the first step…")
        return
    frame = metric_frame(history, metrics)
    present = [m for m in metrics if m in set(frame["metric"])]
    for i in range(0, len(present), 2):
        cols = st.columns(2)
        for col, metric in zip(cols, present[i : i + 2], strict=False):
            col.altair_chart(metric_chart(frame, metric, height=MIN_HEIGHT), key=f"{key}_{metric}_{i}" if key else None)
            col.caption(f"**What to look for:** {metric_caption(history, metric, vocab_size, n_symbols, unit)}")


@st.cache_resource(show_spinner="Loading the fine-tuned model…", max_entries=6)
def _load_finetuned(path: str, mtime: float, before: bool = False):
    from model_zoo.hf.inference import load_before, load_finetuned

    return load_before(path) if before else load_finetuned(path)


def load_finetuned_run(path: str | Path, before: bool = False):
    """A saved fine-tuning run as an `inference.FinetunedModel` (eager attention), once per process.
    `before=True`: its pretrained base with the same fresh head, as training started."""
    path = Path(path)
    return _load_finetuned(str(path), _mtime(path), before)


def finetune_run_picker(key: str, label: str = "Fine-tuning run", task: str | None = None):
    """A select box of saved fine-tuning runs (optionally only "classification" or "text2text");
    returns the run's folder, or None when there is none."""
    from model_zoo.hf.finetune import load_run_info

    found = []
    for r in saved_runs("finetune"):
        try:
            kind = load_run_info(r.path).get("task") or "classification"
        except (ValueError, FileNotFoundError, OSError):
            continue  # damaged: the sidebar still lists it, the pickers skip it
        if task is None or kind == task:
            found.append((r, kind))
    if not found:
        return None
    names = {f"{r.name} ({kind})": r.path for r, kind in found}
    return names[st.selectbox(label, list(names), key=key)]


def sidebar() -> None:
    """The device, the training slots in use, this session's models and every saved run."""
    from model_zoo.distributed import device_description
    from model_zoo.jobs.background import SLOTS

    st.caption(f"Runs on **{device_description()}** · trainings running: {SLOTS.in_use} of {SLOTS.limit}")
    mine = session_models()
    if mine:
        st.markdown("**Trained in this session**")
        st.markdown("\n".join(f"- {name}" for name in mine))
    runs = saved_runs()
    st.markdown(f"**Saved runs** ({len(runs)}) in `{weights_root().name}/`")
    if not runs:
        st.caption("None yet: a run you train is saved here.")
        return
    lines = []
    for r in runs[:30]:
        metric = r.metrics.get("exact_match")
        detail = f"exact match {metric:.0%}" if isinstance(metric, int | float) else Path(r.task or "").name
        lines.append(f"- `{r.name}` · {r.kind} · {detail}")
    st.markdown("\n".join(lines) + ("\n- …" if len(runs) > 30 else ""))


def fixed_size(chart):
    """Draw an altair chart at the size it declares for its plot (a heatmap's cells), axes and
    legend around it. Streamlit's default ("fit") squeezes axes and legend into that size, which
    leaves a small heatmap no room at all."""
    import altair as alt

    return chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))
