"""Fine-tune a pretrained Transformer on labelled sentences: one call, two training loops.

`finetune(config, out_dir)` does the whole of it, in this order, each step one call:

1. data: load the data, take a seeded stratified train/test split (`prepare.load_split`);
2. tokens: load the pretrained model with a new classification head (or T5 for text-to-text) and
   tokenize the split with its tokenizer (`prepare.load_tokens`);
3. before: score the untrained model on the test split and the probe sentences (`Prepared.score`);
4. train, with Hugging Face's `Trainer` (`loop="trainer"`, `model_zoo/hf/trainer.py`) or a plain
   PyTorch loop (`loop="custom"`, `model_zoo/hf/loop.py`): the same optimizer (AdamW), the same
   linear schedule with warmup, the same gradient clipping, the same metrics, reported through the
   same `on_step` callback;
5. after: score the trained model on the same split (`Prepared.score`), beside "before";
6. save the run folder (`save_run`):

    weights/<run>/model.safetensors, config.json    the fine-tuned model (`save_pretrained`)
    weights/<run>/tokenizer.json, ...               its tokenizer
    weights/<run>/labels.json                       the label names, index order
    weights/<run>/history.json                      every step's loss and every evaluation
    weights/<run>/finetune_config.json, run.json    how it was made, and what kind of run it is
    weights/<run>/metrics.json, comparison.json     before/after (see `model_zoo.hf.compare`)

Under `torchrun --nproc_per_node=N` (or `accelerate launch`) the Trainer runs data-parallel (DDP)
and the custom loop wraps the model in `DistributedDataParallel`; only rank 0 writes files.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from model_zoo import distributed
from model_zoo.hf import compare
from model_zoo.hf.config import FinetuneConfig
from model_zoo.hf.prepare import Prepared, load_split, load_tokens
from model_zoo.run_folder import (
    COMPARISON_FILE,
    FINETUNE,
    FINETUNE_CONFIG_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    RUN_FILE,
    check_files,
    check_new_run,
    read_run_file,
    require_kind,
    write_run,
)
from model_zoo.utils import atomic_write_json

OnStep = Callable[[dict], None]
PHASES = {  # what each "phase" event means, in words, for the progress line
    "prepare": "loading the data and the pretrained model",
    "before": "scoring the untrained model on the held-out sentences",
    "train": "training",
    "after": "scoring the fine-tuned model on the same sentences",
    "saved": "saved",
}


@dataclass
class FinetuneResult:
    run_dir: Path | None  # None on ranks other than 0 of a multi-process run
    task: str
    label_names: list[str]
    before: dict  # {"accuracy", "macro_f1", ...} of the model before this training
    after: dict
    history: dict = field(default_factory=dict)  # {"train": [per-step dicts], "eval": [per-epoch dicts]}
    train_seconds: float = 0.0  # time inside training steps (evaluation excluded)
    samples_per_s: float = 0.0
    steps: int = 0
    stopped: bool = False  # True when `should_stop()` ended the run early
    model: object = None  # the fine-tuned model, for a caller that goes on using it
    outcome: dict = field(default_factory=dict)  # `compare.outcome`: against the majority baseline


# The settings that choose the held-out split: a resumed run keeps its "before", scored on its split.
DATA_SETTINGS = ("dataset", "text_column", "label_column", "max_examples", "test_size", "seed")


def saved_config(run: str | Path) -> dict:
    """The `finetune_config.json` of a fine-tuning run ({} when it has none), checked."""
    run = Path(run)
    return read_run_file(run, FINETUNE_CONFIG_FILE, FINETUNE) if (run / FINETUNE_CONFIG_FILE).is_file() else {}


def check_same_data(run: str | Path, config: FinetuneConfig) -> None:
    """Refuse to resume `run` with data settings other than its own (another data set, sample or
    split): its saved "before" belongs to its own held-out sentences, and the comparison at the end
    would pair the wrong sentences. A ValueError naming each differing setting."""
    saved = saved_config(run)
    differ = [
        f"{key} {saved[key]!r} (now {getattr(config, key)!r})"
        for key in DATA_SETTINGS
        if key in saved and saved[key] != getattr(config, key)
    ]
    if differ:
        raise ValueError(
            f"Run {Path(run).name!r} was trained with other data settings: {', '.join(differ)}. Resume it with the "
            "same data set and settings (the command line takes the run's own when you leave them out), or "
            "fine-tune a new run."
        )


def train_loop(
    prep: Prepared, config: FinetuneConfig, on_step: OnStep | None = None, should_stop=None, epoch0: int = 0
) -> dict:
    """Only the training (no before/after scoring, nothing saved), with `config.loop`:
    {"steps", "train_seconds", "samples", "stopped", "model"}. `finetune()` wraps this."""
    emit = on_step or (lambda metrics: None)
    if config.loop == "trainer":
        from model_zoo.hf.trainer import trainer_loop  # imports the Trainer classes: seconds

        return trainer_loop(prep, config, emit, should_stop, epoch0)
    from model_zoo.hf.loop import custom_loop

    return custom_loop(prep, config, emit, should_stop, epoch0)


@dataclass
class Start:
    """Where a run starts: a fresh one from the config, or a saved run resumed (checked, its history
    and epochs, its "before" and its base model), read once before any work."""

    config: FinetuneConfig
    history: dict = field(default_factory=lambda: {"train": [], "eval": []})
    epoch0: int = 0  # epochs already trained
    before: dict | None = None  # the resumed run's "before": it stays the untrained model's

    @classmethod
    def fresh(cls, config: FinetuneConfig) -> Start:
        return cls(config)

    @classmethod
    def resumed(cls, run: Path, config: FinetuneConfig) -> Start:
        require_kind(run, FINETUNE)
        problem = check_files(run)  # the listing's rule: a damaged run is never trained on
        if problem is not None:
            raise ValueError(f"Cannot resume from {run.name!r}: {problem.rstrip('.')}.")
        check_same_data(run, config)  # before minutes of training, not after
        start = cls(config)
        if (run / HISTORY_FILE).is_file():
            start.history = read_run_file(run, HISTORY_FILE, FINETUNE)
            start.epoch0 = int(max((e["epoch"] for e in start.history["eval"]), default=0)) or int(
                math.ceil(max((e["epoch"] for e in start.history["train"]), default=0))
            )
        if (run / COMPARISON_FILE).is_file():
            start.before = read_run_file(run, COMPARISON_FILE, FINETUNE).get("before") or None
        info = read_run_file(run, RUN_FILE, FINETUNE) if (run / RUN_FILE).is_file() else {}
        start.config = FinetuneConfig.from_dict({**asdict(config), "model": info.get("model") or config.model})
        return start


# ---------------------------------------------------------------------------------------------
# The one call


def finetune(
    config: FinetuneConfig,
    out_dir: str | Path,
    on_step: OnStep | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_from: str | Path | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune `config.model` on `config.dataset` and save the run in `out_dir`.

    `on_step(metrics)` receives a dict after every step — kind="train", step, total_steps, epoch,
    loss, learning_rate, samples_per_s — after every epoch's evaluation — kind="eval", step,
    epoch, accuracy, macro_f1 — and when a phase begins — kind="phase", phase="prepare" | "before"
    | "train" | "after" | "saved" (the minute-long scoring before and after is not silent).
    Only rank 0 of a multi-process run calls it. `should_stop()` is asked after every step; True ends
    the run early (the model trained so far is still scored and saved).

    `resume_from`: a saved run folder (may be `out_dir` itself) to continue training from: its
    weights, labels and history are the starting point; the optimizer starts afresh.
    """
    out_dir = Path(out_dir)
    same_run = resume_from is not None and Path(resume_from).resolve() == out_dir.resolve()
    check_new_run(out_dir, overwrite=overwrite or same_run)  # before minutes of work, not after
    start = Start.fresh(config) if resume_from is None else Start.resumed(Path(resume_from), config)
    config, history = start.config, start.history

    def emit(metrics: dict) -> None:
        if metrics["kind"] in history:  # "phase" events are news, not history
            history[metrics["kind"]].append(metrics)
        if on_step is not None and distributed.is_main_process():
            on_step(metrics)

    emit({"kind": "phase", "phase": "prepare"})
    torch.manual_seed(config.seed)
    data = load_split(config, resume_from)  # 1. data
    prep = load_tokens(data, config, resume_from)  # 2. tokens, with the pretrained model
    prep.model.to(distributed.resolve_device(config.device))
    before = start.before  # 3. before: the pretrained body with its new, untrained head (or the run we resume)
    if before is None and distributed.is_main_process():
        emit({"kind": "phase", "phase": "before"})
        prep.model.eval()
        before = prep.score(prep.model)
    emit({"kind": "phase", "phase": "train"})
    trained = train_loop(prep, config, emit, should_stop, start.epoch0)  # 4. train
    model = trained["model"]
    model.eval()
    result = FinetuneResult(
        run_dir=None,
        task=prep.task,
        label_names=prep.label_names,
        before=before or {},
        after={},
        history=history,
        train_seconds=trained["train_seconds"],
        samples_per_s=trained["samples"] / trained["train_seconds"] if trained["train_seconds"] else 0.0,
        steps=trained["steps"],
        stopped=trained["stopped"],
        model=model,
    )
    if not distributed.is_main_process():
        return result
    emit({"kind": "phase", "phase": "after"})
    after = prep.score(model)  # 5. after, on the same held-out sentences
    test = prep.raw["test"]
    comparison = compare.compare_predictions(test["text"], test["label"], prep.task, prep.label_names, before, after)
    result.after = comparison["after"]
    result.outcome = compare.outcome(comparison)
    final_epoch = math.ceil(max((e["epoch"] for e in history["train"]), default=0))
    if config.eval_each_epoch and not result.stopped and all(e["epoch"] != final_epoch for e in history["eval"]):
        # the last epoch's evaluation is the "after" scoring: the plain loop does not run it twice
        scores = {k: result.after[k] for k in compare.METRIC_KEYS}
        emit({"kind": "eval", "step": result.steps, "epoch": final_epoch, **scores})
    result.run_dir = out_dir
    save_run(out_dir, model, prep, config, result, comparison, overwrite=overwrite or same_run)  # 6. save
    emit({"kind": "phase", "phase": "saved"})
    return result


