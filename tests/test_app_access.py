"""A student reaches only what the classroom model lets them reach, at every entry point of the app
that opens a run by name or path (`Workspace.open_run`): the Fine-tune model box, a page link
(`?run=`), the pickers of Inspect, Compare and the lesson. Another student's run, a server folder
and a folder that does not exist all get the same answer."""

from __future__ import annotations

from pathlib import Path

import app_page  # tests/app_page.py
import pytest
from app_page import APP, TIMEOUT
from streamlit.testing.v1 import AppTest

from model_zoo.classroom.workspace import MODEL_REFUSED

ME, OTHER = "s-mmmmmmmm", "s-tttttttt"
CUSTOM = "another model: type a hub name or a local folder"


pytestmark = pytest.mark.usefixtures("app_env")  # tests/conftest.py: runs in the module's `weights` folder


@pytest.fixture(scope="module")
def runs(weights, tiny_run) -> dict[str, Path]:
    """My copy run, a classmate's copy run and a classmate's fine-tuned BERT."""
    from hf_tiny import tiny_bert_dir, tiny_config

    from model_zoo.hf.finetune import finetune

    theirs_ft = weights / "_students" / OTHER / "their-ft"
    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=1), theirs_ft)
    return {
        "mine": tiny_run(weights / "_students" / ME / "my-copy", steps=10),
        "theirs": tiny_run(weights / "_students" / OTHER / "their-copy", steps=10),
        "theirs_ft": theirs_ft,
    }


def open_page(page: str, params: dict[str, str] | None = None, student: str = ME) -> AppTest:
    """`page` opened with my link (`ME`) unless another student's is given."""
    return app_page.open_page(page, params, student=student)


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def url(at: AppTest, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


# -- the Fine-tune model box -------------------------------------------------------------------------------
def test_the_model_box_gives_one_message_for_any_server_path_or_a_classmates_run(runs, tmp_path):
    at = open_page("finetune")
    at.selectbox(key="ft_model_choice").set_value(CUSTOM).run()
    said = set()
    for typed in ("/root", "/nonexistent", str(runs["theirs_ft"]), "../..", str(tmp_path), "no/such-model"):
        at.text_input(key="ft_model_custom").set_value(typed).run()
        assert not at.exception
        assert len(at.error) == 1, typed
        said.add(at.error[0].value)
        assert not at.dataframe  # nothing of the model was loaded: no sample as the model reads it
    assert said == {MODEL_REFUSED}


def test_the_model_box_opens_a_run_of_mine_by_name(runs, weights):
    import shutil

    shutil.copytree(runs["theirs_ft"], weights / "_students" / ME / "my-ft")
    at = open_page("finetune")
    at.selectbox(key="ft_model_choice").set_value(CUSTOM).run()
    at.text_input(key="ft_model_custom").set_value("my-ft").run()
    assert not at.exception and not at.error, texts(at.error)


# -- a page link ----------------------------------------------------------------------------------------------
def test_a_link_to_a_classmates_run_says_so_and_opens_nothing_else(runs):
    at = open_page("inspect", {"run": "their-copy", "layer": "0"})
    assert "not one you can open" in texts(at.warning)[0]
    assert not [s for s in at.selectbox if s.key == "inspect_model"]  # no other run was opened in its place
    assert url(at, "run") == "their-copy"  # the address was not rewritten
    at.button(key="inspect_refused_link_button").click().run()  # the student chooses their own runs
    assert not at.exception and not at.warning
    assert at.selectbox(key="inspect_model").value == "my-copy (yours)"


def test_a_link_by_a_classmates_path_is_refused_the_same_way(runs):
    at = open_page("inspect", {"run": str(runs["theirs"])})
    assert "not one you can open" in texts(at.warning)[0]


def test_a_link_to_my_run_opens_it_and_the_link_shown_is_whole(runs):
    at = open_page("inspect", {"run": "my-copy"})
    assert not at.warning
    assert at.selectbox(key="inspect_model").value == "my-copy (yours)"
    link = next(c.value for c in at.caption if "A link to this view" in c.value)
    assert "`http" in link and "/inspect?" in link and "run=my-copy" in link


# -- pickers: Compare and the lesson ---------------------------------------------------------------------------
def test_compare_offers_only_runs_i_may_open(runs):
    at = open_page("compare")
    assert not at.exception
    for key in ("cmp_run_a", "cmp_run_b"):
        options = list(at.selectbox(key=key).options)
        assert "my-copy (yours)" in options and not any("their-copy" in o for o in options)
    for picker in [s for s in at.selectbox if s.key == "cmp_ft_run"]:
        assert not any("their-ft" in o for o in picker.options)  # their fine-tune run is not offered


def test_the_lesson_offers_only_runs_i_may_open(runs):
    at = open_page("lesson")
    assert not at.exception
    options = list(at.selectbox(key="lesson_model").options)
    assert "my-copy (yours)" in options and not any("their" in o for o in options)


def test_the_loaders_refuse_a_classmates_folder_even_when_a_page_passes_it(runs):
    """The pages' loaders go through the same gate: a page that passed another student's path (a bug
    or a crafted widget value) gets RunNotVisible, not the run."""
    script = f"""
import streamlit as st
from pages.ui.runs import load_scratch_run
try:
    load_scratch_run({str(runs["theirs"])!r})
    st.write("opened")
except OSError as err:
    st.write(type(err).__name__)
"""
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    at.query_params["student"] = ME
    at.run()
    assert not at.exception, at.exception
    assert [m.value for m in at.markdown] == ["RunNotVisible"]


# -- new workspaces per address ----------------------------------------------------------------------------------
def test_past_the_cap_on_new_ids_the_page_says_why_and_a_students_own_link_still_works(weights, monkeypatch):
    from streamlit.runtime.context import ContextProxy

    from pages.ui.admission import new_ids

    monkeypatch.setattr(ContextProxy, "ip_address", property(lambda self: "198.51.100.9"))
    monkeypatch.setenv("WORKBENCH_NEW_IDS_PER_HOUR", "2")
    new_ids.clear()  # the server's count, made again with this cap
    try:
        for _ in range(2):
            at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
            assert not at.exception and not at.error
            assert url(at, "student").startswith("s-")
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # the third new id from that address
        assert not at.exception
        assert "Too many new workspaces" in texts(at.main.error)[0] and "?student=" in texts(at.main.error)[0]
        assert "student" not in at.query_params
        mine = open_page("train", student=ME)  # a link with an id makes no new one
        assert not mine.error
    finally:
        new_ids.clear()


def test_a_step_through_link_to_a_classmates_run_is_refused_too(runs):
    at = open_page("decode", {"run": "their-copy"})
    assert "not one you can open" in texts(at.warning)[0]
    assert url(at, "run") == "their-copy"
