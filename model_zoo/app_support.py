"""What the Streamlit app needs besides the library's own calls, kept out of the pages so they stay
UI only and so it can be tested without Streamlit (this module never imports it).

- `device_description()`: which device runs, in words.
- `weights_root()`: where saved runs live, read from the environment at call time.
- `BackgroundJob` / `start_job`: long work (training, fine-tuning) in a thread, so a user's page
  keeps drawing while it runs and can stop it; `TrainingSlots` caps how many run at once in the
  process, so a shared Space does not run out of memory ("busy" instead of a crash).
- `shape_trace(...)`: the shape of an example input after every stage of the scratch model,
  measured with forward hooks during a real forward pass.
- `speed_against_torch(...)`: forward-pass time of the scratch model and `nn.Transformer` with
  the same weights.
- `file_columns(...)`: the column names of an uploaded CSV / JSON-lines file, for column pickers.

Shapes: B batch, S source length, T target length, H heads, D d_model, V vocabulary.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

# -- environment ----------------------------------------------------------------------------------
DEFAULT_MAX_TRAININGS = 2  # a free CPU Space has 2 cores and 16 GB: two trainings share them fairly


def device_description() -> str:
    """"CUDA: NVIDIA H100 80GB HBM3" or "CPU (2 threads)": what the app tells the user."""
    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    return f"CPU ({torch.get_num_threads()} threads)"


def weights_root() -> Path:
    """The folder of saved runs: `WORKBENCH_WEIGHTS_DIR` when set (read now, not at import), else
    the repository's `weights/`."""
    from model_zoo.utils import WEIGHTS_DIR

    env = os.environ.get("WORKBENCH_WEIGHTS_DIR")
    return Path(env) if env else WEIGHTS_DIR


def error_message(err: BaseException) -> str:
    """One line for the page: our own errors already say what to do; others get their type."""
    if isinstance(err, ValueError | FileNotFoundError | FileExistsError | OSError | RuntimeError) and str(err):
        return str(err)
    return f"Unexpected {type(err).__name__}: {err}"


# -- background work and the training limit --------------------------------------------------------
class Busy(RuntimeError):
    """Every training slot of this process is taken."""


