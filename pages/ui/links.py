"""Links that open the same view: a page's choices read from and written into the URL, and the app's
address as the browser sees it."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from pages.ui.admission import open_run
from pages.ui.runs import visible_runs

VIEW_PARAMS = (
    "tab",
    "run",
    "text",
    "kind",
    "layer",
    "head",
    "step",
    "stage",
    "pos",
    "query",
)  # all a generated link holds
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
    if param in ("layer", "step", "pos", "query"):  # indices: "pos=first" is a ValueError, left to the widget
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
            refuse_link(page, widgets, text)
        except ValueError:
            continue  # "layer=one": ignored, the widget keeps its default
        for key in [widgets[param]] if isinstance(widgets[param], str) else widgets[param]:
            st.session_state[key] = value


def refuse_link(page: str, widgets: dict[str, str | list[str]], run: str) -> None:
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


# the pages' URL paths: the files of pages/ (this package's parent folder)
_PAGE_PATHS = {p.stem for p in Path(__file__).parent.parent.glob("*.py") if not p.stem.startswith("_")}


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
