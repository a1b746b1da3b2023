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

This module owns those names, the rule for run names, the path resolver and the one answer to
"what kind of run is this folder"; the save and load of each kind live with their code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

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
        return run_path(str(run), root)
    check_run_name(path.name)
    return path


def is_run(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS)


def run_kind(path: str | Path) -> str:
    """ "scratch" or "finetune": the run.json's word when it has one, else the files say it (a
    fine-tuning run has labels.json, a scratch run vocab.json)."""
    path = Path(path)
    info = read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    kind = info.get("kind") if isinstance(info, dict) else None
    if kind in (SCRATCH, FINETUNE):
        return kind
    return FINETUNE if (path / LABELS_FILE).exists() and not (path / VOCAB_FILE).exists() else SCRATCH


def prepare_run_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Check a new run's folder: a valid name, and no other run there unless `overwrite`."""
    path = Path(path)
    check_run_name(path.name)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder: choose another run name.")
    if is_run(path) and not overwrite:
        raise FileExistsError(
            f"A run already exists in {path}: choose another name, resume it, or overwrite it "
            "(overwrite=True, or --overwrite on the command line)."
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Every run under `root` (default: the weights folder), scratch and fine-tuning, newest
    first. Folders that are not runs are skipped."""
    root = Path(root or weights_root())
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.name.startswith(".") or not is_run(path):
            continue
        try:
            info = read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
        except ValueError:
            info = {}
        kind = info.get("kind") or (FINETUNE if (path / LABELS_FILE).exists() else SCRATCH)
        task = info.get("task")
        if kind == SCRATCH:
            task_name = task.get("name") if isinstance(task, dict) else None
        else:  # fine-tuning: the dataset says more than "classification"
            task_name = info.get("dataset") or (task if isinstance(task, str) else None)
        step = info.get("step", info.get("steps"))
        mtime = max((p.stat().st_mtime for p in path.iterdir() if p.is_file()), default=path.stat().st_mtime)
        found.append(RunInfo(path.name, path, kind, task_name, step, info.get("final_metrics", {}), mtime))
    return sorted(found, key=lambda r: r.modified, reverse=True)
