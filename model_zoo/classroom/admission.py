"""Who may come in when a class shares one server: which student ids may queue jobs, how many new
ids one address may make, and how fast a wrong teacher passphrase may be tried again.

Two modes, chosen by the teacher:

- **open** (the default): anyone who opens the app gets a workspace. A new id costs nothing, so each
  client address may make at most `NEW_IDS_PER_HOUR` of them an hour; a script that mints ids to
  get more queue places or more disk is stopped there.
- **roster** (`WORKBENCH_ROSTER=1`, or a roster file, `_class/.roster.json` under the weights
  folder): the teacher's panel mints the class's links, one id a student. An id that is not on the
  roster may look at everything a student sees but not queue a job.

Decisions only; the pages show them. Nothing here imports Streamlit.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

from model_zoo.classroom.workspace import CLASS, check_student_id, is_teacher, new_student_id
from model_zoo.run_folder import weights_root

log = logging.getLogger("workbench.admission")

ROSTER_FILE = ".roster.json"  # in the class folder; hidden, so it is never listed as a run
# A class of 30 behind one address (a school's NAT, a Space's proxy) opens the app once each, and
# some of them a second time (another browser, a link without ?student=): 60 an hour leaves that
# class room to spare, while a script minting ids gets 60 at most, not thousands. A bigger class
# on one address sets WORKBENCH_NEW_IDS_PER_HOUR, or uses the roster.
NEW_IDS_PER_HOUR = 60
HOUR_S = 3600.0
ASK_TEACHER = (
    "This link is not on your class's list, so you can look around but not start training. "
    "Ask your teacher for your own link (it ends in ?student=s-…) and open that one."
)


# -- the roster ---------------------------------------------------------------------------------------
def roster_path(root: str | Path | None = None) -> Path:
    return Path(root or weights_root()) / CLASS / ROSTER_FILE


def roster_mode(root: str | Path | None = None) -> bool:
    """Whether only the roster's ids may queue: `WORKBENCH_ROSTER=1`, or a roster file exists."""
    flag = os.environ.get("WORKBENCH_ROSTER", "").strip().lower() in {"1", "true", "yes", "on"}
    return flag or roster_path(root).is_file()


