"""The language of the teaching text: chosen in the sidebar, kept in the page's link (`?lang=zh-CN`)
so that a teacher can hand out a link that opens in Chinese. UI only; the words are in `content/`.

    language()          this session's language code ("en", "zh-CN")
    language_switch()   the sidebar's selectbox (streamlit_app.py draws it on every page)
    speaking(view)      `view` that sets the captions' language first (for a fragment's reruns)
"""

from __future__ import annotations

import functools

import streamlit as st

from model_zoo import content

PARAM = "lang"  # the link's parameter
KEY = "workbench_language"  # the switch's widget key
LABEL = "Language · 语言"  # in both, so a student who cannot read the current language still finds it


def language() -> str:
    """The switch's choice, else the link's `?lang=`, else English (an unknown code reads as English)."""
    chosen = st.session_state.get(KEY)
    if chosen is None:
        chosen = st.query_params.get(PARAM)
    return content.language_or_source(chosen)


def language_switch() -> None:
    """A selectbox of the languages, each in its own name; the choice is written into the link, where
    it survives a reload and a move to another page (Streamlit keeps widget state only while drawn)."""
    if KEY not in st.session_state:
        st.session_state[KEY] = language()  # a link's ?lang= opens in its language
    chosen = st.selectbox(LABEL, list(content.LANGUAGES), format_func=content.LANGUAGES.get, key=KEY)
    if chosen == content.SOURCE:
        if PARAM in st.query_params:
            del st.query_params[PARAM]
    elif st.query_params.get(PARAM) != chosen:
        st.query_params[PARAM] = chosen


def speaking(view):
    """`view`, setting the captions' language (`model_zoo.content.use_language`) before each call.
    streamlit_app.py sets it at the top of a script run; a fragment's rerun (`st.fragment(run_every=...)`)
    runs only the fragment, in a thread of its own, where the language would be English again."""

    @functools.wraps(view)
    def run(*args, **kwargs):
        content.use_language(language())
        return view(*args, **kwargs)

    return run
