"""The run folder: where saved runs live, what their files are called, and what kind each is.

One folder a run under the weights folder (`weights/`, or `WORKBENCH_WEIGHTS_DIR`), with Hugging
Face's file names for the model:

    scratch run (model_zoo.toy.runs)         fine-tuning run (model_zoo.hf.finetune)
    config.json, model.safetensors          config.json, model.safetensors, tokenizer files
    vocab.json                              labels.json
    history.json, train_config.json         history.json, finetune_config.json
    trainer_state.safetensors/.json         metrics.json, comparison.json
    attention_snapshots.safetensors
    run.json {"kind": "scratch", ...}       run.json {"kind": "finetune", ...}

This module owns those names, the rule for run names, the path resolvers, the one answer to
"what kind of run is this folder", and how a run reaches the disk: whole or not at all
(`write_run`: a temporary folder renamed into place) under a name reserved for one job at a time
(`reserve`), what a killed save leaves behind tidied in every folder of runs (`clean_all_leftovers`,
which keeps a save still running), and whether a run can be read (`check_files`: every JSON file
against its schema in `model_zoo.run_schema`; `read_run_file` is how loaders read them). The save and
load of each kind live with their code (`model_zoo.toy.runs`, `model_zoo.hf.finetune`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from model_zoo.run_schema import check_finetune_weights, check_json
from model_zoo.utils import read_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
RUN_FILE = "run.json"
HISTORY_FILE = "history.json"
# scratch runs
VOCAB_FILE = "vocab.json"
TRAIN_CONFIG_FILE = "train_config.json"
STATE_TENSORS_FILE = "trainer_state.safetensors"
STATE_FILE = "trainer_state.json"
ATTENTION_SNAPSHOTS_FILE = "attention_snapshots.safetensors"  # a probe's attention at each evaluation
# fine-tuning runs
LABELS_FILE = "labels.json"
FINETUNE_CONFIG_FILE = "finetune_config.json"
METRICS_FILE = "metrics.json"
COMPARISON_FILE = "comparison.json"

SCRATCH, FINETUNE = "scratch", "finetune"
RUN_MARKERS = (RUN_FILE, CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE, LABELS_FILE)
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Hidden companions of run NAME in its parent folder: never listed, never valid run names. A
# temporary or moved-aside folder carries its writer's process id (`.NAME.tmp-p4242-…`), so tidying
# can tell a save still running (kept) from the leftover of a killed one (removed).
_TMP, _OLD, _LOCK = ".{}.tmp-", ".{}.old-", ".{}.lock"
_LEFTOVER = re.compile(r"^\.(.+)\.(tmp|old)-(?:p(\d+)-)?")
LIVE_SAVE_MAX_S = 6 * 3600  # a save takes seconds; a "live" writer older than this is a reused process id
SYMLINK_REFUSED = "it is a symbolic link: runs are plain folders inside the weights folder"
_DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "weights"


def weights_root() -> Path:
    """The folder of saved runs: `WORKBENCH_WEIGHTS_DIR` when set (read now, not at import), else
    the repository's `weights/`."""
    env = os.environ.get("WORKBENCH_WEIGHTS_DIR")
    return Path(env) if env else _DEFAULT_ROOT


def check_run_name(name: str) -> str:
    """A run name is one folder name: letters, digits, '.', '_' or '-', no path tricks."""
    if not isinstance(name, str) or not _RUN_NAME.match(name) or ".." in name:
        raise ValueError(
            f"Run name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', no '..', no spaces)."
        )
    return name


def run_path(name: str, root: str | Path | None = None) -> Path:
    """The folder of run `name` (a bare name, as a user types it) under `root` (default: the
    weights folder). Names with '/', '..', spaces or odd characters are refused."""
    return Path(root or weights_root()) / check_run_name(name)


def resolve_run_dir(run: str | Path, root: str | Path | None = None) -> Path:
    """A run given as a path (`weights/copy`, `/tmp/x/copy`: the command line) or a bare name
    (`copy`, looked up under `root`). The folder's name must be a valid run name."""
    path = Path(run)
    if len(path.parts) == 1 and not path.exists():
        path = run_path(str(run), root)
    check_run_name(path.name)
    if path.is_symlink():  # the listing's rule too (`_run_info`): one rule for every way in
        raise ValueError(f"Run {path.name!r} cannot be opened: {SYMLINK_REFUSED}.")
    return path


