"""Small helpers shared by the whole library: atomic writes, JSON, index checks, eval mode, and
the one-line error message a user sees."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn


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


MAX_JSON_BYTES = 256 * 2**20  # a run's largest JSON file (a big tokenizer.json) is tens of MB


def read_json(path: str | Path) -> Any:
    """A JSON file, parsed; a damaged one (not JSON, absurdly large, or nested so deep that parsing it
    would exhaust Python's stack) is a ValueError that names it, never a RecursionError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"{path} is too large to be a run's file ({path.stat().st_size:,} bytes); save the run again.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it or save the run again.") from err
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a run's file; delete it or save the run again.") from None


def check_index(name: str, value: int, size: int, where: str) -> None:
    """A clear error for an index out of range ("layer=3 is out of range: cross attention has 2")."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ValueError(f"{name}={value!r} is out of range: {where} has {size} (use 0 to {size - 1}).")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run `model` in eval mode (no dropout) without gradients, then put back the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with `n` torch threads, then put back the number there was. For work made of many tiny
    operations (one token decoded, a gradcheck on a few dozen numbers), where waking a second
    OpenMP thread for each costs more than the operation: `OMP_WAIT_POLICY=PASSIVE` (set in
    `model_zoo/__init__.py`) puts idle threads to sleep, and waking one took ~100 µs here."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_onednn_lock = threading.Lock()
_onednn_off = {"callers": 0, "before": True}


@contextlib.contextmanager
def without_onednn() -> Iterator[None]:
    """PyTorch's own CPU kernels instead of oneDNN's while this runs, for work made of many small
    operations (decoding one token a step). oneDNN sets up its GELU anew on every call: ~6 µs for 384
    numbers against ~1.2 µs for PyTorch's, and in a decoding step it slowed the operations around it
    too (256 characters of the Hamlet model: cached 142 → 122 ms without it, recomputed 703 → 670 ms).
    The switch is torch's process-wide one (there is no per-thread switch): callers are counted, so
    the first to enter keeps the setting there was and the last to leave puts it back. Meanwhile
    other threads of this process use PyTorch's kernels too: the same functions, to float rounding."""
    with _onednn_lock:
        if _onednn_off["callers"] == 0:
            _onednn_off["before"] = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _onednn_off["callers"] += 1
    try:
        yield
    finally:
        with _onednn_lock:
            _onednn_off["callers"] -= 1
            if _onednn_off["callers"] == 0:
                torch.backends.mkldnn.enabled = _onednn_off["before"]


def error_message(err: BaseException) -> str:
    """One line for the page or the terminal: our own errors already say what to do; others get
    their type, so a bug is never mistaken for bad input."""
    if isinstance(err, ValueError | FileNotFoundError | FileExistsError | OSError | RuntimeError) and str(err):
        return str(err)
    return f"Unexpected {type(err).__name__}: {err}"
