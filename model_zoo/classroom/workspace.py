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

Disk quotas (`enforce_quotas`, after each job; `check_room`, before one):
  - a student's own runs may take STUDENT_QUOTA_MB: beyond it, that student's oldest runs go;
  - all students' runs together may take TOTAL_QUOTA_MB. Each *active* student — one with at
    least one run on disk (and the one asking) — has a fair share: the total divided by the
    active students. Beyond the total, only runs of students over their fair share are removed,
    theirs oldest first; a student within their share never loses a run to the total. When that
    cannot make room, `check_room` refuses the new job before it runs, saying why and what to
    delete (`NoRoom`).
  - a removed run is reported to its owner (`take_notices`: what, when, why), the next time they
    open the app; starter runs, class runs and runs saved from the command line are never removed.
Hidden entries (`.notices.json`, a killed save's `.<run>.tmp-*`, locks) are neither runs nor
counted.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import secrets
import shutil
import threading
import time
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
    """Megabytes of the files under `folder`, hidden entries (leftovers, locks, notices) and links
    left out."""
    total = 0
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(here, name)).st_size
    return total / 2**20


def enforce_quotas(
    root: str | Path | None = None,
    student: str | None = None,
    keep: str | Path | None = None,
    student_mb: float | None = None,
    total_mb: float | None = None,
) -> list[str]:
    """Remove `student`'s oldest runs until they are within their quota, then, while all students
    together are over the total, the oldest runs of students over their fair share (never one of a
    student within it); never `keep` (the run just saved) nor a run being trained. Each removal is
    also a notice for the run's owner (`take_notices`). Sizes are measured once. Returns one
    sentence a removed run, for the page of the job that triggered it."""
    root = Path(root or weights_root())
    student_mb, total_mb = quotas_mb(student_mb, total_mb)
    keep = Path(keep).resolve() if keep is not None else None
    sizes = student_run_sizes(root)  # {student: {run folder: MB}}, walked once
    usage = {owner: sum(runs.values()) for owner, runs in sizes.items()}
    removed: list[str] = []

    def removable(owner: str) -> list[Path]:
        runs = [r for r in sizes.get(owner, {}) if r.resolve() != keep and not is_reserved(r)]
        return sorted(runs, key=_mtime)

    def remove(run: Path, owner: str, why: str) -> None:
        shutil.rmtree(run, ignore_errors=True)
        usage[owner] -= sizes[owner].pop(run)
        whose = "Your" if owner == student else "A classmate's"
        removed.append(f"{whose} oldest run {run.name!r} was removed: {why}.")
        add_notice(root, owner, run.name, why)

    if student is not None:
        for run in removable(student):
            if usage.get(student, 0.0) <= student_mb:
                break
            remove(run, student, f"your runs may take {student_mb:g} MB at most")
    if sum(usage.values()) > total_mb:
        share = fair_share_mb(total_mb, sizes)
        oldest_first = sorted((r for owner in sizes for r in removable(owner)), key=_mtime)
        for run in oldest_first:
            owner = run.parent.name
            if sum(usage.values()) <= total_mb:
                break
            if usage[owner] > share:
                why = (
                    f"the class's runs may take {total_mb:g} MB together, and yours took more than your fair "
                    f"share of it ({share:.0f} MB: the total shared by {_active_count(sizes)} students with runs)"
                )
                remove(run, owner, why)
    return removed


class NoRoom(ValueError):
    """A new run would not fit in the disk quotas, and nobody's runs may be removed for it."""


# What a run takes on disk, by kind: a toy run is its weights, its last checkpoint (weights and
# Adam's two moments) and its attention snapshots; a fine-tuned MiniLM is ~90 MB.
_BYTES_PER_TOY_PARAMETER = 4 * 4
FINETUNE_RUN_MB = 100.0


def expected_run_mb(spec) -> float:
    """About how many MB the run a `JobSpec` writes will take (0 for a job that saves nothing)."""
    if spec.out is None:
        return 0.0
    if spec.kind == "train":
        from model_zoo.jobs.work import _parameter_count
        from model_zoo.scratch.transformer import TransformerConfig

        return 1.0 + _parameter_count(TransformerConfig(**spec.settings["model"])) * _BYTES_PER_TOY_PARAMETER / 2**20
    return FINETUNE_RUN_MB


