"""Who the student is and what the class lets them do: the app's navigation guard, the student's id
(kept in the link), the new-id and passphrase guards, the roster's notice, their workspace and its
one gate to a run folder."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from model_zoo.run_folder import weights_root

APP_FLAG = "workbench_navigation"  # set by streamlit_app.py before it runs a page


DEEP_LINK = "workbench_deep_link"  # the page a visit asked for before the navigation existed


def ensure_app(page_file: str) -> None:
    """Run this page (`page_file`: the page's `__file__`) inside `streamlit_app.py`'s navigation
    (sidebar, device, error guard).

    Until `st.navigation` has been called once in the server process, Streamlit serves a `pages/`
    folder the legacy way: a deep link such as `/journey?student=…&run=…` on a fresh server runs the
    page alone. Such a visit is sent through the app once, keeping the link's parameters (the
    student's id among them), and the app then opens the page it asked for (streamlit_app.py);
    from then on the navigation owns every URL. Then the class's admission has its say
    (`admission_notice`).
    """
    if not st.session_state.get(APP_FLAG):
        st.session_state[DEEP_LINK] = f"pages/{Path(page_file).name}"
        st.switch_page("streamlit_app.py", query_params=st.query_params.to_dict())
    speak_the_pages_language()
    admission_notice()


def speak_the_pages_language() -> None:
    """The captions' language (`model_zoo.content.use_language`) for this run of the page, as
    streamlit_app.py sets it: again here, for a page run without it (AppTest's switch_page)."""
    from model_zoo.content import use_language
    from pages._language import language

    use_language(language())


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
