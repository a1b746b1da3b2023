"""The Teacher page through `AppTest`: off without a passphrase (and says how to turn it on), a
wrong passphrase refused, and once signed in: publish a student's run to the class (another student
then opens it), unpublish it, cancel a student's job, each student's disk use, and the class's
links in roster mode (whole links; a link not on the list may look but not train)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from app_page import open_page  # tests/app_page.py
from streamlit.testing.v1 import AppTest

PASSPHRASE = "correct horse battery staple"
ALICE, BOB = "s-aaaaaaaa", "s-bbbbbbbb"


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    monkeypatch.delenv("WORKBENCH_ROSTER", raising=False)
    return folder


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def sign_in(monkeypatch) -> AppTest:
    monkeypatch.setenv("WORKBENCH_TEACHER_PASSPHRASE", PASSPHRASE)
    at = open_page("teacher")
    at.text_input(key="teacher_passphrase").set_value(PASSPHRASE)
    at.button(key="teacher_sign_in_button").click().run()
    assert not at.exception and not at.error, texts(at.error)
    return at


def fake_run(folder: Path) -> Path:
    """A small readable fine-tuning run folder (the listing only reads its files)."""
    from hf_tiny import tiny_bert_dir, tiny_config

    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=1), folder)
    return folder


def test_without_a_passphrase_the_panel_says_how_to_turn_it_on(weights, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TEACHER_PASSPHRASE", raising=False)
    at = open_page("teacher")
    assert "WORKBENCH_TEACHER_PASSPHRASE" in texts(at.info)[-1]
    assert not at.text_input


def test_a_wrong_passphrase_is_refused_and_shows_nothing(weights, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TEACHER_PASSPHRASE", PASSPHRASE)
    at = open_page("teacher")
    at.text_input(key="teacher_passphrase").set_value("guess")
    at.button(key="teacher_sign_in_button").click().run()
    assert "not the teacher's passphrase" in texts(at.error)[-1]
    assert "teacher_publish_button" not in [b.key for b in at.button]
    assert "teacher_passphrase" not in at.session_state or at.session_state["teacher_passphrase"] == ""


def test_the_teacher_publishes_a_students_run_and_another_student_opens_it_then_unpublishes(weights, monkeypatch):
    from model_zoo.classroom.workspace import RunNotVisible, Workspace

    fake_run(weights / "_students" / ALICE / "alice-ft")
    with pytest.raises(RunNotVisible):
        Workspace.of(BOB, weights).open_run("alice-ft")
    at = sign_in(monkeypatch)
    at.selectbox(key="teacher_publish_run").set_value(f"alice-ft (student {ALICE})").run()
    at.button(key="teacher_publish_button").click().run()
    assert not at.error, texts(at.error)
    assert "Published" in texts(at.success)[-1]
    assert Workspace.of(BOB, weights).open_run("alice-ft") == (weights / "_class" / "alice-ft").resolve()
    assert ALICE in [str(v) for v in at.dataframe[-1].value["student"]]  # disk use, per student

    at.selectbox(key="teacher_unpublish_run").set_value("alice-ft")
    at.button(key="teacher_unpublish_button").click().run()
    assert not (weights / "_class" / "alice-ft").exists() and (weights / "_students" / ALICE / "alice-ft").is_dir()


def test_the_teacher_sees_and_cancels_a_students_waiting_or_running_job(weights, monkeypatch):
    from model_zoo.jobs.work import train_spec
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from pages.ui.jobs import job_queue

    at = sign_in(monkeypatch)
    out = weights / "_students" / BOB / "long-copy"
    task = {"n_symbols": 6, "max_len": 5}
    model = make_task("copy", **task).model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32)  # fmt: skip
    spec = train_spec(
        "long-copy", out, "copy", task, model, TrainConfig(steps=100_000, eval_every=50_000, batch_size=8)
    )
    job = job_queue().submit(BOB, spec)
    at.run()
    rows = at.dataframe[0].value
    assert list(rows["student"]) == [BOB] and list(rows["run"]) == ["long-copy"]
    at.selectbox(key="teacher_cancel_job").set_value(f"#{job.id} long-copy ({BOB}, {job.status})")
    at.button(key="teacher_cancel_button").click().run()
    end = time.monotonic() + 60
    while job.active and time.monotonic() < end:
        time.sleep(0.2)
    assert not job.active


def test_roster_links_are_whole_and_an_id_not_on_the_roster_may_look_but_not_train(weights, monkeypatch):
    from model_zoo.classroom.admission import ASK_TEACHER, read_roster

    at = sign_in(monkeypatch)
    at.text_area(key="teacher_roster_names").set_value("Ada\nGrace")
    at.button(key="teacher_roster_button").click().run()
    assert not at.error, texts(at.error)
    roster = read_roster(weights)
    assert [e["label"] for e in roster.values()] == ["Ada", "Grace"]
    links = list(at.dataframe[-1].value["link"])
    assert all(link.startswith("http") and "?student=s-" in link for link in links)

    stranger = open_page("train", student="s-zzzzzzzz")
    assert ASK_TEACHER in texts(stranger.info)
    stranger.button(key="train_start").click().run()
    assert ASK_TEACHER in texts(stranger.error)
    assert not (weights / "_students" / "s-zzzzzzzz").exists()

    ada = open_page("train", student=next(iter(roster)))
    assert ASK_TEACHER not in texts(ada.info)

    grace = list(roster)[1]
    at.selectbox(key="teacher_roster_remove").set_value(grace).run()
    at.button(key="teacher_roster_remove_button").click().run()
    assert list(read_roster(weights)) == [next(iter(roster))]  # Grace's link is off the list, Ada's stays
    assert ASK_TEACHER in texts(open_page("train", student=grace).info)


def test_making_links_twice_keeps_the_links_a_name_twice_is_refused_and_disk_use_shows_names_and_quota(
    weights, monkeypatch
):
    from model_zoo.classroom.admission import read_roster

    at = sign_in(monkeypatch)
    at.text_area(key="teacher_roster_names").set_value("Ada\nGrace")
    at.button(key="teacher_roster_button").click().run()
    first = read_roster(weights)
    at.text_area(key="teacher_roster_names").set_value("Ada\nGrace\nLinus")  # pasted again, one name added
    at.button(key="teacher_roster_button").click().run()
    roster = read_roster(weights)
    assert len(roster) == 3 and set(first) < set(roster)  # Ada and Grace keep the links they were given
    assert "keep theirs" in texts(at.success)[-1]
    at.text_area(key="teacher_roster_names").set_value("Bo\nbo")
    at.button(key="teacher_roster_button").click().run()
    assert "listed twice" in texts(at.error)[-1] and len(read_roster(weights)) == 3

    ada = next(sid for sid, e in roster.items() if e["label"] == "Ada")
    fake_run(weights / "_students" / ada / "ada-ft")
    monkeypatch.setenv("WORKBENCH_STUDENT_QUOTA_MB", "150")
    at.run()
    usage = next(df.value for df in at.dataframe if "MB" in df.value.columns)
    assert list(usage["student"]) == [ada] and list(usage["name"]) == ["Ada"]
    assert any("150 MB" in caption for caption in texts(at.caption))


# -- the command line -------------------------------------------------------------------------------------
def test_publish_and_unpublish_from_the_command_line(weights, capsys):
    from model_zoo.cli import main

    fake_run(weights / "_students" / ALICE / "alice-ft")
    assert main(["publish", f"_students/{ALICE}/alice-ft", "--as", "best-ft"]) == 0
    assert "published best-ft" in capsys.readouterr().out
    assert (weights / "_class" / "best-ft" / "labels.json").is_file()
    assert main(["publish", f"_students/{ALICE}/alice-ft", "--as", "best-ft"]) == 1  # one-line error, no traceback
    assert "already has a run" in capsys.readouterr().err
    assert main(["unpublish", "best-ft"]) == 0
    assert not (weights / "_class" / "best-ft").exists()
    assert main(["publish", "/etc"]) == 1
    assert "not a run in the weights folder" in capsys.readouterr().err
