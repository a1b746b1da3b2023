"""Small helpers for a page's widgets: choices kept across pages, the library's defaults, a metric's
colour."""

from __future__ import annotations

import inspect

import streamlit as st


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


def text_box(container, label: str, key: str, *, lines: bool, help: str) -> str:
    """The box a model's input is typed in: one line, or with `lines` (a character-level language
    model, whose newline is a character it reads: Hamlet's example starts "HAMLET⏎") a box that keeps
    line breaks, which a one-line box drops as soon as the student edits it."""
    if lines:
        return container.text_area(label, key=key, help=help, height=80)
    return container.text_input(label, key=key, help=help)


def default_of(function, parameter: str):
    """The library's default for `parameter` of `function`, so a page never types it again."""
    return inspect.signature(function).parameters[parameter].default


def change_colour(change: float, decimals: int) -> str:
    """`st.metric`'s delta_color for a change shown to `decimals` places: one that rounds to zero is
    grey, not a green gain."""
    return "normal" if round(change, decimals) else "off"
