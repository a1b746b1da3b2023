"""`classroom.workspace`: which runs a student may open (their own, the examples, the class's, the
saved ones; never another student's, whatever path is typed), the one gate every page opens a run
through, what a typed model may be in the app, publishing to the class, and which runs a quota may
remove (the rules that hold whatever the fair-share arithmetic: never a class, example, saved,
kept or reserved run, and a student's oldest run first)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model_zoo.classroom.workspace import (
    CLASS,
    EXAMPLES,
    MODEL_REFUSED,
    STUDENTS,
    ModelRefused,
    RunNotVisible,
    Workspace,
    class_runs,
    enforce_quotas,
    publish,
    student_usage,
    unpublish,
)
from model_zoo.run_folder import reserve

ME, OTHER = "s-aaaaaaaa", "s-bbbbbbbb"


def make_run(folder: Path, mb: float = 0.0, age_s: float = 0.0) -> Path:
    """A minimal run folder (a run.json, a config.json and `mb` of weights), `age_s` old."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text('{"kind": "finetune"}')
    (folder / "config.json").write_text("{}")
    (folder / "labels.json").write_text('["neg", "pos"]')
    (folder / "weights.bin").write_bytes(b"\0" * int(mb * 2**20))
    when = 1_700_000_000 - age_s
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (when, when))
    return folder


@pytest.fixture(autouse=True)
def no_model_folders(monkeypatch):
    monkeypatch.delenv("WORKBENCH_MODEL_FOLDERS", raising=False)


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "weights"
    make_run(root / STUDENTS / ME / "mine")
    make_run(root / STUDENTS / OTHER / "theirs")
    make_run(root / EXAMPLES / "copy-example")
    make_run(root / CLASS / "class-run")
    make_run(root / "saved-run")
    return root


# -- ownership -----------------------------------------------------------------------------------------
def test_a_student_may_read_their_own_the_examples_the_class_and_saved_runs(root):
    ws = Workspace.of(ME, root)
    for path in ("_students/s-aaaaaaaa/mine", "_examples/copy-example", "_class/class-run", "saved-run"):
        assert ws.may_read(root / path), path


def test_a_student_may_not_read_another_students_run_or_anything_outside(root, tmp_path):
    ws = Workspace.of(ME, root)
    assert not ws.may_read(root / STUDENTS / OTHER / "theirs")
    assert not ws.may_read(tmp_path)
    assert not ws.may_read("/root")
    assert not ws.may_read(root / STUDENTS)  # the students' folder sits in the saved runs' folder: not a run
    assert not ws.may_read(root / STUDENTS / ME / ".." / ".." / STUDENTS / OTHER / "theirs")


def test_a_symlink_in_my_folder_to_a_classmates_run_is_not_readable(root):
    link = root / STUDENTS / ME / "borrowed"
    link.symlink_to(root / STUDENTS / OTHER / "theirs")
    ws = Workspace.of(ME, root)
    assert not ws.may_read(link)
    with pytest.raises(RunNotVisible):
        ws.open_run("borrowed")


def test_open_run_finds_a_name_in_my_places_mine_first(root):
    make_run(root / "mine")  # a saved run with the same name as mine
    ws = Workspace.of(ME, root)
    assert ws.open_run("mine") == (root / STUDENTS / ME / "mine").resolve()
    assert ws.open_run("class-run") == (root / CLASS / "class-run").resolve()
    assert ws.open_run("_class/class-run") == (root / CLASS / "class-run").resolve()  # a path in the weights folder


@pytest.mark.parametrize(
    "text",
    ["theirs", "_students/s-bbbbbbbb/theirs", "/root", "/nonexistent", "../..", "..", "no-such-run", "", "_students"],
)
def test_open_run_refuses_everything_else_with_one_message(root, text):
    ws = Workspace.of(ME, root)
    with pytest.raises(RunNotVisible) as refused:
        ws.open_run(text)
    assert str(refused.value) == str(RunNotVisible())


def test_open_run_refuses_another_students_absolute_path(root):
    with pytest.raises(RunNotVisible):
        Workspace.of(ME, root).open_run(str(root / STUDENTS / OTHER / "theirs"))


# -- a typed model in the app ----------------------------------------------------------------------------
def test_a_typed_model_may_be_a_hub_name_an_offline_model_or_a_run_i_may_open(root):
    ws = Workspace.of(ME, root)
    assert ws.resolve_model("google/bert_uncased_L-2_H-128_A-2") == "google/bert_uncased_L-2_H-128_A-2"
    assert ws.resolve_model("distilbert-base-uncased") == "distilbert-base-uncased"
    assert ws.resolve_model("minilm-l6 (offline)") == "minilm-l6 (offline)"
    assert ws.resolve_model("mine") == str((root / STUDENTS / ME / "mine").resolve())
    assert ws.resolve_model(str(root / CLASS / "class-run")) == str((root / CLASS / "class-run").resolve())