def check_room(
    root: str | Path | None,
    student: str,
    estimate_mb: float,
    student_mb: float | None = None,
    total_mb: float | None = None,
) -> None:
    """Raise `NoRoom`, saying why and what to delete, when a new run of about `estimate_mb` of
    `student`'s cannot be saved within the quotas: larger than a student's quota, or the class's
    total is full and only runs of students within their fair share could make room. Call it
    before the job is queued."""
    root = Path(root or weights_root())
    student_mb, total_mb = quotas_mb(student_mb, total_mb)
    if estimate_mb > student_mb:
        raise NoRoom(
            f"This run would take about {estimate_mb:.0f} MB, more than the {student_mb:g} MB your runs may take "
            "together: choose a smaller model."
        )
    sizes = student_run_sizes(root)
    sizes.setdefault(student, {})
    usage = {owner: sum(runs.values()) for owner, runs in sizes.items()}
    usage[student] += estimate_mb
    used = sum(usage.values())
    if used <= total_mb:
        return
    share = fair_share_mb(total_mb, sizes, also=student)
    # what the total quota would remove after the job: other students' runs beyond their shares
    freeable = sum(max(0.0, mb - share) for owner, mb in usage.items() if owner != student)
    if used - freeable <= total_mb:
        return
    shares = f"{share:.0f} MB each for {_active_count(sizes, student)} students with runs"
    if usage[student] > share:
        why = (
            f"with it your runs would take {usage[student]:.0f} MB, more than your fair share of the {total_mb:g} MB "
            f"the class's runs may use ({shares}), and a classmate's runs within their share are never removed"
        )
    else:
        why = (
            f"the class's runs take {used - estimate_mb:.0f} MB of the {total_mb:g} MB they may use, and every "
            f"student is within their fair share ({shares}), so nobody's runs are removed to make room"
        )
    mine = sorted(sizes[student], key=_mtime)
    what = (
        f"Deleting a run of yours you no longer need makes room (oldest first: {', '.join(r.name for r in mine[:3])}): "
        "ask your teacher to delete it, then press the button again."
        if mine
        else "You have no runs to delete: choose a smaller model, or ask your teacher to make room."
    )
    raise NoRoom(f"There is no room for this run: {why}. {what}")


def student_run_sizes(root: str | Path) -> dict[str, dict[Path, float]]:
    """Each student's run folders and their sizes in MB (hidden folders are no runs; links are
    skipped)."""
    students = Path(root) / STUDENTS
    sizes: dict[str, dict[Path, float]] = {}
    if not students.is_dir():
        return sizes
    for folder in students.iterdir():
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        with contextlib.suppress(FileNotFoundError):
            runs = [r for r in folder.iterdir() if not r.name.startswith(".") and not r.is_symlink() and r.is_dir()]
            sizes[folder.name] = {run: folder_mb(run) for run in runs}
    return sizes


def fair_share_mb(total_mb: float, sizes: dict[str, dict[Path, float]], also: str | None = None) -> float:
    """The total quota divided by the active students: those with a run on disk (and `also`)."""
    return total_mb / max(1, _active_count(sizes, also))


def _active_count(sizes: dict[str, dict[Path, float]], also: str | None = None) -> int:
    return len({owner for owner, runs in sizes.items() if runs} | ({also} if also else set()))


# -- notices: what happened to a student's runs while they were away ---------------------------------
NOTICES_FILE = ".notices.json"  # hidden: never a run, never counted
MAX_NOTICES = 50  # a student away for a term sees the latest ones
_notices_lock = threading.Lock()  # the queue's thread adds, the pages' threads take


def add_notice(root: str | Path, student: str, run: str, why: str) -> None:
    """Keep, for `student`, that their run `run` was removed now, and why."""
    folder = Path(root) / STUDENTS / student
    with _notices_lock:
        notices = _read_notices(folder / NOTICES_FILE)
        notices.append({"run": run, "when": time.time(), "why": why})
        _write_atomically(folder / NOTICES_FILE, notices[-MAX_NOTICES:])


def take_notices(root: str | Path, student: str) -> list[dict]:
    """`student`'s notices, oldest first ({"run", "when" (seconds since the epoch), "why"}), and
    forget them: each is shown once."""
    path = Path(root) / STUDENTS / check_student_id(student) / NOTICES_FILE
    with _notices_lock:
        notices = _read_notices(path)
        if notices or path.exists():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return notices


def _read_notices(path: Path) -> list[dict]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(found, list):
        return []
    return [n for n in found if isinstance(n, dict) and isinstance(n.get("run"), str) and isinstance(n.get("why"), str)
            and isinstance(n.get("when"), int | float)]  # fmt: skip


def _write_atomically(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def quotas_mb(student_mb: float | None = None, total_mb: float | None = None) -> tuple[float, float]:
    """(a student's quota, the class's total) in MB: the values given, else the server's
    WORKBENCH_STUDENT_QUOTA_MB / WORKBENCH_TOTAL_QUOTA_MB, else STUDENT_QUOTA_MB / TOTAL_QUOTA_MB."""
    return (
        student_mb if student_mb is not None else _env_mb("WORKBENCH_STUDENT_QUOTA_MB", STUDENT_QUOTA_MB),
        total_mb if total_mb is not None else _env_mb("WORKBENCH_TOTAL_QUOTA_MB", TOTAL_QUOTA_MB),
    )


def _env_mb(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
