"""The runs a student may open: pickers (scratch and fine-tuning runs, damaged ones with their
reason), cached loaders, a run's own example input, and the tasks' data."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from pages.ui.admission import open_run, workspace
from pages.ui.errors import show_error


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
    Theirs newest first; the examples in teaching order (copy, reverse, sort, english, hamlet, then
    the fine-tuned MiniLM), so a new student's pickers open on copy, not on the last starter made.
    Never raises: a folder that cannot be listed is left out."""
    from model_zoo.classroom.starter import STARTERS

    choices = []
    try:
        found = workspace().runs(check=_check)
    except OSError:
        return []
    places = {label: rank for rank, label in enumerate(dict.fromkeys(place.label for place, _ in found))}
    teaching = {name: rank for rank, name in enumerate(STARTERS)}

    def order(pair) -> tuple[int, int]:  # a stable sort: within a place, newest first unless an example
        place, info = pair
        return places[place.label], teaching.get(info.name, len(teaching)) if place.label == "example" else 0

    found.sort(key=order)
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


def first_encoder_decoder(choices: list[RunChoice]) -> int:
    """The position of the first run of an encoder-decoder task (copy, reverse, ...) among `choices`,
    0 when there is none: where a view made for the paper's model (the guided lesson) should open,
    rather than on the newest run, which may be the Hamlet language model."""
    from model_zoo.toy.tasks import TASKS

    return next((i for i, c in enumerate(choices) if c.info.task in TASKS and TASKS[c.info.task].kind == "seq2seq"), 0)


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


@st.cache_resource(show_spinner="Preparing the task's data…", max_entries=8)
def cached_task(name: str, **kwargs):
    """One task object per (name, settings) per process: the English task reads 10k sentences.
    Tasks only hand out batches from a caller's generator, so sessions can share them."""
    from model_zoo.toy.tasks import make_task

    return make_task(name, **kwargs)


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