def test_a_typed_server_path_gets_one_message_whether_or_not_it_exists(root, tmp_path):
    ws = Workspace.of(ME, root)
    messages = set()
    for text in ("/root", "/nonexistent", str(tmp_path), str(root / STUDENTS / OTHER / "theirs"), "../..", "~"):
        with pytest.raises(ModelRefused) as refused:
            ws.resolve_model(text)
        messages.add(str(refused.value))
    assert messages == {MODEL_REFUSED}
    assert "/" not in MODEL_REFUSED.replace("google/bert", "")  # the message names no folder


def test_a_hub_shaped_name_that_is_a_folder_of_the_server_is_refused(root, tmp_path, monkeypatch):
    make_run(tmp_path / "org" / "model")
    monkeypatch.chdir(tmp_path)  # from_pretrained would read "org/model" as this folder
    with pytest.raises(ModelRefused):
        Workspace.of(ME, root).resolve_model("org/model")


def test_a_model_folder_the_teacher_lists_may_be_typed_but_never_the_weights_folder_through_it(
    root, tmp_path, monkeypatch
):
    model = make_run(tmp_path / "models" / "tiny-bert")
    monkeypatch.setenv("WORKBENCH_MODEL_FOLDERS", str(tmp_path))  # the weights folder is inside it too
    ws = Workspace.of(ME, root)
    assert ws.resolve_model(str(model)) == str(model.resolve())
    for text in (str(root / STUDENTS / OTHER / "theirs"), str(tmp_path / "models"), "/root"):
        with pytest.raises(ModelRefused):
            ws.resolve_model(text)


# -- publish -----------------------------------------------------------------------------------------------
def test_publish_copies_a_students_run_into_the_class_for_everyone(root):
    target = publish(root / STUDENTS / OTHER / "theirs", root, name="best-of-class")
    assert target == root / CLASS / "best-of-class" and (target / "config.json").is_file()
    assert (root / STUDENTS / OTHER / "theirs").is_dir()  # the original stays with its owner
    assert Workspace.of(ME, root).open_run("best-of-class") == target.resolve()
    assert "best-of-class" in [r.name for r in class_runs(root)]
    assert not [p for p in (root / CLASS).iterdir() if p.name.startswith(".") and "tmp" in p.name]


def test_publish_a_saved_run_by_name_and_refuse_a_second_copy(root):
    publish("saved-run", root)
    with pytest.raises(FileExistsError, match="already has a run"):
        publish("saved-run", root)


def test_publish_refuses_a_folder_outside_the_weights_folder(root, tmp_path):
    outside = make_run(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError):
        publish(outside, root)


def test_unpublish_removes_the_class_copy_only(root):
    publish(root / STUDENTS / OTHER / "theirs", root)
    unpublish("theirs", root)
    assert not (root / CLASS / "theirs").exists() and (root / STUDENTS / OTHER / "theirs").is_dir()
    with pytest.raises(FileNotFoundError):
        unpublish("theirs", root)
    with pytest.raises(ValueError):
        unpublish("../saved-run", root)
    assert (root / "saved-run").is_dir()


def test_student_usage_lists_each_students_megabytes(root):
    make_run(root / STUDENTS / OTHER / "big", mb=2)
    usage = student_usage(root)
    assert list(usage) == [OTHER, ME] and usage[OTHER] >= 2


# -- quotas: the rules that hold whatever the fair share ---------------------------------------------------------
def test_a_student_over_quota_loses_their_oldest_run_first(root):
    for i, age in enumerate((300, 100, 200)):
        make_run(root / STUDENTS / ME / f"r{i}", mb=1, age_s=age)
    enforce_quotas(root, ME, student_mb=2.5, total_mb=10_000)
    left = {p.name for p in (root / STUDENTS / ME).iterdir()}
    assert "r0" not in left and {"r1", "r2"} <= left


def test_quotas_never_remove_class_example_saved_kept_or_reserved_runs(root):
    for folder in (root / CLASS, root / EXAMPLES, root):
        make_run(folder / "big-one", mb=1, age_s=10_000)
    kept = make_run(root / STUDENTS / ME / "just-saved", mb=1, age_s=9_000)
    busy = make_run(root / STUDENTS / ME / "training", mb=1, age_s=9_500)
    with reserve(busy, overwrite=True, owner=ME):
        enforce_quotas(root, ME, keep=kept, student_mb=0, total_mb=0)
        assert busy.is_dir()
    assert kept.is_dir()
    for folder in (root / CLASS, root / EXAMPLES, root):
        assert (folder / "big-one").is_dir()
    assert (root / EXAMPLES / "copy-example").is_dir() and (root / CLASS / "class-run").is_dir()
    assert (root / "saved-run").is_dir()
