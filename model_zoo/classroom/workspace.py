"""Whose runs are whose when a class shares one server.

Under the weights folder:

    _examples/<run>            starter runs, made by the project's own code: everyone reads them
    _class/<run>               runs a teacher published to the class: everyone reads them
    _students/<student>/<run>  each student's own runs: only they see, write and delete them
    <run>                      runs saved from the command line on this machine: everyone reads them

A student (one browser session, or the same link opened again) has a `Workspace`: the runs they
may read, and the one folder they may write, so nothing a student types can touch another's run.
`Workspace.open_run` is the app's one gate: every link, picker and loader opens a run through it,
and whatever it refuses gets the same message, so a refusal tells nothing about the server's
folders; `Workspace.resolve_model` does the same for a model typed on the Fine-tune page.
The underscore folders can never be run names (a run name starts with a letter or a digit).
Publishing to the class (`publish`, `unpublish`) is the teacher's: the Teacher page asks for the
passphrase (`classroom.admission`), the command line runs on the server itself.
Disk quotas, one per student and one for all students, remove the oldest student runs first and
say so.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from model_zoo.run_folder import (
    RunInfo,
    check_run_name,
    is_reserved,
    is_run,
    list_runs,
    weights_root,
    write_run,
)

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
        """Whether `path` is a run this student may open: a run folder directly inside one of their
        places (their own folder, the examples, the class's, the saved runs), after `..` and
        symbolic links are resolved, under a valid run name (never `_students` itself, never a
        hidden temporary folder)."""
        try:
            path = Path(path).resolve()
            check_run_name(path.name)
        except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
            return False
        return any(path.parent == place.folder.resolve() for place in self.places())

    def open_run(self, name_or_path: str | Path) -> Path:
        """The folder of a run this student may open, from its name (theirs first, then the
        examples, the class's, the saved ones) or its path (relative paths are read from the
        weights folder). The one gate of the app: every page link, picker and typed name opens a
        run through it. Anything else raises `RunNotVisible`, whose message is the same whether
        the folder exists or not, so it tells nothing about the server's folders."""
        text = str(name_or_path).strip()
        if text and "/" not in text and "\\" not in text:
            try:
                check_run_name(text)
            except ValueError:
                raise RunNotVisible() from None
            for place in self.places():
                candidate = place.folder / text
                if candidate.is_dir() and self.may_read(candidate):
                    return candidate.resolve()
            raise RunNotVisible()
        path = Path(text).expanduser() if text else None
        if path is not None and not path.is_absolute():
            path = self.root / path
        if path is not None and path.is_dir() and self.may_read(path):
            return path.resolve()
        raise RunNotVisible()

    def resolve_model(self, text: str) -> str:
        """What a typed model in the app may be: an offline pack's name (returned as typed), a run
        this student may open (its folder, through `open_run`), a model folder inside one of the
        folders the teacher lists in `WORKBENCH_MODEL_FOLDERS` (outside the weights folder), or a
        Hugging Face hub name ("org/name", returned as typed, never a folder of the server). Anything
        else raises `ModelRefused` with one message. The command line does not use this: there a
        local folder is the user's own."""
        from model_zoo.hf.models import OFFLINE_MODELS, OFFLINE_SUFFIX

        text = str(text).strip()
        if not text:
            raise ValueError("Type a model: a hub name, an offline model or the name of a run you can open.")
        if text.removesuffix(OFFLINE_SUFFIX) in OFFLINE_MODELS:
            return text
        try:
            return str(self.open_run(text))
        except RunNotVisible:
            pass
        folder = _teachers_model_folder(text, self.root)
        if folder is not None:
            return str(folder)
        # A hub name is looked up as a folder first by `from_pretrained` (relative to the server's
        # working folder): one that names an existing path is refused like any other path.
        if _HUB_NAME.fullmatch(text) and ".." not in text and not os.path.lexists(text):
            return text
        raise ModelRefused()

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


def _teachers_model_folder(text: str, root: Path) -> Path | None:
    """The model folder `text` names when it lies inside a folder of `WORKBENCH_MODEL_FOLDERS`
    (paths joined by os.pathsep: models the teacher put on the server for the class) and outside the
    weights folder, whose runs only `may_read` opens; else None."""
    allowed = [Path(f).expanduser().resolve() for f in os.environ.get("WORKBENCH_MODEL_FOLDERS", "").split(os.pathsep) if f.strip()]  # fmt: skip
    if not allowed or not os.path.isabs(text):
        return None
    try:
        path = Path(text).resolve()
    except (OSError, RuntimeError):
        return None
    if path.is_relative_to(root.resolve()) or not (path / "config.json").is_file():
        return None
    return path if any(path.is_relative_to(folder) and path != folder for folder in allowed) else None


_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")  # "org/name"


class RunNotVisible(PermissionError):
    """A run name or path this student may not open, or that does not exist: one message for both."""

    def __init__(self) -> None:
        super().__init__(RUN_NOT_VISIBLE)


class ModelRefused(PermissionError):
    """A typed model that is neither a hub name, an offline model, nor a run the student may open."""

    def __init__(self) -> None:
        super().__init__(MODEL_REFUSED)


RUN_NOT_VISIBLE = (
    "That run is not one you can open: it may belong to another student, have been removed, or never "
    "have existed. Pick one of the runs listed in the sidebar (yours, the examples, the class's)."
)
MODEL_REFUSED = (
    "That model cannot be opened here. Type a Hugging Face hub name (like "
    "google/bert_uncased_L-2_H-128_A-2: it needs the hub, which this server may not reach), pick an "
    "offline model from the list, or type the name of a fine-tuning run you can open (yours or the class's)."
)


def is_teacher(passphrase: str) -> bool:
    """Whether `passphrase` is the class's teacher passphrase (`WORKBENCH_TEACHER_PASSPHRASE`; no
    teacher when it is unset)."""
    expected = os.environ.get("WORKBENCH_TEACHER_PASSPHRASE", "")
    return bool(expected) and hmac.compare_digest(passphrase.encode(), expected.encode())


def teacher_enabled() -> bool:
    return bool(os.environ.get("WORKBENCH_TEACHER_PASSPHRASE", ""))


def publish(source: str | Path, root: str | Path | None = None, name: str | None = None) -> Path:
    """Copy run folder `source` (a student's, a saved or an example run under the weights folder
    `root`) into the class folder as `name` (default: its own name), where every student can open
    it. The copy appears whole or not at all. Who may publish is the caller's to check: the teacher's
    panel asks for the passphrase; the command line runs on the teacher's own machine."""
    root = Path(root or weights_root())
    source = Path(source)
    if not source.is_absolute():
        source = root / source
    source = source.resolve()
    inside = root.resolve()
    if not (source.is_relative_to(inside) and source != inside) or not is_run(source):
        raise FileNotFoundError(f"{source.name!r} is not a run in the weights folder {root}: nothing to publish.")
    if source.parent == (root / CLASS).resolve():
        raise FileExistsError(f"{source.name!r} is already a class run.")
    name = check_run_name((name or source.name).strip())
    target = root / CLASS / name
    if target.exists():
        raise FileExistsError(f"The class already has a run called {name!r}: unpublish it first, or publish under another name.")  # fmt: skip
    return write_run(target, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))


