"""Error display: the library's message, never a traceback."""

from __future__ import annotations

import streamlit as st

from model_zoo.utils import error_message


def show_error(err: BaseException, what_to_do: str = "") -> None:
    """An `st.error` with the library's message (never a traceback)."""
    st.error(error_message(err) + (f" {what_to_do}" if what_to_do else ""))
