"""Whose runs are whose when a class shares one server.

Under the weights folder:

    _examples/<run>            starter runs, made by the project's own code: everyone reads them
    _class/<run>               runs a teacher published to the class: everyone reads them
    _students/<student>/<run>  each student's own runs: only they see, write and delete them
    <run>                      runs saved from the command line on this machine: everyone reads them

A student (one browser session, or the same link opened again) has a `Workspace`: the runs they
may read, and the one folder they may write, so nothing a student types can touch another's run.
The underscore folders can never be run names (a run name starts with a letter or a digit).
Disk quotas, one per student and one for all students, remove the oldest student runs first and
say so.
"""

from __future__ import annotations

import hmac
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from model_zoo.run_folder import RunInfo, check_run_name, is_reserved, list_runs, weights_root

EXAMPLES, CLASS, STUDENTS = "_examples", "_class", "_students"
STUDENT_QUOTA_MB = 200  # a student's own runs: dozens of toy runs, or a few fine-tuned MiniLMs (~90 MB each)
TOTAL_QUOTA_MB = 6000  # every student's runs together: a free Space has 50 GB of disk, shared with the image
_OWNER_CHARS = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes: a student may read theirs aloud


def new_student_id() -> str:
    """A fresh, unguessable student id ("s-7kq2m9xd")."""
    return "s-" + "".join(secrets.choice(_OWNER_CHARS) for _ in range(8))


def check_student_id(student: str) -> str:
    if not isinstance(student, str) or len(student) != 10 or not student.startswith("s-"):
        raise ValueError(f"{student!r} is not a student id (like 's-7kq2m9xd').")
    if any(c not in _OWNER_CHARS for c in student[2:]):
        raise ValueError(f"{student!r} is not a student id (like 's-7kq2m9xd').")
    return student


@dataclass(frozen=True)
class Place:
    """A folder of runs and what a student may do there."""

    label: str  # how pickers mark its runs: "yours", "example", "class", "saved"
    folder: Path
    writable: bool


@dataclass(frozen=True)
class Workspace:
    """What one student sees and may change."""

    student: str
    root: Path

    @classmethod
    def of(cls, student: str, root: str | Path | None = None) -> Workspace:
        return cls(check_student_id(student), Path(root or weights_root()))

    @property
    def own(self) -> Path:
        return self.root / STUDENTS / self.student

    def places(self) -> list[Place]:
        return [
            Place("yours", self.own, True),
            Place("example", self.root / EXAMPLES, False),
            Place("class", self.root / CLASS, False),
            Place("saved", self.root, False),
        ]

    def runs(self, check=None) -> list[tuple[Place, RunInfo]]:
        """Every run this student may open, theirs first, each with its place."""
        found = []
        for place in self.places():
            infos = list_runs(place.folder, check=check) if check else list_runs(place.folder)
            found += [(place, info) for info in infos]
        return found

    def output(self, name: str) -> Path:
        """Where this student's run `name` is written: always inside their own folder."""
        return self.own / check_run_name(name.strip())

    def may_read(self, path: str | Path) -> bool:
        path = Path(path).resolve()
        return any(path.parent == place.folder.resolve() for place in self.places())

    def delete(self, name: str) -> None:
        """Delete one of this student's own runs (never anyone else's, never one being trained)."""
        path = self.output(name)
        if not path.is_dir():
            raise FileNotFoundError(f"You have no run called {name!r}.")
        if is_reserved(path):
            raise FileExistsError(f"{name!r} is being trained right now: cancel the job first.")
        shutil.rmtree(path)

    def usage_mb(self) -> float:
        return folder_mb(self.own)


def is_teacher(passphrase: str) -> bool:
    """Whether `passphrase` is the class's teacher passphrase (`WORKBENCH_TEACHER_PASSPHRASE`; no
    teacher when it is unset)."""
    expected = os.environ.get("WORKBENCH_TEACHER_PASSPHRASE", "")
    return bool(expected) and hmac.compare_digest(passphrase.encode(), expected.encode())


def publish(workspace: Workspace, name: str, passphrase: str) -> Path:
    """Copy one of `workspace`'s runs into the class folder, where every student can open it."""
    if not is_teacher(passphrase):
        raise PermissionError("Only the teacher can publish a run to the class (the passphrase did not match).")
    source = workspace.output(name)
    if not source.is_dir():
        raise FileNotFoundError(f"You have no run called {name!r} to publish.")
    target = workspace.root / CLASS / name
    if target.exists():
        raise FileExistsError(f"The class already has a run called {name!r}: rename yours, or remove that one first.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{name}.tmp-publish"
    shutil.copytree(source, tmp)
    os.rename(tmp, target)
    return target


def folder_mb(folder: Path) -> float:
    if not folder.is_dir():
        return 0.0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def enforce_quotas(
    root: str | Path | None = None,
    student: str | None = None,
    keep: str | Path | None = None,
    student_mb: float | None = None,
    total_mb: float | None = None,
) -> list[str]:
    """Remove the oldest student runs until `student` is within their quota and all students
    together within the total; never `keep` (the run just saved) nor a run being trained. Returns
    one sentence a removed run, for the page."""
    root = Path(root or weights_root())
    student_mb = student_mb if student_mb is not None else _env_mb("WORKBENCH_STUDENT_QUOTA_MB", STUDENT_QUOTA_MB)
    total_mb = total_mb if total_mb is not None else _env_mb("WORKBENCH_TOTAL_QUOTA_MB", TOTAL_QUOTA_MB)
    keep = Path(keep).resolve() if keep is not None else None
    removed: list[str] = []

    def candidates(folders: list[Path]) -> list[Path]:
        runs = [r for folder in folders for r in folder.iterdir() if r.is_dir() and not r.name.startswith(".")]
        runs = [r for r in runs if r.resolve() != keep and not is_reserved(r)]
        return sorted(runs, key=lambda r: r.stat().st_mtime)

    students = root / STUDENTS
    if student is not None:
        own = students / student
        for run in candidates([own] if own.is_dir() else []):
            if folder_mb(own) <= student_mb:
                break
            shutil.rmtree(run, ignore_errors=True)
            removed.append(f"Your oldest run {run.name!r} was removed: your runs may take {student_mb:g} MB at most.")
    if students.is_dir():
        for run in candidates([s for s in students.iterdir() if s.is_dir()]):
            if folder_mb(students) <= total_mb:
                break
            shutil.rmtree(run, ignore_errors=True)
            whose = "Your" if run.parent.name == student else "A classmate's"
            removed.append(f"{whose} oldest run {run.name!r} was removed: the class's runs may take {total_mb:g} MB.")
    return removed


def _env_mb(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