def unpublish(name: str, root: str | Path | None = None) -> None:
    """Remove run `name` from the class folder (the run it was copied from stays where it was)."""
    target = Path(root or weights_root()) / CLASS / check_run_name(str(name).strip())
    if not target.is_dir():
        raise FileNotFoundError(f"The class has no run called {name!r}.")
    shutil.rmtree(target)


def class_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The runs published to the class, newest first."""
    return list_runs(Path(root or weights_root()) / CLASS)


def every_run(root: str | Path | None = None) -> list[tuple[str, RunInfo]]:
    """Every run on the server with whose it is ("s-7kq2m9xd", "saved", "example", "class"): what
    the teacher may publish. Never raises on a damaged run (it is listed with its error)."""
    root = Path(root or weights_root())
    found = [("saved", info) for info in list_runs(root)]
    found += [("example", info) for info in list_runs(root / EXAMPLES)]
    found += [("class", info) for info in list_runs(root / CLASS)]
    students = root / STUDENTS
    for folder in sorted(students.iterdir()) if students.is_dir() else []:
        if folder.is_dir() and not folder.name.startswith("."):
            found += [(folder.name, info) for info in list_runs(folder)]
    return found


def student_usage(root: str | Path | None = None) -> dict[str, float]:
    """MB on disk of each student's folder, largest first (for the teacher's panel)."""
    students = Path(root or weights_root()) / STUDENTS
    if not students.is_dir():
        return {}
    found = {s.name: folder_mb(s) for s in students.iterdir() if s.is_dir() and not s.name.startswith(".")}
    return dict(sorted(found.items(), key=lambda item: -item[1]))


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
