"""Fine-tune a pretrained Transformer on labelled sentences: one call, two training loops.

`finetune(config, out_dir)` does the whole of it, in this order:

1. load the data, take a seeded stratified train/test split, tokenize it;
2. load the pretrained model with a new classification head (or T5 for text-to-text);
3. score the untrained model on the test split ("before");
4. train, with Hugging Face's `Trainer` (`loop="trainer"`) or a plain PyTorch loop written out
   below (`loop="custom"`): the same optimizer (AdamW), the same linear schedule with warmup, the
   same gradient clipping, the same metrics, reported through the same `on_step` callback;
5. score the trained model on the same split ("after"), and save the run folder:

    weights/<run>/model.safetensors, config.json    the fine-tuned model (`save_pretrained`)
    weights/<run>/tokenizer.json, ...               its tokenizer
    weights/<run>/labels.json                       the label names, index order
    weights/<run>/history.json                      every step's loss and every evaluation
    weights/<run>/finetune_config.json, run.json    how it was made, and what kind of run it is
    weights/<run>/metrics.json, comparison.json     before/after (see `model_zoo.compare`)

Under `torchrun --nproc_per_node=N` (or `accelerate launch`) the Trainer runs data-parallel (DDP)
and the custom loop wraps the model in `DistributedDataParallel`; only rank 0 writes files.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

import model_zoo.hf  # noqa: F401  (the Hugging Face libraries, imported once and thread-safely)
from model_zoo import compare as compare_mod
from model_zoo.finetune_data import (
    ROTTEN_TOMATOES,
    TEXT2TEXT_PREFIX,
    load_labeled_data,
    make_collator,
    model_columns,
    split,
    subsample,
    tokenize,
)
from model_zoo.pretrained import load_config, load_pretrained, task_of
from model_zoo.utils import atomic_write_json, check_run_name, default_device, read_json

LOOPS = ("trainer", "custom")
OnStep = Callable[[dict], None]


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides a fine-tuning run. The defaults fine-tune the offline MiniLM on
    2,000 rotten-tomatoes sentences for one epoch: about two minutes on a 2-core laptop CPU.
    For a larger model from the hub (bert-base-uncased) use a smaller learning rate: 3e-5."""

    model: str = "minilm-l6"  # short name, local folder or hub name (see model_zoo.pretrained)
    dataset: str = ROTTEN_TOMATOES  # or the path of a CSV / JSON-lines file
    text_column: str = "text"
    label_column: str = "label"
    task: str | None = None  # "classification" | "text2text"; None: from the model (T5 → text2text)
    loop: str = "custom"  # "trainer" (Hugging Face Trainer) | "custom" (the loop below)
    epochs: int = 1
    max_steps: int | None = None  # stop earlier than `epochs` (quick tests, time-boxed runs)
    batch_size: int = 32
    eval_batch_size: int = 64
    # BERT-base's usual range is 2e-5..5e-5. MiniLM-L6 (all-MiniLM-L6-v2) was trained for mean
    # pooling, so its [CLS] token has to learn to summarise a sentence: in a one-epoch run on a few
    # thousand sentences 5e-5 leaves it guessing the majority class, 2e-4 reaches ~0.79 (4,000).
    learning_rate: float = 2e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # the first 10% of steps ramp the learning rate up from 0
    max_grad_norm: float = 1.0
    max_length: int = 64  # review sentences are short; longer inputs are truncated
    max_examples: int | None = 2000  # None: all (13k sentences for rotten tomatoes)
    test_size: float = 0.2
    seed: int = 0
    data_source: str = "auto"  # rotten tomatoes from "hub", "offline" or "auto"
    text2text_prefix: str = TEXT2TEXT_PREFIX
    max_new_tokens: int = 8  # generation length for text2text labels
    eval_each_epoch: bool = True
    device: str | None = None  # None: CUDA if present, else the CPU

    def __post_init__(self):
        checks = [
            (self.loop in LOOPS, f"loop={self.loop!r} is not one of {LOOPS}."),
            (self.task in (None, "classification", "text2text"),
             f"task={self.task!r}: use 'classification', 'text2text' or None (from the model)."),
            (isinstance(self.epochs, int) and self.epochs >= 1, f"epochs={self.epochs} must be a whole number ≥ 1."),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps={self.max_steps} must be ≥ 1 or None."),
            (self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be ≥ 1."),
            (0 < self.learning_rate < 1, f"learning_rate={self.learning_rate} should be small and positive, like 5e-5."),
            (self.weight_decay >= 0, f"weight_decay={self.weight_decay} must be ≥ 0."),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio={self.warmup_ratio} must be in [0, 1)."),
            (self.max_length >= 8, f"max_length={self.max_length} is too short: use at least 8 tokens."),
            (self.max_examples is None or self.max_examples >= 10,
             f"max_examples={self.max_examples}: use at least 10 (or None for all)."),
            (0 < self.test_size < 1, f"test_size={self.test_size} must be a fraction between 0 and 1."),
            (self.max_new_tokens >= 1, "max_new_tokens must be ≥ 1."),
            (self.data_source in ("auto", "hub", "offline"), f"data_source={self.data_source!r}: use auto, hub or offline."),
            (bool(str(self.model).strip()), "model is empty: name a model (e.g. 'minilm-l6')."),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneConfig:
        """From a saved `finetune_config.json`; unknown keys (from other versions) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


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


# ---------------------------------------------------------------------------------------------
# Distributed helpers: torchrun and accelerate launch set RANK / WORLD_SIZE / LOCAL_RANK.


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def _device(config: FinetuneConfig) -> torch.device:
    if config.device:
        return torch.device(config.device)
    if world_size() > 1 and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return default_device()


# ---------------------------------------------------------------------------------------------
# 1-2. Data and model


@dataclass
class Prepared:
    """What both loops train on: the model, its tokenizer, raw and tokenized splits."""

    tokenizer: object
    model: object
    task: str
    label_names: list[str]
    raw: object  # DatasetDict "train"/"test" with "text" and "label"
    tokenized: object  # DatasetDict with input_ids, attention_mask, labels (and "label")
    data_source: str


def prepare(config: FinetuneConfig, resume_from: str | Path | None = None) -> Prepared:
    data = load_labeled_data(config.dataset, config.text_column, config.label_column, config.data_source)
    data = subsample(data, config.max_examples, config.seed)
    raw = split(data, config.test_size, config.seed)
    if resume_from is not None:
        saved = read_json(Path(resume_from) / "labels.json")
        if saved != data.label_names:
            raise ValueError(
                f"The run in {resume_from} was trained on labels {saved}, this data has "
                f"{data.label_names}: resume with the same data set."
            )
    source = str(resume_from) if resume_from is not None else config.model
    task = config.task or task_of(load_config(source))
    tokenizer, model, task = load_pretrained(source, task, data.label_names, seed=config.seed)
    tokenized = tokenize(raw, tokenizer, task, data.label_names, config.max_length, config.text2text_prefix)
    return Prepared(tokenizer, model, task, data.label_names, raw, tokenized, data.source)


def _evaluate(prep: Prepared, model, config: FinetuneConfig) -> dict:
    """Accuracy and macro-F1 on the test split: the one evaluation both loops and before/after use."""
    return compare_mod.evaluate_model(
        model,
        prep.tokenizer,
        prep.raw["test"]["text"],
        prep.raw["test"]["label"],
        prep.task,
        prep.label_names,
        batch_size=config.eval_batch_size,
        max_length=config.max_length,
        prefix=config.text2text_prefix,
        max_new_tokens=config.max_new_tokens,
    )


def _schedule(n_train: int, config: FinetuneConfig) -> tuple[int, int, int]:
    """(steps per epoch, total steps, warmup steps), the same numbers for both loops."""
    per_epoch = math.ceil(n_train / (config.batch_size * world_size()))
    total = per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    return per_epoch, total, int(config.warmup_ratio * total)


# ---------------------------------------------------------------------------------------------
# 4a. The custom loop


def _optimizer(model, config: FinetuneConfig) -> torch.optim.Optimizer:
    """AdamW; biases and LayerNorm weights (1-D tensors) get no weight decay, as in BERT."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )


def _custom_loop(prep: Prepared, config: FinetuneConfig, emit: OnStep, should_stop, epoch0: int) -> dict:
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler
    from transformers import get_linear_schedule_with_warmup

    device = _device(config)
    model = prep.model.to(device)
    train = prep.tokenized["train"].select_columns(model_columns(prep.tokenized["train"]))
    collate = make_collator(prep.tokenizer, prep.task, model)
    distributed = world_size() > 1
    if distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        sampler = DistributedSampler(train, shuffle=True, seed=config.seed)
        loader = DataLoader(train, batch_size=config.batch_size, sampler=sampler, collate_fn=collate)
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    else:
        sampler = None
        generator = torch.Generator().manual_seed(config.seed)
        loader = DataLoader(train, batch_size=config.batch_size, shuffle=True, generator=generator, collate_fn=collate)
        ddp_model = model

    per_epoch, total, warmup = _schedule(len(train), config)
    optimizer = _optimizer(model, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    step, step_seconds, samples, stopped = 0, 0.0, 0, False
    for epoch in range(config.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        for batch in loader:
            start = time.perf_counter()
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = ddp_model(**batch).loss  # 1. forward: cross-entropy over the labels
            loss.backward()  # 2. gradients (DDP averages them across processes here)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            learning_rate = scheduler.get_last_lr()[0]
            optimizer.step()  # 3. update
            scheduler.step()  # 4. next learning rate: warmup ramp, then linear decay to 0
            optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - start
            step += 1
            n = len(batch["input_ids"]) * world_size()
            step_seconds += seconds
            samples += n
            emit({
                "kind": "train",
                "step": step,
                "total_steps": total,
                "epoch": epoch0 + epoch + min(1.0, step / per_epoch - epoch),
                "loss": loss.item(),
                "learning_rate": learning_rate,
                "samples_per_s": n / seconds,
            })
            stopped = bool(should_stop and should_stop())
            if stopped or step >= total:
                break
        if config.eval_each_epoch and not stopped and is_main_process():
            model.eval()
            scores = _evaluate(prep, model, config)
            emit({"kind": "eval", "step": step, "epoch": epoch0 + epoch + 1, **{k: scores[k] for k in compare_mod.METRIC_KEYS}})
        if stopped or step >= total:
            break
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return {"steps": step, "train_seconds": step_seconds, "samples": samples, "stopped": stopped, "model": model}


# ---------------------------------------------------------------------------------------------
# 4b. The Hugging Face Trainer


def _trainer_loop(prep: Prepared, config: FinetuneConfig, emit: OnStep, should_stop, epoch0: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="trainer_") as scratch:
        return _run_trainer(prep, config, emit, should_stop, epoch0, scratch)


def _run_trainer(prep: Prepared, config: FinetuneConfig, emit: OnStep, should_stop, epoch0: int, scratch: str) -> dict:
    import numpy as np
    from transformers import (
        PrinterCallback,
        ProgressCallback,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    device = _device(config)
    train = prep.tokenized["train"].select_columns(model_columns(prep.tokenized["train"]))
    test = prep.tokenized["test"].select_columns(model_columns(prep.tokenized["test"]))
    per_epoch, total, warmup = _schedule(len(train), config)
    n_train = len(train)
    text2text = prep.task == "text2text"

    class Relay(TrainerCallback):
        """Turns the Trainer's events into the same `on_step` dicts as the custom loop."""

        def __init__(self):
            self.start, self.step_seconds, self.samples, self.stopped = 0.0, 0.0, 0, False
            self.last: dict = {}

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds = time.perf_counter() - self.start
            in_epoch = (state.global_step - 1) % per_epoch  # the last batch of an epoch is smaller
            per_rank = config.batch_size if in_epoch < per_epoch - 1 else math.ceil(n_train / world_size()) - config.batch_size * (per_epoch - 1)
            n = per_rank * world_size()
            self.step_seconds += seconds
            self.samples += n
            self.last = {"samples_per_s": n / seconds}

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                emit({
                    "kind": "train",
                    "step": state.global_step,
                    "total_steps": total,
                    "epoch": epoch0 + (state.epoch or 0.0),
                    "loss": float(logs["loss"]),
                    "learning_rate": float(logs.get("learning_rate", 0.0)),
                    **self.last,
                })
                if should_stop and should_stop():  # asked after the step is reported, as in the custom loop
                    self.stopped = True
                    control.should_training_stop = True
            elif "eval_accuracy" in logs and is_main_process():
                emit({
                    "kind": "eval",
                    "step": state.global_step,
                    "epoch": epoch0 + round(state.epoch or 0.0),
                    **{k.removeprefix("eval_"): v for k, v in logs.items() if k.removeprefix("eval_") in compare_mod.METRIC_KEYS},
                })

    def compute_metrics(eval_pred) -> dict:
        predictions, references = eval_pred.predictions, eval_pred.label_ids
        if text2text:  # generated token ids → words → label indices
            predictions = np.where(predictions < 0, prep.tokenizer.pad_token_id, predictions)
            texts = prep.tokenizer.batch_decode(predictions, skip_special_tokens=True)
            predictions = compare_mod.words_to_labels(texts, prep.label_names)
            references = np.asarray(prep.raw["test"]["label"])
        else:
            predictions = np.asarray(predictions).argmax(-1)
        return compare_mod.classification_metrics(predictions, references, len(prep.label_names))

    common = {
        "output_dir": scratch,  # a temporary folder: the run folder gets only what save_run writes
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.eval_batch_size,
        "num_train_epochs": config.epochs,
        "max_steps": total,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay,
        "warmup_steps": warmup,
        "lr_scheduler_type": "linear",
        "max_grad_norm": config.max_grad_norm,
        "optim": "adamw_torch",
        "logging_strategy": "steps",
        "logging_steps": 1,
        "eval_strategy": "epoch" if config.eval_each_epoch else "no",
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "log_level": "error",
        "seed": config.seed,
        "use_cpu": device.type == "cpu",
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
    }
    if world_size() > 1 and device.type == "cpu":
        common["ddp_backend"] = "gloo"
    if world_size() > 1:
        common["ddp_find_unused_parameters"] = False  # every parameter gets a gradient: skip the search
    if text2text:
        args = Seq2SeqTrainingArguments(
            **common, predict_with_generate=True, generation_max_length=config.max_new_tokens + 1
        )
        trainer_cls = Seq2SeqTrainer
    else:
        args = TrainingArguments(**common)
        trainer_cls = Trainer
    relay = Relay()
    trainer = trainer_cls(
        model=prep.model,
        args=args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=make_collator(prep.tokenizer, prep.task, prep.model),
        processing_class=prep.tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[relay],
    )
    trainer.remove_callback(PrinterCallback)  # library code never prints: `on_step` reports
    trainer.remove_callback(ProgressCallback)
    trainer.train()
    return {
        "steps": trainer.state.global_step,
        "train_seconds": relay.step_seconds,
        "samples": relay.samples,
        "stopped": relay.stopped,
        "model": trainer.model,
    }


def train_loop(
    prep: Prepared, config: FinetuneConfig, on_step: OnStep | None = None, should_stop=None, epoch0: int = 0
) -> dict:
    """Only the training (no before/after scoring, nothing saved), with `config.loop`:
    {"steps", "train_seconds", "samples", "stopped", "model"}. `finetune()` wraps this."""
    emit = on_step or (lambda metrics: None)
    if config.loop == "trainer":
        return _trainer_loop(prep, config, emit, should_stop, epoch0)
    return _custom_loop(prep, config, emit, should_stop, epoch0)


# ---------------------------------------------------------------------------------------------
# The one call


def finetune(
    config: FinetuneConfig,
    out_dir: str | Path,
    on_step: OnStep | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_from: str | Path | None = None,
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
    check_run_name(out_dir.name)
    emit_history: dict = {"train": [], "eval": []}
    epoch0, before = 0, None
    if resume_from is not None:
        resume_from = Path(resume_from)
        if not (resume_from / "labels.json").is_file():
            raise FileNotFoundError(f"{resume_from} is not a fine-tuning run (no labels.json) to resume from.")
        if (resume_from / "history.json").is_file():
            emit_history = read_json(resume_from / "history.json")
            epoch0 = int(max((e["epoch"] for e in emit_history["eval"]), default=0)) or int(
                math.ceil(max((e["epoch"] for e in emit_history["train"]), default=0))
            )
        if (resume_from / "comparison.json").is_file():  # "before" stays the untrained model
            before = read_json(resume_from / "comparison.json").get("before")
        info = read_json(resume_from / "run.json") if (resume_from / "run.json").is_file() else {}
        base_model = info.get("model", config.model)
        config = FinetuneConfig.from_dict({**asdict(config), "model": base_model})

    def emit(metrics: dict) -> None:
        if metrics["kind"] in emit_history:  # "phase" events are news, not history
            emit_history[metrics["kind"]].append(metrics)
        if on_step is not None and is_main_process():
            on_step(metrics)

    emit({"kind": "phase", "phase": "prepare"})

    torch.manual_seed(config.seed)
    prep = prepare(config, resume_from)
    device = _device(config)
    prep.model.to(device)
    # 3. Before: the pretrained body with its new, untrained head (or the run we resume).
    if before is None and is_main_process():
        emit({"kind": "phase", "phase": "before"})
        prep.model.eval()
        before = _evaluate(prep, prep.model, config)
        before["probes"] = compare_mod.score_probes_before(prep.model, prep.tokenizer, prep.task, prep.label_names, config)
    # 4. Train.
    emit({"kind": "phase", "phase": "train"})
    outcome = train_loop(prep, config, emit, should_stop, epoch0)
    model = outcome["model"]
    model.eval()
    result = FinetuneResult(
        run_dir=None,
        task=prep.task,
        label_names=prep.label_names,
        before=before or {},
        after={},
        history=emit_history,
        train_seconds=outcome["train_seconds"],
        samples_per_s=outcome["samples"] / outcome["train_seconds"] if outcome["train_seconds"] else 0.0,
        steps=outcome["steps"],
        stopped=outcome["stopped"],
        model=model,
    )
    if not is_main_process():
        return result
    # 5. After, on the same held-out sentences; then the run folder.
    emit({"kind": "phase", "phase": "after"})
    comparison = compare_mod.compare_predictions(
        model, prep.tokenizer, prep.raw["test"]["text"], prep.raw["test"]["label"], prep.task,
        prep.label_names, config, before=before,
    )
    result.after = comparison["after"]
    result.run_dir = out_dir
    save_run(out_dir, model, prep, config, result, comparison)
    emit({"kind": "phase", "phase": "saved"})
    return result


def save_run(out_dir: Path, model, prep: Prepared, config: FinetuneConfig, result: FinetuneResult, comparison: dict) -> None:
    """Weights as safetensors (`save_pretrained`), tokenizer, labels, history, config, metrics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    prep.tokenizer.save_pretrained(out_dir)
    atomic_write_json(out_dir / "labels.json", prep.label_names)
    atomic_write_json(out_dir / "history.json", result.history)
    atomic_write_json(out_dir / "finetune_config.json", asdict(config))
    atomic_write_json(out_dir / "run.json", {
        "kind": "finetune",
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
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    compare_mod.write_comparison(out_dir, comparison)


def load_run_info(run: str | Path) -> dict:
    """`run.json` of a fine-tuning run folder, with a clear error for anything else."""
    run = Path(run)
    if not (run / "labels.json").is_file():
        raise FileNotFoundError(
            f"{run} is not a fine-tuning run: it has no labels.json (scratch runs have vocab.json)."
        )
    return read_json(run / "run.json") if (run / "run.json").is_file() else {"kind": "finetune"}