class TrainingSlots:
    """At most `limit` trainings at once in this process; `acquire` never waits."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit={limit} must be at least 1.")
        self.limit = limit
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> None:
        with self._lock:
            if self._in_use >= self.limit:
                raise Busy(
                    f"The workbench is busy: {self._in_use} of {self.limit} training slots are in use "
                    "on this server. Wait for one to finish (a minute or so) and press the button again."
                )
            self._in_use += 1

    def release(self) -> None:
        with self._lock:
            self._in_use = max(0, self._in_use - 1)


def _slot_limit() -> int:
    try:
        return max(1, int(os.environ.get("WORKBENCH_MAX_TRAININGS", DEFAULT_MAX_TRAININGS)))
    except ValueError:
        return DEFAULT_MAX_TRAININGS


SLOTS = TrainingSlots(_slot_limit())  # one per process: every user's session shares it


@dataclass
class BackgroundJob:
    """Work running in a thread. The work gets `on_step(metrics)` and `should_stop()`; the page
    reads `metrics` (appended by the thread) and `status` on each rerun."""

    name: str
    total_steps: int | None = None
    metrics: list[dict] = field(default_factory=list)
    status: str = "starting"  # starting | running | done | stopped | failed
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running")

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> list[dict]:
        """A copy of the metrics so far (the thread keeps appending)."""
        return list(self.metrics)

    def progress(self) -> float:
        """Fraction done, from the last step and the total (`total_steps`, or the metrics' own
        "total_steps" when the work only knows it once it has started, as fine-tuning does)."""
        last = self.metrics[-1] if self.metrics else {}
        total = last.get("total_steps") or self.total_steps
        if not last or not total:
            return 0.0 if self.running else 1.0
        return min(1.0, last.get("step", 0) / total)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work ends (tests, benchmarks); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


def start_job(name: str, work: Callable[[Callable[[dict], None], Callable[[], bool]], Any], total_steps: int | None = None, slots: TrainingSlots | None = None) -> BackgroundJob:
    """Run `work(on_step, should_stop)` in a daemon thread holding one training slot; raises `Busy`
    at once when none is free. The job ends "done", "stopped" (asked to) or "failed" (with
    `error`, a message for the page; no traceback)."""
    slots = slots or SLOTS
    slots.acquire()
    job = BackgroundJob(name, total_steps)

    def run() -> None:
        job.status = "running"
        try:
            job.result = work(job.metrics.append, job._stop.is_set)
            job.status = "stopped" if job._stop.is_set() else "done"
        except Exception as err:  # the page shows the message; the thread must never die silently
            job.error = error_message(err)
            job.status = "failed"
        finally:
            job.finished = time.time()
            slots.release()

    job._thread = threading.Thread(target=run, name=f"workbench-{name}", daemon=True)
    try:
        job._thread.start()
    except BaseException:
        slots.release()
        raise
    return job


# -- the Build page: shapes through the model ------------------------------------------------------
_SYMBOLS_ENCODER = "(B, S, D)"
_SYMBOLS_DECODER = "(B, T, D)"


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else "—"


def shape_trace(model, src: torch.Tensor, tgt_in: torch.Tensor) -> list[dict]:
    """Run `model` once on src (B, S) and tgt_in (B, T) and record, in the order they ran, every
    stage's input and output shape (and attention weights' shape), with the output's mean and std.

    The numbers come from forward hooks on the real modules: embeddings, positional encoding, each
    block's attention and feed-forward, each block, the final norms and the output layer.
    """
    stages: list[tuple[str, nn.Module, str, str]] = [
        ("source embedding × √D", model.src_embed, "(B, S)", _SYMBOLS_ENCODER),
        ("target embedding × √D", model.tgt_embed, "(B, T)", _SYMBOLS_DECODER),
        ("positional encoding (+ dropout)", model.positional_encoding, "", ""),
    ]
    for i, block in enumerate(model.encoder.layers):
        stages += [
            (f"encoder {i}: self-attention", block.self_attn, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER),
            (f"encoder {i}: feed-forward", block.feed_forward, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER),
            (f"encoder {i}: block output (residual + norm)", block, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER),
        ]
    stages.append(("encoder: final LayerNorm", model.encoder.norm, _SYMBOLS_ENCODER, _SYMBOLS_ENCODER))
    for i, block in enumerate(model.decoder.layers):
        stages += [
            (f"decoder {i}: masked self-attention", block.self_attn, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
            (f"decoder {i}: cross-attention", block.cross_attn, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
            (f"decoder {i}: feed-forward", block.feed_forward, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
            (f"decoder {i}: block output (residual + norm)", block, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
        ]
    stages += [
        ("decoder: final LayerNorm", model.decoder.norm, _SYMBOLS_DECODER, _SYMBOLS_DECODER),
        ("output layer (generator)", model.generator, _SYMBOLS_DECODER, "(B, T, V)"),
    ]
    names = {id(module): name for name, module in model.named_modules()}
    rows: list[dict] = []
    handles = []

    def hook(module, inputs, output, stage: str, symbols_in: str, symbols_out: str):
        out, weights = (output[0], output[1]) if isinstance(output, tuple) else (output, None)
        if module is model.positional_encoding:  # called twice: source, then target
            side = "source" if not any(r["module"] == "positional_encoding" for r in rows) else "target"
            stage = f"{side} positional encoding (+ dropout)"
            symbols_in = symbols_out = _SYMBOLS_ENCODER if side == "source" else _SYMBOLS_DECODER
        rows.append(
            {
                "step": len(rows) + 1,
                "stage": stage,
                "module": names.get(id(module), type(module).__name__),
                "input shape": _shape(inputs[0]) if inputs else "—",
                "output shape": _shape(out),
                "shape in symbols": f"{symbols_in} → {symbols_out}",
                "attention weights": _shape(weights) if isinstance(module, _attention_types()) else "",
                "output mean": float(out.float().mean()),
                "output std": float(out.float().std()) if out.numel() > 1 else 0.0,
            }
        )

    for stage, module, symbols_in, symbols_out in stages:
        handles.append(
            module.register_forward_hook(
                lambda m, i, o, s=stage, a=symbols_in, b=symbols_out: hook(m, i, o, s, a, b)
            )
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(src, tgt_in, return_attention=True)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


def _attention_types() -> tuple[type, ...]:
    from model_zoo.attention import MultiHeadAttention

    return (MultiHeadAttention,)


def example_input(cfg, src_len: int = 6, tgt_len: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random source (1, S) and target input (1, T) of real token ids (no padding) for `cfg`."""
    g = torch.Generator().manual_seed(seed)
    low = 1 if cfg.pad_id == 0 else 0
    for name, length in (("source length", src_len), ("target length", tgt_len)):
        if not 1 <= length <= cfg.max_len:
            raise ValueError(f"The {name} {length} must be between 1 and max_len={cfg.max_len}.")
    src = torch.randint(low, max(cfg.src_vocab_size, low + 1), (1, src_len), generator=g)
    tgt = torch.randint(low, max(cfg.tgt_vocab_size, low + 1), (1, tgt_len), generator=g)
    return src, tgt


