"""Small helpers shared by the library: atomic writes, run names, the device."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

# Where saved runs live unless the caller says otherwise (the app, the CLI and the tests agree).
WEIGHTS_DIR = Path(os.environ.get("WORKBENCH_WEIGHTS_DIR", Path(__file__).resolve().parent.parent / "weights"))

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it or save the run again.") from err


def check_run_name(name: str) -> str:
    """A run name is one folder name: letters, digits, '.', '_' or '-', no path tricks."""
    if not isinstance(name, str) or not _RUN_NAME.match(name) or name in {".", ".."} or ".." in name:
        raise ValueError(
            f"Run name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', no '..', no spaces)."
        )
    return name


def run_dir(name: str, root: str | Path | None = None) -> Path:
    """The folder of run `name` under `root` (default `weights/`), after checking the name."""
    return Path(root or WEIGHTS_DIR) / check_run_name(name)