def output_dir(out: str | Path, root: str | Path | None = None) -> Path:
    """Where a run the user names (`--out copy`, the app's run-name box) is written: always inside
    the weights folder. A bare name goes under `root`; `weights/copy` is accepted when its folder is
    the weights folder itself; anything else ('../escape', '/tmp/x', 'a/b', '..') is refused, so
    nothing a user types writes elsewhere."""
    root = Path(root or weights_root())
    text = str(out).strip()
    path = Path(text)
    if len(path.parts) <= 1 and not path.is_absolute():  # a bare name ('.' has no parts at all)
        return run_path(text, root)
    check_run_name(path.name)
    if path.parent.resolve() != root.resolve():
        raise ValueError(
            f"{text!r} is outside the weights folder {root}: give a run name (e.g. --out copy), "
            "and the run is saved there. To keep runs elsewhere, set WORKBENCH_WEIGHTS_DIR."
        )
    return root / path.name


def is_run(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS)


def run_kind(path: str | Path, info: dict | None = None) -> str:
    """ "scratch" or "finetune": the run.json's word when it has one (`info`, when the caller has
    read it already), else the files say it (a fine-tuning run has labels.json, a scratch run
    vocab.json). The one place a run's kind is decided."""
    path = Path(path)
    if info is None:
        info = read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    kind = info.get("kind") if isinstance(info, dict) else None
    if kind in (SCRATCH, FINETUNE):
        return kind
    return FINETUNE if (path / LABELS_FILE).exists() and not (path / VOCAB_FILE).exists() else SCRATCH


def require_kind(path: str | Path, kind: str) -> None:
    """A clear error when run folder `path` is not of `kind` (a fine-tuning run also needs its labels)."""
    path = Path(path)
    found = run_kind(path)
    if kind == FINETUNE and (found != FINETUNE or not (path / LABELS_FILE).is_file()):
        raise FileNotFoundError(
            f"{path} is not a fine-tuning run: it has no {LABELS_FILE} (scratch runs have {VOCAB_FILE}); "
            "make one with `python -m model_zoo finetune --out NAME`."
        )
    if kind == SCRATCH and found != SCRATCH:
        raise ValueError(f"{path} is a fine-tuning run: load it with model_zoo's fine-tuning functions.")


def check_new_run(path: str | Path, overwrite: bool = False) -> Path:
    """Check where a new run will go, before any work: a valid name, and no other run there unless
    `overwrite`. Creates nothing (the run appears, whole, at its first save)."""
    path = Path(path)
    check_run_name(path.name)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder: choose another run name.")
    if is_run(path) and not overwrite:
        raise FileExistsError(
            f"A run already exists in {path}: choose another name, resume it, or overwrite it "
            "(overwrite=True, or --overwrite on the command line)."
        )
    return path