def read_roster(root: str | Path | None = None) -> dict[str, dict]:
    """Student id → {"label", "created"} for every id on the roster ({} when there is none). A
    damaged file raises ValueError with the reason (then nobody may queue until the teacher fixes it:
    a roster that cannot be read must not let everyone in)."""
    path = roster_path(root)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        students = data["students"]
        if not isinstance(students, dict):
            raise TypeError("'students' is not a mapping")
        for sid, entry in students.items():
            check_student_id(sid)
            if not isinstance(entry, dict):
                raise TypeError(f"the entry of {sid} is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"The class roster {path} cannot be read ({err}): mint the links again.") from err
    return students


_ROSTER_LOCK = threading.Lock()


def mint_links(labels: list[str], root: str | Path | None = None, now: float | None = None) -> dict[str, str]:
    """Give each label ("Ada", "seat 4") a student id on the roster (created if absent, written whole
    or not at all); returns label → id for every label given. A label already on the roster (matched
    without case or surrounding spaces) keeps its id, so pasting the class list again with one name
    added makes one link, not a second one for everybody. A label given twice is refused: the name is
    the teacher's only way to tell two links apart."""
    labels = [str(label).strip()[:80] for label in labels if str(label).strip()]
    if not labels:
        raise ValueError("Give at least one name (one a line) to make links for.")
    seen: dict[str, str] = {}
    for label in labels:
        if label.casefold() in seen:
            raise ValueError(
                f"{seen[label.casefold()]!r} is listed twice: tell them apart (e.g. 'Ada K.' and 'Ada M.', or "
                "seat numbers), so that each student gets the right link."
            )
        seen[label.casefold()] = label
    with _ROSTER_LOCK:
        students = read_roster(root) if roster_path(root).is_file() else {}
        known = {str(entry.get("label", "")).casefold(): sid for sid, entry in students.items()}
        made = {}
        for label in labels:
            sid = known.get(label.casefold())
            if sid is None:
                sid = new_student_id()
                while sid in students:
                    sid = new_student_id()
                students[sid] = {"label": label, "created": time.time() if now is None else now}
            made[label] = sid
        _write_roster(students, root)
    return made


def remove_from_roster(student: str, root: str | Path | None = None) -> None:
    with _ROSTER_LOCK:
        students = read_roster(root)
        if student not in students:
            raise KeyError(f"{student} is not on the roster.")
        del students[student]
        _write_roster(students, root)


def _write_roster(students: dict[str, dict], root: str | Path | None) -> None:
    path = roster_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".roster.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"students": students}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the old roster or the new one, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def queue_refusal(student: str, root: str | Path | None = None) -> str | None:
    """Why `student` may not queue a job (None: they may). Open mode: everyone may. Roster mode:
    only the roster's ids."""
    if not roster_mode(root):
        return None
    try:
        on_roster = student in read_roster(root)
    except ValueError as err:
        return f"{err} Until then nobody can start training."
    return None if on_roster else ASK_TEACHER


# -- new ids per address ---------------------------------------------------------------------------
class NewIdLimiter:
    """At most `per_hour` new student ids an hour per client address (a sliding hour). The app's
    own machine (no address: Streamlit gives none for localhost) is one person and is not limited."""

    def __init__(self, per_hour: int | None = None, clock: Callable[[], float] = time.monotonic):
        if per_hour is None:
            try:
                per_hour = int(os.environ.get("WORKBENCH_NEW_IDS_PER_HOUR", NEW_IDS_PER_HOUR))
            except ValueError:
                per_hour = NEW_IDS_PER_HOUR
        self.per_hour = per_hour
        self._clock = clock
        self._made: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, address: str | None) -> bool:
        """Whether `address` may have one more new id now; counts it when it may."""
        if address is None or self.per_hour <= 0:
            return True
        with self._lock:
            made = self._recent(address)
            if len(made) >= self.per_hour:
                log.warning("new student id refused for %s: %d made in the last hour", address, len(made))
                return False
            made.append(self._clock())
            return True

    def wait_s(self, address: str) -> float:
        """Seconds until `address` may have a new id again."""
        with self._lock:
            made = self._recent(address)
            return 0.0 if len(made) < self.per_hour else max(0.0, made[0] + HOUR_S - self._clock())

    def refusal(self, address: str) -> str:
        minutes = max(1, round(self.wait_s(address) / 60))
        return (
            f"Too many new workspaces were opened from your network in the last hour (at most {self.per_hour} an "
            "hour, so that one script cannot fill the class's queue). If you have your link (it ends in "
            f"?student=s-…), open that one: it works at once. Otherwise try again in about {minutes} min, or ask "
            "your teacher for a link."
        )

    def _recent(self, address: str) -> deque[float]:
        made = self._made[address]
        while made and made[0] <= self._clock() - HOUR_S:
            made.popleft()
        return made


# -- the teacher's passphrase --------------------------------------------------------------------------
FREE_TRIES = 3  # typos are free
MAX_DELAY_S = 60.0  # a hostile student on the teacher's own network locks the teacher out a minute at most


class PassphraseGuard:
    """Slows down guessing the teacher's passphrase. Wrong tries are counted per client address (a
    new browser session is free to make, an address is not); after `FREE_TRIES` wrong ones, each
    next try from that address must wait 1 s, 2 s, 4 s … up to `MAX_DELAY_S`, and a try made
    sooner is refused without being checked. At one try a minute, a passphrase of four random words
    is out of reach. A right passphrase clears the count. Every wrong try is logged (address and
    count, never what was typed)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._failures: dict[str, int] = defaultdict(int)
        self._next_try: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_s(self, address: str | None) -> float:
        with self._lock:
            return max(0.0, self._next_try.get(address or "local", 0.0) - self._clock())

    def check(self, address: str | None, passphrase: str) -> tuple[bool, str]:
        """(whether `passphrase` is the teacher's, a sentence for the page)."""
        key = address or "local"
        with self._lock:
            wait = self._next_try.get(key, 0.0) - self._clock()
            if wait > 0:
                log.warning("teacher passphrase try from %s refused: %.0f s to wait", key, wait)
                return False, f"Too many wrong tries: wait {wait:.0f} s, then try again."
            if is_teacher(passphrase):
                self._failures.pop(key, None)
                self._next_try.pop(key, None)
                log.info("teacher signed in from %s", key)
                return True, "Signed in as the teacher."
            self._failures[key] += 1
            failures = self._failures[key]
            delay = 0.0 if failures < FREE_TRIES else min(MAX_DELAY_S, 2.0 ** (failures - FREE_TRIES))
            self._next_try[key] = self._clock() + delay
            log.warning("wrong teacher passphrase from %s (wrong try %d, next try in %.0f s)", key, failures, delay)
            later = f" The next try is possible in {delay:.0f} s." if delay else ""
            return False, "That is not the teacher's passphrase." + later
