"""Whose runs are whose when a class shares one server.

Under the weights folder:

    _examples/<run>            starter runs, made by the project's own code: everyone reads them
    _class/<run>               runs a teacher published to the class: everyone reads them
    _students/<student>/<run>  each student's own runs: only they see, write and delete them
    <run>                      runs saved from the command line on this machine: everyone reads them

A student (one browser session, or the same link opened again) has a `Workspace`: the runs they
may read, and the one folder they may write, so nothing a student types can touch another's run.
The underscore folders can never be run names (a run name starts with a letter or a digit).

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
import secrets
import shutil
import threading
import time
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
    student_mb = student_mb if student_mb is not None else _env_mb("WORKBENCH_STUDENT_QUOTA_MB", STUDENT_QUOTA_MB)
    total_mb = total_mb if total_mb is not None else _env_mb("WORKBENCH_TOTAL_QUOTA_MB", TOTAL_QUOTA_MB)
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
    student_mb = student_mb if student_mb is not None else _env_mb("WORKBENCH_STUDENT_QUOTA_MB", STUDENT_QUOTA_MB)
    total_mb = total_mb if total_mb is not None else _env_mb("WORKBENCH_TOTAL_QUOTA_MB", TOTAL_QUOTA_MB)
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


def _env_mb(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