def save_run(
    out_dir: Path,
    model,
    prep: Prepared,
    config: FinetuneConfig,
    result: FinetuneResult,
    comparison: dict,
    overwrite: bool = False,
) -> Path:
    """The run folder, whole or not at all (`run_folder.write_run`): weights as safetensors
    (`save_pretrained`), tokenizer, labels, history, config, before/after metrics."""

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        prep.tokenizer.save_pretrained(folder)
        atomic_write_json(folder / LABELS_FILE, prep.label_names)
        atomic_write_json(folder / HISTORY_FILE, result.history)
        atomic_write_json(folder / FINETUNE_CONFIG_FILE, asdict(config))
        atomic_write_json(
            folder / RUN_FILE,
            {
                "kind": FINETUNE,
                "model": config.model,
                "task": prep.task,
                "labels": prep.label_names,
                "loop": config.loop,
                "dataset": config.dataset,
                "data_source": prep.data_source,
                "train_examples": len(prep.raw["train"]),
                "test_examples": len(prep.raw["test"]),
                "steps": result.steps,
                "epochs": (max((e["epoch"] for e in result.history["train"]), default=0.0)),
                "train_seconds": round(result.train_seconds, 3),
                "samples_per_s": round(result.samples_per_s, 3),
                "stopped": result.stopped,
                "final_metrics": {k: result.after[k] for k in compare.METRIC_KEYS if k in result.after},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        compare.write_comparison(folder, comparison)

    return write_run(out_dir, write, replace=overwrite)


def run_name_for(model: str, dataset: str, when: float | None = None) -> str:
    """A default run name that says what the run is: "ft-minilm-rotten-1127-1402" (the model's
    first word, the data set — an uploaded file by its name, "ft-minilm-speeches-…" — the time)."""
    from model_zoo.hf.data import ROTTEN_TOMATOES
    from model_zoo.hf.models import OFFLINE_SUFFIX

    words = re.findall(r"[a-z0-9]+", Path(str(model).removesuffix(OFFLINE_SUFFIX)).name.lower()) or ["model"]
    data = (
        "rotten"
        if dataset == ROTTEN_TOMATOES
        else "-".join(re.findall(r"[a-z0-9]+", Path(dataset).stem.lower())[:2])[:16].strip("-") or "upload"
    )
    return f"ft-{words[0][:12]}-{data}-{time.strftime('%m%d-%H%M%S', time.localtime(when))}"


def load_run_info(run: str | Path) -> dict:
    """`run.json` of a fine-tuning run folder, with a clear error for anything else."""
    run = Path(run)
    require_kind(run, FINETUNE)
    return read_run_file(run, RUN_FILE, FINETUNE) if (run / RUN_FILE).is_file() else {"kind": FINETUNE}