# -- a run reaches the disk whole, under a name one job holds -------------------------------------
def write_run(path: str | Path, write: Callable[[Path], None], *, replace: bool = False) -> Path:
    """Write a whole run with `write(folder)` into a temporary folder beside `path`, then rename it
    into place: a crash (even SIGKILL) leaves either no run or a complete one, never half.

    An existing run at `path` is an error unless `replace`; then it stays whole until the new one
    is complete, is moved aside (`.NAME.old-…`) in one rename, and deleted after the new one is in
    place. `clean_leftovers` puts a moved-aside run back if a crash came between the two renames."""
    path = Path(path)
    check_run_name(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise FileExistsError(f"A run already exists in {path}: choose another name or overwrite it.")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{_TMP.format(path.name)}p{os.getpid()}-"))
    try:
        write(tmp)
        _fsync_folder(tmp)
        old = None
        if path.exists():
            old = path.parent / f"{_OLD.format(path.name)}p{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
        os.rename(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a folder's files and entries durable before a rename publishes them."""
    for file in folder.iterdir():
        if file.is_file():
            with open(file, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_leftovers(folder: str | Path | None = None, older_than_s: float = 600.0) -> list[str]:
    """Tidy what crashes left in one folder of runs: temporary folders of writes that never finished,
    and runs moved aside by a replacement that did not finish (put back when their run is missing,
    deleted otherwise). Returns what it did, in words.

    A leftover whose writer is still alive (its process id is in its name) is a save in progress in
    another process, and is kept; one whose writer is gone is tidied at once. A leftover without a
    process id in its name is tidied once it is `older_than_s` old."""
    folder = Path(folder or weights_root())
    done: list[str] = []
    if not folder.is_dir():
        return done
    now = time.time()
    for entry in sorted(folder.iterdir()):
        match = _LEFTOVER.match(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink():
            continue
        name, what, pid = match.groups()
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue  # gone already: its writer finished
        if (age < LIVE_SAVE_MAX_S and _alive(int(pid))) if pid else age < older_than_s:
            continue
        if what == "old" and not (folder / name).exists():
            os.rename(entry, folder / name)
            done.append(f"restored {name} (a replacement of it was interrupted)")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed an unfinished write of {name}")
    return done


def clean_all_leftovers(root: str | Path | None = None, older_than_s: float = 600.0) -> list[str]:
    """`clean_leftovers` in every folder of runs under `root` (default: the weights folder): the root
    itself and the folders below it that hold runs (`_examples`, `_class`, each `_students/<id>`),
    so what a killed save leaves in a student's folder never counts toward their quota for ever.
    Returns what it did, each line starting with the folder."""
    root = Path(root or weights_root())
    folders = [root]
    for place in _folders_of_runs(root, prefix="_"):  # _examples, _class, _students
        folders += [place, *_folders_of_runs(place)]  # _students/<id>
    return [f"{folder}: {line}" for folder in folders for line in clean_leftovers(folder, older_than_s)]


def _folders_of_runs(folder: Path, prefix: str = "") -> list[Path]:
    """The plain sub-folders of `folder` that are not runs (nor hidden), whose names start with `prefix`."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.startswith(prefix)
        and not p.name.startswith(".")
        and p.is_dir()
        and not p.is_symlink()
        and not is_run(p)
    )


@contextlib.contextmanager
def reserve(path: str | Path, *, overwrite: bool = False, owner: str = "") -> Iterator[Path]:
    """Hold run name `path` for one job from the moment it starts until it ends, so two jobs
    (two students pressing Train at the same second) never write the same run: the second is
    refused at once with a message. A lock file (`.NAME.lock`, created exclusively) marks the hold;
    one left by a process that died is taken over. An existing run is an error unless `overwrite`."""
    path = Path(path)
    check_run_name(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_run(path) and not overwrite:
        raise FileExistsError(
            f"A run called {path.name!r} already exists: choose another name, or overwrite it "
            "(the app's 'overwrite' box, or --overwrite on the command line)."
        )
    lock = path.parent / _LOCK.format(path.name)
    _take(lock, path.name, owner)
    try:
        yield path
    finally:
        lock.unlink(missing_ok=True)


def is_reserved(path: str | Path) -> bool:
    """Whether a live job holds run name `path`."""
    path = Path(path)
    holder = _lock_holder(path.parent / _LOCK.format(path.name))
    return holder is not None and _alive(holder.get("pid", -1))


def _take(lock: Path, name: str, owner: str) -> None:
    record = json.dumps({"pid": os.getpid(), "owner": owner, "since": time.time()}).encode()
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None and _alive(holder.get("pid", -1)):
                raise FileExistsError(
                    f"Another job is already training a run called {name!r}: choose another name, or wait for it "
                    "to finish."
                ) from None
            lock.unlink(missing_ok=True)  # its process died: the name is free again
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(record)
        return
    raise FileExistsError(f"The run name {name!r} is being taken by another job at this moment: try again.")


def _lock_holder(lock: Path) -> dict | None:
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None if not lock.exists() else {"pid": -1}
    return holder if isinstance(holder, dict) else {"pid": -1}


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


# -- is a run folder readable? ------------------------------------------------------------------------
def safetensors_header(path: str | Path) -> dict:
    """The tensor table of a safetensors file ({name: {"dtype", "shape", "data_offsets"}}), read
    without loading a tensor; a truncated or damaged file is a ValueError that says so."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ValueError(f"{path.name} is truncated ({size} bytes): save the run again.")
        (n,) = struct.unpack("<Q", raw)
        if n > min(size - 8, 100_000_000):
            raise ValueError(f"{path.name} is not a safetensors file (or is truncated): save the run again.")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path.name} has a damaged header ({err}): save the run again.") from err
    tensors = {k: v for k, v in header.items() if k != "__metadata__"} if isinstance(header, dict) else None
    if not tensors or not all(_tensor_entry(v) for v in tensors.values()):
        raise ValueError(f"{path.name} is not a safetensors file: save the run again.")
    end = 8 + n + max(v["data_offsets"][1] for v in tensors.values())
    if end > size:
        raise ValueError(f"{path.name} is truncated ({size:,} of {end:,} bytes): save the run again.")
    return tensors


def read_run_file(path: str | Path, name: str, kind: str | None = None):
    """File `name` of run folder `path`, parsed and checked against its schema (`model_zoo.run_schema`):
    what every loader reads a run's JSON with. A damaged file is a ValueError that names it."""
    path = Path(path)
    value = read_json(path / name)
    check_json(name, value, kind or run_kind(path))
    return value


def _tensor_entry(entry) -> bool:
    """A safetensors header's entry: {"dtype": str, "shape": [int...], "data_offsets": [begin, end]}."""

    def ints(value) -> bool:
        return isinstance(value, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)

    return (
        isinstance(entry, dict)
        and isinstance(entry.get("dtype"), str)
        and ints(entry.get("shape"))
        and ints(entry.get("data_offsets"))
        and len(entry["data_offsets"]) == 2
    )


def check_files(path: str | Path) -> str | None:
    """What is wrong with run folder `path` as far as its files can tell without loading the model
    (None: nothing): not a symbolic link, each JSON file parses and has its schema's shape
    (`model_zoo.run_schema`), the files its kind needs are there, the weights file is whole, and a
    fine-tuning run's config and labels fit its weights. `model_zoo.toy.runs.check_run` adds the
    scratch model's shapes."""
    path = Path(path)
    if path.is_symlink():
        return SYMLINK_REFUSED
    try:
        kind = run_kind(path)
        for file in sorted(path.glob("*.json")):
            read_run_file(path, file.name, kind)
        needed = (
            [CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE] if kind == SCRATCH else [CONFIG_FILE, WEIGHTS_FILE, LABELS_FILE]
        )
        missing = [f for f in needed if not (path / f).is_file()]
        if missing:
            return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
        tensors = safetensors_header(path / WEIGHTS_FILE)
        for file in sorted(path.glob("*.safetensors")):  # a checkpoint's state, the attention snapshots
            safetensors_header(file)
        if kind == FINETUNE:
            check_finetune_weights(read_json(path / CONFIG_FILE), read_json(path / LABELS_FILE), tensors)
    except (ValueError, OSError) as err:
        return str(err).replace(str(path) + "/", "")
    return None


@dataclass
class RunInfo:
    """One line of `list_runs`."""

    name: str
    path: Path
    kind: str  # "scratch" or "finetune"
    task: str | None  # scratch: the task's name; fine-tune: the dataset or model, when recorded
    step: int | None
    metrics: dict
    modified: float  # seconds since the epoch
    error: str | None = None  # why the run cannot be read, when it cannot

    @property
    def readable(self) -> bool:
        return self.error is None


def list_runs(root: str | Path | None = None, check: Callable[[Path], str | None] = check_files) -> list[RunInfo]:
    """Every run under `root` (default: the weights folder), scratch and fine-tuning, newest first,
    each marked with what is wrong with it (`check`; readable runs have `error=None`). A damaged
    run never stops the listing. Folders that are not runs, and hidden ones, are skipped."""
    root = Path(root or weights_root())
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.name.startswith((".", "_")) or not is_run(path):
            continue
        found.append(_run_info(path, check))
    return sorted(found, key=lambda r: r.modified, reverse=True)


def _run_info(path: Path, check: Callable[[Path], str | None]) -> RunInfo:
    error = None
    try:
        check_run_name(path.name)
    except ValueError:
        error = "its folder name is not a valid run name (letters, digits, '.', '_' or '-'): rename the folder"
    if path.is_symlink() and error is None:
        error = SYMLINK_REFUSED
    try:
        info = read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    except (ValueError, OSError):
        info = {}
    info = info if isinstance(info, dict) else {}
    kind = run_kind(path, info)
    task = info.get("task")
    if kind == SCRATCH:
        task_name = task.get("name") if isinstance(task, dict) else None
    else:  # fine-tuning: the dataset says more than "classification"
        task_name = info.get("dataset") or (task if isinstance(task, str) else None)
    step = info.get("step", info.get("steps"))
    metrics = info.get("final_metrics") if isinstance(info.get("final_metrics"), dict) else {}
    metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    try:
        mtime = max((p.stat().st_mtime for p in path.iterdir() if p.is_file()), default=path.stat().st_mtime)
    except OSError:
        mtime = 0.0
    if error is None:
        error = check(path)
    return RunInfo(
        name=path.name,
        path=path,
        kind=kind,
        task=str(task_name) if task_name is not None else None,
        step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        metrics=metrics,
        modified=mtime,
        error=error,
    )
