"""`classroom.workspace`'s disk quotas: a student's own quota removes only their oldest runs; the
class's total never removes a run of a student within their fair share (total ÷ students with
runs) and `check_room` refuses the new job instead, saying why and what to delete; every removed
run becomes a notice for its owner, shown once; starter, class and command-line runs, runs being
trained, the run just saved and a killed save's leftovers are never removed nor counted."""

import os
import time

import pytest

from model_zoo.classroom import workspace
from model_zoo.classroom.workspace import (
    CLASS,
    EXAMPLES,
    NOTICES_FILE,
    STUDENTS,
    NoRoom,
    check_room,
    enforce_quotas,
    student_run_sizes,
    take_notices,
)
from model_zoo.run_folder import reserve

ANN, BEN, HOG = "s-aaaaaaaa", "s-bbbbbbbb", "s-hhhhhhhh"


def make_run(folder, name, mb, age_s):
    """A run folder of `mb` MB (a sparse file: its size is what the quota reads), `age_s` old."""
    run = folder / name
    run.mkdir(parents=True)
    with open(run / "model.safetensors", "wb") as f:
        f.truncate(int(mb * 2**20))
    then = time.time() - age_s
    os.utime(run, (then, then))
    return run


def runs_of(root, student):
    folder = root / STUDENTS / student
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


@pytest.fixture
def classroom(tmp_path):
    """Ann and Ben have two old 1 MB runs each; a hog has eight newer ones (8 MB)."""
    for student in (ANN, BEN):
        for n in range(2):
            make_run(tmp_path / STUDENTS / student, f"homework-{n}", 1, age_s=10_000 + n)
    for n in range(8):
        make_run(tmp_path / STUDENTS / HOG, f"spam-{n}", 1, age_s=1000 - n)
    return tmp_path


def test_the_total_quota_never_removes_a_run_of_a_student_within_their_fair_share(classroom):
    # 12 MB in all, 10 MB allowed: the fair share is 10 / 3 students ≈ 3.3 MB. The oldest runs are
    # Ann's and Ben's homework, but only the hog is over its share: its oldest runs go.
    notes = enforce_quotas(classroom, ANN, student_mb=100, total_mb=10)
    assert runs_of(classroom, ANN) == ["homework-0", "homework-1"]
    assert runs_of(classroom, BEN) == ["homework-0", "homework-1"]
    assert runs_of(classroom, HOG) == [f"spam-{n}" for n in range(2, 8)]
    assert len(notes) == 2 and all(note.startswith("A classmate's oldest run 'spam-") for note in notes)


def test_the_total_quota_removes_no_more_than_brings_the_class_back_within_it(classroom):
    enforce_quotas(classroom, HOG, student_mb=100, total_mb=11.5)
    assert len(runs_of(classroom, HOG)) == 7  # one run (1 MB) was enough


def test_a_removed_run_is_a_notice_for_its_owner_shown_once_and_never_a_run(classroom):
    enforce_quotas(classroom, ANN, student_mb=100, total_mb=10)
    assert (classroom / STUDENTS / HOG / NOTICES_FILE).is_file()
    assert NOTICES_FILE not in {r.name for r in student_run_sizes(classroom)[HOG]}
    assert take_notices(classroom, ANN) == []  # the student whose job triggered it lost nothing
    notices = take_notices(classroom, HOG)
    assert [n["run"] for n in notices] == ["spam-0", "spam-1"]
    assert all("fair share" in n["why"] and "10 MB" in n["why"] for n in notices)
    assert all(time.time() - 60 < n["when"] <= time.time() for n in notices)
    assert take_notices(classroom, HOG) == []  # shown once


def test_the_student_quota_removes_only_that_students_oldest_runs_and_tells_them(classroom):
    make_run(classroom / STUDENTS / ANN, "homework-2", 1, age_s=5)
    notes = enforce_quotas(classroom, ANN, student_mb=2, total_mb=1000)
    assert runs_of(classroom, ANN) == ["homework-0", "homework-2"]  # homework-1 was the oldest (10,001 s)
    assert runs_of(classroom, HOG) == [f"spam-{n}" for n in range(8)]
    assert notes == ["Your oldest run 'homework-1' was removed: your runs may take 2 MB at most."]
    assert [n["run"] for n in take_notices(classroom, ANN)] == ["homework-1"]


