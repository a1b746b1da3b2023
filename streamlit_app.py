"""Transformer Workbench: `streamlit run streamlit_app.py`. Declares the pages and the sidebar;
each page in `pages/` is UI only (widgets, a `model_zoo` call, rendering).

Streamlit serves a `pages/` folder the legacy way until this script has called `st.navigation`
once in the process; each page's `ensure_app()` sends such an early deep link through here."""

import importlib
import logging
import os
import threading

import streamlit as st

st.set_page_config(page_title="Transformer Workbench", page_icon="🔧", layout="wide")

HOME = st.Page("pages/home.py", title="Start here", icon=":material/home:", default=True)
PAGES = [
    HOME,
    st.Page("pages/lesson.py", title="Guided lesson", icon=":material/school:"),
    st.Page("pages/build.py", title="Build", icon=":material/construction:"),
    st.Page("pages/train.py", title="Train", icon=":material/fitness_center:"),
    st.Page("pages/decode.py", title="Step-through decoding", icon=":material/footprint:"),
    st.Page("pages/inspect.py", title="Inspect", icon=":material/search:"),
    st.Page("pages/journey.py", title="A token's journey", icon=":material/route:"),
    st.Page("pages/heads.py", title="All heads", icon=":material/grid_view:"),
    st.Page("pages/finetune.py", title="Fine-tune", icon=":material/tune:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/explain.py", title="What the prediction rests on", icon=":material/troubleshoot:"),
    st.Page("pages/setup.py", title="Setup", icon=":material/settings:"),
    st.Page("pages/teacher.py", title="Teacher", icon=":material/co_present:"),
]
page = st.navigation(PAGES)
deep_link = st.session_state.pop("workbench_deep_link", None)  # pages.ui.admission.DEEP_LINK: see ensure_app()
if deep_link is not None:  # a link to a page, the first visit to a fresh server: open that page, not Start here
    st.switch_page(deep_link, query_params=st.query_params.to_dict())


@st.cache_resource(show_spinner=False)
def library_loading() -> threading.Event:
    """Import PyTorch and the library once per process, in the background: the first page draws
    while torch loads (seconds on two cores) instead of after it. The event is set once the pages
    can run; the Hugging Face libraries follow in the same thread (`model_zoo.hf` imports them
    once, thread-safely), and the run folder's leftovers of a crash are tidied."""
    ready = threading.Event()

    def load() -> None:
        try:
            importlib.import_module("pages.ui.sidebar")  # the shared UI the sidebar draws, the library (torch) with it
            from model_zoo.run_folder import clean_all_leftovers

            clean_all_leftovers()  # every folder of runs; a save still running elsewhere is kept
        finally:
            ready.set()
        importlib.import_module("model_zoo.hf.finetune")

    threading.Thread(target=load, name="workbench-import", daemon=True).start()
    return ready


@st.cache_resource(show_spinner=False)
def server_threads() -> int:
    """One torch thread for this process, set once, from a script run once the library is loaded
    (never from the import thread, whose timing would change the threads of work already running):
    the server's torch work is small, the long work runs in the queue's workers."""
    from model_zoo.distributed import SERVER_THREADS, use_server_threads

    use_server_threads()
    return SERVER_THREADS


loading = library_loading()
loading.wait(0.2)  # a warm process (or the tests) has it already

if loading.is_set():
    from pages.ui.admission import student

    student()  # first: past the cap on new ids the page says why (here, not in the sidebar) and stops

with st.sidebar:
    if not loading.is_set():

        @st.fragment(run_every=0.5)
        def wait_for_library() -> None:
            if not loading.is_set():
                st.caption("Starting up: loading PyTorch…")
            else:
                st.rerun()  # the whole app, now with the device and the saved runs

        wait_for_library()
    else:
        from pages._language import language_switch
        from pages.ui.sidebar import sidebar

        language_switch()  # ?lang=zh-CN: the teaching text's language (content/<language>/)
        sidebar()

if page is not HOME:
    loading.wait()  # pages import torch: wait for the one import rather than race it from a second thread
if loading.is_set():
    server_threads()
    if page is HOME:  # the other pages say it in their ensure_app()
        from pages.ui.admission import admission_notice

        admission_notice()  # roster mode: a link not on the class's list may look, not train
if loading.is_set():
    from model_zoo.content import use_language
    from pages._language import language

    use_language(language())  # the captions' language for this run (a ContextVar: this session's thread only)
st.session_state["workbench_navigation"] = True  # pages.ui.admission.APP_FLAG: see ensure_app()
try:
    page.run()
except Exception as err:  # the last guard: a bug shows as a message, never as a traceback
    if os.environ.get("WORKBENCH_RAISE"):  # the tests want to see it
        raise
    logging.getLogger("workbench").exception("page %s failed", page.title)
    st.error(
        f"Something unexpected went wrong on this page ({type(err).__name__}: {err}). "
        "Reload the page and try again with other settings; if it happens again, please report what you did."
    )
