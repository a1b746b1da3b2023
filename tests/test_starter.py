"""Starter runs: made by the project's own code into weights/_examples/, listed for every student
as examples, never written by one."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo.classroom.starter import STARTERS, make_starter_runs, missing_starters, starter_specs
from model_zoo.classroom.workspace import Workspace, new_student_id
from model_zoo.toy.runs import check_run, load_run

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
SHORT = {"steps": 20, "eval_every": 10}  # the real ones train to the task's goal: minutes, not for tests


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    lines = []
    make_starter_runs(root, names=["copy", "reverse"], on_line=lines.append, train_overrides=SHORT)
    return root, lines


def test_every_starter_is_planned_in_order_and_made_ones_are_not_planned_again(examples, tmp_path):
    specs = starter_specs(tmp_path)
    assert [s.name for s in specs] == list(STARTERS)
    assert all(Path(s.out).parent == tmp_path / "_examples" for s in specs)
    assert [s.kind for s in specs] == ["train"] * 5 + ["finetune"]
    root, lines = examples
    assert missing_starters(root) == ["sort", "english", "hamlet", "sentiment-minilm"]
    assert lines[0].startswith("starter run 1 of 2: copy") and "done" in lines[-1]


def test_starter_runs_are_whole_runs_made_with_the_tasks_defaults(examples):
    root, _ = examples
    for name in ("copy", "reverse"):
        assert check_run(root / "_examples" / name) is None
        run = load_run(root / "_examples" / name)
        assert run.make_task().name == name and run.history[-1]["step"] == 20


def test_every_student_sees_the_examples_and_cannot_write_them(examples, monkeypatch):
    root, _ = examples
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(root))
    space = Workspace.of(new_student_id(), root)
    found = {(place.label, info.name) for place, info in space.runs()}
    assert {("example", "copy"), ("example", "reverse")} <= found
    assert space.output("copy") == space.own / "copy"  # a student's "copy" is their own run, not the example
    with pytest.raises(FileNotFoundError):
        space.delete("copy")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/inspect.py").run()
    assert not at.exception
    assert at.selectbox(key="inspect_model").value in ("copy (example)", "reverse (example)")