def test_neither_the_run_just_saved_nor_a_run_being_trained_is_removed(classroom):
    folder = classroom / STUDENTS / ANN
    with reserve(folder / "training-now", owner=ANN):
        (folder / "training-now").mkdir()
        os.utime(folder / "training-now", (0, 0))  # the oldest of all
        enforce_quotas(classroom, ANN, keep=folder / "homework-1", student_mb=0.5, total_mb=1000)
        assert runs_of(classroom, ANN) == ["homework-1", "training-now"]


def test_starter_class_and_command_line_runs_are_never_removed(classroom):
    for folder in (classroom / EXAMPLES, classroom / CLASS, classroom):
        make_run(folder, "kept", 50, age_s=10**6)
    enforce_quotas(classroom, HOG, student_mb=100, total_mb=1)
    for folder in (classroom / EXAMPLES, classroom / CLASS, classroom):
        assert (folder / "kept").is_dir()


def test_a_killed_saves_leftovers_are_not_counted_so_they_cost_no_real_run(classroom):
    leftover = make_run(classroom / STUDENTS / ANN, ".homework-9.tmp-1234", 50, age_s=0)
    enforce_quotas(classroom, ANN, student_mb=2, total_mb=1000)  # Ann's runs take 2 MB: within
    assert runs_of(classroom, ANN) == ["homework-0", "homework-1"] and leftover.is_dir()
    assert workspace.folder_mb(classroom / STUDENTS / ANN) == 2


def test_run_sizes_are_measured_once_per_clean_up_not_after_every_removal(classroom, monkeypatch):
    measured = []
    real = workspace.folder_mb
    monkeypatch.setattr(workspace, "folder_mb", lambda folder: measured.append(folder) or real(folder))
    enforce_quotas(classroom, HOG, student_mb=3, total_mb=4)
    assert len(runs_of(classroom, HOG)) == 2
    assert len(measured) == 12 and len(set(measured)) == 12  # each of the 12 runs, once


def test_check_room_refuses_a_new_job_when_only_runs_within_fair_shares_could_make_room(classroom):
    enforce_quotas(classroom, HOG, student_mb=100, total_mb=6)  # the hog is cut back to its share
    assert len(runs_of(classroom, HOG)) == 2
    with pytest.raises(NoRoom) as refused:
        check_room(classroom, ANN, 1, student_mb=100, total_mb=6)
    message = str(refused.value)
    assert "no room" in message and "your fair share" in message and "(2 MB each for 3 students" in message
    assert "homework-1, homework-0" in message  # what to delete, oldest first
    check_room(classroom, "s-cccccccc", 1, student_mb=100, total_mb=6)  # a newcomer's share: others are over theirs
    with pytest.raises(NoRoom, match="You have no runs to delete"):  # but not beyond it
        check_room(classroom, "s-cccccccc", 5, student_mb=100, total_mb=6)
    assert runs_of(classroom, ANN) == ["homework-0", "homework-1"]  # refusing removed nothing


def test_check_room_lets_a_job_in_when_a_student_over_their_share_can_make_room(classroom):
    check_room(classroom, ANN, 1, student_mb=100, total_mb=12)  # fits as it is
    check_room(classroom, ANN, 1, student_mb=100, total_mb=10)  # the hog's runs over its share make room
    with pytest.raises(NoRoom, match="more than the 2 MB your runs may take"):
        check_room(classroom, ANN, 3, student_mb=2, total_mb=1000)


def test_after_a_worker_is_killed_mid_save_its_leftover_is_tidied_and_not_counted(weights_dir):
    """A worker killed while it wrote a student's run leaves `.NAME.tmp-p<pid>-…` beside the run:
    the app's clean-up after that job removes it at once (its writer is dead), so it never counts
    toward the student's quota until the next start-up."""
    import subprocess
    import sys

    from model_zoo.jobs.queue import Job
    from model_zoo.jobs.work import JobSpec
    from pages.ui.jobs import tidy_after_job

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    own = weights_dir / STUDENTS / ANN
    leftover = make_run(own, f".half.tmp-p{dead.pid}-x1y2", 50, age_s=0)
    out = own / "half"
    job = Job(1, ANN, JobSpec("train", "half", {}, out=str(out)), status="failed")
    tidy_after_job(job)
    assert not leftover.exists()
    assert workspace.folder_mb(own) == 0  # the disk is given back, not only left uncounted