# -- scratch model against nn.Transformer: speed --------------------------------------------------------
def speed_against_torch(
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 2,
    d_ff: int = 256,
    vocab_size: int = 32,
    batch: int = 16,
    length: int = 32,
    iters: int = 10,
    norm_first: bool = False,
    seed: int = 0,
) -> dict:
    """Forward-pass time of `nn.Transformer` and the scratch model holding the same weights
    (copied with `interop.from_torch`), on one random batch, on the CPU; and the largest logit
    difference. Ratios only mean something within one call."""
    from model_zoo.interop import random_pair

    if iters < 1 or batch < 1 or length < 1:
        raise ValueError("iters, batch and length must each be at least 1.")
    pair = random_pair(d_model, n_heads, n_layers, d_ff, vocab_size, norm_first, seed)
    src = torch.randint(1, vocab_size, (batch, length))
    tgt_in = torch.randint(1, vocab_size, (batch, length))

    def run_torch():
        return pair.reference_logits(src, tgt_in)

    def run_ours():
        return pair.ours(src, tgt_in).logits

    def seconds(fn) -> float:
        with torch.no_grad():
            fn()  # warm-up
            start = time.perf_counter()
            for _ in range(iters):
                fn()
        return (time.perf_counter() - start) / iters

    with torch.no_grad():
        diff = float((run_ours() - run_torch()).abs().max())
    torch_s, ours_s = seconds(run_torch), seconds(run_ours)
    tokens = 2 * batch * length
    return {
        "torch_ms": torch_s * 1000,
        "scratch_ms": ours_s * 1000,
        "torch_tokens_per_s": tokens / torch_s,
        "scratch_tokens_per_s": tokens / ours_s,
        "scratch_over_torch_time": ours_s / torch_s,
        "max_abs_diff": diff,
        "parameters": pair.ours.num_parameters(),
    }


# -- uploads --------------------------------------------------------------------------------------
UPLOAD_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")


def file_columns(path: str | Path, max_lines: int = 50) -> list[str]:
    """The column names of an uploaded CSV/TSV or JSON-lines file, for the column pickers: read by
    the same parser as the fine-tuning data, on its first `max_lines` lines only."""
    path = Path(path)
    if path.suffix.lower() not in UPLOAD_SUFFIXES:
        raise ValueError(f"{path.name}: unknown file type {path.suffix.lower()!r}; upload a .csv or a .jsonl file.")
    from model_zoo.finetune_data import read_columns

    return read_columns(path, max_lines)


def step_tables(step, head: int | None = None):
    """A `DecodeStep` as two tables for the page: the top-k next tokens (rank, token, probability,
    chosen) and this step's cross-attention over the source in the columns of
    `inspection.follow_token` (one row per layer, head and source token), so
    `charts.follow_token_chart` draws it. `head=None` keeps every head."""
    import pandas as pd

    from model_zoo.inspection import token_labels

    top = pd.DataFrame(
        {
            "rank": range(1, len(step.top_tokens) + 1),
            "token": step.top_tokens,
            "probability": step.top_probs,
            "chosen": [t == step.token for t in step.top_tokens],
        }
    )
    if step.cross_attention is None:
        return top, None
    cross = step.cross_attention.float()  # (L, H, S)
    labels = token_labels(step.source_tokens)
    rows = []
    for layer in range(cross.size(0)):
        for h in range(cross.size(1)):
            if head is not None and h != head:
                continue
            for j, weight in enumerate(cross[layer, h].tolist()):
                rows.append(("cross", layer, h, f"L{layer} H{h}", step.position, step.token, j, step.source_tokens[j], labels[j], weight))
    columns = ["kind", "layer", "head", "layer_head", "token_pos", "token", "other_pos", "other_token", "other", "weight"]
    return top, pd.DataFrame(rows, columns=columns)


def store_upload(filename: str, data: bytes, folder: str | Path | None = None, max_bytes: int = 50 * 1024 * 1024) -> Path:
    """Write an uploaded file to a private temporary folder (never under its own name's path: only
    the suffix is kept) and return the path the data loaders read. Wrong type, empty or too big
    is a ValueError that says what to upload instead."""
    import tempfile

    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"{filename}: unknown file type {suffix or '(none)'!r}; upload a .csv or a .jsonl file.")
    if not data:
        raise ValueError(f"{filename} is empty.")
    if len(data) > max_bytes:
        raise ValueError(f"{filename} is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit: upload a sample of it.")
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="workbench_upload_"))
    path = folder / f"upload{suffix}"
    from model_zoo.utils import atomic_write_bytes

    atomic_write_bytes(path, data)
    return path


def confusion_frame(matrix: list[list[int]], label_names: list[str]):
    """A confusion matrix (counts[true][predicted]) as a long table for a heatmap: true, predicted,
    count, and the share of the true class's examples."""
    import pandas as pd

    rows = []
    for t, row in enumerate(matrix):
        total = sum(row) or 1
        for p, count in enumerate(row):
            rows.append({"true": label_names[t], "predicted": label_names[p], "count": int(count), "share": count / total})
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])
